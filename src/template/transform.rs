//! The transforms an expression's value passes through, left to right.

use std::fmt;

/// Longest `truncate(n)` accepted; longer is surely a typo.
pub const MAX_TRUNCATE: usize = 1_000_000;

/// One `| name(args)` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    Lower,
    Upper,
    Trim,
    /// Keeps the first `n` characters.
    Truncate(usize),
    /// Replaces every occurrence of the first string with the second.
    Replace(String, String),
    /// Stands in for a missing or empty value.
    Default(String),
    /// An option set: the value as the set spells it when it matches one of them
    /// (ignoring case and surrounding space), otherwise no value, so the field is
    /// left out rather than filled with something the app would refuse.
    OneOf(Vec<String>),
}

/// An argument as written: a quoted string or a whole number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Str(String),
    Int(usize),
}

/// The transform names, for error messages.
pub(crate) const NAMES: &str = "lower, upper, trim, truncate(n), replace(\"a\", \"b\"), default(\"x\"), oneof(\"a\", \"b\", …)";

impl Transform {
    /// Builds a transform from its name and arguments, or says what is wrong with them.
    pub(crate) fn build(name: &str, args: Vec<Arg>) -> Result<Self, String> {
        let lower = name.to_ascii_lowercase();
        let t = match (lower.as_str(), args.as_slice()) {
            ("lower", []) => Transform::Lower,
            ("upper", []) => Transform::Upper,
            ("trim", []) => Transform::Trim,
            ("truncate", [Arg::Int(n)]) if (1..=MAX_TRUNCATE).contains(n) => {
                Transform::Truncate(*n)
            }
            ("truncate", [Arg::Int(_)]) => {
                return Err(format!("truncate takes a length from 1 to {MAX_TRUNCATE}"));
            }
            ("replace", [Arg::Str(a), Arg::Str(b)]) if !a.is_empty() => {
                Transform::Replace(a.clone(), b.clone())
            }
            ("replace", [Arg::Str(_), Arg::Str(_)]) => {
                return Err("replace needs a non-empty string to look for".to_string());
            }
            ("default", [Arg::Str(x)]) => Transform::Default(x.clone()),
            ("oneof", list)
                if !list.is_empty()
                    && list
                        .iter()
                        .all(|a| matches!(a, Arg::Str(s) if !s.trim().is_empty())) =>
            {
                Transform::OneOf(
                    list.iter()
                        .filter_map(|a| match a {
                            Arg::Str(s) => Some(s.clone()),
                            Arg::Int(_) => None,
                        })
                        .collect(),
                )
            }
            ("oneof", _) => {
                return Err(
                    "oneof takes one or more non-blank quoted strings: oneof(\"Mr\", \"Ms\")"
                        .into(),
                );
            }
            ("lower" | "upper" | "trim", _) => return Err(format!("{lower} takes no arguments")),
            ("truncate", _) => return Err("truncate takes one whole number: truncate(40)".into()),
            ("replace", _) => {
                return Err("replace takes two quoted strings: replace(\"a\", \"b\")".into());
            }
            ("default", _) => return Err("default takes one quoted string: default(\"x\")".into()),
            _ => return Err(format!("unknown transform `{name}`; known: {NAMES}")),
        };
        Ok(t)
    }

    /// Applies the transform; `None` is a missing value.
    pub fn apply(&self, value: Option<String>) -> Option<String> {
        match self {
            Transform::Default(x) => match value {
                Some(v) if !v.is_empty() => Some(v),
                _ => Some(x.clone()),
            },
            Transform::OneOf(set) => value.and_then(|v| {
                set.iter()
                    .find(|o| o.trim().eq_ignore_ascii_case(v.trim()))
                    .cloned()
            }),
            _ => value.map(|v| self.apply_present(v)),
        }
    }

    fn apply_present(&self, v: String) -> String {
        match self {
            Transform::Lower => v.to_lowercase(),
            Transform::Upper => v.to_uppercase(),
            Transform::Trim => v.trim().to_string(),
            Transform::Truncate(n) => v.chars().take(*n).collect(),
            Transform::Replace(a, b) => v.replace(a.as_str(), b),
            Transform::Default(_) | Transform::OneOf(_) => v,
        }
    }
}

/// Writes `s` as a quoted argument the parser reads back unchanged.
fn quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Lower => f.write_str("lower"),
            Transform::Upper => f.write_str("upper"),
            Transform::Trim => f.write_str("trim"),
            Transform::Truncate(n) => write!(f, "truncate({n})"),
            Transform::Replace(a, b) => {
                f.write_str("replace(")?;
                quoted(f, a)?;
                f.write_str(", ")?;
                quoted(f, b)?;
                f.write_str(")")
            }
            Transform::Default(x) => {
                f.write_str("default(")?;
                quoted(f, x)?;
                f.write_str(")")
            }
            Transform::OneOf(set) => {
                f.write_str("oneof(")?;
                for (i, o) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    quoted(f, o)?;
                }
                f.write_str(")")
            }
        }
    }
}

//! The `[path]` template language, shared by identity mappings and the workspace resolver.
//!
//! A template is literal text with expressions in square brackets:
//!
//! ```text
//! [user.name.givenName] [user.name.familyName | upper]
//! [user.emails[type eq "work"].value | lower]
//! [user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber]
//! [workitem.client.reference | trim | default("0000")]
//! ```
//!
//! * A path starts at a root the caller provides (`user`, `group`, `workitem`) and walks
//!   attributes by name, ignoring case as SCIM does. A step may carry a SCIM value filter
//!   (`emails[type eq "work"]`); a step that starts with `urn:` names an extension schema,
//!   whose URN runs to its last `:`.
//! * A path that lands on several values (a multi-valued attribute) takes the one marked
//!   `primary`, else the first.
//! * Transforms run left to right: `lower`, `upper`, `trim`, `truncate(n)`,
//!   `replace("a", "b")`, `default("x")`. Only `default` sees a missing value.
//! * `\[`, `\]` and `\\` write a literal bracket or backslash.
//!
//! Templates are parsed once, when the configuration loads; a parse error carries the
//! byte position and renders with a caret under it. Evaluation does no I/O.

mod assign;
mod error;
mod eval;
mod parse;
mod split;
mod transform;

#[cfg(test)]
mod tests;

use std::fmt;

use crate::scim::Filter;

pub use assign::{Assignment, looks_like_assignments, parse_assignments};
pub use error::{EvalError, TemplateError};
pub use eval::Context;
pub use split::split_top_level;
pub use transform::Transform;

/// A parsed template; parse with [`Template::parse`], evaluate with [`Template::render`].
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// A run of literal text or one bracketed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Literal(String),
    Expr(Expr),
}

/// `[path | transform | …]`.
#[derive(Debug, Clone)]
pub struct Expr {
    pub path: Path,
    pub transforms: Vec<Transform>,
    /// Byte offset of the opening `[` in the source, for errors found after parsing.
    pub offset: usize,
}

/// A root name and the steps taken from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub root: String,
    pub steps: Vec<Step>,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An attribute, optionally narrowed by a SCIM value filter.
    Attr {
        name: String,
        filter: Option<Filter>,
    },
    /// An extension schema's URN; always followed by an attribute step.
    Schema(String),
}

impl PartialEq for Expr {
    /// Where the expression was written does not change what it means.
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.transforms == other.transforms
    }
}

impl PartialEq for Template {
    /// Two templates are equal when they mean the same; spelling and spacing may differ.
    fn eq(&self, other: &Self) -> bool {
        self.parts == other.parts
    }
}

impl Template {
    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The literal runs and expressions, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The expressions, in order.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Literal(_) => None,
        })
    }

    /// True when the template has no expressions: it always renders to the same text.
    pub fn is_constant(&self) -> bool {
        self.exprs().next().is_none()
    }

    /// Refuses a template that reads a root other than `allowed`, pointing at the path.
    pub fn check_roots(&self, allowed: &[&str]) -> Result<(), TemplateError> {
        for e in self.exprs() {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&e.path.root)) {
                let known = allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(TemplateError::new(
                    &self.source,
                    e.offset + 1,
                    format!(
                        "unknown root `{}`; here a path starts with {known}",
                        e.path.root
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Template {
    /// The canonical spelling, which parses back to an equal template.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(s) => {
                    for c in s.chars() {
                        if matches!(c, '[' | ']' | '\\') {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                }
                Part::Expr(e) => write!(f, "{e}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}", self.path)?;
        for t in &self.transforms {
            write!(f, " | {t}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.root)?;
        let mut after_schema = false;
        for step in &self.steps {
            match step {
                Step::Schema(urn) => {
                    write!(f, ".{urn}:")?;
                    after_schema = true;
                }
                Step::Attr { name, filter } => {
                    if !after_schema {
                        f.write_str(".")?;
                    }
                    after_schema = false;
                    f.write_str(name)?;
                    if let Some(filter) = filter {
                        write!(f, "[{filter}]")?;
                    }
                }
            }
        }
        Ok(())
    }
}

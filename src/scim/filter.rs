//! RFC 7644 §3.4.2.2 filters: the AST, its limits and its canonical text form.

use std::fmt;

use serde_json::Value;

use crate::scim::path::AttrPath;

pub use crate::scim::filter_parse::parse_filter;

/// Bounds on filter text so no input can exhaust time or stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterLimits {
    /// Longest filter accepted, in bytes.
    pub max_len: usize,
    /// Deepest nesting of `(`, `[` and `not` accepted.
    pub max_depth: usize,
}

impl Default for FilterLimits {
    fn default() -> Self {
        FilterLimits {
            max_len: 8192,
            max_depth: 64,
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater than or equal
    Ge,
    /// less than
    Lt,
    /// less than or equal
    Le,
}

impl CompareOp {
    /// Parses an operator name case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    /// Lower-case wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath op value`.
    Compare {
        /// Attribute compared.
        path: AttrPath,
        /// Operator.
        op: CompareOp,
        /// Literal: string, number, boolean or null.
        value: Value,
    },
    /// `attrPath pr`.
    Present(AttrPath),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`.
    Not(Box<Filter>),
    /// `attr[filter]`; `attr[f].sub op v` is parsed as `attr[f and sub op v]`, which means the same.
    ValuePath {
        /// Multi-valued (or complex) attribute.
        attr: AttrPath,
        /// Filter over its elements, with paths relative to an element.
        filter: Box<Filter>,
    },
}

impl Filter {
    /// Whether the filter reads the resource's top-level (core) attribute `name`, e.g.
    /// `members` in `members[value eq "x"]` or `not (members pr)`. Paths inside `[…]`
    /// are relative to an element, and string literals are values, not attributes, so
    /// `displayName eq "Board members"` does not read `members`.
    pub fn reads_attribute(&self, name: &str) -> bool {
        let names = |p: &AttrPath| p.extension().is_none() && p.name.eq_ignore_ascii_case(name);
        match self {
            Filter::Compare { path, .. } | Filter::Present(path) => names(path),
            Filter::And(l, r) | Filter::Or(l, r) => {
                l.reads_attribute(name) || r.reads_attribute(name)
            }
            Filter::Not(inner) => inner.reads_attribute(name),
            Filter::ValuePath { attr, .. } => names(attr),
        }
    }

    /// `path eq value` shorthand.
    pub fn eq(path: AttrPath, value: Value) -> Self {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Filter::Present(path) => write!(f, "{path} pr"),
            // Parenthesise exactly where needed so the text parses back to the same
            // left-associated tree.
            Filter::And(l, r) => {
                if matches!(**l, Filter::Or(..)) {
                    write!(f, "({l})")?;
                } else {
                    write!(f, "{l}")?;
                }
                f.write_str(" and ")?;
                if matches!(**r, Filter::Or(..) | Filter::And(..)) {
                    write!(f, "({r})")
                } else {
                    write!(f, "{r}")
                }
            }
            Filter::Or(l, r) => {
                write!(f, "{l} or ")?;
                if matches!(**r, Filter::Or(..)) {
                    write!(f, "({r})")
                } else {
                    write!(f, "{r}")
                }
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { attr, filter } => write!(f, "{attr}[{filter}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads_members(text: &str) -> bool {
        parse_filter(text, &FilterLimits::default())
            .unwrap()
            .reads_attribute("members")
    }

    #[test]
    fn reads_attribute_follows_the_tree_not_the_text() {
        assert!(reads_members(r#"members[value eq "x"]"#));
        assert!(reads_members(r#"Members.value eq "x""#));
        assert!(reads_members("not (members pr)"));
        assert!(reads_members(r#"displayName eq "a" or members eq "x""#));
        assert!(reads_members(
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:members eq "x""#
        ));
        assert!(!reads_members(r#"displayName eq "Board members""#));
        assert!(!reads_members(r#"emails[type eq "members"]"#));
        assert!(!reads_members(
            r#"urn:example:ext:1.0:Group:members eq "x""#
        ));
    }
}

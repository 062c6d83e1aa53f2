//! Attribute paths (RFC 7644 §3.10) and PATCH paths (RFC 7644 §3.5.2).

use std::fmt;

use crate::scim::error::ScimError;
use crate::scim::filter::{Filter, FilterLimits, parse_filter};

/// Longest attribute path accepted; real paths are far shorter.
const MAX_PATH_LEN: usize = 1024;

/// `[urn:]name[.sub]`, e.g. `name.givenName` or `urn:...:enterprise:2.0:User:manager.value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// Schema URN prefix, when the path was qualified.
    pub schema: Option<String>,
    /// Top-level attribute name, as written.
    pub name: String,
    /// Sub-attribute name, as written.
    pub sub: Option<String>,
}

/// True for an RFC 7643 §2.1 ATTRNAME (`ALPHA *(nameChar)`), plus `$ref`-style names.
pub fn is_attr_name(s: &str) -> bool {
    let rest = s.strip_prefix('$').unwrap_or(s);
    let mut chars = rest.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl AttrPath {
    /// The extension schema the path lives in, if any: `None` for unqualified paths and
    /// for paths qualified with a core schema URN (their attributes sit at the top
    /// level of the resource).
    pub fn extension(&self) -> Option<&str> {
        self.schema
            .as_deref()
            .filter(|urn| !urn.to_ascii_lowercase().contains(":core:2.0:"))
    }

    /// An unqualified path with no sub-attribute.
    pub fn simple(name: &str) -> Self {
        AttrPath {
            schema: None,
            name: name.to_string(),
            sub: None,
        }
    }

    /// Parses `[urn:]name[.sub]`.
    ///
    /// The URN is everything up to the last `:`; dots are only split after that, because
    /// schema URNs contain dots (`2.0`).
    pub fn parse(s: &str) -> Result<Self, ScimError> {
        if s.len() > MAX_PATH_LEN {
            return Err(ScimError::invalid_path("attribute path too long"));
        }
        let bad = || ScimError::invalid_path(format!("invalid attribute path {s:?}"));
        let (schema, rest) = if s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
            let idx = s.rfind(':').ok_or_else(bad)?;
            let (urn, rest) = (
                s.get(..idx).ok_or_else(bad)?,
                s.get(idx + 1..).ok_or_else(bad)?,
            );
            if urn.len() <= 4 || urn.contains(char::is_whitespace) {
                return Err(bad());
            }
            (Some(urn.to_string()), rest)
        } else {
            (None, s)
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, sub)) => (n, Some(sub)),
            None => (rest, None),
        };
        if !is_attr_name(name) || sub.is_some_and(|s| !is_attr_name(s)) {
            return Err(bad());
        }
        Ok(AttrPath {
            schema,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// The same path without its sub-attribute.
    pub fn parent(&self) -> AttrPath {
        AttrPath {
            schema: self.schema.clone(),
            name: self.name.clone(),
            sub: None,
        }
    }

    /// `schema:name` when qualified: equals a schema URN when the path named a whole extension.
    pub fn qualified_name(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}:{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.schema {
            write!(f, "{s}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A PATCH `path`: `attrPath [ "[" valFilter "]" ] [ "." subAttr ]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (may carry a sub-attribute when no filter is present).
    pub attr: AttrPath,
    /// The value selection filter, relative to the attribute's elements.
    pub filter: Option<Filter>,
    /// Sub-attribute after the filter (`emails[type eq "work"].value`).
    pub sub: Option<String>,
}

impl PatchPath {
    /// Parses a PATCH path.
    pub fn parse(s: &str) -> Result<Self, ScimError> {
        if s.len() > FilterLimits::default().max_len {
            return Err(ScimError::invalid_path("path too long"));
        }
        let Some(open) = s.find('[') else {
            return Ok(PatchPath {
                attr: AttrPath::parse(s.trim())?,
                filter: None,
                sub: None,
            });
        };
        // Sub-attribute names cannot contain `]`, so the last one closes the filter even
        // when a string literal inside the filter contains brackets.
        let close = s
            .rfind(']')
            .filter(|&c| c > open)
            .ok_or_else(|| ScimError::invalid_path(format!("unclosed '[' in path {s:?}")))?;
        let bad = || ScimError::invalid_path(format!("invalid path {s:?}"));
        let attr = AttrPath::parse(s.get(..open).ok_or_else(bad)?.trim())?;
        if attr.sub.is_some() {
            return Err(ScimError::invalid_path(format!(
                "a value filter must follow a top-level attribute in {s:?}"
            )));
        }
        let inner = s.get(open + 1..close).ok_or_else(bad)?;
        let filter = parse_filter(inner, &FilterLimits::default())
            .map_err(|e| ScimError::invalid_path(format!("in path {s:?}: {}", e.detail)))?;
        let after = s.get(close + 1..).ok_or_else(bad)?;
        let sub = if after.is_empty() {
            None
        } else {
            let sub = after.strip_prefix('.').ok_or_else(bad)?;
            if !is_attr_name(sub) {
                return Err(bad());
            }
            Some(sub.to_string())
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub,
        })
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(flt) = &self.filter {
            write!(f, "[{flt}]")?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    type Parts<'a> = Option<(Option<&'a str>, &'a str, Option<&'a str>)>;

    #[test]
    fn attr_paths() {
        let cases: [(&str, Parts<'_>); 12] = [
            ("userName", Some((None, "userName", None))),
            ("name.givenName", Some((None, "name", Some("givenName")))),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                Some((Some(ENT), "manager", Some("value"))),
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:roleId",
                Some((
                    Some("urn:ietf:params:scim:schemas:core:2.0:User"),
                    "roleId",
                    None,
                )),
            ),
            (
                ENT,
                Some((
                    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0"),
                    "User",
                    None,
                )),
            ),
            ("members.$ref", Some((None, "members", Some("$ref")))),
            ("", None),
            ("1abc", None),
            ("a.b.c", None),
            ("urn:", None),
            ("name.", None),
            ("user name", None),
        ];
        for (input, want) in cases {
            let got = AttrPath::parse(input).ok();
            let got = got
                .as_ref()
                .map(|p| (p.schema.as_deref(), p.name.as_str(), p.sub.as_deref()));
            assert_eq!(got, want, "{input}");
            if let Ok(p) = AttrPath::parse(input) {
                assert_eq!(p.to_string(), input);
            }
        }
    }

    #[test]
    fn patch_paths() {
        let cases = [
            ("members[value eq \"2819c223\"]", true),
            ("emails[type eq \"work\"].value", true),
            ("addresses[type eq \"work\"].streetAddress", true),
            ("emails[value eq \"a]b\"].display", true),
            ("name.givenName", true),
            (&format!("{ENT}:manager"), true),
            ("emails[type eq \"work\"", false),
            ("emails[type eq]", false),
            ("emails[type eq \"work\"]value", false),
            ("name.givenName[type eq \"x\"]", false),
        ];
        for (input, ok) in cases {
            let got = PatchPath::parse(input);
            assert_eq!(got.is_ok(), ok, "{input}: {got:?}");
            if let Ok(p) = got {
                assert_eq!(PatchPath::parse(&p.to_string()).ok(), Some(p));
            }
        }
        let p = PatchPath::parse("emails[type eq \"work\"].value").ok();
        assert_eq!(p.as_ref().and_then(|p| p.sub.as_deref()), Some("value"));
        assert_eq!(p.map(|p| p.attr.name), Some("emails".to_string()));
    }
}

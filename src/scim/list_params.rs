//! List and search parameters (RFC 7644 §3.4.2, §3.4.3), read once from a query string
//! or a SearchRequest body into typed values.
//!
//! Both sources go through the same two steps, so they answer the same 400s in the
//! same order: first each parameter's shape (integers, strings, lists of strings),
//! then the projection, the filter and the sort.

use std::collections::HashMap;

use serde_json::Value;

use crate::scim::dialect::{Dialect, Quirk, normalize_filter_text};
use crate::scim::error::ScimError;
use crate::scim::filter::{Filter, FilterLimits, parse_filter};
use crate::scim::path::AttrPath;
use crate::scim::project::Projection;

/// `sortBy` and `sortOrder`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    /// The attribute sorted on.
    pub by: AttrPath,
    /// `sortOrder=descending`.
    pub descending: bool,
}

/// What a list or search asks for.
#[derive(Debug, Clone)]
pub struct ListParams {
    /// `filter`, parsed; `None` when absent or blank.
    pub filter: Option<Filter>,
    /// `startIndex`, 1-based (values below 1 read as 1, RFC 7644 §3.4.2.4).
    pub start_index: usize,
    /// `count` (negative reads as 0); `None`: the server's default page size.
    pub count: Option<usize>,
    /// `sortBy` with its order; `None` when absent or blank.
    pub sort: Option<Sort>,
    /// `attributes` and `excludedAttributes`.
    pub projection: Projection,
}

impl Default for ListParams {
    /// Everything from the first resource, in the server's page size.
    fn default() -> Self {
        ListParams {
            filter: None,
            start_index: 1,
            count: None,
            sort: None,
            projection: Projection::default(),
        }
    }
}

/// How a provider's filters are read: its dialect's tolerance and the length limits.
#[derive(Debug)]
pub struct FilterRules<'q> {
    /// The provider's dialect.
    pub dialect: Dialect,
    /// Filter length and depth.
    pub limits: FilterLimits,
    /// Where tolerated quirks are noted.
    pub quirks: &'q mut Vec<Quirk>,
}

/// The parameters as sent, each of the right shape but not yet parsed.
#[derive(Debug, Default)]
struct Raw {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    /// Comma-separated lists: one from a query string, one per array element.
    attributes: Vec<String>,
    excluded_attributes: Vec<String>,
}

impl ListParams {
    /// Reads a query string's parameters, given with lower-cased names.
    pub fn from_query(
        q: &HashMap<String, String>,
        rules: FilterRules<'_>,
    ) -> Result<Self, ScimError> {
        let int = |k: &str, name: &str| {
            q.get(k)
                .map(|v| {
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer")))
                })
                .transpose()
        };
        let list = |k: &str| q.get(k).cloned().into_iter().collect();
        Raw {
            filter: q.get("filter").cloned(),
            start_index: int("startindex", "startIndex")?,
            count: int("count", "count")?,
            sort_by: q.get("sortby").cloned(),
            sort_order: q.get("sortorder").cloned(),
            attributes: list("attributes"),
            excluded_attributes: list("excludedattributes"),
        }
        .parse(rules)
    }

    /// Reads a SearchRequest body (RFC 7644 §3.4.3); member names are matched
    /// case-insensitively.
    pub fn from_search_request(body: &Value, rules: FilterRules<'_>) -> Result<Self, ScimError> {
        let Value::Object(o) = body else {
            return Err(ScimError::invalid_syntax(
                "a SearchRequest must be a JSON object",
            ));
        };
        let get = |k: &str| {
            o.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        let string = |k: &str| -> Result<Option<String>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!("{k} must be a string"))),
            }
        };
        let list = |k: &str| -> Result<Vec<String>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_value(format!("{k} must list strings"))
                        })
                    })
                    .collect(),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{k} must be an array of strings"
                ))),
            }
        };
        let int = |k: &str| -> Result<Option<i64>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .map(Some)
                    .ok_or_else(|| ScimError::invalid_value(format!("{k} must be an integer"))),
            }
        };
        Raw {
            filter: string("filter")?,
            start_index: int("startIndex")?,
            count: int("count")?,
            sort_by: string("sortBy")?,
            sort_order: string("sortOrder")?,
            attributes: list("attributes")?,
            excluded_attributes: list("excludedAttributes")?,
        }
        .parse(rules)
    }
}

impl Raw {
    fn parse(self, rules: FilterRules<'_>) -> Result<ListParams, ScimError> {
        let projection = Projection::parse(&self.attributes, &self.excluded_attributes)?;
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                let text = normalize_filter_text(raw, rules.dialect, rules.quirks);
                Some(parse_filter(&text, &rules.limits)?)
            }
        };
        let sort = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(by) => {
                let descending = match self.sort_order.as_deref().map(str::to_ascii_lowercase) {
                    None => false,
                    Some(o) if o == "ascending" => false,
                    Some(o) if o == "descending" => true,
                    Some(o) => {
                        return Err(ScimError::invalid_value(format!(
                            "sortOrder must be ascending or descending, not {o:?}"
                        )));
                    }
                };
                Some(Sort {
                    by: AttrPath::parse(by)?,
                    descending,
                })
            }
        };
        Ok(ListParams {
            filter,
            start_index: self.start_index.unwrap_or(1).max(1) as usize,
            count: self.count.map(|c| c.max(0) as usize),
            sort,
            projection,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<ListParams, ScimError> {
        let q = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ListParams::from_query(
            &q,
            FilterRules {
                dialect: Dialect::Strict,
                limits: FilterLimits::default(),
                quirks: &mut Vec::new(),
            },
        )
    }

    fn search(body: Value) -> Result<ListParams, ScimError> {
        ListParams::from_search_request(
            &body,
            FilterRules {
                dialect: Dialect::Strict,
                limits: FilterLimits::default(),
                quirks: &mut Vec::new(),
            },
        )
    }

    #[test]
    fn both_sources_read_the_same_values() {
        let q = query(&[
            ("filter", r#"userName eq "a""#),
            ("startindex", "0"),
            ("count", "-3"),
            ("sortby", "name.givenName"),
            ("sortorder", "Descending"),
            ("attributes", "userName,emails"),
        ])
        .unwrap();
        let s = search(serde_json::json!({
            "filter": r#"userName eq "a""#, "startIndex": "0", "COUNT": -3,
            "sortBy": "name.givenName", "sortOrder": "Descending",
            "attributes": ["userName", "emails"],
        }))
        .unwrap();
        for p in [&q, &s] {
            assert_eq!(p.start_index, 1);
            assert_eq!(p.count, Some(0));
            assert!(p.filter.is_some());
            assert_eq!(
                p.sort,
                Some(Sort {
                    by: AttrPath::parse("name.givenName").unwrap(),
                    descending: true
                })
            );
            assert_eq!(p.projection.attributes.len(), 2);
        }
        let blank = query(&[("filter", "  "), ("sortby", ""), ("sortorder", "sideways")]).unwrap();
        assert!(blank.filter.is_none() && blank.sort.is_none() && blank.count.is_none());
    }

    #[test]
    fn shapes_are_checked_before_values() {
        let e = query(&[("count", "x"), ("attributes", "a b")]).unwrap_err();
        assert_eq!(e.detail, "count must be an integer");
        let e = query(&[("sortorder", "up"), ("sortby", "userName"), ("filter", "(")]).unwrap_err();
        assert_eq!(e.scim_type, Some(crate::scim::ScimType::InvalidFilter));
        let e = query(&[("sortorder", "up"), ("sortby", "userName")]).unwrap_err();
        assert_eq!(
            e.detail,
            "sortOrder must be ascending or descending, not \"up\""
        );
        let e = search(serde_json::json!({"attributes": [1]})).unwrap_err();
        assert_eq!(e.detail, "attributes must list strings");
        let e = search(serde_json::json!({"excludedAttributes": 1})).unwrap_err();
        assert_eq!(e.detail, "excludedAttributes must be an array of strings");
        let e = search(serde_json::json!([])).unwrap_err();
        assert_eq!(e.detail, "a SearchRequest must be a JSON object");
    }
}

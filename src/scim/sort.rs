//! `sortBy` ordering (RFC 7644 §3.4.2.3).

use std::cmp::Ordering;

use serde_json::Value;

use crate::scim::filter_eval::{order, top_value};
use crate::scim::json::get_ci;
use crate::scim::path::AttrPath;
use crate::scim::schema::{Attribute, ResourceKind, SchemaRegistry};

/// Ascending order of two resources by `path`; resources without a value sort last.
/// Multi-valued attributes sort by their primary value, else the first one; strings
/// follow the attribute's `caseExact`. Reverse the result for `descending`.
pub fn compare_for_sort(
    a: &Value,
    b: &Value,
    path: &AttrPath,
    kind: ResourceKind,
    reg: &SchemaRegistry,
) -> Ordering {
    let (ka, def) = sort_key(a, path, kind, reg);
    let (kb, _) = sort_key(b, path, kind, reg);
    match (ka, kb) {
        (Some(x), Some(y)) => order(x, y, def).unwrap_or_else(|| rank(x).cmp(&rank(y))),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

fn sort_key<'v, 'r>(
    resource: &'v Value,
    path: &AttrPath,
    kind: ResourceKind,
    reg: &'r SchemaRegistry,
) -> (Option<&'v Value>, Option<&'r Attribute>) {
    let (top, def) = top_value(resource, path, kind, reg);
    let chosen = match top {
        Some(Value::Array(items)) => items
            .iter()
            .find(|i| get_ci(i, "primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first()),
        other => other,
    };
    let sub = path
        .sub
        .as_deref()
        .or_else(|| chosen.filter(|c| c.is_object()).map(|_| "value"));
    let (leaf, leaf_def) = match sub {
        Some(s) => (
            chosen.and_then(|c| get_ci(c, s)),
            def.and_then(|d| d.sub(s)),
        ),
        None => (chosen, def),
    };
    (leaf.filter(|v| !v.is_null()), leaf_def)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts() {
        let reg = SchemaRegistry::new();
        let mut users = [
            json!({"id": "3", "userName": "charlie"}),
            json!({"id": "1", "userName": "Alice", "emails": [{"value": "z@x"}, {"value": "b@x", "primary": true}]}),
            json!({"id": "2", "userName": "bob", "emails": [{"value": "c@x"}], "meta": {"created": "2011-01-01T00:00:00Z"}}),
            json!({"id": "4", "meta": {"created": "2010-01-01T00:00:00+05:00"}}),
        ];
        let ids = |u: &[Value]| {
            u.iter()
                .map(|u| u["id"].as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let by = |p: &str, users: &mut [Value]| {
            let path = AttrPath::parse(p).unwrap_or_else(|e| panic!("{e}"));
            users.sort_by(|a, b| compare_for_sort(a, b, &path, ResourceKind::User, &reg));
        };
        by("userName", &mut users);
        assert_eq!(ids(&users), "1,2,3,4");
        by("emails", &mut users);
        assert_eq!(ids(&users), "1,2,3,4");
        by("emails.value", &mut users);
        assert_eq!(ids(&users), "1,2,3,4");
        by("meta.created", &mut users);
        assert_eq!(ids(&users), "4,2,1,3");
        by("id", &mut users);
        assert_eq!(ids(&users), "1,2,3,4");
    }
}

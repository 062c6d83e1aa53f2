//! Filter evaluation over SCIM resource JSON, with case rules taken from the schema.

use std::cmp::Ordering;

use chrono::DateTime;
use serde_json::Value;

use crate::scim::filter::{CompareOp, Filter};
use crate::scim::json::{get_ci, is_empty};
use crate::scim::path::AttrPath;
use crate::scim::schema::{AttrType, Attribute, ResourceKind, SchemaRegistry, ValueRule};
use crate::scim::username::{comparison_key, fold};

/// Where paths are resolved: the whole resource, or one element of a multi-valued attribute.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Resource {
        kind: ResourceKind,
        reg: &'a SchemaRegistry,
    },
    Element {
        parent: Option<&'a Attribute>,
    },
}

impl Filter {
    /// Whether `resource` (SCIM JSON of `kind`) matches this filter.
    pub fn matches(&self, resource: &Value, kind: ResourceKind, reg: &SchemaRegistry) -> bool {
        eval(self, resource, Scope::Resource { kind, reg })
    }

    /// Whether one element of a multi-valued attribute (`parent`) matches a value filter.
    pub fn matches_element(&self, element: &Value, parent: Option<&Attribute>) -> bool {
        eval(self, element, Scope::Element { parent })
    }
}

fn eval(f: &Filter, node: &Value, scope: Scope<'_>) -> bool {
    match f {
        Filter::And(l, r) => eval(l, node, scope) && eval(r, node, scope),
        Filter::Or(l, r) => eval(l, node, scope) || eval(r, node, scope),
        Filter::Not(inner) => !eval(inner, node, scope),
        Filter::Present(path) => {
            if let Scope::Resource { kind, reg } = scope
                && path.sub.is_none()
            {
                return top_value(node, path, kind, reg)
                    .0
                    .is_some_and(|v| !is_empty(v));
            }
            let (vals, _) = values_at(node, path, scope);
            vals.iter().any(|v| !is_empty(v))
        }
        Filter::Compare { path, op, value } => {
            let (vals, def) = values_at(node, path, scope);
            let present = vals.iter().any(|v| !v.is_null());
            match (value, op) {
                // `eq null` reads as "unassigned", `ne null` as "assigned".
                (Value::Null, CompareOp::Eq) => !present,
                (Value::Null, CompareOp::Ne) => present,
                (Value::Null, _) => false,
                _ => vals.iter().any(|v| compare(v, *op, value, def)),
            }
        }
        Filter::ValuePath { attr, filter } => {
            let Scope::Resource { kind, reg } = scope else {
                return false;
            };
            let (top, def) = top_value(node, attr, kind, reg);
            match top {
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|el| eval(filter, el, Scope::Element { parent: def })),
                Some(obj @ Value::Object(_)) => eval(filter, obj, Scope::Element { parent: def }),
                _ => false,
            }
        }
    }
}

/// The attribute's own value in the resource, and its definition.
pub(crate) fn top_value<'v, 'r>(
    resource: &'v Value,
    path: &AttrPath,
    kind: ResourceKind,
    reg: &'r SchemaRegistry,
) -> (Option<&'v Value>, Option<&'r Attribute>) {
    let top_path = path.parent();
    match reg.resolve(kind, &top_path) {
        Some(r) => {
            let container = match r.extension {
                Some(urn) => get_ci(resource, urn),
                None => Some(resource),
            };
            (
                container.and_then(|c| get_ci(c, &r.attr.name)),
                Some(r.attr),
            )
        }
        None => {
            // Unknown attribute: still look where it would live.
            let container = match &path.schema {
                Some(urn) if !reg.core(kind).id.eq_ignore_ascii_case(urn) => get_ci(resource, urn),
                _ => Some(resource),
            };
            (container.and_then(|c| get_ci(c, &path.name)), None)
        }
    }
}

fn flatten_into<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Array(items) => out.extend(items.iter()),
        other => out.push(other),
    }
}

/// All leaf values a path designates, and the definition they are compared under.
fn values_at<'v, 'a>(
    node: &'v Value,
    path: &AttrPath,
    scope: Scope<'a>,
) -> (Vec<&'v Value>, Option<&'a Attribute>) {
    let mut out = Vec::new();
    match scope {
        Scope::Element { parent } => {
            if path.sub.is_some() {
                return (out, None);
            }
            let def = parent.and_then(|p| p.sub(&path.name));
            if let Some(v) = get_ci(node, &path.name) {
                flatten_into(v, &mut out);
            }
            (out, def)
        }
        Scope::Resource { kind, reg } => {
            let (top, def) = top_value(node, path, kind, reg);
            let Some(top) = top else {
                return (out, def.and_then(|d| leaf_def(d, path.sub.as_deref())));
            };
            let mut elements = Vec::new();
            flatten_into(top, &mut elements);
            let sub = match &path.sub {
                Some(s) => Some(s.as_str()),
                // A complex attribute compared without a sub-attribute compares its `value`.
                None if def.is_some_and(|d| d.attr_type == AttrType::Complex)
                    || elements.iter().any(|e| e.is_object()) =>
                {
                    Some("value")
                }
                None => None,
            };
            match sub {
                Some(s) => {
                    for el in elements {
                        if let Some(v) = get_ci(el, s) {
                            flatten_into(v, &mut out);
                        }
                    }
                }
                None => out = elements,
            }
            (out, def.and_then(|d| leaf_def(d, sub)))
        }
    }
}

fn leaf_def<'a>(def: &'a Attribute, sub: Option<&str>) -> Option<&'a Attribute> {
    match sub {
        Some(s) => def.sub(s),
        None => Some(def),
    }
}

/// Orders two scalar JSON values under an attribute definition; `None` when incomparable.
pub(crate) fn order(a: &Value, b: &Value, def: Option<&Attribute>) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            if def.is_some_and(|d| d.attr_type == AttrType::DateTime)
                && let (Ok(dx), Ok(dy)) = (
                    DateTime::parse_from_rfc3339(x),
                    DateTime::parse_from_rfc3339(y),
                )
            {
                return Some(dx.cmp(&dy));
            }
            if is_user_name(def) {
                // One name, one user: `userName eq` agrees with the store's uniqueness.
                Some(comparison_key(x).cmp(&comparison_key(y)))
            } else if case_exact(def) {
                Some(x.cmp(y))
            } else {
                Some(x.to_lowercase().cmp(&y.to_lowercase()))
            }
        }
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => Some(i.cmp(&j)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn is_user_name(def: Option<&Attribute>) -> bool {
    def.is_some_and(|d| d.rule == ValueRule::UserName)
}

fn case_exact(def: Option<&Attribute>) -> bool {
    def.is_some_and(|d| d.case_exact || d.attr_type == AttrType::Binary)
}

fn compare(v: &Value, op: CompareOp, lit: &Value, def: Option<&Attribute>) -> bool {
    if let (Value::String(x), Value::String(y)) = (v, lit)
        && matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    {
        let (x, y) = if is_user_name(def) {
            (fold(x), fold(y))
        } else if case_exact(def) {
            (x.clone(), y.clone())
        } else {
            (x.to_lowercase(), y.to_lowercase())
        };
        return match op {
            CompareOp::Co => x.contains(&y),
            CompareOp::Sw => x.starts_with(&y),
            _ => x.ends_with(&y),
        };
    }
    if matches!(v, Value::Bool(_)) && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
        return false;
    }
    let Some(ord) = order(v, lit, def) else {
        return false;
    };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::{FilterLimits, parse_filter};
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "Bjensen",
            "userName": "x",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "title": "",
            "emails": [
                {"value": "a@b", "type": "work", "primary": true},
                {"value": "home@b", "type": "home"}
            ],
            "roleId": "R-1",
            "meta": {"lastModified": "2011-05-13T04:42:34+02:00", "created": "2010-01-23T04:56:22Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        })
    }

    #[test]
    fn evaluates_table() {
        let reg = SchemaRegistry::new();
        let u = user();
        let cases = [
            ("userName eq \"X\"", true),
            ("userName eq \"Ｘ \"", true),
            ("userName sw \"Ｘ\"", true),
            ("USERNAME Eq \"x\"", true),
            ("userName eq \"y\"", false),
            ("externalId eq \"Bjensen\"", true),
            ("externalId eq \"bjensen\"", false),
            ("id eq \"2819C223-7F76-453A-919D-413861904646\"", false),
            ("emails[type eq \"work\"].value eq \"a@b\"", true),
            ("emails[type eq \"home\"].value eq \"a@b\"", false),
            ("emails[type eq \"work\" and primary eq true]", true),
            ("emails eq \"home@b\"", true),
            ("emails.value sw \"HOME\"", true),
            ("emails.type eq \"other\"", false),
            ("not (active eq true)", false),
            ("not (nickName eq \"x\")", true),
            ("nickName eq \"x\"", false),
            ("nickName ne \"x\"", false),
            ("title pr", false),
            ("name.givenName pr", true),
            ("name pr", true),
            ("name.givenName co \"arb\"", true),
            ("name.familyName ew \"SEN\"", true),
            (
                "userName eq \"nope\" or userName eq \"x\" and active eq false",
                false,
            ),
            (
                "userName eq \"x\" or userName eq \"nope\" and active eq false",
                true,
            ),
            ("meta.lastModified gt \"2011-05-13T04:42:34Z\"", false),
            ("meta.lastModified lt \"2011-05-13T04:42:34Z\"", true),
            ("meta.created ge \"2010-01-23T04:56:22Z\"", true),
            ("meta.created eq \"2010-01-23T06:56:22+02:00\"", true),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701984\"",
                true,
            ),
            ("employeeNumber eq \"701984\"", true),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"26118915-6090-4610-87e4-49d8ca9f808d\"",
                true,
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"X\"",
                true,
            ),
            ("roleId eq \"r-1\"", true),
            ("active eq true", true),
            ("active gt false", false),
            ("nickName eq null", true),
            ("userName ne null", true),
            ("emails[type eq \"work\"]", true),
            ("emails[type eq \"fax\"]", false),
            ("not (emails[type eq \"fax\"])", true),
        ];
        for (f, want) in cases {
            let parsed =
                parse_filter(f, &FilterLimits::default()).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(parsed.matches(&u, ResourceKind::User, &reg), want, "{f}");
        }
    }

    #[test]
    fn groups_and_numbers() {
        let reg = SchemaRegistry::new();
        let g = json!({"id": "g1", "displayName": "Claras-Managers", "count": 5});
        let cases = [
            ("displayName eq \"claras-managers\"", true),
            ("count gt 4", true),
            ("count le 4.5", false),
            ("count eq \"5\"", false),
        ];
        for (f, want) in cases {
            let parsed =
                parse_filter(f, &FilterLimits::default()).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(parsed.matches(&g, ResourceKind::Group, &reg), want, "{f}");
        }
    }
}

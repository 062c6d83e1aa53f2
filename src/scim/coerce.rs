//! Type checking and dialect coercion of attribute values, shared by PATCH and POST/PUT.

use chrono::DateTime;
use serde_json::{Map, Value};

use crate::scim::dialect::{Dialect, Quirk, tolerate};
use crate::scim::error::ScimError;
use crate::scim::schema::{AttrType, Attribute, Mutability, ValueRule};

/// Everything a coercion needs besides the value.
pub(crate) struct Coercer<'q> {
    pub dialect: Dialect,
    pub quirks: &'q mut Vec<Quirk>,
}

impl Coercer<'_> {
    /// Checks and coerces a full value of `attr` (an array when multi-valued).
    /// Null stays null so callers can treat it as "unassign".
    pub fn attr(&mut self, attr: &Attribute, v: &Value, label: &str) -> Result<Value, ScimError> {
        if v.is_null() {
            return Ok(Value::Null);
        }
        if !attr.multi_valued {
            return self.single(attr, v, label);
        }
        let items = match v {
            Value::Array(items) => items.clone(),
            other => {
                tolerate(self.dialect, Quirk::SingleValueWrapped, self.quirks, || {
                    ScimError::invalid_value(format!(
                        "{label} is multi-valued and must be an array"
                    ))
                })?;
                vec![other.clone()]
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter().filter(|i| !i.is_null()) {
            out.push(self.single(attr, item, label)?);
        }
        Ok(Value::Array(out))
    }

    /// Checks and coerces one value (one element, for a multi-valued attribute).
    pub fn single(&mut self, attr: &Attribute, v: &Value, label: &str) -> Result<Value, ScimError> {
        let wrong = |what: &str| ScimError::invalid_value(format!("{label} must be {what}"));
        match attr.attr_type {
            AttrType::Complex => match v {
                Value::Object(obj) => self.complex(attr, obj, label),
                Value::String(s) if attr.sub("value").is_some() => {
                    tolerate(
                        self.dialect,
                        Quirk::BareStringForComplex,
                        self.quirks,
                        || wrong("an object"),
                    )?;
                    let mut m = Map::new();
                    m.insert("value".into(), Value::String(s.clone()));
                    Ok(Value::Object(m))
                }
                _ => Err(wrong("an object")),
            },
            AttrType::Boolean => match v {
                Value::Bool(_) => Ok(v.clone()),
                Value::String(s)
                    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                {
                    tolerate(self.dialect, Quirk::BooleanAsString, self.quirks, || {
                        wrong("a boolean")
                    })?;
                    Ok(Value::Bool(s.eq_ignore_ascii_case("true")))
                }
                _ => Err(wrong("a boolean")),
            },
            AttrType::Integer => match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
                _ => Err(wrong("an integer")),
            },
            AttrType::Decimal => match v {
                Value::Number(_) => Ok(v.clone()),
                _ => Err(wrong("a number")),
            },
            AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime => {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) if attr.attr_type == AttrType::String => {
                        tolerate(self.dialect, Quirk::ScalarAsString, self.quirks, || {
                            wrong("a string")
                        })?;
                        v.to_string()
                    }
                    _ => return Err(wrong("a string")),
                };
                if attr.attr_type == AttrType::DateTime && DateTime::parse_from_rfc3339(&s).is_err()
                {
                    return Err(wrong("an xsd:dateTime such as 2011-05-13T04:42:34Z"));
                }
                if attr.rule == ValueRule::UserName {
                    crate::scim::username::check(label, &s)?;
                }
                if attr.enforce_canonical && !is_canonical(attr, &s) {
                    return Err(ScimError::invalid_value(format!(
                        "{label}: {s:?} is not one of the allowed values"
                    )));
                }
                Ok(Value::String(s))
            }
        }
    }

    fn complex(
        &mut self,
        attr: &Attribute,
        obj: &Map<String, Value>,
        label: &str,
    ) -> Result<Value, ScimError> {
        let mut out = Map::new();
        for (k, v) in obj {
            let Some(sub) = attr.sub(k) else {
                tolerate(
                    self.dialect,
                    Quirk::UnknownAttributeIgnored(format!("{}.{k}", attr.name)),
                    self.quirks,
                    || ScimError::invalid_value(format!("{label} has no sub-attribute {k:?}")),
                )?;
                continue;
            };
            // Client-sent read-only values are ignored (RFC 7643 §2.2), e.g. manager.displayName.
            if v.is_null() || sub.mutability == Mutability::ReadOnly {
                continue;
            }
            let label = format!("{label}.{}", sub.name);
            out.insert(sub.name.clone(), self.attr(sub, v, &label)?);
        }
        Ok(Value::Object(out))
    }
}

fn is_canonical(attr: &Attribute, s: &str) -> bool {
    attr.canonical_values.iter().any(|c| {
        if attr.case_exact {
            c == s
        } else {
            c.eq_ignore_ascii_case(s)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::path::AttrPath;
    use crate::scim::schema::{ResourceKind, SchemaRegistry};
    use serde_json::json;

    #[test]
    fn coercions_by_dialect() {
        let reg = SchemaRegistry::new();
        let attr = |p: &str| {
            reg.find(
                ResourceKind::User,
                &AttrPath::parse(p).unwrap_or_else(|e| panic!("{e}")),
            )
            .cloned()
            .unwrap_or_else(|| panic!("{p}"))
        };
        let cases = [
            ("active", json!("True"), Dialect::Entra, Some(json!(true))),
            ("active", json!("false"), Dialect::Okta, Some(json!(false))),
            ("active", json!("True"), Dialect::Strict, None),
            ("active", json!("yes"), Dialect::Entra, None),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                json!("m1"),
                Dialect::Entra,
                Some(json!({"value": "m1"})),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                json!("m1"),
                Dialect::Strict,
                None,
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                json!({"value": "m1", "displayName": "x"}),
                Dialect::Strict,
                Some(json!({"value": "m1"})),
            ),
            (
                "emails",
                json!({"value": "a@b", "primary": "True"}),
                Dialect::Entra,
                Some(json!([{"value": "a@b", "primary": true}])),
            ),
            ("emails", json!({"value": "a@b"}), Dialect::Strict, None),
            (
                "emails",
                json!([{"value": "a@b", "bogus": 1}]),
                Dialect::Strict,
                None,
            ),
            (
                "emails",
                json!([{"value": "a@b", "bogus": 1}]),
                Dialect::Okta,
                Some(json!([{"value": "a@b"}])),
            ),
            (
                "phoneNumbers",
                json!([{"value": "+1 (555) 555-0100"}]),
                Dialect::Strict,
                Some(json!([{"value": "+1 (555) 555-0100"}])),
            ),
            ("userName", json!(5), Dialect::Strict, None),
            ("userName", json!(5), Dialect::Entra, Some(json!("5"))),
            ("name", json!("x"), Dialect::Entra, None),
            (
                "meta.lastModified",
                json!("yesterday"),
                Dialect::Entra,
                None,
            ),
        ];
        for (path, input, dialect, want) in cases {
            let mut quirks = Vec::new();
            let a = attr(path);
            let got = Coercer {
                dialect,
                quirks: &mut quirks,
            }
            .attr(&a, &input, path)
            .ok();
            assert_eq!(got, want, "{path} {input} {dialect:?}");
        }
    }
}

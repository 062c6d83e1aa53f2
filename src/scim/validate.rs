//! POST/PUT bodies to stored documents: names normalised, types checked, read-only and
//! unknown attributes dropped (or rejected in Strict), password never kept.

use serde_json::{Map, Value};

use crate::scim::coerce::Coercer;
use crate::scim::dialect::{Dialect, Quirk, tolerate};
use crate::scim::error::ScimError;
use crate::scim::json::get_ci;
use crate::scim::patch_apply::check_required;
use crate::scim::path::AttrPath;
use crate::scim::schema::{Attribute, Mutability, ResourceKind, Returned, SchemaRegistry};
use crate::scim::undeclared::undeclared;

/// Normalises a POST/PUT body of `kind` into the stored form.
///
/// A password, when present, is dropped and [`Quirk::PasswordIgnored`] recorded.
/// Group `members` stay in the result (validated) for the caller to split off.
pub fn normalize_resource(
    input: Value,
    kind: ResourceKind,
    reg: &SchemaRegistry,
    dialect: Dialect,
    quirks: &mut Vec<Quirk>,
) -> Result<Value, ScimError> {
    let Value::Object(obj) = input else {
        return Err(ScimError::invalid_syntax(
            "the resource must be a JSON object",
        ));
    };
    let mut n = Normalizer {
        kind,
        reg,
        dialect,
        quirks,
        core: Map::new(),
        exts: Vec::new(),
    };
    let mut given_schemas = None;
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("schemas") {
            given_schemas = Some(v);
        } else if let Some(ext) = reg.extension_for(kind, &k) {
            match v {
                Value::Null => {}
                Value::Object(attrs) => {
                    for (k2, v2) in attrs {
                        // `schemas` repeated inside the object is not an attribute.
                        if !k2.eq_ignore_ascii_case("schemas") {
                            n.place(Some(&ext.id), &k2, v2)?;
                        }
                    }
                }
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "{} must be an object",
                        ext.id
                    )));
                }
            }
        } else if k.eq_ignore_ascii_case(&reg.core(kind).id) {
            // `{"urn:…:core:2.0:User": {"roleId": …}}`: core attributes, nested under
            // their schema's URN as some clients send extension attributes.
            match v {
                Value::Null => {}
                Value::Object(attrs) => {
                    for (k2, v2) in attrs {
                        if !k2.eq_ignore_ascii_case("schemas") {
                            n.place_qualified(&format!("{}:{k2}", reg.core(kind).id), v2)?;
                        }
                    }
                }
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "{} must be an object",
                        reg.core(kind).id
                    )));
                }
            }
        } else if k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
            n.place_qualified(&k, v)?;
        } else {
            n.place(None, &k, v)?;
        }
    }
    let Normalizer { core, exts, .. } = n;
    let mut schemas = vec![Value::String(reg.core(kind).id.clone())];
    schemas.extend(exts.iter().map(|(urn, _)| Value::String(urn.clone())));
    check_schemas(given_schemas.as_ref(), &schemas, kind, reg, dialect, quirks)?;
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.extend(core);
    for (urn, attrs) in exts {
        out.insert(urn, Value::Object(attrs));
    }
    let out = Value::Object(out);
    check_required(&out, kind, reg)?;
    Ok(out)
}

fn check_schemas(
    given: Option<&Value>,
    needed: &[Value],
    kind: ResourceKind,
    reg: &SchemaRegistry,
    dialect: Dialect,
    quirks: &mut Vec<Quirk>,
) -> Result<(), ScimError> {
    let problem = match given {
        None => Some("schemas is missing".to_string()),
        Some(Value::Array(list)) => {
            let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            if names.len() != list.len() {
                Some("schemas must be an array of URNs".to_string())
            } else if let Some(bad) = names.iter().find(|u| reg.schema_for(kind, u).is_none()) {
                Some(format!("unknown schema {bad:?} for a {}", kind.name()))
            } else {
                needed
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|u| !names.iter().any(|g| g.eq_ignore_ascii_case(u)))
                    .map(|u| format!("schemas must list {u}"))
            }
        }
        Some(_) => Some("schemas must be an array of URNs".to_string()),
    };
    match problem {
        Some(p) => tolerate(dialect, Quirk::SchemasFixed, quirks, || {
            ScimError::invalid_value(p)
        }),
        None => Ok(()),
    }
}

struct Normalizer<'a, 'q> {
    kind: ResourceKind,
    reg: &'a SchemaRegistry,
    dialect: Dialect,
    quirks: &'q mut Vec<Quirk>,
    core: Map<String, Value>,
    exts: Vec<(String, Map<String, Value>)>,
}

impl Normalizer<'_, '_> {
    fn unknown(&mut self, name: &str) -> Result<(), ScimError> {
        tolerate(
            self.dialect,
            Quirk::UnknownAttributeIgnored(name.to_owned()),
            self.quirks,
            || ScimError::invalid_value(format!("unknown attribute {name:?}")),
        )
    }

    /// A URN-qualified key: kept when a schema declares it, else refused in every
    /// dialect with the configuration that would keep it (see `undeclared`).
    fn place_qualified(&mut self, key: &str, v: Value) -> Result<(), ScimError> {
        let path = match AttrPath::parse(key) {
            Ok(p) if p.sub.is_none() => p,
            _ => return self.unknown(key),
        };
        match self.reg.resolve(self.kind, &path) {
            Some(r) => {
                let ext = r.extension.map(str::to_string);
                let name = r.attr.name.clone();
                self.place(ext.as_deref(), &name, v)
            }
            None => Err(undeclared(self.reg, self.kind, &path, Some(&v))),
        }
    }

    fn place(&mut self, ext: Option<&str>, name: &str, v: Value) -> Result<(), ScimError> {
        let reg = self.reg;
        let def: Option<&Attribute> = match ext {
            Some(urn) => reg.extension_for(self.kind, urn).and_then(|s| s.attr(name)),
            None => reg
                .common()
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .or_else(|| reg.core(self.kind).attr(name)),
        };
        let Some(def) = def else {
            return match ext {
                // Inside an extension's object the schema is named: as qualified.
                Some(urn) => Err(undeclared(
                    reg,
                    self.kind,
                    &AttrPath {
                        schema: Some(urn.to_owned()),
                        name: name.to_owned(),
                        sub: None,
                    },
                    Some(&v),
                )),
                None => self.unknown(name),
            };
        };
        if def.mutability == Mutability::WriteOnly && def.returned == Returned::Never {
            // Never stored: we are not the user's authenticator.
            self.quirks.push(Quirk::PasswordIgnored);
            return Ok(());
        }
        if v.is_null() || def.mutability == Mutability::ReadOnly {
            return Ok(());
        }
        let value = Coercer {
            dialect: self.dialect,
            quirks: self.quirks,
        }
        .attr(def, &v, &def.name)?;
        if value.is_null() {
            return Ok(());
        }
        let target = match ext {
            None => &mut self.core,
            Some(urn) => {
                let pos = match self.exts.iter().position(|(u, _)| u == urn) {
                    Some(p) => p,
                    None => {
                        self.exts.push((urn.to_string(), Map::new()));
                        self.exts.len().saturating_sub(1)
                    }
                };
                match self.exts.get_mut(pos) {
                    Some((_, m)) => m,
                    None => return Ok(()),
                }
            }
        };
        target.insert(def.name.clone(), value);
        Ok(())
    }
}

/// For PUT: fails with 400 mutability when an immutable attribute that had a value changes.
pub fn check_immutable(
    old: &Value,
    new: &Value,
    kind: ResourceKind,
    reg: &SchemaRegistry,
) -> Result<(), ScimError> {
    let mut scopes: Vec<(Option<&str>, &[Attribute])> =
        vec![(None, reg.common()), (None, &reg.core(kind).attributes)];
    for ext in reg.extensions(kind) {
        scopes.push((Some(ext.id.as_str()), &ext.attributes));
    }
    for (ext, attrs) in scopes {
        let (o, n) = match ext {
            Some(urn) => (get_ci(old, urn), get_ci(new, urn)),
            None => (Some(old), Some(new)),
        };
        for attr in attrs
            .iter()
            .filter(|a| a.mutability == Mutability::Immutable)
        {
            let before = o
                .and_then(|o| get_ci(o, &attr.name))
                .filter(|v| !v.is_null());
            let after = n.and_then(|n| get_ci(n, &attr.name));
            if before.is_some() && before != after {
                return Err(ScimError::mutability(format!(
                    "{} is immutable once set",
                    attr.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{AttrType, USER_SCHEMA};
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn norm(v: Value, d: Dialect) -> Result<(Value, Vec<Quirk>), ScimError> {
        let mut reg = SchemaRegistry::new();
        let role = Attribute {
            enforce_canonical: true,
            ..Attribute::new("roleId", AttrType::String)
                .canonical(&["6f1c3b1e-0000-4000-8000-000000000001"])
        };
        reg.add_attribute(USER_SCHEMA, role)
            .map_err(|e| ScimError::invalid_value(e.to_string()))?;
        let mut q = Vec::new();
        normalize_resource(v, ResourceKind::User, &reg, d, &mut q).map(|v| (v, q))
    }

    #[test]
    fn entra_create() {
        let body = json!({
            "schemas": [USER_SCHEMA, ENT],
            "externalId": "0a21f0f2",
            "UserName": "Test_User@contoso.com",
            "active": "True",
            "displayName": "Test User",
            "nickName": null,
            "emails": [{"Primary": true, "type": "work", "value": "Test_User@contoso.com"}],
            "phoneNumbers": [{"type": "mobile", "value": "+1 (555) 555-0100"}],
            "meta": {"resourceType": "User"},
            "id": "client-chosen",
            "password": "hunter2",
            "groups": [{"value": "g"}],
            ENT: {"department": "Sales", "manager": "m-1"},
            "urn:ietf:params:scim:schemas:core:2.0:User:roleId": "6F1C3B1E-0000-4000-8000-000000000001"
        });
        let (out, q) = norm(body, Dialect::Entra).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out,
            json!({
                "schemas": [USER_SCHEMA, ENT],
                "externalId": "0a21f0f2",
                "userName": "Test_User@contoso.com",
                "active": true,
                "displayName": "Test User",
                "emails": [{"primary": true, "type": "work", "value": "Test_User@contoso.com"}],
                "phoneNumbers": [{"type": "mobile", "value": "+1 (555) 555-0100"}],
                "roleId": "6F1C3B1E-0000-4000-8000-000000000001",
                ENT: {"department": "Sales", "manager": {"value": "m-1"}}
            })
        );
        assert!(q.contains(&Quirk::PasswordIgnored) && q.contains(&Quirk::BooleanAsString));
    }

    #[test]
    fn errors_and_fixups() {
        let cases = [
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", "bogus": 1}),
                Dialect::Strict,
                Err("invalidValue"),
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", "bogus": 1}),
                Dialect::Okta,
                Ok(vec![Quirk::UnknownAttributeIgnored("bogus".into())]),
            ),
            (
                json!({"userName": "a"}),
                Dialect::Strict,
                Err("invalidValue"),
            ),
            (
                json!({"userName": "a"}),
                Dialect::Okta,
                Ok(vec![Quirk::SchemasFixed]),
            ),
            (
                json!({"schemas": ["urn:x"], "userName": "a"}),
                Dialect::Strict,
                Err("invalidValue"),
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", ENT: {"department": "D"}}),
                Dialect::Strict,
                Err("invalidValue"),
            ),
            (
                json!({"schemas": [USER_SCHEMA]}),
                Dialect::Entra,
                Err("invalidValue"),
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": ""}),
                Dialect::Entra,
                Err("invalidValue"),
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", "emails": "x"}),
                Dialect::Strict,
                Err("invalidValue"),
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", "roleId": "not-a-role"}),
                Dialect::Entra,
                Err("invalidValue"),
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", "active": "False"}),
                Dialect::Strict,
                Err("invalidValue"),
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", "emails": {"value": "a@b"}}),
                Dialect::Entra,
                Ok(vec![Quirk::SingleValueWrapped]),
            ),
            (json!([1]), Dialect::Entra, Err("invalidSyntax")),
        ];
        for (body, d, want) in cases {
            let got = norm(body.clone(), d);
            match want {
                Ok(q) => assert_eq!(got.map(|(_, q)| q).ok(), Some(q), "{body}"),
                Err(t) => assert_eq!(
                    got.err().and_then(|e| e.scim_type).map(|t| t.as_str()),
                    Some(t),
                    "{body}"
                ),
            }
        }
    }

    #[test]
    fn immutable_on_put() {
        let mut reg = SchemaRegistry::new();
        let a = Attribute::new("badge", AttrType::String).mutability(Mutability::Immutable);
        assert!(reg.add_attribute(USER_SCHEMA, a).is_ok());
        let old = json!({"userName": "a", "badge": "1"});
        assert!(
            check_immutable(
                &old,
                &json!({"userName": "b", "badge": "1"}),
                ResourceKind::User,
                &reg
            )
            .is_ok()
        );
        assert!(
            check_immutable(
                &old,
                &json!({"userName": "b", "badge": "2"}),
                ResourceKind::User,
                &reg
            )
            .is_err()
        );
        assert!(
            check_immutable(&json!({}), &json!({"badge": "2"}), ResourceKind::User, &reg).is_ok()
        );
    }

    #[test]
    fn group_create_keeps_members() {
        let reg = SchemaRegistry::new();
        let mut q = Vec::new();
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": "u1", "$ref": null}]});
        let out = normalize_resource(body, ResourceKind::Group, &reg, Dialect::Strict, &mut q);
        assert_eq!(
            out.ok().map(|o| o["members"].clone()),
            Some(json!([{"value": "u1"}]))
        );
    }
}

//! `attributes` / `excludedAttributes` projection (RFC 7644 §3.4.2.5) with `returned` rules.

use serde_json::{Map, Value};

use crate::scim::error::ScimError;
use crate::scim::path::AttrPath;
use crate::scim::schema::{Attribute, ResourceKind, Returned, SchemaRegistry};

/// Parses a comma-separated attribute list such as `userName,name.givenName`.
pub fn parse_attr_list(s: &str) -> Result<Vec<AttrPath>, ScimError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(AttrPath::parse)
        .collect()
}

/// `attributes` / `excludedAttributes` of a request.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    /// Only these (plus `id`, `schemas`, `returned: always`).
    pub attributes: Vec<AttrPath>,
    /// All defaults except these.
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    /// Whether group members must be loaded: never for `excludedAttributes=members`.
    pub fn wants_members(&self) -> bool {
        let names_members = |list: &[AttrPath]| {
            list.iter().any(|p| {
                p.name.eq_ignore_ascii_case("members")
                    || p.qualified_name()
                        .to_ascii_lowercase()
                        .ends_with(":members")
            })
        };
        if names_members(&self.excluded) {
            return false;
        }
        self.attributes.is_empty() || names_members(&self.attributes)
    }

    /// True when the client asked for any projection at all.
    pub fn is_requested(&self) -> bool {
        !self.attributes.is_empty() || !self.excluded.is_empty()
    }

    /// The projection of the `attributes` and `excludedAttributes` parameters. Each is
    /// given as comma-separated lists: one from a query string, one per element of a
    /// SearchRequest's array, so array elements are never joined to be split again.
    pub fn parse<A: AsRef<str>>(attributes: &[A], excluded: &[A]) -> Result<Self, ScimError> {
        let lists = |pieces: &[A]| -> Result<Vec<AttrPath>, ScimError> {
            let mut out = Vec::new();
            for p in pieces {
                out.extend(parse_attr_list(p.as_ref())?);
            }
            Ok(out)
        };
        Ok(Projection {
            attributes: lists(attributes)?,
            excluded: lists(excluded)?,
        })
    }
}

/// The representation to return: `id` and `schemas` always, `returned: never` never,
/// `attributes` (when non-empty) as the only other ones, else the defaults minus `excluded`.
pub fn project(
    resource: &Value,
    kind: ResourceKind,
    reg: &SchemaRegistry,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Value {
    project_owned(resource.clone(), kind, reg, attributes, excluded)
}

/// [`project`] of a value the caller no longer needs: what is kept is not copied,
/// and keys keep their order (a lookup answer was rebuilt twice, key by key, before).
pub fn project_owned(
    mut resource: Value,
    kind: ResourceKind,
    reg: &SchemaRegistry,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Value {
    let Value::Object(obj) = &mut resource else {
        return resource;
    };
    let core_urn = reg.core(kind).id.as_str();
    obj.retain(|k, v| {
        if k.eq_ignore_ascii_case("schemas") {
            return true;
        }
        if let Some(ext) = reg.extension_for(kind, k) {
            let whole = |list: &[AttrPath]| {
                list.iter()
                    .any(|p| p.sub.is_none() && p.qualified_name().eq_ignore_ascii_case(&ext.id))
            };
            let Value::Object(attrs) = v else {
                return false;
            };
            if (!attributes.is_empty() && whole(attributes)) || whole(excluded) {
                if whole(excluded) {
                    return false;
                }
                strip_never(attrs, &ext.attributes);
                return true;
            }
            attrs.retain(|ak, av| decide(ext.attr(ak), &ext.id, ak, av, attributes, excluded));
            return !attrs.is_empty();
        }
        let def = reg
            .common()
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(k))
            .or_else(|| reg.core(kind).attr(k));
        decide(def, core_urn, k, v, attributes, excluded)
    });
    resource
}

/// What [`project_owned`] with no `attributes` and no `excludedAttributes` does with
/// a top-level attribute, decided from its name alone where it can be. This is the
/// same decision `project_owned` makes; `directory::text` uses it to answer from the
/// stored JSON text without parsing it, and a property test holds the two together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultKeep {
    /// Returned as it is.
    Keep,
    /// Left out (`returned: never` or `request`).
    Drop,
    /// An extension object: returned as it is when it is a non-empty object.
    KeepNonEmptyObject,
    /// Depends on what is inside (an extension with attributes that are left out).
    Inspect,
}

/// See [`DefaultKeep`].
pub fn default_keep(kind: ResourceKind, reg: &SchemaRegistry, key: &str) -> DefaultKeep {
    if key.eq_ignore_ascii_case("schemas") {
        return DefaultKeep::Keep;
    }
    let shown = |r: Returned| matches!(r, Returned::Default | Returned::Always);
    if let Some(ext) = reg.extension_for(kind, key) {
        return if ext.attributes.iter().all(|a| shown(a.returned)) {
            DefaultKeep::KeepNonEmptyObject
        } else {
            DefaultKeep::Inspect
        };
    }
    let def = reg
        .common()
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(key))
        .or_else(|| reg.core(kind).attr(key));
    if def.is_none_or(|d| shown(d.returned)) {
        DefaultKeep::Keep
    } else {
        DefaultKeep::Drop
    }
}

fn strip_never(attrs: &mut Map<String, Value>, defs: &[Attribute]) {
    attrs.retain(|k, _| {
        !defs
            .iter()
            .any(|d| d.name.eq_ignore_ascii_case(k) && d.returned == Returned::Never)
    });
}

fn names(p: &AttrPath, urn: &str, name: &str) -> bool {
    p.name.eq_ignore_ascii_case(name)
        && p.schema
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(urn))
}

/// Whether attribute `name` stays, with `value` narrowed to the sub-attributes asked for.
fn decide(
    def: Option<&Attribute>,
    urn: &str,
    name: &str,
    value: &mut Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> bool {
    let returned = def.map_or(Returned::Default, |d| d.returned);
    match returned {
        Returned::Never => return false,
        Returned::Always => return true,
        _ => {}
    }
    if !attributes.is_empty() {
        let hits: Vec<&AttrPath> = attributes.iter().filter(|p| names(p, urn, name)).collect();
        if hits.iter().any(|p| p.sub.is_none()) {
            return true;
        }
        let subs: Vec<&str> = hits.iter().filter_map(|p| p.sub.as_deref()).collect();
        if subs.is_empty() {
            return false;
        }
        keep_subs(value, |k| subs.iter().any(|s| s.eq_ignore_ascii_case(k)));
        return true;
    }
    if returned == Returned::Request {
        return false;
    }
    let hits: Vec<&AttrPath> = excluded.iter().filter(|p| names(p, urn, name)).collect();
    if hits.iter().any(|p| p.sub.is_none()) {
        return false;
    }
    let subs: Vec<&str> = hits.iter().filter_map(|p| p.sub.as_deref()).collect();
    if !subs.is_empty() {
        keep_subs(value, |k| !subs.iter().any(|s| s.eq_ignore_ascii_case(k)));
    }
    true
}

/// Keeps the sub-attributes `keep` accepts, in an object or in every element of an array.
fn keep_subs(value: &mut Value, keep: impl Fn(&str) -> bool + Copy) {
    match value {
        Value::Object(o) => o.retain(|k, _| keep(k)),
        Value::Array(items) => items.iter_mut().for_each(|i| keep_subs(i, keep)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1",
            "userName": "b",
            "password": "leak",
            "name": {"givenName": "B", "familyName": "J"},
            "emails": [{"value": "a@b", "type": "work"}],
            "meta": {"resourceType": "User"},
            ENT: {"department": "D", "employeeNumber": "7"}
        })
    }

    #[test]
    fn projections() {
        let reg = SchemaRegistry::new();
        let list = |s: &str| parse_attr_list(s).unwrap_or_else(|e| panic!("{e}"));
        let cases = [
            (
                "",
                "",
                json!({"schemas": user()["schemas"], "id": "u1", "userName": "b", "name": {"givenName": "B", "familyName": "J"}, "emails": [{"value": "a@b", "type": "work"}], "meta": {"resourceType": "User"}, ENT: {"department": "D", "employeeNumber": "7"}}),
            ),
            (
                "userName,name.givenName",
                "",
                json!({"schemas": user()["schemas"], "id": "u1", "userName": "b", "name": {"givenName": "B"}}),
            ),
            (
                "emails.value, password",
                "",
                json!({"schemas": user()["schemas"], "id": "u1", "emails": [{"value": "a@b"}]}),
            ),
            (
                &format!("{ENT}:department"),
                "",
                json!({"schemas": user()["schemas"], "id": "u1", ENT: {"department": "D"}}),
            ),
            (
                ENT,
                "",
                json!({"schemas": user()["schemas"], "id": "u1", ENT: {"department": "D", "employeeNumber": "7"}}),
            ),
            (
                "",
                "emails,name.familyName,id,meta",
                json!({"schemas": user()["schemas"], "id": "u1", "userName": "b", "name": {"givenName": "B"}, ENT: {"department": "D", "employeeNumber": "7"}}),
            ),
            (
                "",
                ENT,
                json!({"schemas": user()["schemas"], "id": "u1", "userName": "b", "name": {"givenName": "B", "familyName": "J"}, "emails": [{"value": "a@b", "type": "work"}], "meta": {"resourceType": "User"}}),
            ),
        ];
        for (attrs, excl, want) in cases {
            let got = project(&user(), ResourceKind::User, &reg, &list(attrs), &list(excl));
            assert_eq!(got, want, "attributes={attrs} excluded={excl}");
        }
        let g = json!({"id": "g", "displayName": "G", "members": [{"value": "u"}]});
        assert_eq!(
            project(&g, ResourceKind::Group, &reg, &[], &list("members")),
            json!({"id": "g", "displayName": "G"})
        );
        assert!(parse_attr_list("a b").is_err());
    }
}

//! What a change did to a resource's attributes, as `path: old → new` pairs.
//!
//! Values are rendered as strings (a multi-valued attribute as a sorted list of
//! strings), so the record holds no floats (the audit chain's canonical form refuses
//! them) and a reader compares what an admin would: `work: ann@firm.example
//! (primary)`, not JSON. Secrets are redacted here, before anything is stored or
//! hashed: a password, and any attribute its schema marks `returned: never` or
//! `mutability: writeOnly`, shows only that it changed. No hash of the secret
//! either: a hash of a low-entropy password is a leak.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::canonical::{Object, write_list, write_str, write_value};
use crate::scim::{Attribute, Mutability, ResourceKind, Returned, SchemaRegistry};

/// One attribute a change touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrChange {
    /// The SCIM path: `title`, `name.givenName`, `emails`, or an extension's
    /// `urn:…:User:department`.
    pub path: String,
    /// The value before (absent: the attribute was not set).
    pub old: Option<Value>,
    /// The value after (absent: removed).
    pub new: Option<Value>,
    /// A secret: the values are withheld.
    pub redacted: bool,
}

impl AttrChange {
    /// The change as the record stores it: `{"path", "old", "new"}`, or
    /// `{"path", "redacted": true}`.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("path".into(), Value::String(self.path.clone()));
        if self.redacted {
            o.insert("redacted".into(), Value::Bool(true));
        } else {
            o.insert("old".into(), self.old.clone().unwrap_or(Value::Null));
            o.insert("new".into(), self.new.clone().unwrap_or(Value::Null));
        }
        Value::Object(o)
    }

    /// [`AttrChange::to_json`] in canonical form (keys sorted).
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        let json = self.to_json();
        let mark = out.len();
        if write_value(out, &json).is_err() {
            // A float, which `diff` never gives: as serde_json writes it (chained
            // by the road that parses the body).
            out.truncate(mark);
            out.extend_from_slice(json.to_string().as_bytes());
        }
    }
}

/// A change as the walk finds it, borrowing what it can from the documents.
struct Found<'a> {
    path: Cow<'a, str>,
    old: Option<Shown<'a>>,
    new: Option<Shown<'a>>,
    redacted: bool,
}

/// A value as the log shows it: text, or a sorted list of texts for arrays (order
/// within a multi-valued attribute carries no meaning in SCIM).
#[derive(PartialEq, Eq)]
enum Shown<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl Shown<'_> {
    fn to_value(&self) -> Value {
        match self {
            Shown::One(s) => Value::String(s.clone().into_owned()),
            Shown::Many(items) => Value::Array(
                items
                    .iter()
                    .map(|s| Value::String(s.clone().into_owned()))
                    .collect(),
            ),
        }
    }

    fn write(out: &mut Vec<u8>, shown: Option<&Self>) {
        match shown {
            None => out.extend_from_slice(b"null"),
            Some(Shown::One(s)) => write_str(out, s),
            Some(Shown::Many(items)) => write_list(out, items, |out, s| write_str(out, s)),
        }
    }
}

impl Found<'_> {
    fn to_change(&self) -> AttrChange {
        AttrChange {
            path: self.path.clone().into_owned(),
            old: self.old.as_ref().map(Shown::to_value),
            new: self.new.as_ref().map(Shown::to_value),
            redacted: self.redacted,
        }
    }

    /// [`AttrChange::to_json`] in canonical form (keys sorted), written straight.
    fn write(&self, out: &mut Vec<u8>) {
        let o = Object::new(out);
        if self.redacted {
            o.str("path", &self.path).bool("redacted", true).end();
            return;
        }
        o.with("new", |out| Shown::write(out, self.new.as_ref()))
            .with("old", |out| Shown::write(out, self.old.as_ref()))
            .str("path", &self.path)
            .end();
    }
}

/// What a write did to a resource: `old` → `new` (either absent for a creation or
/// a deletion), read by the schema of its kind.
#[derive(Clone, Copy)]
pub struct Between<'a> {
    pub kind: ResourceKind,
    pub registry: &'a SchemaRegistry,
    pub old: Option<&'a Value>,
    pub new: Option<&'a Value>,
}

impl Between<'_> {
    /// The attributes that differ, in document order: `new`'s keys first, then
    /// those only `old` had.
    pub fn changes(&self) -> Vec<AttrChange> {
        let mut out = Vec::new();
        self.walk(&mut |f| out.push(f.to_change()));
        out
    }

    /// [`Between::changes`] as the record's canonical JSON array, written as the
    /// changes are found (no value built for them): a creation lists every
    /// attribute, and this runs on each write's request.
    pub fn write_changes(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        let mut first = true;
        self.walk(&mut |f| {
            if !first {
                out.push(b',');
            }
            first = false;
            f.write(out);
        });
        out.push(b']');
    }

    fn walk(&self, emit: &mut dyn FnMut(Found<'_>)) {
        let (kind, registry) = (self.kind, self.registry);
        let empty = Map::new();
        let old = self.old.and_then(Value::as_object).unwrap_or(&empty);
        let new = self.new.and_then(Value::as_object).unwrap_or(&empty);
        for key in keys(old, new) {
            if NOT_ATTRIBUTES.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                continue;
            }
            let (o, n) = (get(old, key), get(new, key));
            if let Some(ext) = registry.extension_for(kind, key) {
                // An extension's attributes are nested under its URN.
                let eo = o.and_then(Value::as_object).unwrap_or(&empty);
                let en = n.and_then(Value::as_object).unwrap_or(&empty);
                for sub in keys(eo, en) {
                    let attr = ext.attr(sub);
                    let path = format!("{}:{}", ext.id, attr.map_or(sub, |a| a.name.as_str()));
                    compare(emit, path.into(), attr, get(eo, sub), get(en, sub));
                }
                continue;
            }
            let attr = registry.core(kind).attr(key).or_else(|| {
                registry
                    .common()
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(key))
            });
            let path = attr.map_or(key, |a| a.name.as_str());
            compare(emit, path.into(), attr, o, n);
        }
    }
}

/// Top-level keys that are not attributes a person changes.
const NOT_ATTRIBUTES: [&str; 4] = ["schemas", "id", "meta", "members"];

/// The attributes that differ between `old` and `new` (either absent for a creation
/// or deletion), in document order: `new`'s keys first, then those only `old` had.
pub fn diff(
    kind: ResourceKind,
    registry: &SchemaRegistry,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Vec<AttrChange> {
    Between {
        kind,
        registry,
        old,
        new,
    }
    .changes()
}

/// Keys of `new`, then keys only `old` has.
fn keys<'a>(old: &'a Map<String, Value>, new: &'a Map<String, Value>) -> Vec<&'a str> {
    let mut keys: Vec<&str> = new.keys().map(String::as_str).collect();
    keys.extend(
        old.keys()
            .map(String::as_str)
            .filter(|k| !new.keys().any(|n| n.eq_ignore_ascii_case(k))),
    );
    keys
}

fn get<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key)
        .or_else(|| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// Reports `path` if it changed: a single-valued complex attribute (`name`) by its
/// sub-attributes, anything else as one rendered value.
fn compare<'a>(
    emit: &mut dyn FnMut(Found<'_>),
    path: Cow<'_, str>,
    attr: Option<&Attribute>,
    old: Option<&'a Value>,
    new: Option<&'a Value>,
) {
    if attr.is_some_and(secret) || path.eq_ignore_ascii_case("password") {
        if old != new {
            emit(Found {
                path,
                old: None,
                new: None,
                redacted: true,
            });
        }
        return;
    }
    let single_complex = attr.is_some_and(|a| !a.multi_valued && !a.sub_attributes.is_empty())
        || (attr.is_none()
            && (old.is_some_and(Value::is_object) || new.is_some_and(Value::is_object)));
    if single_complex {
        let empty = Map::new();
        let so = old.and_then(Value::as_object).unwrap_or(&empty);
        let sn = new.and_then(Value::as_object).unwrap_or(&empty);
        for sub in keys(so, sn) {
            let sa = attr.and_then(|a| a.sub(sub));
            let sub_path = format!("{path}.{}", sa.map_or(sub, |a| a.name.as_str()));
            compare(emit, sub_path.into(), sa, get(so, sub), get(sn, sub));
        }
        return;
    }
    let (o, n) = (old.map(render), new.map(render));
    if o != n {
        emit(Found {
            path,
            old: o,
            new: n,
            redacted: false,
        });
    }
}

/// Whether the schema keeps the attribute's value from being read back.
fn secret(a: &Attribute) -> bool {
    a.returned == Returned::Never || a.mutability == Mutability::WriteOnly
}

/// A value as the log shows it: text, or a sorted list of texts for arrays.
fn render(v: &Value) -> Shown<'_> {
    match v {
        Value::Array(items) => {
            let mut shown: Vec<Cow<'_, str>> = items.iter().map(element).collect();
            shown.sort();
            Shown::Many(shown)
        }
        other => Shown::One(element(other)),
    }
}

/// One value as text: a multi-valued element as `type: value (primary)`.
fn element(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        Value::Bool(_) | Value::Number(_) => Cow::Owned(v.to_string()),
        Value::Array(_) => Cow::Owned(v.to_string()),
        Value::Object(o) => {
            let field = |k: &str| get(o, k);
            let Some(value) = field("value").or_else(|| field("display")) else {
                // No `value`: the whole element, compactly (an address, say).
                return Cow::Owned(Value::Object(o.clone()).to_string());
            };
            let mut s = String::new();
            if let Some(t) = field("type").and_then(Value::as_str) {
                s.push_str(t);
                s.push_str(": ");
            }
            s.push_str(&element(value));
            if field("primary").and_then(Value::as_bool) == Some(true) {
                s.push_str(" (primary)");
            }
            Cow::Owned(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> SchemaRegistry {
        SchemaRegistry::new()
    }

    fn paths(changes: &[AttrChange]) -> Vec<&str> {
        changes.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn a_changed_title_shows_old_and_new() {
        let r = registry();
        let old = json!({"userName": "ann", "title": "Associate", "active": true});
        let new = json!({"userName": "ann", "title": "Partner", "active": true});
        let d = diff(ResourceKind::User, &r, Some(&old), Some(&new));
        assert_eq!(
            d,
            vec![AttrChange {
                path: "title".into(),
                old: Some(json!("Associate")),
                new: Some(json!("Partner")),
                redacted: false
            }]
        );
    }

    #[test]
    fn complex_attributes_are_compared_by_sub_attribute() {
        let r = registry();
        let old = json!({"name": {"givenName": "Ann", "familyName": "Lee"}});
        let new = json!({"name": {"givenName": "Anne", "familyName": "Lee"}});
        let d = diff(ResourceKind::User, &r, Some(&old), Some(&new));
        assert_eq!(paths(&d), ["name.givenName"]);
        assert_eq!(d[0].new, Some(json!("Anne")));
    }

    #[test]
    fn multi_valued_attributes_ignore_order_and_read_as_admins_write_them() {
        let r = registry();
        let a = json!({"type": "work", "value": "ann@firm.example", "primary": true});
        let b = json!({"type": "home", "value": "ann@home.example"});
        let old = json!({"emails": [a.clone(), b.clone()]});
        let same = json!({"emails": [b.clone(), a.clone()]});
        assert!(diff(ResourceKind::User, &r, Some(&old), Some(&same)).is_empty());
        let new = json!({"emails": [a]});
        let d = diff(ResourceKind::User, &r, Some(&old), Some(&new));
        assert_eq!(
            d[0].old,
            Some(json!([
                "home: ann@home.example",
                "work: ann@firm.example (primary)"
            ]))
        );
        assert_eq!(d[0].new, Some(json!(["work: ann@firm.example (primary)"])));
    }

    #[test]
    fn extension_attributes_are_named_by_their_urn() {
        let r = registry();
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let old = json!({ urn: {"department": "Tax"} });
        let new = json!({ urn: {"department": "Litigation", "manager": {"value": "m-1"}} });
        let d = diff(ResourceKind::User, &r, Some(&old), Some(&new));
        assert_eq!(
            paths(&d),
            [format!("{urn}:department"), format!("{urn}:manager.value")]
        );
    }

    #[test]
    fn passwords_are_redacted_and_never_copied() {
        let r = registry();
        let old = json!({"userName": "ann", "password": "old-secret-1"});
        let new = json!({"userName": "ann", "password": "new-secret-2"});
        let d = diff(ResourceKind::User, &r, Some(&old), Some(&new));
        assert_eq!(paths(&d), ["password"]);
        assert!(d[0].redacted);
        let shown = d[0].to_json().to_string();
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn creation_and_deletion_list_every_attribute_once() {
        let r = registry();
        let doc = json!({"schemas": ["x"], "userName": "ann", "active": true, "name": {"givenName": "Ann"}});
        let created = diff(ResourceKind::User, &r, None, Some(&doc));
        assert_eq!(paths(&created), ["userName", "active", "name.givenName"]);
        assert!(created.iter().all(|c| c.old.is_none()));
        let deleted = diff(ResourceKind::User, &r, Some(&doc), None);
        assert_eq!(paths(&deleted), ["userName", "active", "name.givenName"]);
        assert_eq!(deleted[1].old, Some(json!("true")));
    }

    #[test]
    fn keys_differing_only_in_case_are_one_attribute() {
        let r = registry();
        let old = json!({"Title": "Associate"});
        let new = json!({"title": "Associate"});
        assert!(diff(ResourceKind::User, &r, Some(&old), Some(&new)).is_empty());
    }
}

//! The organisation's rules that turn a SCIM user into what a target should hold,
//! beyond field-by-field mappings (those are templates: [`crate::targets::mapping`]):
//! one role per user ([`roles`]), contact types the app names differently, and the
//! manager reference translated to the app's own id. No I/O: delivery gathers the
//! user's groups and the manager's target id into [`Relations`] first.

pub mod roles;
pub mod scope;

pub use roles::{Condition, Decision, Outcome, RoleRules, RoleSource, Unmatched};
pub use scope::{Scope, ScopeDecision};

use serde_json::Value;

use crate::scim::json::get_ci;

/// The enterprise extension, where `manager` lives.
pub const ENTERPRISE: &str = crate::scim::schema::ENTERPRISE_USER_SCHEMA;

/// What the rules need besides the user's own document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relations {
    /// Display names of the user's groups: direct membership, plus groups reached
    /// through nested groups when the rules set `expand_nested`.
    pub groups: Vec<String>,
    /// The manager the user's document names, if any.
    pub manager: Option<ManagerLink>,
}

/// The user's manager: the bridge's id, and the target's once the manager is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerLink {
    pub id: String,
    pub target_id: Option<String>,
}

/// The bridge id of the manager a user document names (`manager.value` in the
/// enterprise extension).
pub fn manager_id(user: &Value) -> Option<&str> {
    get_ci(user, ENTERPRISE)
        .and_then(|e| get_ci(e, "manager"))
        .and_then(|m| get_ci(m, "value"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Points the user's manager reference at the manager's account in the app, or
/// removes it while the manager is not there yet (a dangling id would be refused or,
/// worse, point at someone else); delivery brings it back once the manager arrives.
pub fn link_manager(user: &mut Value, manager: Option<&ManagerLink>) {
    let Some(ext) = user
        .as_object_mut()
        .and_then(|o| {
            let key = o
                .keys()
                .find(|k| k.eq_ignore_ascii_case(ENTERPRISE))?
                .clone();
            o.get_mut(&key)
        })
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let Some(key) = ext
        .keys()
        .find(|k| k.eq_ignore_ascii_case("manager"))
        .cloned()
    else {
        return;
    };
    match manager.and_then(|m| m.target_id.as_deref()) {
        Some(tid) => {
            let mut m = serde_json::Map::new();
            m.insert("value".into(), Value::String(tid.to_owned()));
            if let Some(name) = ext
                .get(&key)
                .and_then(|v| get_ci(v, "displayName"))
                .cloned()
            {
                m.insert("displayName".into(), name);
            }
            ext.insert(key, Value::Object(m));
        }
        None => {
            ext.remove(&key);
        }
    }
}

/// The multi-valued attributes whose elements carry a `type` that apps name their
/// own way (Clio Operate's "contact types"), as the core schema spells them.
pub const CONTACT_ATTRIBUTES: [&str; 4] = ["emails", "phoneNumbers", "addresses", "ims"];

/// One contact-type rename: `from` becomes `to` in `attribute`, or, without one (the
/// flat `work = "email"` form), in every attribute of [`CONTACT_ATTRIBUTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRename {
    pub attribute: Option<String>,
    pub from: String,
    pub to: String,
}

impl ContactRename {
    /// The config line it came from, for `explain`.
    pub fn origin(&self) -> String {
        match &self.attribute {
            Some(a) => format!("[targets.contact_types] {a}.{} = {:?}", self.from, self.to),
            None => format!(
                "[targets.contact_types] {} = {:?} (every one of {})",
                self.from,
                self.to,
                CONTACT_ATTRIBUTES.join(", ")
            ),
        }
    }
}

/// A target's `[targets.contact_types]`: how the app names the IdP's contact types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactTypes(pub Vec<ContactRename>);

impl ContactTypes {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ContactRename> {
        self.0.iter()
    }

    /// What the app calls type `kind` of `attribute`, when it is renamed. A rename
    /// written for the attribute wins over a flat one: the guide that renames `work`
    /// emails to `email` keeps `work` phone numbers `work`.
    pub fn rename(&self, attribute: &str, kind: &str) -> Option<&str> {
        let of = |r: &&ContactRename| r.from.eq_ignore_ascii_case(kind);
        self.0
            .iter()
            .filter(of)
            .find(|r| {
                r.attribute
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(attribute))
            })
            .or_else(|| self.0.iter().filter(of).find(|r| r.attribute.is_none()))
            .map(|r| r.to.as_str())
    }
}

/// Renames contact types (`emails`, `phoneNumbers`, `addresses`, `ims`) as the app
/// names them: Entra sends `work` where Clio Operate's email contact type is `email`.
pub fn retype_contacts(user: &mut Value, renames: &ContactTypes) {
    if renames.is_empty() {
        return;
    }
    let Some(o) = user.as_object_mut() else {
        return;
    };
    for (key, items) in o.iter_mut() {
        let contact = CONTACT_ATTRIBUTES
            .iter()
            .any(|c| c.eq_ignore_ascii_case(key));
        let Some(items) = items.as_array_mut().filter(|_| contact) else {
            continue;
        };
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            let Some(tkey) = item
                .keys()
                .find(|k| k.eq_ignore_ascii_case("type"))
                .cloned()
            else {
                continue;
            };
            let new = item
                .get(&tkey)
                .and_then(Value::as_str)
                .and_then(|t| renames.rename(key, t))
                .map(str::to_owned);
            if let Some(new) = new {
                item.insert(tkey, Value::String(new));
            }
        }
    }
}

/// The value at SCIM attribute path `field` (`title`, `name.honorificPrefix`,
/// `urn:…:User:roleId`) in a document as an app returned it, names compared
/// ignoring case.
pub fn attr_at<'v>(doc: &'v Value, field: &str) -> Option<&'v Value> {
    let path = crate::scim::AttrPath::parse(field).ok()?;
    let container = match path.extension() {
        Some(urn) => get_ci(doc, urn)?,
        None => doc,
    };
    let v = get_ci(container, &path.name)?;
    match &path.sub {
        Some(sub) => get_ci(v, sub),
        None => Some(v),
    }
}

/// Reads the role value a target document holds in `field` (a SCIM attribute path;
/// for a multi-valued attribute such as `roles`, the primary or first `value`).
pub fn role_at(doc: &Value, field: &str) -> Option<String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => get_ci(v, "value")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    match attr_at(doc, field)? {
        Value::Array(items) => items
            .iter()
            .find(|i| get_ci(i, "primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| items.first())
            .and_then(scalar),
        other => scalar(other),
    }
    .filter(|s| !s.trim().is_empty())
}

/// Whether `doc` says "no role" in `field` ([`role_cleared`]'s `[]` or `null`), as
/// opposed to leaving the field out.
pub fn clears_role(doc: &Value, field: &str) -> bool {
    match attr_at(doc, field) {
        Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// The JSON that says "no role" in `field`: an empty list for the multi-valued core
/// attributes, `null` otherwise (RFC 7643 §2.5: both equal to unassigned).
pub fn role_cleared(field: &str) -> Value {
    if is_multi_role(field) {
        Value::Array(Vec::new())
    } else {
        Value::Null
    }
}

fn is_multi_role(field: &str) -> bool {
    ["roles", "entitlements"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(field))
}

/// The JSON a role value takes in `field`: a one-element list for the multi-valued
/// core attributes (`roles`, `entitlements`), a string otherwise.
pub fn role_json(field: &str, value: &str) -> Value {
    if is_multi_role(field) {
        serde_json::json!([{ "value": value, "primary": true }])
    } else {
        Value::String(value.to_owned())
    }
}

#[cfg(test)]
mod tests;

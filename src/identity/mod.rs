//! The organisation's rules that turn a SCIM user into what a target should hold,
//! beyond field-by-field mappings (those are templates: [`crate::targets::mapping`]):
//! one role per user ([`roles`]), contact types the app names differently, and the
//! manager reference translated to the app's own id. No I/O: delivery gathers the
//! user's groups and the manager's target id into [`Relations`] first.

pub mod roles;
pub mod scope;

pub use roles::{Condition, Decision, Outcome, RoleRules, RoleSource};
pub use scope::{Scope, ScopeDecision};

use serde_json::Value;

use crate::scim::json::get_ci;

/// The enterprise extension, where `manager` lives.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

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

/// Renames contact types (`emails`, `phoneNumbers`, `addresses`, `ims`) as the app
/// names them: Entra sends `work` where Clio Operate's contact types call it `email`.
pub fn retype_contacts(user: &mut Value, renames: &[(String, String)]) {
    if renames.is_empty() {
        return;
    }
    let Some(o) = user.as_object_mut() else {
        return;
    };
    for (key, items) in o.iter_mut() {
        let contact = ["emails", "phoneNumbers", "addresses", "ims"]
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
            let new = item.get(&tkey).and_then(Value::as_str).and_then(|t| {
                renames
                    .iter()
                    .find(|(from, _)| from.eq_ignore_ascii_case(t))
                    .map(|(_, to)| to.clone())
            });
            if let Some(new) = new {
                item.insert(tkey, Value::String(new));
            }
        }
    }
}

/// Reads the role value a target document holds in `field` (a SCIM attribute path;
/// for a multi-valued attribute such as `roles`, the primary or first `value`).
pub fn role_at(doc: &Value, field: &str) -> Option<String> {
    let path = crate::scim::AttrPath::parse(field).ok()?;
    let container = match path.extension() {
        Some(urn) => get_ci(doc, urn)?,
        None => doc,
    };
    let mut v = get_ci(container, &path.name)?;
    if let Some(sub) = &path.sub {
        v = get_ci(v, sub)?;
    }
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => get_ci(v, "value")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    match v {
        Value::Array(items) => items
            .iter()
            .find(|i| get_ci(i, "primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| items.first())
            .and_then(scalar),
        other => scalar(other),
    }
    .filter(|s| !s.trim().is_empty())
}

/// The JSON a role value takes in `field`: a one-element list for the multi-valued
/// core attributes (`roles`, `entitlements`), a string otherwise.
pub fn role_json(field: &str, value: &str) -> Value {
    let multi = ["roles", "entitlements"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(field));
    if multi {
        serde_json::json!([{ "value": value, "primary": true }])
    } else {
        Value::String(value.to_owned())
    }
}

#[cfg(test)]
mod tests;

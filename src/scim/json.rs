//! Case-insensitive access to JSON object keys: SCIM attribute names are case-insensitive.

use serde_json::{Map, Value};

/// The actual key in `obj` that equals `name` ignoring ASCII case (exact match preferred).
pub fn key_ci(obj: &Map<String, Value>, name: &str) -> Option<String> {
    if obj.contains_key(name) {
        return Some(name.to_string());
    }
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Looks `name` up in `v` (an object) ignoring case.
pub fn get_ci<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Removes `name` from `obj` ignoring case, keeping the order of the other keys.
pub fn remove_ci(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = key_ci(obj, name)?;
    obj.shift_remove(&key)
}

/// Mutable entry for `name`, re-keyed to the canonical spelling `name`.
pub fn get_ci_mut<'v>(obj: &'v mut Map<String, Value>, name: &str) -> Option<&'v mut Value> {
    let key = key_ci(obj, name)?;
    if key != name {
        let v = obj.shift_remove(&key)?;
        obj.insert(name.to_string(), v);
    }
    obj.get_mut(name)
}

/// True when a value counts as unassigned: null, empty string, empty array or empty object.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty() || a.iter().all(is_empty),
        Value::Object(o) => o.is_empty() || o.values().all(is_empty),
        _ => false,
    }
}

//! Stored resources to their SCIM representation (`id`, `meta`, `members`).

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use crate::scim::{MemberRef, ResourceKind};
use crate::store::StoredResource;

/// The weak ETag of a version (RFC 7644 §3.14).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Parses an `If-Match` value: `*`, or a list of (weak or strong) ETags.
pub fn if_match_allows(header: &str, version: i64) -> bool {
    let want = version.to_string();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"') == want)
}

/// `{base}/Users/{id}`.
pub fn location(base_url: &str, kind: ResourceKind, id: &str) -> String {
    format!("{base_url}{}/{id}", kind.endpoint())
}

/// The full resource: schemas, id, document attributes, members, meta.
pub fn to_scim(base_url: &str, r: &StoredResource, members: Option<&[MemberRef]>) -> Value {
    let mut out = Map::new();
    let doc = r.doc.as_object();
    if let Some(s) = doc.and_then(|d| d.get("schemas")) {
        out.insert("schemas".into(), s.clone());
    } else {
        out.insert("schemas".into(), json!([r.kind.core_schema()]));
    }
    out.insert("id".into(), Value::String(r.id.clone()));
    if let Some(doc) = doc {
        for (k, v) in doc {
            if k != "schemas" && k != "id" && k != "meta" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(members) = members
        && r.kind == ResourceKind::Group
    {
        out.insert(
            "members".into(),
            Value::Array(members.iter().map(|m| member_json(base_url, m)).collect()),
        );
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": r.kind.name(),
            "created": r.created.to_rfc3339_opts(SecondsFormat::Millis, true),
            "lastModified": r.last_modified.to_rfc3339_opts(SecondsFormat::Millis, true),
            "location": location(base_url, r.kind, &r.id),
            "version": etag(r.version),
        }),
    );
    Value::Object(out)
}

/// One element of `members`, with `$ref` pointing at the member.
pub fn member_json(base_url: &str, m: &MemberRef) -> Value {
    let mut o = Map::new();
    o.insert("value".into(), Value::String(m.value.clone()));
    if let Some(k) = m.kind {
        o.insert(
            "$ref".into(),
            Value::String(location(base_url, k, &m.value)),
        );
        o.insert("type".into(), Value::String(k.name().into()));
    }
    if let Some(d) = &m.display {
        o.insert("display".into(), Value::String(d.clone()));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_weak_strong_star_and_lists() {
        assert!(if_match_allows("W/\"3\"", 3));
        assert!(if_match_allows("\"3\"", 3));
        assert!(if_match_allows("*", 9));
        assert!(if_match_allows("W/\"1\", W/\"3\"", 3));
        assert!(!if_match_allows("W/\"2\"", 3));
        assert!(!if_match_allows("", 3));
    }
}

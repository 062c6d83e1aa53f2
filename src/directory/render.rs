//! Stored resources to their SCIM representation (`id`, `meta`, `members`).

use chrono::{DateTime, SecondsFormat, Utc};
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
    scim_from(base_url, r, r.doc.clone(), members)
}

/// [`to_scim`] with the document `doc` of `r` moved in rather than copied (a
/// lookup's candidates are read to be answered, not kept).
pub fn scim_from(
    base_url: &str,
    r: &StoredResource,
    doc: Value,
    members: Option<&[MemberRef]>,
) -> Value {
    // The document's own map, reordered in place (moving its entries into a new map
    // hashed every key again): `schemas` first whatever position the document gives
    // it, then `id`, the document's attributes in their order, and `meta` last.
    let mut out = match doc {
        Value::Object(d) => d,
        _ => Map::new(),
    };
    out.shift_remove("meta");
    out.shift_remove("id");
    let schemas = out
        .shift_remove("schemas")
        .unwrap_or_else(|| json!([r.kind.core_schema()]));
    out.shift_insert(0, "schemas".into(), schemas);
    out.shift_insert(1, "id".into(), Value::String(r.id.clone()));
    if let Some(members) = members
        && r.kind == ResourceKind::Group
    {
        out.insert(
            "members".into(),
            Value::Array(members.iter().map(|m| member_json(base_url, m)).collect()),
        );
    }
    out.insert("meta".into(), meta_json(base_url, r));
    Value::Object(out)
}

/// `meta.created` and `meta.lastModified`: RFC 3339 UTC with milliseconds.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `meta` of `r`.
fn meta_json(base_url: &str, r: &StoredResource) -> Value {
    json!({
        "resourceType": r.kind.name(),
        "created": timestamp(r.created),
        "lastModified": timestamp(r.last_modified),
        "location": location(base_url, r.kind, &r.id),
        "version": etag(r.version),
    })
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
    use chrono::{TimeZone, Utc};

    fn stored(kind: ResourceKind, doc: Value) -> StoredResource {
        let at = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        StoredResource {
            seq: 1,
            provider: "p".into(),
            kind,
            id: "i1".into(),
            version: 3,
            created: at,
            last_modified: at,
            doc,
        }
    }

    /// The rendering as it was when it copied the document key by key.
    fn copied(base_url: &str, r: &StoredResource) -> Value {
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
        out.insert("meta".into(), meta_json(base_url, r));
        Value::Object(out)
    }

    #[test]
    fn moved_document_renders_as_the_copied_one_did() {
        let docs = [
            json!({"userName": "a", "schemas": ["s1"], "id": "x", "meta": {"m": 1}, "b": [1, {"c": 2}]}),
            json!({"schemas": ["s1", "s2"], "userName": "a", "name": {"givenName": "G"}}),
            json!({"userName": "a"}),
            json!("not an object"),
        ];
        for doc in docs {
            let r = stored(ResourceKind::User, doc.clone());
            let moved = scim_from("https://b/scim/v2/p", &r, doc, None).to_string();
            assert_eq!(moved, copied("https://b/scim/v2/p", &r).to_string());
            assert!(moved.starts_with(r#"{"schemas":"#), "{moved}");
            assert!(moved.contains(r#""id":"i1""#), "{moved}");
            assert!(moved.ends_with(r#""version":"W/\"3\""}}"#), "{moved}");
        }
        let r = stored(
            ResourceKind::User,
            json!({"userName": "a", "schemas": ["s1"]}),
        );
        assert_eq!(
            to_scim("b", &r, None).to_string(),
            r#"{"schemas":["s1"],"id":"i1","userName":"a","meta":{"resourceType":"User","created":"2024-01-02T03:04:05.000Z","lastModified":"2024-01-02T03:04:05.000Z","location":"b/Users/i1","version":"W/\"3\""}}"#
        );
    }

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

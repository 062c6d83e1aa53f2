//! The answer to `filter=userName eq "…"`, written from the stored JSON text.
//!
//! That lookup is what every IdP sends before it creates or updates a user, and the
//! bulk of a busy bridge's reads. Parsing the stored document into a `Value`,
//! reordering it, projecting it and serialising it again cost about a sixth of the
//! daemon's CPU per lookup, to write out bytes that were already stored: both
//! engines store a document as `serde_json` writes a `Value` (compact, keys in
//! order), so each of its top-level members is already the text the `Value` path
//! would write for it. This module copies those members, in the order and with the
//! selection the `Value` path makes ([`scim_from`](super::render::scim_from), then
//! [`project_owned`](crate::scim::project_owned) with no `attributes`), and leaves
//! every other case to that path: when a document is not in the expected form, or
//! an attribute's fate depends on what is inside it, the whole request is answered
//! the usual way. A property test holds the two paths to the same bytes.

use crate::scim::schema::LIST_RESPONSE_SCHEMA;
use crate::scim::username::comparison_key;
use crate::scim::{DefaultKeep, ResourceKind, SchemaRegistry, default_keep};
use crate::store::StoredText;

use super::render::{etag, location};

/// What became of one candidate of a `userName eq` lookup.
#[derive(Debug, PartialEq)]
pub(super) enum Candidate {
    /// Its SCIM representation, as the `Value` path would have written it.
    Rendered(String),
    /// Its userName does not match (the filter, evaluated on the text).
    NoMatch,
    /// Only the `Value` path can answer for it.
    Parse,
}

/// The representation of user `r` under the default projection when its userName's
/// comparison key is `want_key`.
pub(super) fn user(
    base_url: &str,
    r: &StoredText,
    reg: &SchemaRegistry,
    want_key: &str,
) -> Candidate {
    // `id` and `meta` are written by this function; a schema that hides them is
    // left to the `Value` path. Checked before any of the answer is built.
    if r.kind != ResourceKind::User
        || default_keep(ResourceKind::User, reg, "id") != DefaultKeep::Keep
        || default_keep(ResourceKind::User, reg, "meta") != DefaultKeep::Keep
    {
        return Candidate::Parse;
    }
    let Some(members) = top_level_members(&r.doc) else {
        return Candidate::Parse;
    };
    // The filter, as `filter_eval` decides it for userName: equal comparison keys.
    let Some(name) = members
        .iter()
        .find(|(k, _)| *k == "userName")
        .and_then(|(_, v)| plain_string(v))
    else {
        return Candidate::Parse;
    };
    if comparison_key(name) != want_key {
        return Candidate::NoMatch;
    }
    let mut out = Vec::with_capacity(r.doc.len() + 256);
    out.extend_from_slice(b"{\"schemas\":");
    match members.iter().find(|(k, _)| *k == "schemas") {
        Some((_, v)) => out.extend_from_slice(v.as_bytes()),
        None => {
            out.push(b'[');
            push_string(&mut out, ResourceKind::User.core_schema());
            out.push(b']');
        }
    }
    out.extend_from_slice(b",\"id\":");
    push_string(&mut out, &r.id);
    for (k, v) in &members {
        // `scim_from` takes these three out of the document and puts its own back.
        if matches!(*k, "schemas" | "id" | "meta") {
            continue;
        }
        match default_keep(ResourceKind::User, reg, k) {
            DefaultKeep::Keep => {}
            DefaultKeep::Drop => continue,
            DefaultKeep::KeepNonEmptyObject if v.starts_with('{') && *v != "{}" => {}
            DefaultKeep::KeepNonEmptyObject => continue,
            DefaultKeep::Inspect => return Candidate::Parse,
        }
        out.extend_from_slice(b",\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(b",\"meta\":{\"resourceType\":");
    push_string(&mut out, ResourceKind::User.name());
    out.extend_from_slice(b",\"created\":");
    push_string(&mut out, &super::render::timestamp(r.created));
    out.extend_from_slice(b",\"lastModified\":");
    push_string(&mut out, &super::render::timestamp(r.last_modified));
    out.extend_from_slice(b",\"location\":");
    push_string(&mut out, &location(base_url, ResourceKind::User, &r.id));
    out.extend_from_slice(b",\"version\":");
    push_string(&mut out, &etag(r.version));
    out.extend_from_slice(b"}}");
    match String::from_utf8(out) {
        Ok(s) => Candidate::Rendered(s),
        Err(_) => Candidate::Parse,
    }
}

/// The ListResponse around resources already written, as `list_value` writes it.
pub(super) fn list(total: usize, start: usize, resources: &[String]) -> String {
    let len: usize = resources.iter().map(|r| r.len() + 1).sum();
    let mut out = Vec::with_capacity(len + 160);
    out.extend_from_slice(b"{\"schemas\":[");
    push_string(&mut out, LIST_RESPONSE_SCHEMA);
    out.extend_from_slice(
        format!(
            "],\"totalResults\":{total},\"startIndex\":{start},\"itemsPerPage\":{},\"Resources\":[",
            resources.len()
        )
        .as_bytes(),
    );
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r.as_bytes());
    }
    out.extend_from_slice(b"]}");
    // Every piece was a `&str`, and the joins are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// A JSON string as `serde_json` writes it.
fn push_string(out: &mut Vec<u8>, s: &str) {
    // Writing to a `Vec` cannot fail; on the impossible error the answer would be
    // malformed, so the string is still written, unescaped, rather than lost.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(s.as_bytes());
    }
}

/// The content of a JSON string literal that has no escapes, such as most userNames.
fn plain_string(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains(['\\', '"'])).then_some(inner)
}

/// The top-level members of a compact JSON object, as `(key, value text)` in order;
/// `None` when `text` is anything else (white space between tokens, a key with an
/// escape, a key twice, malformed text), which sends the caller to the `Value` path. Only the
/// structure is followed (strings, nesting); the values were written by `serde_json`.
pub(super) fn top_level_members(text: &str) -> Option<Vec<(&str, &str)>> {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') || b.last() != Some(&b'}') {
        return None;
    }
    let mut out = Vec::with_capacity(16);
    let mut i = 1;
    if b.get(i) == Some(&b'}') {
        return (b.len() == 2).then_some(out);
    }
    loop {
        // "key":
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = &text[i + 1..key_end - 1];
        if key.contains('\\') {
            return None;
        }
        if b.get(key_end) != Some(&b':') {
            return None;
        }
        // A map never writes a key twice; text that does is left to the parser,
        // which keeps the last value.
        if out.iter().any(|(k, _)| *k == key) {
            return None;
        }
        let start = key_end + 1;
        let end = value_end(b, start)?;
        out.push((key, &text[start..end]));
        match b.get(end) {
            Some(b',') => i = end + 1,
            Some(b'}') if end + 1 == b.len() => return Some(out),
            _ => return None,
        }
    }
}

/// The index just past the string literal opening at `b[open]`.
fn string_end(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// The index just past the value starting at `b[start]`: a string, an object or
/// array (nesting followed, strings inside skipped), or a literal / number.
fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match b.get(start)? {
        b'"' => string_end(b, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&c) = b.get(i) {
                match c {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    b' ' | b'\t' | b'\n' | b'\r' => return None,
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let mut i = start;
            while let Some(&c) = b.get(i) {
                match c {
                    b',' | b'}' => break,
                    b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'E' => i += 1,
                    _ => return None,
                }
            }
            (i > start).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::render::scim_from;
    use crate::scim::project_owned;
    use crate::scim::schema::{AttrType, Attribute, Returned};
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const SECRET_EXT: &str = "urn:example:secret:2.0:User";
    const BASE: &str = "https://bridge.example/scim/v2/entra";

    fn stored(doc: &Value) -> StoredText {
        StoredText {
            seq: 7,
            provider: "entra".into(),
            kind: ResourceKind::User,
            id: "2819c223-7f76-453a-919d-413861904646".into(),
            version: 4,
            created: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
            last_modified: Utc.with_ymd_and_hms(2024, 6, 7, 8, 9, 10).unwrap(),
            doc: doc.to_string(),
        }
    }

    /// The default registry plus an extension with an attribute never returned and
    /// a core attribute returned only on request.
    fn registry() -> SchemaRegistry {
        let mut reg = SchemaRegistry::new();
        let mut hidden = Attribute::new("pin", AttrType::String);
        hidden.returned = Returned::Never;
        reg.add_attribute(SECRET_EXT, hidden).unwrap();
        reg.add_attribute(SECRET_EXT, Attribute::new("badge", AttrType::String))
            .unwrap();
        let mut asked = Attribute::new("costCentreCode", AttrType::String);
        asked.returned = Returned::Request;
        reg.add_attribute("urn:ietf:params:scim:schemas:core:2.0:User", asked)
            .unwrap();
        reg
    }

    /// What the `Value` path writes for `doc`: render, project, serialise.
    fn by_value(doc: &Value, reg: &SchemaRegistry) -> String {
        let r = stored(doc).parse().unwrap();
        let full = scim_from(BASE, &r, r.doc.clone(), None);
        serde_json::to_string(&project_owned(full, ResourceKind::User, reg, &[], &[])).unwrap()
    }

    fn by_text(doc: &Value, reg: &SchemaRegistry) -> Candidate {
        let name = doc["userName"].as_str().unwrap_or("");
        user(BASE, &stored(doc), reg, &comparison_key(name))
    }

    fn entra_user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7894a6c0b3f1",
            "userName": "Ada.Lovelace@firm.example",
            "active": true,
            "displayName": "Ada Lovelace",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada \"the\" Countess\n"},
            "emails": [{"value": "ada@firm.example", "type": "work", "primary": true}],
            "title": "Ingénieure",
            "password": "never shown",
            ENT: {"department": "Analytical Engines", "manager": {"value": "m1"}},
            "x-score": 1.25e-7,
            "big": 18446744073709551615u64,
        })
    }

    #[test]
    fn a_typical_user_is_written_from_its_text_as_the_value_path_writes_it() {
        let reg = registry();
        let doc = entra_user();
        let Candidate::Rendered(text) = by_text(&doc, &reg) else {
            panic!("an Entra user must not need parsing");
        };
        assert_eq!(text, by_value(&doc, &reg));
        assert!(!text.contains("never shown"), "{text}");
    }

    #[test]
    fn the_filter_is_still_evaluated_on_the_text() {
        let reg = registry();
        let doc = entra_user();
        // The comparison key, not the bytes: case and compatibility forms match.
        let same = user(
            BASE,
            &stored(&doc),
            &reg,
            &comparison_key("ADA.LOVELACE@FIRM.EXAMPLE"),
        );
        assert!(matches!(same, Candidate::Rendered(_)));
        let other = user(
            BASE,
            &stored(&doc),
            &reg,
            &comparison_key("grace@firm.example"),
        );
        assert_eq!(other, Candidate::NoMatch);
    }

    #[test]
    fn what_only_the_value_path_can_decide_is_left_to_it() {
        let reg = registry();
        let mut with_secret = entra_user();
        with_secret[SECRET_EXT] = json!({"pin": "1234", "badge": "B7"});
        assert_eq!(by_text(&with_secret, &reg), Candidate::Parse);
        let mut escaped = entra_user();
        escaped["userName"] = json!("o\"brien@firm.example");
        assert_eq!(by_text(&escaped, &reg), Candidate::Parse);
        let mut spaced = stored(&entra_user());
        spaced.doc = serde_json::to_string_pretty(&entra_user()).unwrap();
        let key = comparison_key("ada.lovelace@firm.example");
        assert_eq!(user(BASE, &spaced, &reg, &key), Candidate::Parse);
        let mut twice = stored(&entra_user());
        twice.doc = twice.doc.replacen('{', "{\"title\":\"x\",", 1);
        assert_eq!(user(BASE, &twice, &reg, &key), Candidate::Parse);
    }

    #[test]
    fn the_list_wrapper_is_the_one_list_value_writes() {
        let reg = registry();
        let doc = entra_user();
        let Candidate::Rendered(one) = by_text(&doc, &reg) else {
            panic!("rendered");
        };
        let value: Value = serde_json::from_str(&one).unwrap();
        let want = serde_json::to_string(&super::super::list::list_value_for_tests(
            3,
            2,
            vec![value.clone(), value],
        ))
        .unwrap();
        assert_eq!(list(3, 2, &[one.clone(), one]), want);
        assert_eq!(
            list(0, 1, &[]),
            serde_json::to_string(&super::super::list::list_value_for_tests(0, 1, vec![])).unwrap()
        );
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("schemas".to_string()),
            Just("Schemas".to_string()),
            Just("id".to_string()),
            Just("ID".to_string()),
            Just("meta".to_string()),
            Just("password".to_string()),
            Just("costCentreCode".to_string()),
            Just("displayName".to_string()),
            Just("emails".to_string()),
            Just(ENT.to_string()),
            Just(SECRET_EXT.to_string()),
            "[a-zA-Z][a-zA-Z0-9_$-]{0,10}",
            any::<String>(),
        ]
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::String),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|i| json!(i)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    fn user_doc() -> impl Strategy<Value = Value> {
        (
            prop::collection::vec((key(), value()), 0..10),
            "[a-zA-Z0-9.@_-]{1,20}|\\PC{1,8}",
        )
            .prop_map(|(kv, name)| {
                let mut o: Map<String, Value> = kv.into_iter().collect();
                o.insert("userName".into(), Value::String(name));
                Value::Object(o)
            })
    }

    /// The property below is not vacuous: most generated users are answered from text.
    #[test]
    fn most_generated_users_are_answered_from_text() {
        use proptest::strategy::ValueTree;
        let reg = registry();
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut rendered, n) = (0, 500);
        for _ in 0..n {
            let doc = user_doc().new_tree(&mut runner).unwrap().current();
            if matches!(by_text(&doc, &reg), Candidate::Rendered(_)) {
                rendered += 1;
            }
        }
        assert!(
            rendered * 3 > n,
            "only {rendered} of {n} rendered from text"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whenever the text path answers, it writes the bytes the `Value` path writes.
        #[test]
        fn text_and_value_paths_write_the_same_bytes(doc in user_doc()) {
            let reg = registry();
            if let Candidate::Rendered(text) = by_text(&doc, &reg) {
                prop_assert_eq!(text, by_value(&doc, &reg));
            }
        }

        /// The scanner splits what `serde_json` writes into its members, exactly.
        #[test]
        fn members_of_written_objects_are_found(obj in prop::collection::vec((key(), value()), 0..8)) {
            let doc = Value::Object(obj.into_iter().collect());
            let text = doc.to_string();
            match top_level_members(&text) {
                Some(members) => {
                    let map = doc.as_object().unwrap();
                    prop_assert_eq!(members.len(), map.len());
                    for ((k, v), (mk, mv)) in members.iter().zip(map) {
                        prop_assert_eq!(*k, mk.as_str());
                        prop_assert_eq!(&serde_json::from_str::<Value>(v).unwrap(), mv);
                        prop_assert_eq!(*v, mv.to_string());
                    }
                }
                // Only a key that needed an escape is refused.
                None => {
                    let escaped = |k: &String| serde_json::to_string(k).unwrap() != format!("\"{k}\"");
                    prop_assert!(doc.as_object().unwrap().keys().any(escaped));
                }
            }
        }

        /// Any text at all: an answer or a refusal, never a panic or a slice out of bounds.
        #[test]
        fn any_text_is_scanned_without_panicking(text in any::<String>()) {
            let _ = top_level_members(&text);
            let braced = format!("{{{text}}}");
            let _ = top_level_members(&braced);
        }
    }
}

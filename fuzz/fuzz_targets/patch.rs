//! Any JSON as a PATCH request, applied to a user and to a group in every dialect:
//! errors are fine, panics are not, and a PATCH that applies leaves a JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::scim::{Dialect, ResourceKind, SchemaRegistry, apply_patch, parse_patch};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let reg = SchemaRegistry::new();
    for dialect in [Dialect::Strict, Dialect::Entra, Dialect::Okta] {
        let mut quirks = Vec::new();
        let Ok(ops) = parse_patch(&body, dialect, &mut quirks) else {
            continue;
        };
        for (kind, doc) in [
            (
                ResourceKind::User,
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "a", "emails": [{"value": "a@b", "type": "work"}], "name": {"givenName": "A"}
                }),
            ),
            (
                ResourceKind::Group,
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G"
                }),
            ),
        ] {
            let mut doc = doc;
            if apply_patch(&mut doc, kind, &reg, &ops, dialect, &mut quirks).is_ok() {
                assert!(doc.is_object(), "PATCH turned the resource into {doc}");
            }
        }
    }
});

//! Any string as a SCIM filter: parse must return Ok or a SCIM error, never panic or
//! overflow the stack; what parses must print and re-parse to the same filter, and
//! evaluate against a user without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::scim::{FilterLimits, ResourceKind, SchemaRegistry, parse_filter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = FilterLimits::default();
    if let Ok(f) = parse_filter(text, &limits) {
        let printed = f.to_string();
        let again = parse_filter(&printed, &limits).expect("printed filter re-parses");
        assert_eq!(f, again, "round trip of {printed:?}");
        let user = serde_json::json!({
            "userName": "a@b", "emails": [{"value": "a@b", "type": "work", "primary": true}],
            "name": {"givenName": "A"}, "active": true, "meta": {"lastModified": "2026-01-01T00:00:00Z"}
        });
        let _ = f.matches(&user, ResourceKind::User, &SchemaRegistry::new());
    }
});

//! Any string as a userName: checking never panics, what it accepts has a comparison
//! key, and the key is idempotent and the same for upper- and lower-case spellings and
//! with white space around.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::scim::username::{check, comparison_key};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let key = comparison_key(s);
    assert_eq!(comparison_key(&key), key, "key of the key of {s:?}");
    assert_eq!(
        comparison_key(&s.to_uppercase()),
        comparison_key(&s.to_lowercase()),
        "case variants of {s:?}"
    );
    assert_eq!(comparison_key(&format!(" {s}\u{3000}")), key, "spaces around {s:?}");
    if check("userName", s).is_ok() {
        assert!(!key.is_empty(), "accepted {s:?} with an empty key");
    }
});

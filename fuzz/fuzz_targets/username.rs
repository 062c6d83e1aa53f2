//! Any string as a userName: checking never panics, what it accepts has a comparison
//! key, and the key is idempotent and the same for the string's NFC, NFD and
//! lower-case forms and with white space around.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::scim::username::{check, comparison_key};
use unicode_normalization::UnicodeNormalization;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let key = comparison_key(s);
    assert_eq!(comparison_key(&key), key, "key of the key of {s:?}");
    let nfd: String = s.nfd().collect();
    let nfc: String = s.nfc().collect();
    assert_eq!(comparison_key(&nfd), key, "NFD of {s:?}");
    assert_eq!(comparison_key(&nfc), key, "NFC of {s:?}");
    // Lower-casing never changes the name. Upper-casing may: dotless ı becomes I,
    // which is i (default case folding is not Turkish), and U+0345 out of canonical
    // order becomes a letter elsewhere (see username.rs); so only the upper-case
    // form's own lower case is compared with it.
    assert_eq!(comparison_key(&nfd.to_lowercase()), key, "lower case of {s:?}");
    let upper = nfd.to_uppercase();
    assert_eq!(
        comparison_key(&upper.to_lowercase()),
        comparison_key(&upper),
        "lower case of the upper case of {s:?}"
    );
    assert_eq!(
        comparison_key(&format!(" {s}\u{3000}")),
        key,
        "spaces around {s:?}"
    );
    if check("userName", s).is_ok() {
        assert!(!key.is_empty(), "accepted {s:?} with an empty key");
    }
});

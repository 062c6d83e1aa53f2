//! Any text as a configuration file: a config or a list of located errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::config::{Environment, load_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = load_str(
        text,
        "fuzz.toml",
        std::path::Path::new("/tmp"),
        &Environment::new(),
    ) {
        // A rejection must say something, and every position must point into the file.
        assert!(!errors.errors.is_empty(), "rejected without an error");
        let lines = text.split('\n').count();
        for e in &errors.errors {
            if let Some(line) = e.line {
                assert!(
                    line >= 1 && line <= lines,
                    "line {line} outside a {lines}-line file: {e}"
                );
            }
            assert!(!e.message.is_empty(), "empty message at {e}");
        }
    }
});

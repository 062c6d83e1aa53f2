//! Any text as a configuration file: a config or a list of located errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::config::{Environment, load_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = load_str(text, "fuzz.toml", std::path::Path::new("/tmp"), &Environment::new());
});

//! Any string as a template: parse must return Ok or an error whose position is inside
//! the text, never panic; what parses must print and re-parse to the same template and
//! render against a user and a workitem without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::template::{Context, Template, split_top_level};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for (offset, piece) in split_top_level(text, ',') {
        assert_eq!(text.get(offset..offset + piece.len()), Some(piece));
    }
    match Template::parse(text) {
        Ok(t) => {
            let printed = t.to_string();
            let again = Template::parse(&printed).expect("printed template re-parses");
            assert_eq!(t, again, "round trip of {printed:?}");
            let user = serde_json::json!({
                "userName": "a@b", "emails": [{"value": "a@b", "type": "work", "primary": true}],
                "name": {"givenName": "A"}, "active": true
            });
            let workitem = serde_json::json!({"title": "T", "client": {"reference": 12345}, "reference": "00001"});
            let ctx = Context::new().with("user", &user).with("workitem", &workitem);
            let _ = t.render(&ctx);
        }
        Err(e) => {
            assert!(text.is_char_boundary(e.offset));
            let _ = e.to_string();
        }
    }
});

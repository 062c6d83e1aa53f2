//! Table tests for the template language and property tests: no input panics, and the
//! canonical spelling of any parsed template parses back to the same template.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn entra_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": "Alice.Smith@contoso.com",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [
            {"type": "other", "value": "alice@home.example"},
            {"type": "work", "value": "Alice.Smith@Contoso.com", "primary": true}
        ],
        "phoneNumbers": [{"type": "mobile", "value": "+44 7700 900123"}],
        "active": true,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": 4711,
            "manager": {"value": "bob-id", "displayName": "Bob"}
        }
    })
}

fn render(template: &str, user: &Value) -> Result<String, EvalError> {
    let t = Template::parse(template).unwrap_or_else(|e| panic!("{template}: {e}"));
    t.render(&Context::new().with("user", user))
}

#[test]
fn renders_paths_filters_schemas_and_transforms() {
    let u = entra_user();
    let cases = [
        (
            "[user.name.givenName] [user.name.familyName]",
            "Alice Smith",
        ),
        (
            "[user.emails[type eq \"work\"].value]",
            "Alice.Smith@Contoso.com",
        ),
        (
            "[user.emails[type eq \"other\"].value]",
            "alice@home.example",
        ),
        // No filter: the primary element wins even though it is listed second.
        ("[user.emails.value | lower]", "alice.smith@contoso.com"),
        (
            "[user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber]",
            "4711",
        ),
        (
            "[ user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value ]",
            "bob-id",
        ),
        // Core attributes sit at the top: a core schema step names them as guides do.
        (
            "[user.urn:ietf:params:scim:schemas:core:2.0:User:name.givenName]",
            "Alice",
        ),
        (
            "[user.URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:userName | lower]",
            "alice.smith@contoso.com",
        ),
        ("[USER.Name.GIVENNAME | upper]", "ALICE"),
        ("[user.userName | truncate(5)]", "Alice"),
        (
            "[user.userName | replace(\"@contoso.com\", \"\") | lower]",
            "alice.smith",
        ),
        ("[user.title | default(\"Associate\")]", "Associate"),
        ("[user.active]", "true"),
        (
            "Clio Operate Document Templates",
            "Clio Operate Document Templates",
        ),
        ("\\[draft\\] [user.name.givenName] \\\\", "[draft] Alice \\"),
        (
            "[user.phoneNumbers[type eq \"mobile\" and value sw \"+44\"].value | replace(\" \", \"\")]",
            "+447700900123",
        ),
    ];
    for (template, want) in cases {
        assert_eq!(render(template, &u).as_deref(), Ok(want), "{template}");
    }
}

#[test]
fn missing_and_non_scalar_values_are_errors_naming_the_path() {
    let u = entra_user();
    assert_eq!(
        render("x-[user.title]", &u),
        Err(EvalError::Missing {
            path: "user.title".into()
        })
    );
    assert_eq!(
        render("[user.emails[type eq \"fax\"].value]", &u)
            .unwrap_err()
            .path(),
        "user.emails[type eq \"fax\"].value"
    );
    let err = render("[user.name]", &u).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`user.name` is an object, not a single value"
    );
    // Whitespace trimmed to nothing is missing, so no search ever runs on an empty value.
    let blank = json!({"title": "   "});
    assert!(matches!(
        render("[user.title | trim]", &blank),
        Err(EvalError::Missing { .. })
    ));
    assert_eq!(
        render("[user.title | trim | default(\"-\")]", &blank).as_deref(),
        Ok("-")
    );
    // An unknown root has no value rather than being someone else's.
    assert!(render("[group.displayName]", &u).is_err());
}

#[test]
fn parse_errors_point_at_the_problem() {
    let cases = [
        ("[user.name", 0, "unclosed `[`"),
        ("a ] b", 2, "without an opening"),
        ("[]", 1, "expected a path"),
        ("[user.]", 6, "expected an attribute name"),
        ("[user.emails[type eq]].value]", 13, "bad value filter"),
        ("[user.userName | shout]", 17, "unknown transform `shout`"),
        (
            "[user.userName | truncate(\"x\")]",
            17,
            "truncate takes one whole number",
        ),
        ("[user.userName | truncate(0)]", 17, "length from 1"),
        ("[user.userName | replace(\"\", \"b\")]", 17, "non-empty"),
        ("[user.userName | default(\"x)]", 25, "unclosed string"),
        ("[user.userName x]", 15, "unexpected `x`"),
        ("a \\n", 2, "backslash escapes only"),
        ("[user.urn:x]", 6, "schema step"),
        ("[user.emails[type eq \"work\"]", 0, "unclosed `[`"),
    ];
    for (template, offset, needle) in cases {
        let e = Template::parse(template).expect_err(template);
        assert_eq!(e.offset, offset, "{template}: {e}");
        assert!(e.message.contains(needle), "{template}: {e}");
    }
    let e = Template::parse("Hi [user.name.givenName").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unclosed `[`: the expression has no `]` (column 4)\nHi [user.name.givenName\n   ^"
    );
}

#[test]
fn roots_are_checked_with_their_position() {
    let t = Template::parse("[workitem.title] / [user.userName]").unwrap();
    let e = t.check_roots(&["workitem"]).unwrap_err();
    assert_eq!(e.column(), 21);
    assert!(e.message.contains("unknown root `user`"), "{e}");
    assert!(t.check_roots(&["workitem", "user"]).is_ok());
}

#[test]
fn splitting_respects_brackets_quotes_and_escapes() {
    let s = "custom1=[workitem.client.reference], custom2=[x.y[a eq \"1,2\"].z | replace(\",\", \"\")],t=a\\,b";
    let pieces: Vec<&str> = split_top_level(s, ',')
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        pieces,
        [
            "custom1=[workitem.client.reference]",
            " custom2=[x.y[a eq \"1,2\"].z | replace(\",\", \"\")]",
            "t=a\\,b"
        ]
    );
    let (off, piece) = split_top_level(s, ',')[1];
    assert_eq!(s.get(off..off + piece.len()), Some(piece));
}

fn arb_template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z ,=.:-]{1,12}",
        Just("\\[".to_string()),
        Just("\\]".to_string()),
        Just("\\\\".to_string()),
        Just("[user.name.givenName]".to_string()),
        Just("[user.emails[type eq \"work\"].value | lower]".to_string()),
        Just(
            "[user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value]"
                .to_string()
        ),
        "[a-z]{1,6}".prop_map(|w| format!("[workitem.{w} | default(\"{w}\\\"q\") | truncate(3)]")),
        "[ -~]{0,6}".prop_map(|w| format!("[w.x | replace({:?}, \"\\n\")]", format!("{w}x"))),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn any_text_parses_or_errors_without_panicking(s in "\\PC{0,64}") {
        match Template::parse(&s) {
            Ok(t) => {
                let user = entra_user();
                let _ = t.render(&Context::new().with("user", &user));
            }
            Err(e) => {
                prop_assert!(e.offset <= s.len());
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn bracket_heavy_text_never_panics(s in "[\\[\\]\\\\|\"().a-z: ]{0,40}") {
        if let Err(e) = Template::parse(&s) {
            prop_assert!(s.is_char_boundary(e.offset));
        }
    }

    #[test]
    fn canonical_spelling_round_trips(s in arb_template()) {
        let t = Template::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let printed = t.to_string();
        let again = Template::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(&t, &again);
        prop_assert_eq!(printed, again.to_string());
    }

    #[test]
    fn literal_text_renders_as_itself(s in "\\PC{0,40}") {
        let escaped: String = s.chars().flat_map(|c| {
            let esc = matches!(c, '[' | ']' | '\\').then_some('\\');
            esc.into_iter().chain(std::iter::once(c))
        }).collect();
        let t = Template::parse(&escaped).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(t.render(&Context::new()), Ok(s));
    }
}

fn search_field(key: &str) -> bool {
    key.eq_ignore_ascii_case("name")
        || key
            .strip_prefix("custom")
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=30).contains(&n))
}

#[test]
fn assignments_parse_with_positions_in_the_whole_text() {
    let text = "custom1=[workitem.client.reference], custom2=[workitem.reference]";
    assert!(looks_like_assignments(text, search_field));
    let a =
        parse_assignments(text, search_field, "custom1..custom30, name", &["workitem"]).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[1].key, "custom2");
    assert_eq!(a[1].template.to_string(), "[workitem.reference]");
    let wi = json!({"client": {"reference": "12345"}, "reference": "00001"});
    let ctx = Context::new().with("workitem", &wi);
    assert_eq!(a[0].template.render(&ctx).as_deref(), Ok("12345"));

    assert!(!looks_like_assignments("Smith, Jones & Co", search_field));
    assert!(!looks_like_assignments("[workitem.title]", search_field));

    let e = parse_assignments(
        "custom1=[a.b], custom2=[workitem.reference",
        search_field,
        "x",
        &["workitem", "a", "c"],
    )
    .unwrap_err();
    assert_eq!(e.offset, 23, "{e}");
    let e = parse_assignments(
        "custom1=[a.b], colour=red",
        search_field,
        "x",
        &["workitem", "a", "c"],
    )
    .unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (15, "unknown field `colour`; fields are x")
    );
    let e = parse_assignments(
        "custom1=[a.b],custom1=[c.d]",
        search_field,
        "x",
        &["workitem", "a", "c"],
    )
    .unwrap_err();
    assert!(e.message.contains("twice"), "{e}");
    let e = parse_assignments("custom1= ", search_field, "x", &["workitem", "a", "c"]).unwrap_err();
    assert!(e.message.contains("no value"), "{e}");
    let e = parse_assignments(
        "custom1=[a.b], custom2= [user.x]",
        search_field,
        "x",
        &["a"],
    )
    .unwrap_err();
    assert_eq!(e.offset, 25, "{e}");
    assert!(e.message.contains("unknown root `user`"), "{e}");
}

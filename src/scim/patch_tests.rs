//! Request shapes from idp-dialects.md, end to end through parse_patch + apply_patch.

use serde_json::{Value, json};

use crate::scim::dialect::{Dialect, Quirk};
use crate::scim::error::ScimError;
use crate::scim::filter::{FilterLimits, parse_filter};
use crate::scim::patch::{MemberOp, MemberRef, apply_patch, parse_patch};
use crate::scim::schema::{PATCH_OP_SCHEMA, ResourceKind, SchemaRegistry};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": true,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]
    })
}

fn group() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Sales"})
}

fn run(
    doc: &mut Value,
    kind: ResourceKind,
    dialect: Dialect,
    ops: Value,
) -> Result<(Vec<MemberOp>, Vec<Quirk>), ScimError> {
    let reg = SchemaRegistry::new();
    let mut q = Vec::new();
    let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops});
    let parsed = parse_patch(&body, dialect, &mut q)?;
    let m = apply_patch(doc, kind, &reg, &parsed, dialect, &mut q)?;
    Ok((m, q))
}

fn ok(
    doc: &mut Value,
    kind: ResourceKind,
    dialect: Dialect,
    ops: Value,
) -> (Vec<MemberOp>, Vec<Quirk>) {
    run(doc, kind, dialect, ops.clone()).unwrap_or_else(|e| panic!("{ops}: {e}"))
}

fn m(id: &str) -> MemberRef {
    MemberRef {
        value: id.into(),
        kind: None,
        display: None,
    }
}

#[test]
fn entra_legacy_user_update() {
    let mut u = user();
    let (_, q) = ok(
        &mut u,
        ResourceKind::User,
        Dialect::Entra,
        json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "name.givenName", "value": "Babs"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "babs@example.com"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 (555) 555-0100"},
            {"op": "Add", "path": format!("{ENT}:manager"), "value": "m-42"},
            {"op": "Add", "path": format!("{ENT}:employeeNumber"), "value": "701984"}
        ]),
    );
    assert_eq!(u["active"], json!(false));
    assert_eq!(
        u["name"],
        json!({"givenName": "Babs", "familyName": "Jensen"})
    );
    assert_eq!(
        u["emails"],
        json!([{"value": "babs@example.com", "type": "work", "primary": true}])
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 (555) 555-0100"}])
    );
    assert_eq!(
        u[ENT],
        json!({"manager": {"value": "m-42"}, "employeeNumber": "701984"})
    );
    assert!(
        u["schemas"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(ENT)))
    );
    for want in [
        Quirk::CapitalisedOp,
        Quirk::BooleanAsString,
        Quirk::AddToMissingFilteredElement,
        Quirk::BareStringForComplex,
    ] {
        assert!(q.contains(&want), "{want:?} in {q:?}");
    }
    let f =
        parse_filter("active eq false", &FilterLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        f.matches(&u, ResourceKind::User, &SchemaRegistry::new()),
        "disabled users stay matchable"
    );
}

#[test]
fn entra_flagged_pathless_replace() {
    let mut u = user();
    let (_, q) = ok(
        &mut u,
        ResourceKind::User,
        Dialect::Entra,
        json!([{
            "op": "replace",
            "value": {
                "active": false,
                "name.givenName": "Babs",
                "displayName": "Babs Jensen",
                "emails[type eq \"work\"].value": "babs@example.com",
                (format!("{ENT}:manager")): {"value": "m-1"},
                (format!("{ENT}:department")): "Sales",
                "nickName": null
            }
        }]),
    );
    assert_eq!(u["active"], json!(false));
    assert_eq!(u["name"]["givenName"], json!("Babs"));
    assert_eq!(u["name"]["familyName"], json!("Jensen"));
    assert_eq!(u["displayName"], json!("Babs Jensen"));
    assert_eq!(u["emails"][0]["value"], json!("babs@example.com"));
    assert_eq!(
        u[ENT],
        json!({"manager": {"value": "m-1"}, "department": "Sales"})
    );
    assert!(q.contains(&Quirk::DottedKeyInValue));
    assert!(!q.contains(&Quirk::CapitalisedOp));
}

#[test]
fn strict_rejects_entra_quirks_but_accepts_rfc() {
    let cases = [
        (
            json!([{"op": "replace", "path": "active", "value": "False"}]),
            Some("invalidValue"),
        ),
        (
            json!([{"op": "replace", "value": {"name.givenName": "x"}}]),
            Some("invalidPath"),
        ),
        (
            json!([{"op": "replace", "path": format!("{ENT}:manager"), "value": "m"}]),
            Some("invalidValue"),
        ),
        (
            json!([{"op": "replace", "path": "nope", "value": "m"}]),
            Some("invalidPath"),
        ),
        (
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"fax\"].value", "value": "1"}]),
            Some("noTarget"),
        ),
        (
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
            Some("noTarget"),
        ),
        (
            json!([{"op": "Replace", "path": "active", "value": false}]),
            None,
        ),
        (
            json!([{"op": "add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "1"}]),
            None,
        ),
        (
            json!([{"op": "replace", "value": {"name": {"givenName": "x"}, ENT: {"department": "D"}}}]),
            None,
        ),
    ];
    for (ops, want) in cases {
        let mut u = user();
        let got = run(&mut u, ResourceKind::User, Dialect::Strict, ops.clone());
        assert_eq!(
            got.err().and_then(|e| e.scim_type).map(|t| t.as_str()),
            want,
            "{ops}"
        );
    }
}

#[test]
fn okta_deactivate_and_lenient_unknowns() {
    let mut u = user();
    ok(
        &mut u,
        ResourceKind::User,
        Dialect::Okta,
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    assert_eq!(u["active"], json!(false));
    ok(
        &mut u,
        ResourceKind::User,
        Dialect::Okta,
        json!([{"op": "replace", "value": {"active": true}}]),
    );
    assert_eq!(u["active"], json!(true));
    let before = u.clone();
    let (_, q) = ok(
        &mut u,
        ResourceKind::User,
        Dialect::Okta,
        json!([{"op": "replace", "path": "favouriteColour", "value": "red"}]),
    );
    assert_eq!(u, before);
    assert_eq!(q, vec![Quirk::UnknownAttributeIgnored]);
}

#[test]
fn mutability_and_required() {
    let cases = [
        (
            json!([{"op": "replace", "path": "id", "value": "other"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "meta.created", "value": "2011-05-13T04:42:34Z"}]),
            "mutability",
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "value": {"id": "other"}}]),
            "mutability",
        ),
        (
            json!([{"op": "remove", "path": "userName"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            "invalidValue",
        ),
    ];
    for (ops, want) in cases {
        let mut u = user();
        let before = u.clone();
        let got = run(&mut u, ResourceKind::User, Dialect::Entra, ops.clone());
        assert_eq!(
            got.err().and_then(|e| e.scim_type).map(|t| t.as_str()),
            Some(want),
            "{ops}"
        );
        assert_eq!(u, before, "failed PATCH must not change the resource");
    }
}

#[test]
fn remove_and_filters() {
    let mut u = user();
    ok(
        &mut u,
        ResourceKind::User,
        Dialect::Strict,
        json!([
            {"op": "add", "path": "emails", "value": [{"value": "h@x", "type": "home", "primary": true}]},
        ]),
    );
    assert_eq!(u["emails"][0]["primary"], json!(false), "only one primary");
    ok(
        &mut u,
        ResourceKind::User,
        Dialect::Strict,
        json!([
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "title"},
        ]),
    );
    assert_eq!(
        u["emails"],
        json!([{"value": "h@x", "type": "home", "primary": true}])
    );
    assert_eq!(u["name"], json!({"familyName": "Jensen"}));
    ok(
        &mut u,
        ResourceKind::User,
        Dialect::Strict,
        json!([{"op": "remove", "path": "emails"}, {"op": "remove", "path": "name"}]),
    );
    assert!(u.get("emails").is_none() && u.get("name").is_none());
    let (_, q) = ok(
        &mut u,
        ResourceKind::User,
        Dialect::Entra,
        json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
    );
    assert_eq!(q, vec![Quirk::RemoveMatchedNothing]);
    ok(
        &mut u,
        ResourceKind::User,
        Dialect::Okta,
        json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"}]),
    );
    assert_eq!(
        u["addresses"],
        json!([{"type": "work", "streetAddress": "1 Main St"}])
    );
    ok(
        &mut u,
        ResourceKind::User,
        Dialect::Okta,
        json!([{"op": "remove", "path": ENT}]),
    );
}

#[test]
fn group_member_shapes() {
    let cases: Vec<(Dialect, Value, Vec<MemberOp>)> = vec![
        (
            Dialect::Entra,
            json!([{"op": "Add", "path": "members", "value": [{"value": "u1"}]}]),
            vec![MemberOp::Add(vec![m("u1")])],
        ),
        (
            Dialect::Entra,
            json!([{"op": "Add", "path": "members", "value": [{"value": "u1", "$ref": null}]}]),
            vec![MemberOp::Add(vec![m("u1")])],
        ),
        (
            Dialect::Entra,
            json!([{"op": "Remove", "path": "members[value eq \"u1\"]"}]),
            vec![MemberOp::Remove(vec!["u1".into()])],
        ),
        (
            Dialect::Entra,
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}]),
            vec![MemberOp::Remove(vec!["u1".into(), "u2".into()])],
        ),
        (
            Dialect::Strict,
            json!([{"op": "remove", "path": "members"}]),
            vec![MemberOp::RemoveAll],
        ),
        (
            Dialect::Okta,
            json!([{"op": "replace", "path": "members", "value": [{"value": "u3", "display": "C", "type": "user"}]}]),
            vec![MemberOp::ReplaceAll(vec![MemberRef {
                value: "u3".into(),
                kind: Some(ResourceKind::User),
                display: Some("C".into()),
            }])],
        ),
        (
            Dialect::Okta,
            json!([{"op": "replace", "value": {"members": [{"value": "u4"}]}}]),
            vec![MemberOp::ReplaceAll(vec![m("u4")])],
        ),
        (
            Dialect::Okta,
            json!([
                {"op": "remove", "path": "members[value eq \"u1\" or value eq \"u2\"]"},
                {"op": "add", "path": "members", "value": [{"value": "u5"}]}
            ]),
            vec![
                MemberOp::Remove(vec!["u1".into(), "u2".into()]),
                MemberOp::Add(vec![m("u5")]),
            ],
        ),
    ];
    for (dialect, ops, want) in cases {
        let mut g = group();
        let before = g.clone();
        let (got, _) = ok(&mut g, ResourceKind::Group, dialect, ops.clone());
        assert_eq!(got, want, "{ops}");
        assert_eq!(g, before, "members never land in the document: {ops}");
    }
    let mut g = group();
    let (got, _) = ok(
        &mut g,
        ResourceKind::Group,
        Dialect::Strict,
        json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]),
    );
    assert!(matches!(got.as_slice(), [MemberOp::RemoveWhere(_)]));
    let bad = run(
        &mut g,
        ResourceKind::Group,
        Dialect::Entra,
        json!([{"op": "Remove", "path": "members", "value": [{"display": "x"}]}]),
    );
    assert!(
        bad.is_err(),
        "a member list without ids is an error, not RemoveAll"
    );
}

#[test]
fn okta_group_rename() {
    let mut g = group();
    let (members, q) = ok(
        &mut g,
        ResourceKind::Group,
        Dialect::Okta,
        json!([{"op": "replace", "value": {"id": "g1", "displayName": "Sales EMEA"}}]),
    );
    assert!(members.is_empty());
    assert_eq!(g["displayName"], json!("Sales EMEA"));
    assert!(q.contains(&Quirk::ReadOnlyValueUnchanged));
    let bad = run(
        &mut g,
        ResourceKind::Group,
        Dialect::Okta,
        json!([{"op": "replace", "value": {"id": "g2", "displayName": "X"}}]),
    );
    assert_eq!(
        bad.err().and_then(|e| e.scim_type).map(|t| t.as_str()),
        Some("mutability")
    );
}

//! Property tests: filter round trip, no panics on any input, PATCH add/remove symmetry,
//! and the legacy member remove never wiping a group.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::scim::dialect::{Dialect, Quirk};
use crate::scim::filter::{CompareOp, Filter, FilterLimits, parse_filter};
use crate::scim::patch::{MemberOp, apply_patch, parse_patch};
use crate::scim::path::AttrPath;
use crate::scim::schema::{PATCH_OP_SCHEMA, ResourceKind, SchemaRegistry};

fn attr_path() -> impl Strategy<Value = AttrPath> {
    let name = "[a-zA-Z][a-zA-Z0-9_-]{0,8}";
    (
        prop::option::of(prop_oneof![
            Just("urn:ietf:params:scim:schemas:core:2.0:User".to_string()),
            Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_string()),
        ]),
        name,
        prop::option::of(name),
    )
        .prop_map(|(schema, name, sub)| AttrPath { schema, name, sub })
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(|i| json!(i)),
        // Short decimals: serde_json without `float_roundtrip` may misround 17-digit ones by an ulp.
        (-1_000_000i32..1_000_000, 1u32..4)
            .prop_map(|(a, b)| json!(f64::from(a) + f64::from(b) / 4.0)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Co),
        Just(CompareOp::Sw),
        Just(CompareOp::Ew),
        Just(CompareOp::Gt),
        Just(CompareOp::Ge),
        Just(CompareOp::Lt),
        Just(CompareOp::Le),
    ]
}

fn simple_path() -> impl Strategy<Value = AttrPath> {
    "[a-zA-Z][a-zA-Z0-9]{0,6}".prop_map(|n| AttrPath::simple(&n))
}

fn leaf(path: BoxedStrategy<AttrPath>) -> BoxedStrategy<Filter> {
    prop_oneof![
        (path.clone(), op(), literal()).prop_map(|(path, op, value)| Filter::Compare {
            path,
            op,
            value
        }),
        path.prop_map(Filter::Present),
    ]
    .boxed()
}

fn logic(base: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    base.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
    .boxed()
}

fn filter() -> BoxedStrategy<Filter> {
    let element = logic(leaf(simple_path().boxed()));
    let value_path = ("[a-zA-Z][a-zA-Z0-9]{0,6}", element).prop_map(|(n, f)| Filter::ValuePath {
        attr: AttrPath::simple(&n),
        filter: Box::new(f),
    });
    logic(prop_oneof![3 => leaf(attr_path().boxed()), 1 => value_path].boxed())
}

proptest! {
    #[test]
    fn filter_display_round_trips(f in filter()) {
        let text = f.to_string();
        let back = parse_filter(&text, &FilterLimits { max_len: 1 << 20, max_depth: 256 });
        prop_assert_eq!(back, Ok(f), "{}", text);
    }

    #[test]
    fn parse_filter_never_panics(s in any::<String>()) {
        let _ = parse_filter(&s, &FilterLimits::default());
    }

    #[test]
    fn parse_filter_never_panics_on_filterish(s in r#"[a-z\[\]()" .:\\]{0,64}( (eq|and|or|not|pr) )?[a-z\[\]()" 0-9.e+-]{0,32}"#) {
        let _ = parse_filter(&s, &FilterLimits::default());
    }

    #[test]
    fn parse_patch_never_panics(s in any::<String>(), path in r#"[a-zA-Z\[\]". :=]{0,40}"#, opname in "(add|Add|remove|Replace|x)") {
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [
            {"op": opname.clone(), "path": path, "value": s.clone()},
            {"op": opname, "value": {s: 1}}
        ]});
        for d in [Dialect::Strict, Dialect::Entra, Dialect::Okta] {
            let mut q = Vec::new();
            if let Ok(ops) = parse_patch(&body, d, &mut q) {
                let mut doc = json!({"schemas": [], "id": "1", "userName": "u"});
                let _ = apply_patch(&mut doc, ResourceKind::User, &SchemaRegistry::new(), &ops, d, &mut q);
            }
        }
    }

    #[test]
    fn add_then_remove_value_path_restores(
        kind in prop::sample::select(vec!["work", "home", "mobile", "fax"]),
        number in "[+0-9 ()-]{1,16}",
        existing in prop::option::of("[0-9]{3,8}"),
        dialect in prop::sample::select(vec![Dialect::Strict, Dialect::Entra, Dialect::Okta]),
    ) {
        let mut doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1", "userName": "u"});
        if let Some(e) = existing {
            doc["phoneNumbers"] = json!([{"type": "other", "value": e}]);
        }
        let before = doc.clone();
        let path = format!("phoneNumbers[type eq \"{kind}\"].value");
        let reg = SchemaRegistry::new();
        let mut q = Vec::new();
        let add = parse_patch(&json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": path, "value": number}]}), dialect, &mut q);
        let add = add.map_err(|e| TestCaseError::fail(e.to_string()))?;
        apply_patch(&mut doc, ResourceKind::User, &reg, &add, dialect, &mut q).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_ne!(&doc, &before);
        let rm = parse_patch(&json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": path}]}), dialect, &mut q);
        let rm = rm.map_err(|e| TestCaseError::fail(e.to_string()))?;
        apply_patch(&mut doc, ResourceKind::User, &reg, &rm, dialect, &mut q).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(doc, before);
    }

    #[test]
    fn legacy_member_remove_never_removes_all(
        ids in prop::collection::vec(prop_oneof![
            "[a-f0-9-]{1,36}".prop_map(|id| json!({"value": id})),
            "[a-f0-9-]{1,36}".prop_map(|id| json!({"value": id, "$ref": null})),
            Just(json!({})),
            Just(json!({"value": ""})),
            Just(json!({"display": "x"})),
            Just(Value::Null),
        ], 0..6),
        opname in "(Remove|remove|REMOVE)",
        dialect in prop::sample::select(vec![Dialect::Strict, Dialect::Entra, Dialect::Okta]),
    ) {
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": opname, "path": "members", "value": ids}]});
        let mut q = Vec::new();
        let mut doc = json!({"id": "g", "displayName": "G"});
        if let Ok(ops) = parse_patch(&body, dialect, &mut q)
            && let Ok(mops) = apply_patch(&mut doc, ResourceKind::Group, &SchemaRegistry::new(), &ops, dialect, &mut q)
        {
            prop_assert!(!mops.contains(&MemberOp::RemoveAll));
            prop_assert!(q.contains(&Quirk::RemoveWithValueList));
        }
    }
}

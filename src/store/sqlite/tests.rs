use super::*;
use crate::store::{ChangeOp, IndexKeys, MemberChange, MutationKind};
use chrono::TimeZone;
use serde_json::Value;
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default()
}

fn create(id: &str, kind: ResourceKind, doc: Value, members: Vec<MemberRef>) -> Mutation {
    Mutation {
        provider: "entra".into(),
        kind,
        id: id.into(),
        expected_version: None,
        at: t0(),
        request_id: Some("req-1".into()),
        change: MutationKind::Create { doc, members },
    }
}

fn member(id: &str) -> MemberRef {
    MemberRef {
        value: id.into(),
        kind: Some("User".into()),
        display: None,
    }
}

#[tokio::test]
async fn create_read_update_delete_with_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    let doc = json!({"userName": "Alice@Example.com", "emails": [{"value": "A@x.com"}]});
    let c = store
        .apply(create("u1", ResourceKind::User, doc.clone(), vec![]))
        .await
        .unwrap();
    assert_eq!(c.version, 1);
    let got = store
        .get("entra", ResourceKind::User, "u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.doc, doc);
    // Lookups are case-insensitive for userName and emails, scoped per provider.
    let by_name = store
        .lookup(
            "entra",
            ResourceKind::User,
            Lookup::UserNames(vec!["alice@example.COM".into()]),
        )
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);
    let by_mail = store
        .lookup(
            "entra",
            ResourceKind::User,
            Lookup::Emails(vec!["a@X.com".into()]),
        )
        .await
        .unwrap();
    assert_eq!(by_mail.len(), 1);
    assert!(
        store
            .lookup(
                "okta",
                ResourceKind::User,
                Lookup::UserNames(vec!["alice@example.com".into()])
            )
            .await
            .unwrap()
            .is_empty()
    );

    // Duplicate userName (different case) is a uniqueness conflict; the same name
    // under another provider is fine.
    let dup = store
        .apply(create(
            "u2",
            ResourceKind::User,
            json!({"userName": "ALICE@example.com"}),
            vec![],
        ))
        .await;
    assert!(matches!(dup, Err(StoreError::Uniqueness { .. })), "{dup:?}");
    let mut other = create(
        "u2",
        ResourceKind::User,
        json!({"userName": "alice@example.com"}),
        vec![],
    );
    other.provider = "okta".into();
    store.apply(other).await.unwrap();

    let upd = Mutation {
        expected_version: Some(1),
        change: MutationKind::Update {
            doc: Some(json!({"userName": "bob"})),
            members: vec![],
        },
        ..create("u1", ResourceKind::User, json!({}), vec![])
    };
    assert_eq!(store.apply(upd.clone()).await.unwrap().version, 2);
    let stale = store.apply(upd).await;
    assert!(matches!(
        stale,
        Err(StoreError::VersionMismatch {
            expected: 1,
            found: 2
        })
    ));
    assert!(
        store
            .lookup(
                "entra",
                ResourceKind::User,
                Lookup::Emails(vec!["a@x.com".into()])
            )
            .await
            .unwrap()
            .is_empty()
    );

    let del = Mutation {
        change: MutationKind::Delete,
        ..create("u1", ResourceKind::User, json!({}), vec![])
    };
    store.apply(del.clone()).await.unwrap();
    assert!(matches!(store.apply(del).await, Err(StoreError::NotFound)));
    assert!(
        store
            .get("entra", ResourceKind::User, "u1")
            .await
            .unwrap()
            .is_none()
    );

    let events = store.events_after(0, 100).await.unwrap();
    let ops: Vec<_> = events
        .iter()
        .map(|e| (e.provider.as_str(), e.op, e.version))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("entra", ChangeOp::Create, 1),
            ("okta", ChangeOp::Create, 1),
            ("entra", ChangeOp::Update, 2),
            ("entra", ChangeOp::Delete, 3)
        ]
    );
    assert_eq!(events[3].detail["userName"], "bob");
    assert_eq!(events[0].request_id.as_deref(), Some("req-1"));
    store.close().await;
}

#[tokio::test]
async fn member_changes_are_recorded_as_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    store
        .apply(create(
            "g1",
            ResourceKind::Group,
            json!({"displayName": "G"}),
            vec![member("a"), member("b")],
        ))
        .await
        .unwrap();
    let upd = |members| Mutation {
        change: MutationKind::Update { doc: None, members },
        ..create("g1", ResourceKind::Group, json!({}), vec![])
    };
    store
        .apply(upd(vec![
            MemberChange::Add(vec![member("c"), member("a")]),
            MemberChange::Remove(vec!["b".into(), "zz".into()]),
        ]))
        .await
        .unwrap();
    let ids: Vec<_> = store
        .members("entra", "g1")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.value)
        .collect();
    assert_eq!(ids, vec!["a", "c"]);
    let ev = store.events_after(1, 10).await.unwrap();
    assert_eq!(ev[0].detail, json!({"added": ["c"], "removed": ["b"]}));
    assert_eq!(
        store.groups_of("entra", "c").await.unwrap(),
        vec![("g1".to_owned(), Some("G".to_owned()))]
    );

    // A failing job in a batch leaves the others committed.
    let bad = Mutation {
        expected_version: Some(99),
        ..upd(vec![MemberChange::RemoveAll])
    };
    let good = upd(vec![MemberChange::ReplaceAll(vec![member("z")])]);
    let (a, b) = tokio::join!(store.apply(bad), store.apply(good));
    assert!(a.is_err());
    assert!(b.is_ok());
    let ids: Vec<_> = store
        .members("entra", "g1")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.value)
        .collect();
    assert_eq!(ids, vec!["z"]);
    store.close().await;
}

#[tokio::test]
async fn refuses_foreign_and_corrupt_files_without_touching_them() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is my thesis, not a database").unwrap();
    let err = SqliteStore::open(&junk).unwrap_err();
    assert!(matches!(err, StoreError::Foreign(_)), "{err}");
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        b"this is my thesis, not a database"
    );

    let other = dir.path().join("other.db");
    {
        let c = Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE invoices (id INTEGER)")
            .unwrap();
    }
    let err = SqliteStore::open(&other).unwrap_err();
    assert!(
        err.to_string().contains("not a scim-bridge database"),
        "{err}"
    );
}

#[tokio::test]
async fn reopen_keeps_data_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .apply(create(
                "u1",
                ResourceKind::User,
                json!({"userName": "a"}),
                vec![],
            ))
            .await
            .unwrap();
        let tok = ApiToken {
            id: "t1".into(),
            provider: Some("entra".into()),
            scope: "scim".into(),
            secret_hash: [7; 32],
            created: t0(),
            expires: None,
            last_used: None,
            revoked: None,
        };
        store.create_token(tok.clone()).await.unwrap();
        assert!(matches!(
            store.create_token(tok).await,
            Err(StoreError::DuplicateId(_))
        ));
        store.touch_tokens(vec![("t1".into(), t0())]).await.unwrap();
        assert!(store.revoke_token("t1", t0()).await.unwrap());
        assert!(!store.revoke_token("nope", t0()).await.unwrap());
        store.close().await;
        assert!(matches!(
            store
                .apply(create("u2", ResourceKind::User, json!({}), vec![]))
                .await,
            Err(StoreError::Closed)
        ));
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), SCHEMA_VERSION);
    let st = store.status().await.unwrap();
    assert_eq!(
        (st.users, st.events, st.schema_version),
        (1, 1, SCHEMA_VERSION)
    );
    let t = store.find_token("t1").await.unwrap().unwrap();
    assert_eq!(t.last_used, Some(t0()));
    assert_eq!(t.revoked, Some(t0()));
    assert_eq!(
        IndexKeys::from_doc(ResourceKind::User, &json!({"userName": "A"}))
            .user_name
            .as_deref(),
        Some("a")
    );
    store.close().await;
}

#[tokio::test]
async fn member_only_update_keeps_a_concurrently_changed_document() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    store
        .apply(create(
            "g1",
            ResourceKind::Group,
            json!({"displayName": "Old"}),
            vec![],
        ))
        .await
        .unwrap();
    let rename = Mutation {
        change: MutationKind::Update {
            doc: Some(json!({"displayName": "New"})),
            members: vec![],
        },
        ..create("g1", ResourceKind::Group, json!({}), vec![])
    };
    store.apply(rename).await.unwrap();
    // A member add computed from the old document must not write it back.
    let add = Mutation {
        change: MutationKind::Update {
            doc: None,
            members: vec![MemberChange::Add(vec![member("a")])],
        },
        ..create("g1", ResourceKind::Group, json!({}), vec![])
    };
    let c = store.apply(add).await.unwrap();
    assert_eq!(c.version, 3);
    let g = store
        .get("entra", ResourceKind::Group, "g1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.doc["displayName"], "New");
    store.close().await;
}

fn update(id: &str, version: i64, doc: Value) -> Mutation {
    Mutation {
        expected_version: Some(version),
        change: MutationKind::Update {
            doc: Some(doc),
            members: vec![],
        },
        ..create(id, ResourceKind::User, json!({}), vec![])
    }
}

#[tokio::test]
async fn delivery_queue_fans_out_coalesces_leases_and_dead_letters() {
    use crate::store::DeliveryOutcome;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    // Before any route exists nothing is queued.
    store
        .apply(create(
            "u0",
            ResourceKind::User,
            json!({"userName": "zero"}),
            vec![],
        ))
        .await
        .unwrap();
    let routes = vec![
        ("hook".to_owned(), "entra".to_owned()),
        ("dms".to_owned(), "okta".to_owned()),
    ];
    assert_eq!(store.set_delivery_routes(routes).await.unwrap(), 0);
    let now = t0();
    let later = now + chrono::Duration::minutes(5);
    assert!(
        store
            .claim_deliveries("hook", "a", now, later, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Three changes to one user coalesce into one row spanning all three events.
    store
        .apply(create(
            "u1",
            ResourceKind::User,
            json!({"userName": "one"}),
            vec![],
        ))
        .await
        .unwrap();
    store
        .apply(update("u1", 1, json!({"userName": "one", "title": "a"})))
        .await
        .unwrap();
    store
        .apply(update("u1", 2, json!({"userName": "one", "title": "b"})))
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries("dms", "a", now, later, 10)
            .await
            .unwrap()
            .is_empty(),
        "okta only"
    );
    let claimed = store
        .claim_deliveries("hook", "a", now, later, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let d = claimed[0].clone();
    let events = store
        .resource_events("entra", ResourceKind::User, "u1", d.from_seq, d.last_seq)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Leased: another instance gets nothing until the lease runs out.
    assert!(
        store
            .claim_deliveries("hook", "b", now, later, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A change arriving in flight survives the success of the older delivery.
    store
        .apply(update("u1", 3, json!({"userName": "one", "title": "c"})))
        .await
        .unwrap();
    // The wrong owner cannot finish it.
    store
        .finish_delivery(
            d.clone(),
            "b",
            DeliveryOutcome::Done,
            std::time::Duration::from_millis(3),
            now,
        )
        .await
        .unwrap();
    store
        .finish_delivery(
            d.clone(),
            "a",
            DeliveryOutcome::Done,
            std::time::Duration::from_millis(3),
            now,
        )
        .await
        .unwrap();
    let again = store
        .claim_deliveries("hook", "a", now, later, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].from_seq, again[0].last_seq),
        (d.last_seq, d.last_seq + 1)
    );

    // Retry: not due until next_at; then dead-lettered and re-queued from the DLQ.
    let retry_at = now + chrono::Duration::seconds(30);
    let outcome = DeliveryOutcome::Retry {
        next_at: retry_at,
        error: "HTTP 503".into(),
    };
    store
        .finish_delivery(
            again[0].clone(),
            "a",
            outcome,
            std::time::Duration::from_millis(3),
            now,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries("hook", "a", now, later, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = store.delivery_stats("hook").await.unwrap();
    assert_eq!(
        (stats.queued, stats.retrying, stats.dead_letters),
        (1, 1, 0)
    );
    let due = store
        .claim_deliveries("hook", "a", retry_at, later, 10)
        .await
        .unwrap();
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].last_error.as_deref(), Some("HTTP 503"));
    let dead = DeliveryOutcome::Dead {
        error: "HTTP 400: bad userName".into(),
    };
    store
        .finish_delivery(
            due[0].clone(),
            "a",
            dead,
            std::time::Duration::from_millis(3),
            now,
        )
        .await
        .unwrap();
    let letters = store.dead_letters(Some("hook")).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error, "HTTP 400: bad userName");
    assert_eq!(letters[0].attempts, 2);
    assert_eq!(store.delivery_stats("hook").await.unwrap().queued, 0);
    assert!(store.requeue_dead_letter(letters[0].id, now).await.unwrap());
    assert!(!store.requeue_dead_letter(letters[0].id, now).await.unwrap());
    let back = store
        .claim_deliveries("hook", "a", now, later, 10)
        .await
        .unwrap();
    assert_eq!(
        (back[0].from_seq, back[0].last_seq),
        (due[0].from_seq, due[0].last_seq)
    );

    // Every attempt is in the log, in order, with its outcome.
    let log = store
        .delivery_attempts("entra", ResourceKind::User, "u1")
        .await
        .unwrap();
    let outcomes: Vec<_> = log.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        ["delivered", "retry", "dead_letter"],
        "the wrong owner's finish is not logged"
    );
    assert_eq!(log[2].detail.as_deref(), Some("HTTP 400: bad userName"));
    assert_eq!(log[0].duration_ms, 3);
    assert_eq!(
        store
            .prune_delivery_log(now + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        3
    );

    // Target ids; routes removed drop their queue.
    store
        .set_target_id(
            "hook",
            "entra",
            ResourceKind::User,
            "u1",
            Some("T-1".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .target_id("hook", "entra", ResourceKind::User, "u1")
            .await
            .unwrap()
            .as_deref(),
        Some("T-1")
    );
    assert_eq!(store.set_delivery_routes(vec![]).await.unwrap(), 1);
}

#[tokio::test]
async fn change_events_are_pruned_only_when_no_delivery_needs_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    store
        .set_delivery_routes(vec![("hook".to_owned(), "entra".to_owned())])
        .await
        .unwrap();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        store
            .apply(create(
                &format!("u{i}"),
                ResourceKind::User,
                json!({"userName": name}),
                vec![],
            ))
            .await
            .unwrap();
    }
    let later = t0() + chrono::Duration::days(1);
    // u0 and u1 delivered, u2 still queued.
    let claimed = store
        .claim_deliveries("hook", "a", t0(), later, 2)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for d in &claimed {
        store
            .finish_delivery(
                d.clone(),
                "a",
                DeliveryOutcome::Done,
                std::time::Duration::ZERO,
                t0(),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 3);
    // Not old enough: nothing goes.
    assert_eq!(store.prune_change_events(t0(), 10).await.unwrap(), 0);
    // Old enough, in batches of one; the queued u2's event stays.
    assert_eq!(store.prune_change_events(later, 1).await.unwrap(), 1);
    assert_eq!(store.prune_change_events(later, 1).await.unwrap(), 1);
    assert_eq!(store.prune_change_events(later, 1).await.unwrap(), 0);
    let left = store.events_after(0, 100).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].resource_id, "u2");
    // Delivered: it may go too.
    let claimed = store
        .claim_deliveries("hook", "a", t0(), later, 10)
        .await
        .unwrap();
    store
        .finish_delivery(
            claimed[0].clone(),
            "a",
            DeliveryOutcome::Done,
            std::time::Duration::ZERO,
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(store.prune_change_events(later, 10).await.unwrap(), 1);
    assert!(store.events_after(0, 100).await.unwrap().is_empty());
}

//! One storage conformance suite, run against every engine: each `pub async fn` takes
//! an [`Opener`] and checks behaviour callers rely on, whatever the engine. The
//! `conformance!` list at the bottom runs every suite against SQLite (a temp file) and
//! PostgreSQL (a throwaway cluster, see [`crate::store::postgres::testkit`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::scim::{MemberRef, ResourceKind};
use crate::store::postgres::PgStore;
use crate::store::postgres::testkit::TestCluster;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    ApiToken, ChangeOp, Claim, ConsoleSessionRow, DeliveryOutcome, IndexKeys, Lookup, MemberChange,
    Mutation, MutationKind, QueuedDelivery, SecretWrite, Store, StoreError, TargetLink,
};

/// Opens (or re-opens) the store under test; every call opens the same database.
#[async_trait]
pub trait Opener: Send + Sync {
    async fn open(&self) -> Arc<dyn Store>;
    /// Runs SQL on the database behind the store's back (on a closed store), to set up
    /// what an older version of the bridge would have left there.
    async fn exec(&self, sql: &str);
}

pub struct SqliteOpener {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl SqliteOpener {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        SqliteOpener { _dir: dir, path }
    }
}

#[async_trait]
impl Opener for SqliteOpener {
    async fn open(&self) -> Arc<dyn Store> {
        let path = self.path.clone();
        Arc::new(
            tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                .await
                .unwrap()
                .unwrap(),
        )
    }

    async fn exec(&self, sql: &str) {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        c.execute_batch(sql).unwrap();
    }
}

pub struct PgOpener {
    // Dropped last: the cluster outlives every store opened on it.
    url: String,
    _cluster: TestCluster,
}

impl PgOpener {
    /// A fresh database on a fresh cluster; `None` when PostgreSQL is not installed
    /// (and not required, see the testkit).
    pub async fn new() -> Option<Self> {
        let cluster = TestCluster::start().unwrap()?;
        let url = cluster.create_database("conformance").await.unwrap();
        Some(PgOpener {
            url,
            _cluster: cluster,
        })
    }
}

#[async_trait]
impl Opener for PgOpener {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(PgStore::open(&self.url, 8).await.unwrap())
    }

    async fn exec(&self, sql: &str) {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = conn.await;
    }
}

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
        check_members: false,
        log: None,
        change: MutationKind::Create { doc, members },
    }
}

fn member(id: &str) -> MemberRef {
    MemberRef {
        value: id.into(),
        kind: Some(ResourceKind::User),
        display: None,
    }
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

pub async fn create_read_update_delete_with_events(o: &dyn Opener) {
    let store = o.open().await;
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
    // The same lookup unparsed: the document exactly as `serde_json` wrote it, which
    // the userName answer is copied from (`directory::text`).
    let as_text = store
        .lookup_text(
            "entra",
            ResourceKind::User,
            Lookup::UserNames(vec!["alice@example.COM".into()]),
        )
        .await
        .unwrap();
    assert_eq!(as_text.len(), 1);
    assert_eq!(as_text[0].doc, doc.to_string());
    assert_eq!(as_text[0].clone().parse().unwrap(), by_name[0]);
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
    assert_eq!(events[3].detail.to_json()["userName"], "bob");
    assert_eq!(events[0].request_id.as_deref(), Some("req-1"));
    store.close().await;
}

pub async fn member_changes_are_recorded_as_deltas(o: &dyn Opener) {
    let store = o.open().await;
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
    assert_eq!(
        ev[0].detail.to_json(),
        json!({"added": ["c"], "removed": ["b"]})
    );
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

    // Steps inside one PATCH (add d, remove z, add z back, remove d): each member is
    // listed once, with where it ended up, so a receiver replaying the lists in any
    // order gets the stored set.
    store
        .apply(upd(vec![
            MemberChange::Add(vec![member("d")]),
            MemberChange::Remove(vec!["z".into()]),
            MemberChange::Add(vec![member("z")]),
            MemberChange::Remove(vec!["d".into()]),
        ]))
        .await
        .unwrap();
    let last = store.events_after(0, 100).await.unwrap().pop().unwrap();
    assert_eq!(
        last.detail.to_json(),
        json!({"added": ["z"], "removed": ["d"]})
    );
    store.close().await;
}

pub async fn reopen_keeps_data_and_tokens(o: &dyn Opener) {
    {
        let store = o.open().await;
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
    let store = o.open().await;
    let st = store.status().await.unwrap();
    let counted = store.counts().await.unwrap();
    assert_eq!(
        (counted.users, counted.events, st.schema_version),
        (1, 1, st.expected_schema_version)
    );
    assert_eq!(st.last_event_seq, 1);
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

pub async fn member_only_update_keeps_a_concurrently_changed_document(o: &dyn Opener) {
    let store = o.open().await;
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

pub async fn delivery_queue_fans_out_coalesces_leases_and_dead_letters(o: &dyn Opener) {
    let store = o.open().await;
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
            Some(TargetLink::created("T-1")),
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

pub async fn change_events_are_pruned_only_when_no_delivery_needs_them(o: &dyn Opener) {
    let store = o.open().await;
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

pub async fn vault_secrets_and_rotation(o: &dyn Opener) {
    let store = o.open().await;
    assert!(store.vault().await.unwrap().is_none());
    store.init_vault("h1".into(), t0()).await.unwrap();
    assert!(matches!(
        store.init_vault("h2".into(), t0()).await,
        Err(StoreError::DuplicateId(_))
    ));
    let v = store.vault().await.unwrap().unwrap();
    assert_eq!(
        (v.header.as_str(), v.created, v.rotated),
        ("h1", t0(), None)
    );
    let replace = SecretWrite::Replace;
    assert!(matches!(
        store.put_secret("a", vec![1], "h0", t0(), replace).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .put_secret("b", vec![2, 2], "h1", t0(), replace)
            .await
            .unwrap()
    );
    assert!(
        store
            .put_secret("a", vec![1], "h1", t0(), replace)
            .await
            .unwrap()
    );
    let later = t0() + chrono::Duration::seconds(5);
    assert!(
        store
            .put_secret("a", vec![1, 1], "h1", later, replace)
            .await
            .unwrap()
    );
    let a = store.secret("a").await.unwrap().unwrap();
    assert_eq!((a.sealed, a.created, a.updated), (vec![1, 1], t0(), later));
    // A value made on first use: the first stored stays, a later one is not written.
    assert!(
        !store
            .put_secret("a", vec![7], "h1", later, SecretWrite::IfAbsent)
            .await
            .unwrap()
    );
    assert_eq!(store.secret("a").await.unwrap().unwrap().sealed, vec![1, 1]);
    assert!(matches!(
        store
            .put_secret("z", vec![7], "h0", later, SecretWrite::IfAbsent)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let names: Vec<_> = store
        .secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a", "b"]);

    let rows = vec![("a".to_owned(), vec![9]), ("b".to_owned(), vec![8])];
    assert!(matches!(
        store
            .rotate_vault("h0".into(), "h2".into(), rows.clone(), later)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .rotate_vault("h1".into(), "h2".into(), rows[..1].to_vec(), later)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.secret("a").await.unwrap().unwrap().sealed, vec![1, 1]);
    store
        .rotate_vault("h1".into(), "h2".into(), rows, later)
        .await
        .unwrap();
    let v = store.vault().await.unwrap().unwrap();
    assert_eq!((v.header.as_str(), v.rotated), ("h2", Some(later)));
    assert_eq!(store.secret("b").await.unwrap().unwrap().sealed, vec![8]);
    // A process still holding the old key cannot write any more.
    assert!(matches!(
        store.put_secret("c", vec![3], "h1", later, replace).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.delete_secret("a").await.unwrap());
    assert!(!store.delete_secret("a").await.unwrap());
    assert!(store.secret("a").await.unwrap().is_none());
    store.close().await;
}

pub async fn guard_resync_and_dead_letter_drop(o: &dyn Opener) {
    let store = o.open().await;
    let g = store.guard("hook").await.unwrap();
    assert!(g.tripped_at.is_none());
    store.trip_guard("hook", "first", t0()).await.unwrap();
    let later = t0() + chrono::Duration::minutes(1);
    store.trip_guard("hook", "second", later).await.unwrap();
    let g = store.guard("hook").await.unwrap();
    assert_eq!(
        (g.tripped_at, g.reason.as_deref()),
        (Some(t0()), Some("first"))
    );
    let until = t0() + chrono::Duration::hours(1);
    assert!(store.approve_guard("hook", later, until).await.unwrap());
    assert!(!store.approve_guard("hook", later, until).await.unwrap());
    let g = store.guard("hook").await.unwrap();
    assert_eq!((g.tripped_at, g.approved_until), (None, Some(until)));

    store
        .set_delivery_routes(vec![("hook".to_owned(), "entra".to_owned())])
        .await
        .unwrap();
    let c = store
        .apply(create(
            "u1",
            ResourceKind::User,
            json!({"userName": "one"}),
            vec![],
        ))
        .await
        .unwrap();
    let lease = t0() + chrono::Duration::minutes(5);
    let d = store
        .claim_deliveries("hook", "a", t0(), lease, 10)
        .await
        .unwrap();
    store
        .finish_delivery(
            d[0].clone(),
            "a",
            DeliveryOutcome::Done,
            std::time::Duration::ZERO,
            t0(),
        )
        .await
        .unwrap();
    store
        .enqueue_resync("hook", "entra", ResourceKind::User, "u1", later)
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries("hook", "a", t0(), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "due at `later`"
    );
    let r = store
        .claim_deliveries("hook", "a", later, lease, 10)
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert!(r[0].resync);
    assert_eq!((r[0].from_seq, r[0].last_seq), (c.event_seq, c.event_seq));
    store
        .finish_delivery(
            r[0].clone(),
            "a",
            DeliveryOutcome::Dead { error: "no".into() },
            std::time::Duration::ZERO,
            later,
        )
        .await
        .unwrap();
    let dl = store.dead_letters(None).await.unwrap();
    assert_eq!(dl.len(), 1);
    assert!(store.drop_dead_letter(dl[0].id).await.unwrap());
    assert!(!store.drop_dead_letter(dl[0].id).await.unwrap());
    assert!(store.dead_letters(Some("hook")).await.unwrap().is_empty());
    assert_eq!(
        store
            .set_target_id("hook", "entra", ResourceKind::User, "u1", None)
            .await
            .ok(),
        Some(())
    );
    assert!(
        store
            .target_id("hook", "entra", ResourceKind::User, "u1")
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
}

pub async fn scheduled_runs_are_claimed_once_per_tick(o: &dyn Opener) {
    let store = o.open().await;
    let t1 = t0() + chrono::Duration::hours(6);
    assert!(
        store
            .claim_scheduled_run("reconcile:x", t0(), "a")
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_scheduled_run("reconcile:x", t0(), "b")
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_scheduled_run("reconcile:y", t0(), "b")
            .await
            .unwrap()
    );
    // Many instances waking for the same tick: exactly one runs it.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .claim_scheduled_run("reconcile:x", t1, &format!("i{i}"))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    // A late instance never runs an older tick.
    assert!(
        !store
            .claim_scheduled_run("reconcile:x", t0(), "late")
            .await
            .unwrap()
    );
    store.close().await;
}

/// Many writers changing a few resources at once: every acknowledged change has its
/// event, one resource's events are in version order, and its queue row spans them
/// all, so delivery (which reads a resource's events between the seqs its row names)
/// misses none. This is the order PostgreSQL keeps with row locks alone.
pub async fn concurrent_changes_keep_each_resource_in_order(o: &dyn Opener) {
    let store = o.open().await;
    store
        .set_delivery_routes(vec![("t".into(), "entra".into())])
        .await
        .unwrap();
    let resources = 4;
    for r in 0..resources {
        let id = format!("r{r}");
        store
            .apply(create(
                &id,
                ResourceKind::User,
                json!({ "userName": id }),
                vec![],
            ))
            .await
            .unwrap();
    }
    let (writers, per_writer) = (8, 30);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..per_writer {
                let id = format!("r{}", (w + i) % resources);
                let mut m = update(
                    &id,
                    0,
                    json!({ "userName": id, "title": format!("{w}-{i}") }),
                );
                // Unconditional: the writers race for the same rows on purpose.
                m.expected_version = None;
                acked.push((id, store.apply(m).await.unwrap()));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let all = store.events_after(0, 100_000).await.unwrap();
    assert_eq!(all.len(), resources + writers * per_writer);
    for (id, c) in &acked {
        assert!(
            all.iter()
                .any(|e| e.seq == c.event_seq && &e.resource_id == id && e.version == c.version),
            "acknowledged change {id} v{} has no event",
            c.version
        );
    }
    let queued = store
        .claim_deliveries("t", "me", t0(), t0() + chrono::Duration::minutes(5), 100)
        .await
        .unwrap();
    assert_eq!(queued.len(), resources);
    for q in &queued {
        let events = store
            .resource_events(&q.provider, q.kind, &q.resource_id, q.from_seq, q.last_seq)
            .await
            .unwrap();
        let versions: Vec<i64> = events.iter().map(|e| e.version).collect();
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, expected, "{}: events out of order", q.resource_id);
        let of_resource = all
            .iter()
            .filter(|e| e.resource_id == q.resource_id)
            .count();
        assert_eq!(
            events.len(),
            of_resource,
            "{}: queue row misses events",
            q.resource_id
        );
    }
    store.close().await;
}

/// Several instances claiming one target's queue at once: every row is leased to
/// exactly one of them.
pub async fn concurrent_claims_lease_each_row_once(o: &dyn Opener) {
    let store = o.open().await;
    store
        .set_delivery_routes(vec![("hook".to_owned(), "entra".to_owned())])
        .await
        .unwrap();
    let n = 120;
    for i in 0..n {
        store
            .apply(create(
                &format!("u{i}"),
                ResourceKind::User,
                json!({ "userName": format!("u{i}") }),
                vec![],
            ))
            .await
            .unwrap();
    }
    let lease = t0() + chrono::Duration::minutes(5);
    let mut tasks = Vec::new();
    for owner in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let c = store
                    .claim_deliveries("hook", &format!("o{owner}"), t0(), lease, 7)
                    .await
                    .unwrap();
                if c.is_empty() {
                    return got;
                }
                got.extend(c.into_iter().map(|d| d.resource_id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (n, n),
        "a row was leased twice or never"
    );
    store.close().await;
}

/// Racing creates of one userName: one wins, the others get a uniqueness conflict.
pub async fn racing_creates_of_one_user_name(o: &dyn Opener) {
    let store = o.open().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .apply(create(
                    &format!("r{i}"),
                    ResourceKind::User,
                    json!({ "userName": if i % 2 == 0 { "Same" } else { "SAME" } }),
                    vec![],
                ))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Uniqueness { attribute, .. }) => assert_eq!(attribute, "userName"),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    let dup = store
        .apply(create(
            "r0",
            ResourceKind::User,
            json!({"userName": "other"}),
            vec![],
        ))
        .await;
    // r0 may or may not be the winner; a taken id is a duplicate either way once it exists.
    let winner = store
        .lookup(
            "entra",
            ResourceKind::User,
            Lookup::UserNames(vec!["same".into()]),
        )
        .await
        .unwrap();
    assert_eq!(winner.len(), 1);
    if winner[0].id == "r0" {
        assert!(matches!(dup, Err(StoreError::DuplicateId(_))), "{dup:?}");
    }
    store.close().await;
}

/// Members keep insertion order; adding existing ones is idempotent and not reported.
pub async fn member_order_and_idempotent_adds(o: &dyn Opener) {
    let store = o.open().await;
    store
        .apply(create(
            "g",
            ResourceKind::Group,
            json!({"displayName": "G"}),
            vec![member("b"), member("a")],
        ))
        .await
        .unwrap();
    let add = Mutation {
        change: MutationKind::Update {
            doc: None,
            members: vec![MemberChange::Add(vec![
                member("d"),
                member("a"),
                member("c"),
                member("d"),
            ])],
        },
        ..create("g", ResourceKind::Group, json!({}), vec![])
    };
    let c = store.apply(add).await.unwrap();
    let ev = store.events_after(c.event_seq - 1, 1).await.unwrap();
    assert_eq!(
        ev[0].detail.to_json(),
        json!({"added": ["d", "c"], "removed": []})
    );
    let ids: Vec<_> = store
        .members("entra", "g")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.value)
        .collect();
    assert_eq!(ids, ["b", "a", "d", "c"]);
    let del = Mutation {
        change: MutationKind::Delete,
        ..create("g", ResourceKind::Group, json!({}), vec![])
    };
    let c = store.apply(del).await.unwrap();
    let ev = store.events_after(c.event_seq - 1, 1).await.unwrap();
    assert_eq!(
        ev[0].detail.to_json()["removed"],
        json!(["b", "a", "d", "c"])
    );
    store.close().await;
}

/// Pages of members, in insertion order after a position, guarded by the version.
pub async fn member_pages_follow_positions_and_stop_at_a_change(o: &dyn Opener) {
    let store = o.open().await;
    let first: Vec<MemberRef> = ["e", "d", "c", "b", "a"].into_iter().map(member).collect();
    store
        .apply(create(
            "g",
            ResourceKind::Group,
            json!({"displayName": "G"}),
            first,
        ))
        .await
        .unwrap();
    let g = store
        .get("entra", ResourceKind::Group, "g")
        .await
        .unwrap()
        .unwrap();
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .members_page(g.seq, g.version, after, 2)
            .await
            .unwrap()
            .expect("unchanged group");
        ids.extend(page.iter().map(|(_, m)| m.value.clone()));
        assert!(page.windows(2).all(|w| w[0].0 < w[1].0), "positions ascend");
        if let Some((pos, _)) = page.last() {
            after = Some(*pos);
        }
        if page.len() < 2 {
            break;
        }
    }
    assert_eq!(ids, ["e", "d", "c", "b", "a"]);
    assert_eq!(
        store
            .members_page(g.seq, g.version, after, 2)
            .await
            .unwrap(),
        Some(vec![]),
        "past the end: an empty page, not a change"
    );
    let add = Mutation {
        change: MutationKind::Update {
            doc: None,
            members: vec![MemberChange::Add(vec![member("f")])],
        },
        ..create("g", ResourceKind::Group, json!({}), vec![])
    };
    store.apply(add).await.unwrap();
    assert_eq!(
        store.members_page(g.seq, g.version, None, 2).await.unwrap(),
        None,
        "a member change moves the version"
    );
    let del = Mutation {
        change: MutationKind::Delete,
        ..create("g", ResourceKind::Group, json!({}), vec![])
    };
    store.apply(del).await.unwrap();
    assert_eq!(
        store
            .members_page(g.seq, g.version + 1, None, 2)
            .await
            .unwrap(),
        None,
        "a deleted group has no pages"
    );
    store.close().await;
}

fn user_names(found: Vec<crate::store::StoredResource>) -> Vec<(String, String)> {
    let mut v: Vec<_> = found
        .into_iter()
        .map(|r| {
            (
                r.id,
                r.doc["userName"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// userNames are one name under their comparison key (case folding, Unicode
/// normalisation, surrounding spaces). Keys stored by an older version (lower case)
/// are recomputed at open; two users that only then become one name are both kept and
/// found by either spelling, and new users still cannot take the name.
pub async fn look_alike_user_names_after_a_key_change(o: &dyn Opener) {
    let store = o.open().await;
    let user =
        |id: &str, name: &str| create(id, ResourceKind::User, json!({ "userName": name }), vec![]);
    for (id, name) in [("a", "Straße"), ("b", "placeholder"), ("d", "dora")] {
        store.apply(user(id, name)).await.unwrap();
    }
    for (id, name) in [
        ("x1", "STRASSE"),
        ("x2", " strasse\u{3000}"),
        ("x3", "Ｓｔｒａｓｓｅ"),
    ] {
        let taken = store.apply(user(id, name)).await;
        assert!(
            matches!(&taken, Err(StoreError::Uniqueness { value, .. }) if value == name),
            "{name:?}: {taken:?}"
        );
    }
    store.close().await;

    // What a version that lower-cased names left behind: "Straße" and "STRASSE" were
    // two users, and an NFD "Élodie" kept its decomposed key.
    o.exec(
        "UPDATE resources SET user_name_ci = 'straße' WHERE id = 'a';
         UPDATE resources SET user_name_ci = 'strasse', doc = '{\"userName\":\"STRASSE\"}' WHERE id = 'b';
         UPDATE resources SET user_name_ci = 'e\u{301}lodie', doc = '{\"userName\":\"E\u{301}lodie\"}' WHERE id = 'd';
         DELETE FROM meta WHERE key = 'user_name_key';",
    )
    .await;
    let store = o.open().await;
    let by_name = |name: &str| {
        let store = Arc::clone(&store);
        let name = name.to_owned();
        async move {
            user_names(
                store
                    .lookup("entra", ResourceKind::User, Lookup::UserNames(vec![name]))
                    .await
                    .unwrap(),
            )
        }
    };
    let both = vec![
        ("a".to_owned(), "Straße".to_owned()),
        ("b".to_owned(), "STRASSE".to_owned()),
    ];
    assert_eq!(by_name("strasse").await, both);
    assert_eq!(by_name("STRAßE ").await, both);
    assert_eq!(
        by_name("\u{c9}LODIE").await,
        vec![("d".to_owned(), "E\u{301}lodie".to_owned())]
    );
    assert!(matches!(
        store.apply(user("x4", "strasse")).await,
        Err(StoreError::Uniqueness { .. })
    ));
    // Both stay writable under their own names.
    for (id, name) in [("a", "Straße"), ("b", "STRASSE")] {
        store
            .apply(update(id, 1, json!({"userName": name, "title": "t"})))
            .await
            .unwrap();
    }
    // Deleting one passes the name to the other: still nobody new can take it.
    store
        .apply(Mutation {
            change: MutationKind::Delete,
            ..user("b", "")
        })
        .await
        .unwrap();
    assert!(matches!(
        store.apply(user("x5", "STRASSE")).await,
        Err(StoreError::Uniqueness { .. })
    ));
    // Renamed, the survivor frees it.
    store
        .apply(update("a", 2, json!({"userName": "anna"})))
        .await
        .unwrap();
    store.apply(user("x6", "STRASSE")).await.unwrap();
    assert_eq!(
        by_name("straße").await,
        vec![("x6".to_owned(), "STRASSE".to_owned())]
    );
    store.close().await;
    // Keys are recomputed once: a later open finds them current and changes nothing.
    let store = o.open().await;
    let anna = store
        .lookup(
            "entra",
            ResourceKind::User,
            Lookup::UserNames(vec!["ANNA".into()]),
        )
        .await
        .unwrap();
    assert_eq!(user_names(anna), vec![("a".to_owned(), "anna".to_owned())]);
    store.close().await;
}

fn checked(m: Mutation) -> Mutation {
    Mutation {
        check_members: true,
        log: None,
        ..m
    }
}

fn add_members(group: &str, refs: Vec<MemberRef>) -> Mutation {
    Mutation {
        change: MutationKind::Update {
            doc: None,
            members: vec![MemberChange::Add(refs)],
        },
        ..create(group, ResourceKind::Group, json!({}), vec![])
    }
}

fn typed(id: &str, kind: &str) -> MemberRef {
    MemberRef {
        value: id.into(),
        kind: Some(kind.parse().unwrap()),
        display: None,
    }
}

/// With `check_members` (the SCIM front), added members must name a User or Group of
/// the same provider, of the type they say, and not the group itself.
pub async fn members_must_name_resources_of_the_provider(o: &dyn Opener) {
    use crate::store::MemberProblem;
    let store = o.open().await;
    store
        .apply(create(
            "u1",
            ResourceKind::User,
            json!({"userName": "u1"}),
            vec![],
        ))
        .await
        .unwrap();
    let mut okta = create("o1", ResourceKind::User, json!({"userName": "o1"}), vec![]);
    okta.provider = "okta".into();
    store.apply(okta).await.unwrap();
    store
        .apply(checked(create(
            "g1",
            ResourceKind::Group,
            json!({"displayName": "G1"}),
            vec![member("u1")],
        )))
        .await
        .unwrap();
    store
        .apply(checked(create(
            "g2",
            ResourceKind::Group,
            json!({"displayName": "G2"}),
            vec![typed("g1", "Group")],
        )))
        .await
        .unwrap();
    let unknown = |first: &[&str], count: usize| MemberProblem::Unknown {
        first: first.iter().map(|s| (*s).to_owned()).collect(),
        count,
    };
    let refused = |r: Result<crate::store::Committed, StoreError>| match r {
        Err(StoreError::Members(p)) => p,
        other => panic!("expected refused members, got {other:?}"),
    };
    // Another provider's user is unknown here.
    assert_eq!(
        refused(
            store
                .apply(checked(create(
                    "g3",
                    ResourceKind::Group,
                    json!({"displayName": "G3"}),
                    vec![member("u1"), member("o1"), member("nope")],
                )))
                .await
        ),
        unknown(&["o1", "nope"], 2)
    );
    assert!(
        store
            .get("entra", ResourceKind::Group, "g3")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        refused(
            store
                .apply(checked(add_members("g1", vec![typed("g2", "User")])))
                .await
        ),
        MemberProblem::WrongType {
            id: "g2".into(),
            is: ResourceKind::Group,
            said: ResourceKind::User
        }
    );
    assert_eq!(
        refused(
            store
                .apply(checked(add_members("g1", vec![typed("g1", "Group")])))
                .await
        ),
        MemberProblem::OwnMember
    );
    let many: Vec<MemberRef> = (0..15_000).map(|i| member(&format!("ghost-{i}"))).collect();
    assert_eq!(
        refused(store.apply(checked(add_members("g1", many))).await),
        unknown(
            &["ghost-0", "ghost-1", "ghost-2", "ghost-3", "ghost-4"],
            15_000
        )
    );
    let replace = Mutation {
        change: MutationKind::Update {
            doc: None,
            members: vec![MemberChange::ReplaceAll(vec![member("gone")])],
        },
        ..create("g1", ResourceKind::Group, json!({}), vec![])
    };
    assert_eq!(
        refused(store.apply(checked(replace)).await),
        unknown(&["gone"], 1)
    );
    let ids = |v: Vec<MemberRef>| v.into_iter().map(|m| m.value).collect::<Vec<_>>();
    assert_eq!(ids(store.members("entra", "g1").await.unwrap()), ["u1"]);
    // Removing what is not a member stays harmless; nested groups are fine.
    let remove = Mutation {
        change: MutationKind::Update {
            doc: None,
            members: vec![MemberChange::Remove(vec!["ghost-1".into()])],
        },
        ..create("g1", ResourceKind::Group, json!({}), vec![])
    };
    store.apply(checked(remove)).await.unwrap();
    store
        .apply(checked(add_members("g1", vec![typed("g2", "Group")])))
        .await
        .unwrap();
    assert_eq!(
        ids(store.members("entra", "g1").await.unwrap()),
        ["u1", "g2"]
    );
    // Internal writers (and older tests) store what they are given.
    store
        .apply(add_members("g1", vec![member("ghost-1")]))
        .await
        .unwrap();
    store.close().await;
}

/// A member deleted while a change adds it is never left listed: the check and the
/// insert happen in the write's transaction, which a deletion waits for (or the
/// member is already gone and refused). Each add also carries many members that stay,
/// so its insert takes long enough for a deletion to run alongside it.
pub async fn a_member_deleted_concurrently_is_not_left_listed(o: &dyn Opener) {
    let store = o.open().await;
    store
        .apply(create(
            "g",
            ResourceKind::Group,
            json!({"displayName": "G"}),
            vec![],
        ))
        .await
        .unwrap();
    let user = |id: String| {
        let store = Arc::clone(&store);
        async move {
            store
                .apply(create(
                    &id,
                    ResourceKind::User,
                    json!({ "userName": id }),
                    vec![],
                ))
                .await
                .unwrap();
        }
    };
    let stay: Vec<String> = (0..1000).map(|i| format!("s{i}")).collect();
    futures_join(stay.iter().map(|id| user(id.clone()))).await;
    let n = 20;
    for i in 0..n {
        user(format!("t{i}")).await;
    }
    for i in 0..n {
        let target = format!("t{i}");
        let mut refs = vec![member(&target)];
        refs.extend(stay.iter().map(|id| member(id)));
        let add = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.apply(checked(add_members("g", refs))).await })
        };
        let delete = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .apply(Mutation {
                        change: MutationKind::Delete,
                        ..create(&target, ResourceKind::User, json!({}), vec![])
                    })
                    .await
            })
        };
        let added = add.await.unwrap();
        assert!(
            matches!(added, Ok(_) | Err(StoreError::Members(_))),
            "{added:?}"
        );
        delete.await.unwrap().unwrap();
    }
    let listed: Vec<String> = store
        .members("entra", "g")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.value)
        .filter(|id| id.starts_with('t'))
        .collect();
    assert_eq!(listed, Vec::<String>::new(), "deleted users left listed");
    store.close().await;
}

/// Awaits every future, a few at a time.
async fn futures_join<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut pending = Vec::new();
    for f in futures {
        pending.push(f);
        if pending.len() == 32 {
            for f in pending.drain(..) {
                f.await;
            }
        }
    }
    for f in pending {
        f.await;
    }
}

// Identity rules: users waiting for their manager; users deleted in the bridge that a
// target still holds.

fn at_hour(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0)
        .single()
        .unwrap_or_default()
}

fn user_at(id: &str, change: MutationKind, h: u32) -> Mutation {
    Mutation {
        provider: "entra".into(),
        kind: ResourceKind::User,
        id: id.into(),
        expected_version: None,
        at: at_hour(h),
        request_id: None,
        check_members: false,
        log: None,
        change,
    }
}

/// A resync requested while the resource's delivery is in flight (reconciliation, a
/// role follow-up, a released manager link) survives that delivery's finish: the
/// delivery may have read the state from before the request.
pub async fn a_resync_requested_mid_delivery_is_not_lost(o: &dyn Opener) {
    let store = o.open().await;
    store
        .set_delivery_routes(vec![("app".into(), "entra".into())])
        .await
        .unwrap();
    let create = MutationKind::Create {
        doc: json!({"userName": "ada"}),
        members: vec![],
    };
    store.apply(user_at("ada", create, 1)).await.unwrap();
    let done = |d: QueuedDelivery, h: u32| {
        let store = Arc::clone(&store);
        async move {
            store
                .finish_delivery(
                    d,
                    "me",
                    DeliveryOutcome::Done,
                    std::time::Duration::ZERO,
                    at_hour(h),
                )
                .await
                .unwrap();
        }
    };
    let claim = |h: u32| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_deliveries("app", "me", at_hour(h), at_hour(h + 1), 10)
                .await
                .unwrap()
        }
    };
    let mut first = claim(2).await;
    assert_eq!(first.len(), 1);
    let first = first.remove(0);
    assert!(!first.resync);
    store
        .enqueue_resync("app", "entra", ResourceKind::User, "ada", at_hour(2))
        .await
        .unwrap();
    let last_seq = first.last_seq;
    done(first, 2).await;
    let mut again = claim(3).await;
    assert_eq!(again.len(), 1, "the resync went with the finished delivery");
    let again = again.remove(0);
    assert!(again.resync);
    assert_eq!((again.from_seq, again.last_seq), (last_seq, last_seq));
    // Claimed with its request and finished with no new one: gone.
    done(again, 3).await;
    assert!(claim(4).await.is_empty());
    store.close().await;
}

pub async fn one_resource_is_claimed_on_demand_due_or_not(o: &dyn Opener) {
    let store = o.open().await;
    store
        .set_delivery_routes(vec![("app".into(), "entra".into())])
        .await
        .unwrap();
    let one = |h: u32, owner: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_delivery(
                    "app",
                    "entra",
                    ResourceKind::User,
                    "ada",
                    owner,
                    at_hour(h),
                    at_hour(h + 1),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(one(1, "me").await, Claim::Absent);
    let create = MutationKind::Create {
        doc: json!({"userName": "ada"}),
        members: vec![],
    };
    store.apply(user_at("ada", create, 1)).await.unwrap();
    // Failed once: due again only at hour 5.
    let d = store
        .claim_deliveries("app", "me", at_hour(1), at_hour(2), 10)
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    store
        .finish_delivery(
            d[0].clone(),
            "me",
            DeliveryOutcome::Retry {
                next_at: at_hour(5),
                error: "busy".into(),
            },
            std::time::Duration::ZERO,
            at_hour(1),
        )
        .await
        .unwrap();
    let Claim::Claimed(now) = one(2, "me").await else {
        panic!("not claimed before it was due");
    };
    assert_eq!((now.from_seq, now.last_seq), (d[0].from_seq, d[0].last_seq));
    assert_eq!(now.attempts, 1);
    // Leased: neither the worker nor a second request takes it.
    assert_eq!(one(2, "other").await, Claim::Leased { until: at_hour(3) });
    assert!(
        store
            .claim_deliveries("app", "other", at_hour(2), at_hour(3), 10)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .finish_delivery(
            now,
            "me",
            DeliveryOutcome::Done,
            std::time::Duration::ZERO,
            at_hour(2),
        )
        .await
        .unwrap();
    assert_eq!(
        one(3, "me").await,
        Claim::Absent,
        "delivered: nothing queued"
    );
    store.close().await;
}

pub async fn waits_are_released_once_into_the_queue(o: &dyn Opener) {
    let store = o.open().await;
    store
        .set_delivery_routes(vec![("app".into(), "entra".into())])
        .await
        .unwrap();
    for id in ["ada", "bob"] {
        let doc = json!({"userName": id});
        let create = MutationKind::Create {
            doc,
            members: vec![],
        };
        store.apply(user_at(id, create, 1)).await.unwrap();
    }
    // Deliver both, so the queue is empty before the waits are released.
    let claimed = store
        .claim_deliveries("app", "me", at_hour(2), at_hour(3), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for d in claimed {
        store
            .finish_delivery(
                d,
                "me",
                DeliveryOutcome::Done,
                std::time::Duration::ZERO,
                at_hour(2),
            )
            .await
            .unwrap();
    }
    for waiting in ["ada", "bob", "ada"] {
        store
            .await_link("app", "entra", "grace", waiting)
            .await
            .unwrap();
    }
    // Another target's or another manager's waits are not touched.
    store
        .await_link("other", "entra", "grace", "ada")
        .await
        .unwrap();
    assert_eq!(
        store
            .release_waiting("app", "entra", "nobody", at_hour(4))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .release_waiting("app", "entra", "grace", at_hour(4))
            .await
            .unwrap(),
        2
    );
    let queued = store
        .claim_deliveries("app", "me", at_hour(4), at_hour(5), 10)
        .await
        .unwrap();
    let mut ids: Vec<&str> = queued.iter().map(|d| d.resource_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["ada", "bob"]);
    assert!(queued.iter().all(|d| d.resync));
    assert_eq!(
        store
            .release_waiting("app", "entra", "grace", at_hour(6))
            .await
            .unwrap(),
        0,
        "released once"
    );
    assert_eq!(
        store
            .release_waiting("other", "entra", "grace", at_hour(6))
            .await
            .unwrap(),
        1
    );
    store.close().await;
}

pub async fn orphans_are_deleted_users_with_a_target_id_and_their_deletion_time(o: &dyn Opener) {
    let store = o.open().await;
    for id in ["gone", "kept", "never-sent"] {
        let create = MutationKind::Create {
            doc: json!({"userName": id}),
            members: vec![],
        };
        store.apply(user_at(id, create, 1)).await.unwrap();
    }
    for id in ["gone", "kept"] {
        store
            .set_target_id(
                "app",
                "entra",
                ResourceKind::User,
                id,
                Some(TargetLink::created(format!("t-{id}"))),
            )
            .await
            .unwrap();
    }
    for id in ["gone", "never-sent"] {
        store
            .apply(user_at(id, MutationKind::Delete, 7))
            .await
            .unwrap();
    }
    let orphans = store.orphaned_users("app").await.unwrap();
    assert_eq!(
        orphans,
        vec![crate::store::Orphan {
            provider: "entra".into(),
            id: "gone".into(),
            target_id: "t-gone".into(),
            deleted_at: Some(at_hour(7)),
        }]
    );
    assert!(store.orphaned_users("other").await.unwrap().is_empty());
    // Re-created under the same id: no longer an orphan.
    let again = MutationKind::Create {
        doc: json!({"userName": "gone"}),
        members: vec![],
    };
    store.apply(user_at("gone", again, 8)).await.unwrap();
    assert!(store.orphaned_users("app").await.unwrap().is_empty());
    store.close().await;
}

/// Ownership: links record how the bridge came to manage an account, can be found from
/// the target's side, and are counted; the guard's held changes can be listed and
/// rejected into the dead-letter queue.
pub async fn ownership_and_guard_holds(o: &dyn Opener) {
    let store = o.open().await;
    store
        .set_target_id(
            "dms",
            "entra",
            ResourceKind::User,
            "u1",
            Some(TargetLink::created("JOHN")),
        )
        .await
        .unwrap();
    store
        .set_target_id(
            "dms",
            "entra",
            ResourceKind::User,
            "u2",
            Some(TargetLink::adopted("JSMITH", "email")),
        )
        .await
        .unwrap();
    store
        .set_target_id(
            "dms",
            "entra",
            ResourceKind::Group,
            "g1",
            Some(TargetLink::created("IP/IT")),
        )
        .await
        .unwrap();
    store
        .set_target_id(
            "app",
            "entra",
            ResourceKind::User,
            "u1",
            Some(TargetLink::created("8f1c")),
        )
        .await
        .unwrap();
    let owner = store
        .target_owner("dms", ResourceKind::User, "JSMITH")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            owner.provider.as_str(),
            owner.resource_id.as_str(),
            owner.link.adopted_by.as_deref()
        ),
        ("entra", "u2", Some("email"))
    );
    assert!(
        store
            .target_owner("dms", ResourceKind::Group, "JSMITH")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .target_owner("app", ResourceKind::User, "JSMITH")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .count_managed("dms", ResourceKind::User)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_managed("dms", ResourceKind::Group)
            .await
            .unwrap(),
        1
    );
    let mut all = store.managed("dms").await.unwrap();
    all.sort_by(|a, b| a.link.target_id.cmp(&b.link.target_id));
    let ids: Vec<(&str, Option<&str>)> = all
        .iter()
        .map(|m| (m.link.target_id.as_str(), m.link.adopted_by.as_deref()))
        .collect();
    assert_eq!(
        ids,
        [("IP/IT", None), ("JOHN", None), ("JSMITH", Some("email"))]
    );
    // Re-linking replaces how it came to be managed.
    store
        .set_target_id(
            "dms",
            "entra",
            ResourceKind::User,
            "u2",
            Some(TargetLink::created("JSMITH")),
        )
        .await
        .unwrap();
    let owner = store
        .target_owner("dms", ResourceKind::User, "JSMITH")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.link.adopted_by, None);

    // A change the guard pauses is held, listed, and rejected into the dead letters.
    store
        .set_delivery_routes(vec![("dms".to_owned(), "entra".to_owned())])
        .await
        .unwrap();
    for id in ["h1", "h2"] {
        store
            .apply(create(
                id,
                ResourceKind::User,
                json!({"userName": id}),
                vec![],
            ))
            .await
            .unwrap();
    }
    let lease = t0() + chrono::Duration::minutes(5);
    let claimed = store
        .claim_deliveries("dms", "a", t0(), lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let (h1, h2) = (claimed[0].clone(), claimed[1].clone());
    store
        .finish_delivery(
            h1.clone(),
            "a",
            DeliveryOutcome::Defer {
                next_at: t0() + chrono::Duration::seconds(5),
                reason: "paused".into(),
            },
            std::time::Duration::ZERO,
            t0(),
        )
        .await
        .unwrap();
    store
        .finish_delivery(
            h2,
            "a",
            DeliveryOutcome::Retry {
                next_at: t0() + chrono::Duration::seconds(5),
                error: "busy".into(),
            },
            std::time::Duration::ZERO,
            t0(),
        )
        .await
        .unwrap();
    store.trip_guard("dms", "too many", t0()).await.unwrap();
    let held = store.held_by_guard("dms").await.unwrap();
    assert_eq!(held.len(), 1, "only the paused change is held");
    assert_eq!(held[0].resource_id, h1.resource_id);
    let later = t0() + chrono::Duration::minutes(1);
    assert_eq!(
        store
            .reject_held("dms", "rejected by an admin", later)
            .await
            .unwrap(),
        1
    );
    assert!(store.held_by_guard("dms").await.unwrap().is_empty());
    assert!(store.guard("dms").await.unwrap().tripped_at.is_none());
    let dead = store.dead_letters(Some("dms")).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].resource_id.as_str(), dead[0].error.as_str()),
        (h1.resource_id.as_str(), "rejected by an admin")
    );
    // The retried change is still queued, not rejected.
    let due = store
        .claim_deliveries("dms", "a", later, later + chrono::Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(store.reject_held("dms", "again", later).await.unwrap(), 0);
    // A resource that fails for good again keeps one dead letter, with the newest error.
    store
        .finish_delivery(
            due[0].clone(),
            "a",
            DeliveryOutcome::Dead {
                error: "ambiguous".into(),
            },
            std::time::Duration::ZERO,
            later,
        )
        .await
        .unwrap();
    store
        .enqueue_resync(
            "dms",
            "entra",
            ResourceKind::User,
            &due[0].resource_id,
            later,
        )
        .await
        .unwrap();
    let again = store
        .claim_deliveries("dms", "a", later, later + chrono::Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    store
        .finish_delivery(
            again[0].clone(),
            "a",
            DeliveryOutcome::Dead {
                error: "still ambiguous".into(),
            },
            std::time::Duration::ZERO,
            later,
        )
        .await
        .unwrap();
    let dead = store.dead_letters(Some("dms")).await.unwrap();
    let mine: Vec<&str> = dead
        .iter()
        .filter(|l| l.resource_id == due[0].resource_id)
        .map(|l| l.error.as_str())
        .collect();
    assert_eq!(mine, ["still ambiguous"]);
}

/// A span once attempted is retried exactly (after a restart and on another instance
/// too), so a webhook event keeps its id; changes arriving meanwhile follow next.
pub async fn an_attempted_span_is_retried_unchanged(o: &dyn Opener) {
    let store = o.open().await;
    store
        .set_delivery_routes(vec![("hook".to_owned(), "entra".to_owned())])
        .await
        .unwrap();
    let now = t0();
    let later = now + chrono::Duration::minutes(5);
    store
        .apply(create(
            "u1",
            ResourceKind::User,
            json!({"userName": "one"}),
            vec![],
        ))
        .await
        .unwrap();
    let first = store
        .claim_deliveries("hook", "a", now, later, 10)
        .await
        .unwrap()
        .remove(0);
    let retry = DeliveryOutcome::Retry {
        next_at: now,
        error: "503".into(),
    };
    store
        .finish_delivery(first.clone(), "a", retry, std::time::Duration::ZERO, now)
        .await
        .unwrap();
    // A change arrives while the first span waits for its retry, and the instance
    // that attempted it dies: another takes over.
    store
        .apply(update("u1", 1, json!({"userName": "one", "title": "new"})))
        .await
        .unwrap();
    store.release_leases("a").await.unwrap();
    let again = store
        .claim_deliveries("hook", "b", now, later, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (again.from_seq, again.last_seq),
        (first.from_seq, first.last_seq),
        "the retry covers what the first attempt covered"
    );
    store
        .finish_delivery(
            again.clone(),
            "b",
            DeliveryOutcome::Done,
            std::time::Duration::ZERO,
            now,
        )
        .await
        .unwrap();
    // The change that arrived meanwhile is due at once, in its own span.
    let rest = store
        .claim_deliveries("hook", "b", now, later, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(rest.from_seq, first.last_seq);
    assert!(rest.last_seq > first.last_seq);
    store
        .finish_delivery(
            rest,
            "b",
            DeliveryOutcome::Done,
            std::time::Duration::ZERO,
            now,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries("hook", "b", now, later, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

/// A change draft as the SCIM front builds one.
fn draft(op: crate::provlog::ChangeOp, id: &str, doc: &Value) -> crate::provlog::ChangeDraft {
    crate::provlog::ChangeDraft {
        origin: crate::provlog::Origin {
            provider: "entra".into(),
            request_id: Some(format!("req-{id}")),
            client: Some("10.1.2.3".into()),
            token: Some("tok1".into()),
        },
        op,
        resource: crate::provlog::ResourceNames::of(ResourceKind::User, id, doc),
        changes: vec![],
        status: 201,
    }
}

pub async fn the_provisioning_log_is_written_with_what_it_records(o: &dyn Opener) {
    use crate::provlog::{ActionDraft, ActionOutcome, ChangeOp, LogQuery, ResourceNames, Subject};
    let store = o.open().await;
    store
        .set_delivery_routes(vec![("hook".to_owned(), "entra".to_owned())])
        .await
        .unwrap();
    let ann = json!({"userName": "Ann@Firm.example", "displayName": "Ann Lee"});
    let mut m = create("u1", ResourceKind::User, ann.clone(), vec![]);
    m.log = Some(draft(ChangeOp::Create, "u1", &ann).prepare());
    let c = store.apply(m).await.unwrap();
    // A write that fails leaves no record: the same userName again.
    let mut dup = create("u2", ResourceKind::User, ann.clone(), vec![]);
    dup.log = Some(draft(ChangeOp::Create, "u2", &ann).prepare());
    assert!(store.apply(dup).await.is_err());
    // A deletion's record names what was deleted, from the row the store removes.
    let bob = json!({"userName": "bob@firm.example"});
    let mut m = create("u3", ResourceKind::User, bob.clone(), vec![]);
    m.log = Some(draft(ChangeOp::Create, "u3", &bob).prepare());
    store.apply(m).await.unwrap();
    let mut del = create("u3", ResourceKind::User, json!({}), vec![]);
    del.change = MutationKind::Delete;
    del.at = t0() + chrono::Duration::minutes(1);
    let mut d = draft(ChangeOp::Delete, "u3", &json!({}));
    d.resource = ResourceNames {
        kind: Some(ResourceKind::User),
        id: "u3".into(),
        ..ResourceNames::default()
    };
    del.log = Some(d.prepare());
    store.apply(del).await.unwrap();

    let all = store.log_query(&LogQuery::default()).await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all[0].id > all[1].id, "newest first");
    assert_eq!(all[0].action(), "delete");
    assert_eq!(
        all[0].resource().user_name.as_deref(),
        Some("bob@firm.example")
    );
    let created = &all[2];
    assert_eq!(created.body["changeSeq"], c.event_seq);
    assert_eq!(created.body["client"], "10.1.2.3");
    assert_eq!(created.at, t0());

    // The action record goes with the outcome, only while the lease is held.
    let now = t0();
    let claimed = store
        .claim_deliveries("hook", "a", now, now + chrono::Duration::minutes(5), 10)
        .await
        .unwrap();
    let u1 = claimed
        .iter()
        .find(|d| d.resource_id == "u1")
        .unwrap()
        .clone();
    let action = |outcome| ActionDraft {
        target: "hook".into(),
        provider: "entra".into(),
        resource: ResourceNames::of(ResourceKind::User, "u1", &ann),
        action: "create".into(),
        outcome,
        steps: vec![],
        calls: vec![],
        change_seqs: (u1.from_seq, u1.last_seq),
        attempt: 1,
        duration_ms: 4,
        error: None,
        next_at: None,
    };
    let took = std::time::Duration::from_millis(4);
    store
        .finish_delivery_recorded(
            u1.clone(),
            "not-the-owner",
            DeliveryOutcome::Done,
            took,
            now,
            Some(action(ActionOutcome::Success).row(now)),
        )
        .await
        .unwrap();
    assert_eq!(
        store.log_query(&LogQuery::default()).await.unwrap().len(),
        3
    );
    store
        .finish_delivery_recorded(
            u1.clone(),
            "a",
            DeliveryOutcome::Done,
            took,
            now,
            Some(action(ActionOutcome::Success).row(now)),
        )
        .await
        .unwrap();

    // Queries: a person by name key (whatever the case), a target, an outcome.
    let ann_q = LogQuery {
        subject: Some(Subject {
            user_name_keys: vec![crate::scim::username::comparison_key("ann@FIRM.example")],
            ..Subject::default()
        }),
        ..LogQuery::default()
    };
    let about_ann = store.log_query(&ann_q).await.unwrap();
    assert_eq!(
        about_ann
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        ["delivery.action", "scim.change"]
    );
    let by_target = LogQuery {
        target: Some("hook".into()),
        outcome: Some("success".into()),
        ..LogQuery::default()
    };
    assert_eq!(store.log_query(&by_target).await.unwrap().len(), 1);
    // What a change caused: the action spanning its change event.
    let caused = LogQuery {
        subject: Some(Subject {
            ids: vec!["u1".into()],
            ..Subject::default()
        }),
        kind: Some("delivery.action".into()),
        change_seq: Some(c.event_seq),
        ..LogQuery::default()
    };
    assert_eq!(store.log_query(&caused).await.unwrap().len(), 1);
    // Time range and the cursor.
    let since = LogQuery {
        since: Some(t0() + chrono::Duration::seconds(30)),
        ..LogQuery::default()
    };
    assert_eq!(
        store.log_query(&since).await.unwrap().len(),
        1,
        "the deletion"
    );
    let page = LogQuery {
        before_id: Some(all[0].id),
        limit: 1,
        ..LogQuery::default()
    };
    let page = store.log_query(&page).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, all[1].id);
    let one = store.log_entry(created.id).await.unwrap().unwrap();
    assert_eq!(one.body, created.body);
    assert!(store.log_entry(999_999).await.unwrap().is_none());

    // Pruning takes what a checkpoint carries the chain past, in batches: here the
    // three records up to the seal of seq 2 (ann, bob, bob's deletion), not the
    // action after it.
    store
        .audit_head(&crate::audit::LogId::new("conformance").unwrap())
        .await
        .unwrap();
    assert_eq!(store.chain_pending(100).await.unwrap().linked, 4);
    let (_, cp) = seal_and_checkpoint(store.as_ref(), 2).await;
    assert_eq!(store.prune_chained(cp.next, 2).await.unwrap(), 2);
    assert_eq!(store.prune_chained(cp.next, 2).await.unwrap(), 1);
    assert_eq!(store.prune_chained(cp.next, 2).await.unwrap(), 0);
    assert_eq!(
        store.log_query(&LogQuery::default()).await.unwrap().len(),
        1
    );
    store.close().await;
}

/// The key the audit suites sign with.
fn audit_key() -> crate::audit::SigningKey {
    crate::audit::SigningKey::ed25519_from_seed(&[9; 32]).unwrap()
}

/// Seals the chained record `seq` (its hash read back from the store) and stores a
/// checkpoint after it, as the pruner does.
async fn seal_and_checkpoint(
    store: &dyn Store,
    seq: u64,
) -> (crate::store::StoredSeal, crate::store::StoredCheckpoint) {
    use crate::audit::{Checkpoint, Head, Seal};
    let key = audit_key();
    let head = store
        .audit_head(&crate::audit::LogId::new("unused").unwrap())
        .await
        .unwrap();
    let line = store.chained_lines(seq, 1).await.unwrap().remove(0);
    assert_eq!(line.seq, seq);
    let h = Head {
        seq,
        hash: crate::audit::Digest::of(line.line.as_bytes()),
    };
    let seal = crate::store::StoredSeal::of(&Seal::sign(&key, &head.log, h, t0()).unwrap());
    store.add_seal(&seal).await.unwrap();
    let cp =
        crate::store::StoredCheckpoint::of(&Checkpoint::sign(&key, &head.log, h, t0()).unwrap());
    assert!(store.add_checkpoint(&cp).await.unwrap());
    (seal, cp)
}

/// Appends a standalone record, unchained.
async fn log_row(store: &dyn Store, n: i64) -> i64 {
    store
        .log_append(crate::provlog::LogRow {
            at: t0() + chrono::Duration::seconds(n),
            kind: crate::provlog::CHANGE,
            body: format!(r#"{{"n": {n}, "op": "create"}}"#),
            provider: Some("entra".into()),
            resource_kind: None,
            resource_id: Some(format!("u{n}")),
            user_name_key: None,
            display_name: None,
            target: None,
            action: "create".into(),
            outcome: "success".into(),
            change_seq: None,
            change_seq_last: None,
            request_id: None,
        })
        .await
        .unwrap()
}

/// An export of what the store holds from seq `from` on, as `audit export` writes it.
async fn export(
    store: &dyn Store,
    log: &crate::audit::LogId,
    cp: Option<&crate::store::StoredCheckpoint>,
    from: u64,
) -> Vec<u8> {
    use crate::audit::{Exporter, Header, Start};
    let key = audit_key();
    let start = if cp.is_some() {
        Start::Checkpoint
    } else {
        Start::Genesis
    };
    let mut x = Exporter::new(
        Vec::new(),
        &Header {
            log: log.clone(),
            alg: key.algorithm(),
            key: key.id().clone(),
            start,
        },
    )
    .unwrap();
    if let Some(cp) = cp {
        x.stored_checkpoint(cp.line.as_bytes()).unwrap();
    }
    let seals = store.seals_between(from, u64::MAX >> 1).await.unwrap();
    for l in store.chained_lines(from, 100).await.unwrap() {
        x.stored_record(l.seq, l.line.as_bytes()).unwrap();
        for s in seals.iter().filter(|s| s.seq == l.seq) {
            x.stored_seal(s.line.as_bytes()).unwrap();
        }
    }
    x.finish().unwrap()
}

pub async fn the_audit_chain_links_in_order_seals_exports_and_prunes(o: &dyn Opener) {
    use crate::audit::{LogId, verify};
    let store = o.open().await;
    // Nothing is chained before the log is named; the first name sticks.
    assert_eq!(
        store.chain_pending(10).await.unwrap(),
        crate::store::Chained::default()
    );
    let head = store
        .audit_head(&LogId::new("first").unwrap())
        .await
        .unwrap();
    assert_eq!((head.log.as_str(), head.next_seq), ("first", 0));
    let again = store
        .audit_head(&LogId::new("second").unwrap())
        .await
        .unwrap();
    assert_eq!(again, head);

    for n in 0..5 {
        log_row(store.as_ref(), n).await;
    }
    // Batches continue one chain, in id order.
    let a = store.chain_pending(3).await.unwrap();
    assert_eq!((a.linked, a.head.map(|h| h.seq)), (3, Some(2)));
    let b = store.chain_pending(3).await.unwrap();
    assert_eq!((b.linked, b.head.map(|h| h.seq)), (2, Some(4)));
    assert_eq!(store.chain_pending(3).await.unwrap().linked, 0);
    let stored = store.audit_head(&LogId::new("x").unwrap()).await.unwrap();
    assert_eq!(stored.next_seq, 5);
    assert_eq!(Some(stored.prev), b.head.map(|h| h.hash));
    let entries = store
        .log_query(&crate::provlog::LogQuery::default())
        .await
        .unwrap();
    let mut seqs: Vec<(i64, Option<i64>)> = entries.iter().map(|e| (e.id, e.seq)).collect();
    seqs.sort();
    assert_eq!(
        seqs.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [Some(0), Some(1), Some(2), Some(3), Some(4)]
    );

    // Seals: latest, before a time, and by range; a second seal of a seq is refused.
    let (seal, cp) = seal_and_checkpoint(store.as_ref(), 1).await;
    assert!(!store.add_seal(&seal).await.unwrap());
    assert!(!store.add_checkpoint(&cp).await.unwrap());
    assert_eq!(store.latest_seal().await.unwrap(), Some(seal.clone()));
    assert_eq!(store.seal_before(t0()).await.unwrap(), None);
    assert_eq!(
        store
            .seal_before(t0() + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        Some(seal.clone())
    );
    assert_eq!(store.seals_between(0, 4).await.unwrap(), vec![seal.clone()]);
    assert!(store.seals_between(2, 4).await.unwrap().is_empty());
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(cp.clone()));
    assert_eq!(
        store
            .first_seq_since(t0() + chrono::Duration::seconds(3))
            .await
            .unwrap(),
        Some(3)
    );
    assert_eq!(
        store
            .last_seq_before(t0() + chrono::Duration::seconds(3))
            .await
            .unwrap(),
        Some(2)
    );

    // What the store holds exports and verifies, the seal after the record it seals.
    let key = audit_key();
    let report = verify(
        &export(store.as_ref(), &head.log, None, 0).await[..],
        key.verifying_key(),
    )
    .unwrap();
    assert_eq!((report.records, report.sealed_through), (5, Some(1)));

    // New rows after pruning carry on the same chain; pruning keeps what is after the
    // checkpoint and everything unchained.
    log_row(store.as_ref(), 9).await;
    assert_eq!(store.prune_chained(cp.next, 100).await.unwrap(), 2);
    assert_eq!(store.prune_chained(cp.next, 100).await.unwrap(), 0);
    assert!(
        store.seals_between(0, 10).await.unwrap().is_empty(),
        "the seal before the cut goes"
    );
    assert_eq!(
        store.chain_pending(10).await.unwrap().head.map(|h| h.seq),
        Some(5)
    );
    let report = verify(
        &export(store.as_ref(), &head.log, Some(&cp), 2).await[..],
        key.verifying_key(),
    )
    .unwrap();
    assert_eq!((report.first_seq, report.last_seq), (Some(2), Some(5)));
    assert_eq!(
        store
            .log_query(&crate::provlog::LogQuery::default())
            .await
            .unwrap()
            .len(),
        4
    );
    store.close().await;
}

/// Two stores on one database chain concurrently: every row gets exactly one seq,
/// the seqs have no gap and no fork (each row's prev is the hash of the one before).
pub async fn concurrent_chainers_never_fork_the_chain(o: &dyn Opener) {
    let a = o.open().await;
    let b = o.open().await;
    a.audit_head(&crate::audit::LogId::new("shared").unwrap())
        .await
        .unwrap();
    let rows = 120;
    let writer = {
        let a = Arc::clone(&a);
        tokio::spawn(async move {
            for n in 0..rows {
                log_row(a.as_ref(), n).await;
            }
        })
    };
    let chainer = |s: Arc<dyn Store>| {
        tokio::spawn(async move {
            for _ in 0..200 {
                // A refusal (the head moved) is the other chainer winning a round.
                let _ = s.chain_pending(7).await;
                tokio::task::yield_now().await;
            }
        })
    };
    let (x, y) = (chainer(Arc::clone(&a)), chainer(Arc::clone(&b)));
    writer.await.unwrap();
    x.await.unwrap();
    y.await.unwrap();
    while a.chain_pending(50).await.unwrap().linked > 0 {}
    let lines = a.chained_lines(0, 1000).await.unwrap();
    assert_eq!(lines.len(), rows as usize);
    let mut prev = crate::audit::LogId::new("shared").unwrap().genesis();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l.seq, i as u64);
        let v: Value = serde_json::from_str(&l.line).unwrap();
        assert_eq!(v["prev"], prev.to_hex(), "seq {i}");
        prev = crate::audit::Digest::of(l.line.as_bytes());
    }
    a.close().await;
    b.close().await;
}

fn console_row(key: &str, token: Option<&str>, expires: DateTime<Utc>) -> ConsoleSessionRow {
    ConsoleSessionRow {
        key: key.into(),
        role: "admin".into(),
        token: token.map(str::to_owned),
        who: token.unwrap_or("Ada Lovelace (oidc:ada)").into(),
        csrf: format!("csrf-{key}"),
        expires,
        notice: None,
    }
}

/// Console sessions outlive a restart, are shared by two stores open on the same
/// database (two instances), end everywhere when signed out on one, hand their
/// notice out once, and expired rows are deleted.
pub async fn console_sessions_are_shared_and_end_everywhere(o: &dyn Opener) {
    let hour = chrono::Duration::hours(1);
    let store = o.open().await;
    store
        .open_console_session(console_row("k1", None, t0() + hour), t0())
        .await
        .unwrap();
    store
        .open_console_session(console_row("k2", Some("tok"), t0() + hour), t0())
        .await
        .unwrap();
    store
        .open_console_session(console_row("k3", Some("tok"), t0() + hour), t0())
        .await
        .unwrap();
    store.close().await;

    // A restart signs nobody out.
    let a = o.open().await;
    let found = a.console_session("k1", t0()).await.unwrap().unwrap();
    assert_eq!(found, console_row("k1", None, t0() + hour));
    assert!(!format!("{found:?}").contains("csrf-k1"));
    assert!(a.console_session("nope", t0()).await.unwrap().is_none());

    // A second instance on the same database sees the same sessions.
    let b = o.open().await;
    assert!(b.console_session("k1", t0()).await.unwrap().is_some());
    a.note_console_session("k1", "Retried").await.unwrap();
    assert_eq!(
        b.console_session("k1", t0())
            .await
            .unwrap()
            .unwrap()
            .notice
            .as_deref(),
        Some("Retried")
    );
    assert_eq!(
        a.console_session("k1", t0()).await.unwrap().unwrap().notice,
        None
    );
    // Signed out on one, gone on both.
    assert!(b.close_console_session("k1").await.unwrap());
    assert!(!b.close_console_session("k1").await.unwrap());
    assert!(a.console_session("k1", t0()).await.unwrap().is_none());
    // A revoked token ends every session opened with it.
    assert_eq!(a.close_console_sessions_of_token("tok").await.unwrap(), 2);
    assert!(b.console_session("k2", t0()).await.unwrap().is_none());

    // Expiry on the caller's clock: an expired session is not found, and its row
    // goes; opening another sweeps the rest.
    a.open_console_session(console_row("k4", None, t0() + hour), t0())
        .await
        .unwrap();
    a.open_console_session(console_row("k5", None, t0() + hour), t0())
        .await
        .unwrap();
    assert!(
        b.console_session("k4", t0() + hour)
            .await
            .unwrap()
            .is_none()
    );
    assert!(a.console_session("k4", t0()).await.unwrap().is_none());
    b.open_console_session(console_row("k6", None, t0() + hour * 3), t0() + hour * 2)
        .await
        .unwrap();
    assert!(a.console_session("k5", t0()).await.unwrap().is_none());
    assert!(
        a.console_session("k6", t0() + hour * 2)
            .await
            .unwrap()
            .is_some()
    );
    a.close().await;
    b.close().await;
}

macro_rules! conformance {
    ($($suite:ident),* $(,)?) => {
        mod sqlite_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    super::$suite(&super::SqliteOpener::new()).await;
                }
            )*
        }
        mod postgres_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    let Some(o) = super::PgOpener::new().await else { return };
                    super::$suite(&o).await;
                }
            )*
        }
    };
}

conformance!(
    create_read_update_delete_with_events,
    member_changes_are_recorded_as_deltas,
    reopen_keeps_data_and_tokens,
    member_only_update_keeps_a_concurrently_changed_document,
    delivery_queue_fans_out_coalesces_leases_and_dead_letters,
    change_events_are_pruned_only_when_no_delivery_needs_them,
    vault_secrets_and_rotation,
    guard_resync_and_dead_letter_drop,
    scheduled_runs_are_claimed_once_per_tick,
    concurrent_changes_keep_each_resource_in_order,
    concurrent_claims_lease_each_row_once,
    racing_creates_of_one_user_name,
    member_order_and_idempotent_adds,
    member_pages_follow_positions_and_stop_at_a_change,
    waits_are_released_once_into_the_queue,
    a_resync_requested_mid_delivery_is_not_lost,
    one_resource_is_claimed_on_demand_due_or_not,
    orphans_are_deleted_users_with_a_target_id_and_their_deletion_time,
    ownership_and_guard_holds,
    an_attempted_span_is_retried_unchanged,
    look_alike_user_names_after_a_key_change,
    members_must_name_resources_of_the_provider,
    a_member_deleted_concurrently_is_not_left_listed,
    the_provisioning_log_is_written_with_what_it_records,
    the_audit_chain_links_in_order_seals_exports_and_prunes,
    concurrent_chainers_never_fork_the_chain,
    console_sessions_are_shared_and_end_everywhere,
);

//! SQLite-only behaviour (files on disk); what both engines share is in
//! `store::conformance`.

use super::*;

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
async fn reopening_reports_the_version_it_migrated_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), 0);
    store.close().await;
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), SCHEMA_VERSION);
    store.close().await;
}

/// Requests whose clients hang up are dropped mid-read; the blocking read still holds a
/// connection until it ends. Its permit must be held as long, or other readers are let
/// in to an empty pool ("read pool empty": 500s and failed deliveries under load).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_dropped_mid_read_leave_the_pool_whole() {
    use crate::store::{Mutation, MutationKind};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
    let mut writes = Vec::new();
    for i in 0..3000 {
        let store = Arc::clone(&store);
        writes.push(tokio::spawn(async move {
            store
                .apply(Mutation {
                    provider: "entra".into(),
                    kind: ResourceKind::User,
                    id: format!("u{i}"),
                    expected_version: None,
                    at: chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap(),
                    request_id: None,
                    check_members: false,
                    log: None,
                    change: MutationKind::Create {
                        doc: serde_json::json!({"userName": format!("user{i}@firm.example"), "title": "x".repeat(200)}),
                        members: vec![],
                    },
                })
                .await
                .unwrap();
        }));
    }
    for w in writes {
        w.await.unwrap();
    }
    for _ in 0..30 {
        // Whole-table scans, each dropped as soon as it has started.
        for _ in 0..READERS * 2 {
            let s = Arc::clone(&store);
            let scan = async move { s.scan("entra", ResourceKind::User, 0, 0, 3000).await };
            let _ = tokio::time::timeout(std::time::Duration::ZERO, scan).await;
        }
        // Everyone else must still be served.
        let mut reads = Vec::new();
        for i in 0..READERS * 2 {
            let s = Arc::clone(&store);
            reads.push(tokio::spawn(async move {
                s.get("entra", ResourceKind::User, &format!("u{i}")).await
            }));
        }
        for r in reads {
            let got = r.await.unwrap();
            assert!(got.is_ok(), "a reader was refused: {:?}", got.err());
        }
    }
}

/// Change events written before the detail was typed read back as they were: the
/// stored JSON shape is the contract, old rows included.
#[tokio::test]
async fn change_events_stored_by_earlier_versions_read_back() {
    use crate::store::{ChangeLog, EventDetail, Lifecycle};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    SqliteStore::open(&path).unwrap().close().await;
    let at = fmt_time(chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap());
    {
        let c = Connection::open(&path).unwrap();
        let old = [
            ("create", r#"{"added":["a","b"]}"#),
            ("update", r#"{"added":["c"],"removed":["a"]}"#),
            ("update", r#"{"replaced":true}"#),
            (
                "delete",
                r#"{"userName":null,"externalId":"x","displayName":"Board","removed":["b","c"]}"#,
            ),
        ];
        for (version, (op, detail)) in old.iter().enumerate() {
            c.execute(
                "INSERT INTO change_events (provider, kind, resource_id, op, version, at, detail)
                 VALUES ('entra', 'Group', 'g', ?1, ?2, ?3, ?4)",
                params![op, version as i64 + 1, at, detail],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let events = store
        .resource_events("entra", ResourceKind::Group, "g", 0, i64::MAX)
        .await
        .unwrap();
    let details: Vec<EventDetail> = events.into_iter().map(|e| e.detail).collect();
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        details,
        [
            EventDetail::Created {
                added: ids(&["a", "b"])
            },
            EventDetail::Updated {
                added: ids(&["c"]),
                removed: ids(&["a"])
            },
            EventDetail::Replaced,
            EventDetail::Deleted {
                user_name: None,
                external_id: Some("x".into()),
                display_name: Some("Board".into()),
                removed: Some(ids(&["b", "c"])),
            },
        ]
    );
    assert_eq!(details[3].name(), Some("Board"));
    store.close().await;
}

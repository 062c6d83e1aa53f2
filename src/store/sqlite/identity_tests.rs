//! The store's part in identity rules: users waiting for their manager, and users the
//! bridge deleted that a target still holds.

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::store::MutationKind;

fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0)
        .single()
        .unwrap_or_default()
}

fn user(id: &str, change: MutationKind, h: u32) -> Mutation {
    Mutation {
        provider: "entra".into(),
        kind: ResourceKind::User,
        id: id.into(),
        expected_version: None,
        at: at(h),
        request_id: None,
        change,
    }
}

#[tokio::test]
async fn waits_are_released_once_into_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
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
        store.apply(user(id, create, 1)).await.unwrap();
    }
    // Deliver both, so the queue is empty before the waits are released.
    let claimed = store
        .claim_deliveries("app", "me", at(2), at(3), 10)
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
                at(2),
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
            .release_waiting("app", "entra", "nobody", at(4))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .release_waiting("app", "entra", "grace", at(4))
            .await
            .unwrap(),
        2
    );
    let queued = store
        .claim_deliveries("app", "me", at(4), at(5), 10)
        .await
        .unwrap();
    let mut ids: Vec<&str> = queued.iter().map(|d| d.resource_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["ada", "bob"]);
    assert!(queued.iter().all(|d| d.resync));
    assert_eq!(
        store
            .release_waiting("app", "entra", "grace", at(6))
            .await
            .unwrap(),
        0,
        "released once"
    );
    assert_eq!(
        store
            .release_waiting("other", "entra", "grace", at(6))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn orphans_are_deleted_users_with_a_target_id_and_their_deletion_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    for id in ["gone", "kept", "never-sent"] {
        let create = MutationKind::Create {
            doc: json!({"userName": id}),
            members: vec![],
        };
        store.apply(user(id, create, 1)).await.unwrap();
    }
    for id in ["gone", "kept"] {
        store
            .set_target_id(
                "app",
                "entra",
                ResourceKind::User,
                id,
                Some(format!("t-{id}")),
            )
            .await
            .unwrap();
    }
    for id in ["gone", "never-sent"] {
        store
            .apply(user(id, MutationKind::Delete, 7))
            .await
            .unwrap();
    }
    let orphans = store.orphaned_users("app").await.unwrap();
    assert_eq!(
        orphans,
        vec![Orphan {
            provider: "entra".into(),
            id: "gone".into(),
            target_id: "t-gone".into(),
            deleted_at: Some(at(7)),
        }]
    );
    assert!(store.orphaned_users("other").await.unwrap().is_empty());
    // Re-created under the same id: no longer an orphan.
    let again = MutationKind::Create {
        doc: json!({"userName": "gone"}),
        members: vec![],
    };
    store.apply(user("gone", again, 8)).await.unwrap();
    assert!(store.orphaned_users("app").await.unwrap().is_empty());
}

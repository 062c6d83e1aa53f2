//! What the provisioning-log and console benches seed: users (through the store's
//! own write path) and a million provisioning-log records (raw inserts: filling them
//! through the daemon's write path would measure the writer, not the reads).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scim_bridge::provlog::{
    ActionDraft, ActionOutcome, AttrChange, CallRecord, ChangeDraft, ChangeOp, LogRow,
    MembersChanged, Origin, ResourceNames, StepRecord,
};
use scim_bridge::scim::{MemberRef, ResourceKind};
use scim_bridge::store::{Mutation, MutationKind, Store};
use serde_json::json;

pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub fn user_name(i: usize) -> String {
    format!("person{i:06}@firm.example")
}

pub fn user_id(i: usize) -> String {
    format!("u-{i:06}")
}

pub fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default()
}

/// Record `n` of the log: every third a change received, the rest actions at one
/// of three targets, spread over the users and a year.
pub fn row(n: usize, users: usize) -> LogRow {
    let i = (n * 7919) % users;
    let names = ResourceNames::of(
        ResourceKind::User,
        &user_id(i),
        &json!({"userName": user_name(i), "displayName": format!("Person {i}"),
                "emails": [{"value": format!("p{i}@mail.example")}]}),
    );
    let at = start() + chrono::Duration::seconds(i64::try_from(n).unwrap_or(0) * 30);
    if n.is_multiple_of(3) {
        ChangeDraft {
            origin: Origin {
                provider: "entra".into(),
                request_id: Some(format!("req-{n}")),
                client: Some("10.0.0.7".into()),
                token: Some("tok1".into()),
            },
            op: ChangeOp::Update,
            resource: names,
            changes: vec![AttrChange {
                path: "title".into(),
                old: Some(json!("Associate")),
                new: Some(json!("Partner")),
                redacted: false,
            }],
            status: 200,
        }
        .row(
            at,
            i64::try_from(n).unwrap_or(0),
            2,
            MembersChanged::default(),
        )
    } else {
        let targets = ["imanage", "app", "hooks"];
        ActionDraft {
            target: targets[n % 3].into(),
            provider: "entra".into(),
            resource: names,
            action: "update".into(),
            outcome: if n.is_multiple_of(97) {
                ActionOutcome::Dead
            } else {
                ActionOutcome::Success
            },
            steps: vec![StepRecord::new("scope", "in", None)],
            calls: vec![CallRecord {
                method: "PATCH".into(),
                path: format!("/api/v2/users/{}", user_name(i)),
                status: Some(200),
                ms: 12,
            }],
            change_seqs: (
                i64::try_from(n).unwrap_or(0) - 1,
                i64::try_from(n).unwrap_or(0),
            ),
            attempt: 1,
            duration_ms: 14,
            error: None,
            next_at: None,
        }
        .row(at)
    }
}

pub fn user(i: usize) -> Mutation {
    create(
        ResourceKind::User,
        user_id(i),
        json!({"userName": user_name(i), "displayName": format!("Person {i}"),
               "emails": [{"value": format!("p{i}@mail.example"), "type": "work"}]}),
        vec![],
    )
}

/// entra's creation of `id`, at [`start`].
pub fn create(
    kind: ResourceKind,
    id: String,
    doc: serde_json::Value,
    members: Vec<MemberRef>,
) -> Mutation {
    Mutation {
        provider: "entra".into(),
        kind,
        id,
        expected_version: None,
        at: start(),
        request_id: None,
        check_members: false,
        log: None,
        change: MutationKind::Create { doc, members },
    }
}

pub async fn add_users(store: &Arc<dyn Store>, users: usize) {
    let mut tasks = Vec::new();
    for w in 0..16 {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < users {
                store.apply(user(i)).await.expect("user");
                i += 16;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

/// Percentiles of `samples` in milliseconds.
pub fn pct(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx].as_secs_f64() * 1000.0
}

/// Writes `records` log records for `users` into the SQLite database at `path`, in
/// one transaction, then ANALYZE.
pub fn fill_sqlite(path: &Path, records: usize, users: usize) {
    let mut c = rusqlite::Connection::open(path).expect("raw connection");
    let tx = c.transaction().expect("tx");
    {
        let mut st = tx
            .prepare(
                "INSERT INTO audit_log (at, kind, body, provider, resource_kind, resource_id, user_name_key, display_name, target, action, outcome, change_seq, change_seq_last, request_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .expect("prepare");
        for n in 0..records {
            let r = row(n, users);
            st.execute(rusqlite::params![
                r.at.timestamp_micros(),
                r.kind,
                r.body,
                r.provider,
                r.resource_kind,
                r.resource_id,
                r.user_name_key,
                r.display_name,
                r.target,
                r.action,
                r.outcome,
                r.change_seq,
                r.change_seq_last,
                r.request_id
            ])
            .expect("insert");
        }
    }
    tx.commit().expect("commit");
    c.execute_batch("ANALYZE").expect("analyze");
}

/// Writes `records` log records for `users` into the PostgreSQL database at `url`, in
/// batches of 10,000, then ANALYZE.
pub async fn fill_postgres(url: &str, records: usize, users: usize) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    const BATCH: usize = 10_000;
    let mut n = 0;
    while n < records {
        let rows: Vec<LogRow> = (n..(n + BATCH).min(records))
            .map(|k| row(k, users))
            .collect();
        let col = |f: &dyn Fn(&LogRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
        let ats: Vec<i64> = rows.iter().map(|r| r.at.timestamp_micros()).collect();
        let seqs: Vec<Option<i64>> = rows.iter().map(|r| r.change_seq).collect();
        let lasts: Vec<Option<i64>> = rows.iter().map(|r| r.change_seq_last).collect();
        client
            .execute(
                "INSERT INTO audit_log (at, kind, body, provider, resource_kind, resource_id, user_name_key, display_name, target, action, outcome, change_seq, change_seq_last, request_id)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::text[])",
                &[
                    &ats,
                    &col(&|r| Some(r.kind.to_owned())),
                    &col(&|r| Some(r.body.clone())),
                    &col(&|r| r.provider.clone()),
                    &col(&|r| r.resource_kind.clone()),
                    &col(&|r| r.resource_id.clone()),
                    &col(&|r| r.user_name_key.clone()),
                    &col(&|r| r.display_name.clone()),
                    &col(&|r| r.target.clone()),
                    &col(&|r| Some(r.action.clone())),
                    &col(&|r| Some(r.outcome.clone())),
                    &seqs,
                    &lasts,
                    &col(&|r| r.request_id.clone()),
                ],
            )
            .await
            .expect("insert batch");
        n += BATCH;
    }
    client
        .batch_execute("ANALYZE audit_log")
        .await
        .expect("analyze");
    drop(client);
    let _ = conn.await;
}

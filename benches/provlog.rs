//! Provisioning-log query benchmark: one person's records among 1,000,000, answered
//! through the same path as `scim-bridge log --person` and `GET /api/v1/log`
//! (resolve the name in the directory, then the indexed query), on SQLite and, when
//! installed, PostgreSQL. Target (#20): under 50 ms. Run: `cargo bench --bench provlog`.
//! Scale with PROVLOG_BENCH_RECORDS (default 1,000,000) and PROVLOG_BENCH_USERS
//! (default 10,000).

// A bench's knobs are environment variables (see the README); the daemon's own
// environment reads go through config::secret::Environment (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use scim_bridge::directory::log::{Filters, build};
use scim_bridge::provlog::{
    ActionDraft, ActionOutcome, AttrChange, CallRecord, ChangeDraft, ChangeOp, LogRow,
    MembersChanged, Origin, ResourceNames, StepRecord,
};
use scim_bridge::scim::ResourceKind;
use scim_bridge::store::postgres::PgStore;
use scim_bridge::store::postgres::testkit::{ClusterOptions, TestCluster};
use scim_bridge::store::sqlite::SqliteStore;
use scim_bridge::store::{Mutation, MutationKind, Store};
use serde_json::json;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn user_name(i: usize) -> String {
    format!("person{i:06}@firm.example")
}

fn user_id(i: usize) -> String {
    format!("u-{i:06}")
}

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default()
}

/// Record `n` of the log: every third a change received, the rest actions at one
/// of three targets, spread over the users and a year.
fn row(n: usize, users: usize) -> LogRow {
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

fn user(i: usize) -> Mutation {
    Mutation {
        provider: "entra".into(),
        kind: ResourceKind::User,
        id: user_id(i),
        expected_version: None,
        at: start(),
        request_id: None,
        check_members: false,
        log: None,
        change: MutationKind::Create {
            doc: json!({"userName": user_name(i), "displayName": format!("Person {i}"),
                        "emails": [{"value": format!("p{i}@mail.example"), "type": "work"}]}),
            members: vec![],
        },
    }
}

async fn add_users(store: &Arc<dyn Store>, users: usize) {
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
fn pct(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx].as_secs_f64() * 1000.0
}

/// Times `rounds` queries made by `filters(round)`; prints p50/p99 and the records
/// each answered.
async fn time_queries(
    engine: &str,
    what: &str,
    store: &dyn Store,
    rounds: usize,
    filters: impl Fn(usize) -> Filters,
) {
    let providers = vec!["entra".to_owned()];
    let mut samples = Vec::with_capacity(rounds);
    let mut found = 0usize;
    for r in 0..rounds {
        let f = filters(r);
        let t = Instant::now();
        let q = build(store, &providers, &f, start()).await.expect("query");
        let rows = store.log_query(&q).await.expect("rows");
        samples.push(t.elapsed());
        found += rows.len();
    }
    println!(
        "{engine:<10} {what:<44} p50 {:>7.2} ms  p99 {:>7.2} ms  ({:.0} records/answer)",
        pct(&mut samples, 0.5),
        pct(&mut samples, 0.99),
        found as f64 / rounds as f64
    );
}

async fn queries(engine: &str, store: &dyn Store, users: usize) {
    let person = |by: &'static str| {
        move |r: usize| {
            let i = (r * 104_729) % users;
            let who = match by {
                "userName" => user_name(i).to_uppercase(),
                "email" => format!("p{i}@mail.example"),
                _ => user_id(i),
            };
            Filters {
                person: Some(who),
                limit: 50,
                ..Filters::default()
            }
        }
    };
    time_queries(
        engine,
        "person by userName (newest 50)",
        store,
        300,
        person("userName"),
    )
    .await;
    time_queries(
        engine,
        "person by e-mail (newest 50)",
        store,
        300,
        person("email"),
    )
    .await;
    time_queries(
        engine,
        "person by id, every record (limit 1000)",
        store,
        100,
        |r| Filters {
            person: Some(user_id((r * 7) % users)),
            limit: 1000,
            ..Filters::default()
        },
    )
    .await;
    time_queries(
        engine,
        "target + outcome=dead (newest 50)",
        store,
        100,
        |_| Filters {
            target: Some("app".into()),
            outcome: Some("dead".into()),
            limit: 50,
            ..Filters::default()
        },
    )
    .await;
    time_queries(engine, "everything, newest 100", store, 100, |_| Filters {
        limit: 100,
        ..Filters::default()
    })
    .await;
}

async fn sqlite(records: usize, users: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).expect("open"));
    add_users(&store, users).await;
    let t = Instant::now();
    {
        // Raw inserts in one transaction: filling a million rows through the daemon's
        // write path would measure the writer, not the query.
        let mut c = rusqlite::Connection::open(&path).expect("raw connection");
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
    println!(
        "sqlite     filled {records} records for {users} users in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    queries("sqlite", store.as_ref(), users).await;
    store.close().await;
}

async fn postgres(records: usize, users: usize) {
    let cluster = match TestCluster::start_with(ClusterOptions {
        fsync: true,
        ..ClusterOptions::default()
    }) {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            println!("postgres   skipped: {e}");
            return;
        }
    };
    let url = cluster.create_database("provlog").await.expect("database");
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&url, 8).await.expect("open"));
    add_users(&store, users).await;
    let t = Instant::now();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
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
    println!(
        "postgres   filled {records} records for {users} users in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    queries("postgres", store.as_ref(), users).await;
    store.close().await;
}

fn main() {
    let records = env_num("PROVLOG_BENCH_RECORDS", 1_000_000);
    let users = env_num("PROVLOG_BENCH_USERS", 10_000).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("provisioning-log queries over {records} records, {users} users (target: < 50 ms)");
    rt.block_on(sqlite(records, users));
    rt.block_on(postgres(records, users));
    println!(
        "command: PROVLOG_BENCH_RECORDS={records} PROVLOG_BENCH_USERS={users} cargo bench --bench provlog"
    );
}

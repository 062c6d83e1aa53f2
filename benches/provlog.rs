//! Provisioning-log query benchmark: one person's records among 1,000,000, answered
//! through the same path as `scim-bridge log --person` and `GET /api/v1/log`
//! (resolve the name in the directory, then the indexed query), on SQLite and, when
//! installed, PostgreSQL. Target (#20): under 50 ms. Run: `cargo bench --bench provlog`.
//! Scale with PROVLOG_BENCH_RECORDS (default 1,000,000) and PROVLOG_BENCH_USERS
//! (default 10,000).

// A bench's knobs are environment variables (see the README); the daemon's own
// environment reads go through config::secret::Environment (clippy.toml).
#![allow(clippy::disallowed_methods)]

#[path = "common/provlog_seed.rs"]
mod seed;

use std::sync::Arc;
use std::time::Instant;

use scim_bridge::directory::log::{Filters, build};
use scim_bridge::store::Store;
use scim_bridge::store::postgres::PgStore;
use scim_bridge::store::postgres::testkit::{ClusterOptions, TestCluster};
use scim_bridge::store::sqlite::SqliteStore;
use seed::{add_users, env_num, pct, start, user_id, user_name};

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
    seed::fill_sqlite(&path, records, users);
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
    seed::fill_postgres(&url, records, users).await;
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

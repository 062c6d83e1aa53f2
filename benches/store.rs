//! Store benchmark: durable writes per second with group commit, against the raw
//! fsync rate of the same disk. Run: `cargo bench --bench store`.
//! Scale with STORE_BENCH_SECONDS (default 3). The second table compares SQLite with
//! PostgreSQL (a throwaway local cluster with fsync on) through one and two store
//! instances on one database, when PostgreSQL is installed; the third what the SCIM
//! front's member check costs on a 15,000-member change, per engine.

// A bench's knobs are environment variables (see the README); the daemon's own
// environment reads go through config::secret::Environment (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scim_bridge::scim::{MemberRef, ResourceKind};
use scim_bridge::store::postgres::PgStore;
use scim_bridge::store::postgres::testkit::{ClusterOptions, TestCluster};
use scim_bridge::store::sqlite::SqliteStore;
use scim_bridge::store::{
    Lifecycle, Lookup, MemberChange, Mutation, MutationKind, Resources, Store,
};
use serde_json::json;

fn seconds() -> Duration {
    let s = std::env::var("STORE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(s)
}

/// What one fsync costs here: the ceiling for one-transaction-per-write designs.
fn fsync_rate(dir: &std::path::Path, for_: Duration) -> f64 {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let block = [7u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < for_ {
        f.write_all(&block).expect("write");
        f.sync_data().expect("fdatasync");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn create(n: u64, worker: u64) -> Mutation {
    let id = format!("{worker:04}-{n:08}");
    Mutation {
        provider: "bench".into(),
        kind: ResourceKind::User,
        id: id.clone(),
        expected_version: None,
        at: scim_bridge::clock::Clock::now(&scim_bridge::clock::SystemClock),
        request_id: None,
        check_members: false,
        log: None,
        change: MutationKind::Create {
            doc: json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("user-{id}@bench.example"),
                "emails": [{"value": format!("user-{id}@bench.example"), "type": "work"}],
                "active": true,
            }),
            members: vec![],
        },
    }
}

async fn run(store: Arc<SqliteStore>, writers: u64, for_: Duration, tag: u64) -> (f64, u64, u64) {
    let before = store.status().await.expect("status");
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while start.elapsed() < for_ {
                store
                    .apply(create(i, tag * 10_000 + w))
                    .await
                    .expect("apply");
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let secs = start.elapsed().as_secs_f64();
    let after = store.status().await.expect("status");
    let n = done.load(Ordering::Relaxed);
    (
        n as f64 / secs,
        after.write_batches - before.write_batches,
        after.write_jobs - before.write_jobs,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "target".into()))
        .expect("tempdir");
    let for_ = seconds();
    println!(
        "scim-bridge store benchmark (SQLite, WAL, synchronous=FULL: every acknowledged write fsync'd)"
    );
    println!(
        "command: cargo bench --bench store   (STORE_BENCH_SECONDS={})",
        for_.as_secs_f64()
    );
    println!(
        "machine: {} cores; data in {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.path().display()
    );
    let fsyncs = fsync_rate(dir.path(), for_);
    println!(
        "\nraw fsync rate (4 KiB write + fdatasync): {fsyncs:>9.0} /s  ({:.2} ms each)",
        1000.0 / fsyncs
    );
    let store = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("open store"));
    println!(
        "\n{:>8} {:>14} {:>12} {:>14} {:>12}",
        "writers", "writes/s", "commits", "writes/commit", "x fsync"
    );
    for (tag, writers) in [1u64, 8, 32, 128].into_iter().enumerate() {
        let (rate, batches, jobs) = rt.block_on(run(Arc::clone(&store), writers, for_, tag as u64));
        println!(
            "{writers:>8} {rate:>14.0} {batches:>12} {:>14.1} {:>12.1}",
            jobs as f64 / batches.max(1) as f64,
            rate / fsyncs
        );
    }
    rt.block_on(store.close());
    rt.block_on(side_by_side(for_));
}

/// Writes spread over `stores` (instances on one database) by `writers` tasks.
async fn writes(stores: &[Arc<dyn Store>], writers: u64, for_: Duration, tag: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = Arc::clone(&stores[w as usize % stores.len()]);
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while start.elapsed() < for_ {
                store
                    .apply(create(i, tag * 10_000 + w))
                    .await
                    .expect("apply");
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// userName lookups (the index Entra's `filter=userName eq` uses) by `readers` tasks.
async fn lookups(stores: &[Arc<dyn Store>], readers: u64, for_: Duration) -> (f64, f64) {
    let page = stores[0]
        .scan("bench", ResourceKind::User, 0, 0, 5000)
        .await
        .expect("scan");
    let names: Arc<Vec<String>> = Arc::new(
        page.items
            .iter()
            .filter_map(|r| r.doc["userName"].as_str().map(str::to_owned))
            .collect(),
    );
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..readers {
        let store = Arc::clone(&stores[r as usize % stores.len()]);
        let (done, names) = (Arc::clone(&done), Arc::clone(&names));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = r as usize;
            while start.elapsed() < for_ {
                let t = Instant::now();
                let found = store
                    .lookup(
                        "bench",
                        ResourceKind::User,
                        Lookup::UserNames(vec![names[i % names.len()].clone()]),
                    )
                    .await
                    .expect("lookup");
                assert_eq!(found.len(), 1);
                lat.push(t.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
                i += 7;
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("reader task"));
    }
    lat.sort();
    let p99 = lat
        .get(lat.len() * 99 / 100)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    (
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
        p99,
    )
}

async fn side_by_side(for_: Duration) {
    println!("\nside by side, 32 writers / 32 readers (store level, in one process):");
    println!(
        "{:<28} {:>12} {:>14} {:>14}",
        "engine", "writes/s", "lookups/s", "lookup p99 ms"
    );
    let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "target".into()))
        .expect("tempdir");
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("side.db")).expect("open"));
    let mut rows = vec![("SQLite".to_owned(), vec![sqlite])];
    let cluster = match TestCluster::start_with(ClusterOptions {
        fsync: true,
        ..ClusterOptions::default()
    }) {
        Ok(Some(c)) => Some(c),
        Ok(None) => None,
        Err(e) => {
            println!("PostgreSQL: cannot start a cluster: {e}");
            None
        }
    };
    if let Some(c) = &cluster {
        for (label, instances) in [
            ("PostgreSQL, 1 instance", 1),
            ("PostgreSQL, 2 instances", 2),
        ] {
            let url = c
                .create_database(&format!("bench{instances}"))
                .await
                .expect("database");
            let mut stores: Vec<Arc<dyn Store>> = Vec::new();
            for _ in 0..instances {
                stores.push(Arc::new(PgStore::open(&url, 16).await.expect("open")));
            }
            rows.push((label.to_owned(), stores));
        }
    } else {
        println!("(PostgreSQL not installed: its rows are skipped)");
    }
    for (label, stores) in rows {
        let w = writes(&stores, 32, for_, 9).await;
        let (l, p99) = lookups(&stores, 32, for_).await;
        println!("{label:<28} {w:>12.0} {l:>14.0} {p99:>14.2}");
        for s in stores {
            s.close().await;
        }
    }
    member_checks(dir.path(), cluster.as_ref()).await;
}

/// Members per change in [`member_checks`]: the size of the PATCH in #18's report.
const MEMBERS: usize = 15_000;

/// One change adding 15,000 existing users to a group, as a large IdP PATCH does, with
/// the SCIM front's member check (`check_members`) and without: what the check costs.
async fn member_checks(dir: &std::path::Path, cluster: Option<&TestCluster>) {
    println!(
        "
{MEMBERS} members added to an empty group in one change (users exist; median of 5):"
    );
    println!(
        "{:<28} {:>12} {:>12} {:>16}",
        "engine", "unchecked ms", "checked ms", "check per member"
    );
    let mut engines: Vec<(&str, Arc<dyn Store>)> = vec![(
        "SQLite",
        Arc::new(SqliteStore::open(&dir.join("members.db")).expect("open")),
    )];
    if let Some(c) = cluster {
        let url = c.create_database("members").await.expect("database");
        engines.push((
            "PostgreSQL",
            Arc::new(PgStore::open(&url, 16).await.expect("open")),
        ));
    }
    for (label, store) in engines {
        let ids = users(&store, MEMBERS).await;
        let mut timing = [Vec::new(), Vec::new()];
        for round in 0..5 {
            for (slot, check) in [false, true].into_iter().enumerate() {
                let gid = format!("group-{round}-{check}");
                let mut group = change(
                    &gid,
                    ResourceKind::Group,
                    MutationKind::Create {
                        doc: json!({"displayName": gid}),
                        members: vec![],
                    },
                );
                group.check_members = check;
                store.apply(group).await.expect("group");
                let mut add = change(
                    &gid,
                    ResourceKind::Group,
                    MutationKind::Update {
                        doc: None,
                        members: vec![MemberChange::Add(
                            ids.iter()
                                .map(|id| MemberRef {
                                    value: id.clone(),
                                    kind: None,
                                    display: None,
                                })
                                .collect(),
                        )],
                    },
                );
                add.check_members = check;
                let start = Instant::now();
                store.apply(add).await.expect("add members");
                timing[slot].push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let [plain, checked] = timing.map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        });
        println!(
            "{label:<28} {plain:>12.1} {checked:>12.1} {:>13.2} µs",
            (checked - plain) * 1000.0 / MEMBERS as f64
        );
        store.close().await;
    }
}

/// Creates `n` users of provider `members` (32 at a time) and returns their ids.
async fn users(store: &Arc<dyn Store>, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("member-{i:06}")).collect();
    for chunk in ids.chunks(32) {
        let mut tasks = Vec::new();
        for id in chunk {
            let store = Arc::clone(store);
            let m = change(
                id,
                ResourceKind::User,
                MutationKind::Create {
                    doc: json!({"userName": format!("{id}@bench.example")}),
                    members: vec![],
                },
            );
            tasks.push(tokio::spawn(async move { store.apply(m).await }));
        }
        for t in tasks {
            t.await.expect("task").expect("user");
        }
    }
    ids
}

fn change(id: &str, kind: ResourceKind, change: MutationKind) -> Mutation {
    Mutation {
        provider: "members".into(),
        kind,
        id: id.to_owned(),
        expected_version: None,
        at: scim_bridge::clock::Clock::now(&scim_bridge::clock::SystemClock),
        request_id: None,
        check_members: false,
        log: None,
        change,
    }
}

//! iManage delivery benchmark. `cargo bench --bench imanage` pushes users, then groups
//! with their memberships, through the delivery engine to the strict fake iManage over
//! real HTTP, with the fake enforcing a rate limit of R requests per second (429 above
//! it) and the target configured with `rate_limit_per_second = R`. Prints, per phase,
//! the time taken, the request rate achieved, the busiest one-second window the fake
//! saw and how many requests it refused. Scale with IMANAGE_BENCH_USERS (default 1,000),
//! IMANAGE_BENCH_GROUPS (50, each with 100 members) and IMANAGE_BENCH_RATE (50).

// A bench's knobs are environment variables (see the README); the daemon's own
// environment reads go through config::secret::Environment (clippy.toml).
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/common/fake_imanage.rs"]
mod fake_imanage;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scim_bridge::clock::{Clock, SystemClock};
use scim_bridge::config::AuthHeader;
use scim_bridge::delivery::{Engine, EngineConfig, Pacer};
use scim_bridge::entropy::{Entropy, OsEntropy};
use scim_bridge::oauth::{Credentials, build_client};
use scim_bridge::scim::{MemberRef, ResourceKind};
use scim_bridge::store::sqlite::SqliteStore;
use scim_bridge::store::{DeliveryQueue, Mutation, MutationKind, Resources, Store};
use scim_bridge::targets::{ImanageClient, ImanageTarget, Mapping};
use secrecy::SecretString;
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn create(
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
        at: scim_bridge::clock::Clock::now(&scim_bridge::clock::SystemClock),
        request_id: None,
        check_members: false,
        log: None,
        change: MutationKind::Create { doc, members },
    }
}

/// The fake's counters when a phase starts.
struct Mark {
    requests: u64,
    refused: u64,
    at: Instant,
}

fn mark(dms: &Arc<Mutex<fake_imanage::Dms>>) -> Mark {
    let mut d = dms.lock().expect("fake");
    d.busiest_second = 0;
    Mark {
        requests: d.requests,
        refused: d.rate_refusals,
        at: Instant::now(),
    }
}

/// Waits until `done` holds, then reports the phase since `m` from the fake's counters.
async fn phase(
    what: &str,
    dms: &Arc<Mutex<fake_imanage::Dms>>,
    m: Mark,
    rate: usize,
    done: impl Fn(&fake_imanage::Dms) -> bool,
) {
    let (requests_before, refused_before, started) = (m.requests, m.refused, m.at);
    loop {
        if done(&dms.lock().expect("fake")) {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            println!("{what}: gave up after 1800 s");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed().as_secs_f64();
    let d = dms.lock().expect("fake");
    let requests = d.requests - requests_before;
    println!(
        "{what}: {requests} requests in {took:.1} s = {:.1}/s ({:.1}% of R = {rate}/s); busiest 1-s window at iManage {} requests; {} refused with 429",
        requests as f64 / took,
        100.0 * requests as f64 / took / rate as f64,
        d.busiest_second,
        d.rate_refusals - refused_before
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let users = env("IMANAGE_BENCH_USERS", 1000);
    let groups = env("IMANAGE_BENCH_GROUPS", 50);
    let rate = env("IMANAGE_BENCH_RATE", 50);
    let per_group = 100.min(users);
    let dms = Arc::new(Mutex::new(fake_imanage::Dms {
        rate_limit: rate,
        ..Default::default()
    }));
    let host = fake_imanage::start_blocking(Arc::clone(&dms));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("store"));
    store
        .set_delivery_routes(vec![("dms".into(), "entra".into())])
        .await
        .expect("routes");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
    let cfg = EngineConfig {
        concurrency: 8,
        rate_per_second: Some(rate as f64),
        ..EngineConfig::default()
    };
    let client = Arc::new(ImanageClient::new(
        host,
        None,
        build_client(Duration::from_secs(30)).expect("client"),
        Credentials::Static {
            token: SecretString::from(fake_imanage::TOKEN),
            header: AuthHeader::XAuthToken,
        },
        Arc::clone(&clock),
        Arc::new(Pacer::new(cfg.rate_per_second)),
    ));
    let target = Arc::new(ImanageTarget::new(
        "dms".into(),
        client,
        Mapping::default(),
        scim_bridge::config::MatchRules::default_for(scim_bridge::config::TargetKind::Imanage),
    ));
    let dyn_store: Arc<dyn Store> = Arc::clone(&store) as Arc<dyn Store>;
    let engine = Arc::new(Engine::new(
        dyn_store,
        target,
        cfg,
        clock,
        entropy,
        "bench".into(),
    ));
    let (stop, rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Arc::clone(&engine).run(rx));

    println!(
        "iManage at R = {rate} requests/s: {users} users, then {groups} groups of {per_group} members"
    );
    let m = mark(&dms);
    for i in 0..users {
        let name = format!("user{i:05}@firm.example");
        let doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "active": true, "name": {"givenName": "U", "familyName": format!("{i}")},
            "emails": [{"value": name, "type": "work", "primary": true}]});
        store
            .apply(create(ResourceKind::User, format!("u{i:05}"), doc, vec![]))
            .await
            .expect("write");
    }
    phase("users", &dms, m, rate, |d| d.users.len() >= users).await;

    let m = mark(&dms);
    for g in 0..groups {
        let members = (0..per_group)
            .map(|k| MemberRef {
                value: format!("u{:05}", (g * 37 + k) % users),
                kind: None,
                display: None,
            })
            .collect();
        let doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("Team {g}")});
        store
            .apply(create(
                ResourceKind::Group,
                format!("g{g:03}"),
                doc,
                members,
            ))
            .await
            .expect("write");
    }
    phase("groups and memberships", &dms, m, rate, |d| {
        d.groups.len() >= groups && d.groups.values().all(|(_, m)| m.len() >= per_group)
    })
    .await;
    let _ = stop.send(true);
    let _ = running.await;
}

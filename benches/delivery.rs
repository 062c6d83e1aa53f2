//! Delivery benchmark. `cargo bench --bench delivery` prints:
//! 1. end to end: N users (default 100,000; DELIVERY_BENCH_USERS) written to the store by
//!    32 concurrent writers while the engine delivers them over real HTTP to a local
//!    webhook receiver that answers each request after 5 ms; time from the first write
//!    to the last delivery;
//! 2. pacing: a backlog delivered under `rate_limit_per_second` = R; achieved rate and
//!    the most requests seen in any one-second window.

// A bench's knobs are environment variables (see the README); the daemon's own
// environment reads go through config::secret::Environment (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use scim_bridge::clock::{Clock, SystemClock};
use scim_bridge::delivery::{Engine, EngineConfig, Pacer};
use scim_bridge::entropy::{Entropy, OsEntropy};
use scim_bridge::oauth::{Credentials, build_client};
use scim_bridge::scim::ResourceKind;
use scim_bridge::store::sqlite::SqliteStore;
use scim_bridge::store::{DeliveryQueue, Mutation, MutationKind, Resources, Store};
use scim_bridge::targets::WebhookTarget;
use secrecy::SecretString;
use serde_json::json;

/// A receiver that answers 204 after `latency`, logging when each request arrived.
async fn receiver(
    latency: Duration,
    log: Arc<Mutex<Vec<Instant>>>,
    count: Arc<AtomicU64>,
) -> String {
    let app = Router::new().route(
        "/hook",
        post(move || {
            let log = Arc::clone(&log);
            let count = Arc::clone(&count);
            async move {
                if let Ok(mut l) = log.lock() {
                    l.push(Instant::now());
                }
                tokio::time::sleep(latency).await;
                count.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

fn create(id: String) -> Mutation {
    Mutation {
        provider: "entra".into(),
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
                "userName": format!("{id}@bench.example"),
                "active": true,
            }),
            members: vec![],
        },
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    stop: tokio::sync::watch::Sender<bool>,
    engine: tokio::task::JoinHandle<()>,
}

async fn setup(url: String, cfg: EngineConfig) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("store"));
    store
        .set_delivery_routes(vec![("hook".into(), "entra".into())])
        .await
        .expect("routes");
    let (stop, engine) = start_engine(Arc::clone(&store), url, cfg);
    Setup {
        _dir: dir,
        store,
        stop,
        engine,
    }
}

/// An engine delivering `store`'s queue to the webhook at `url`.
fn start_engine(
    store: Arc<SqliteStore>,
    url: String,
    cfg: EngineConfig,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
    let target = WebhookTarget::new(
        "hook".into(),
        url,
        SecretString::from("bench-secret"),
        build_client(Duration::from_secs(10)).expect("client"),
        Credentials::None,
        Arc::clone(&clock),
        Arc::new(Pacer::new(cfg.rate_per_second)),
    );
    let dyn_store: Arc<dyn Store> = store;
    let engine = Arc::new(Engine::new(
        dyn_store,
        Arc::new(target),
        cfg,
        clock,
        entropy,
        "bench".into(),
    ));
    let (stop, rx) = tokio::sync::watch::channel(false);
    (stop, tokio::spawn(engine.run(rx)))
}

async fn end_to_end(users: u64) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicU64::new(0));
    let url = receiver(
        Duration::from_millis(5),
        Arc::clone(&log),
        Arc::clone(&count),
    )
    .await;
    let cfg = EngineConfig {
        concurrency: 64,
        ..EngineConfig::default()
    };
    let s = setup(url, cfg).await;
    let started = Instant::now();
    let writers = 32;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = Arc::clone(&s.store);
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while n < users {
                store
                    .apply(create(format!("u{n:07}")))
                    .await
                    .expect("write");
                n += writers;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let written = started.elapsed();
    while count.load(Ordering::Relaxed) < users {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if started.elapsed() > Duration::from_secs(600) {
            println!(
                "gave up after 600 s: {} of {users} delivered",
                count.load(Ordering::Relaxed)
            );
            break;
        }
    }
    let total = started.elapsed();
    let delivered = count.load(Ordering::Relaxed);
    println!(
        "end to end: {users} users written in {:.1} s (32 writers), all {delivered} delivered after {:.1} s \
         ({:.0} deliveries/s; receiver latency 5 ms, concurrency 64; target <= 60 s)",
        written.as_secs_f64(),
        total.as_secs_f64(),
        delivered as f64 / total.as_secs_f64()
    );
    let _ = s.stop.send(true);
    let _ = s.engine.await;
}

async fn pacing_run(rate: f64, seconds: u64) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicU64::new(0));
    let url = receiver(
        Duration::from_millis(5),
        Arc::clone(&log),
        Arc::clone(&count),
    )
    .await;
    let cfg = EngineConfig {
        concurrency: 32,
        rate_per_second: Some(rate),
        ..EngineConfig::default()
    };
    let backlog = (rate * seconds as f64 * 1.5) as u64;
    // Write the backlog before the engine starts: a queue that never runs dry.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("store"));
    store
        .set_delivery_routes(vec![("hook".into(), "entra".into())])
        .await
        .expect("routes");
    let mut tasks = Vec::new();
    for w in 0..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while n < backlog {
                store
                    .apply(create(format!("p{n:07}")))
                    .await
                    .expect("write");
                n += 16;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let started = Instant::now();
    let (stop, handle) = start_engine(Arc::clone(&store), url, cfg);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let _ = stop.send(true);
    let elapsed = started.elapsed().as_secs_f64();
    let _ = handle.await;
    let mut arrivals = log.lock().map(|l| l.clone()).unwrap_or_default();
    arrivals.sort();
    let in_window: Vec<Instant> = arrivals
        .into_iter()
        .filter(|a| a.duration_since(started).as_secs_f64() <= elapsed)
        .collect();
    // The busiest one-second window, sliding over every arrival.
    let mut window = VecDeque::new();
    let mut busiest = 0;
    for a in &in_window {
        window.push_back(*a);
        while let Some(first) = window.front() {
            if a.duration_since(*first) >= Duration::from_secs(1) {
                window.pop_front();
            } else {
                break;
            }
        }
        busiest = busiest.max(window.len());
    }
    let achieved = in_window.len() as f64 / elapsed;
    println!(
        "pacing: R = {rate}/s for {seconds} s on a backlog of {backlog}: achieved {achieved:.1}/s ({:.1}% of R), \
         busiest 1-s window {busiest} requests (target >= 0.95 R, never above R)",
        100.0 * achieved / rate
    );
}

fn main() {
    let users = std::env::var("DELIVERY_BENCH_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000u64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        end_to_end(users).await;
        pacing_run(200.0, 10).await;
        pacing_run(20.0, 10).await;
    });
}

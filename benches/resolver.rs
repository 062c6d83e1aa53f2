//! Workspace resolution benchmark. `cargo bench --bench resolver` prints:
//! 1. uncached: distinct matters resolved by advanced search against the strict fake
//!    iManage (10,000 workspaces over real HTTP), with the search requests each made;
//! 2. cached: resolutions answered from the cache, on one task and on two.

#[path = "../tests/e2e/common/fake_imanage.rs"]
mod fake_imanage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scim_bridge::clock::{Clock, SystemClock};
use scim_bridge::config::{
    AuthHeader, RepositoryConfig, ResolverConfig, WorkspaceSearch, is_search_field,
};
use scim_bridge::delivery::Pacer;
use scim_bridge::oauth::{Credentials, build_client};
use scim_bridge::resolver::{Request, Resolver};
use scim_bridge::targets::ImanageClient;
use scim_bridge::template::parse_assignments;
use secrecy::SecretString;
use serde_json::json;

const WORKSPACES: usize = 10_000;
const UNCACHED: usize = 1_000;
const CACHED_KEYS: usize = 1_000;
const CACHED_CALLS: usize = 1_000_000;

fn matter(i: usize) -> serde_json::Value {
    json!({"client": {"reference": format!("{:05}", i / 10)}, "reference": format!("{:05}.{:05}", i / 10, i % 10)})
}

fn request(i: usize, fresh: bool) -> Request {
    Request {
        repository: "matters".into(),
        work_type: None,
        workitem: matter(i),
        fresh,
        user: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut dms = fake_imanage::Dms::default();
    for i in 0..WORKSPACES {
        let m = matter(i);
        dms.workspaces.push(json!({
            "id": format!("ACTIVE!{}", 1000 + i), "name": format!("Matter {i}"), "database": "ACTIVE",
            "custom1": m["client"]["reference"], "custom2": m["reference"],
        }));
    }
    let dms = Arc::new(Mutex::new(dms));
    let host = fake_imanage::start_blocking(Arc::clone(&dms));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let client = Arc::new(ImanageClient::new(
        host,
        None,
        build_client(Duration::from_secs(30)).expect("client"),
        Credentials::Static {
            token: SecretString::from(fake_imanage::TOKEN),
            header: AuthHeader::XAuthToken,
        },
        Arc::clone(&clock),
        Arc::new(Pacer::new(None)),
    ));
    let fields = parse_assignments(
        "custom1=[workitem.client.reference], custom2=[workitem.reference]",
        is_search_field,
        "",
        &["workitem"],
    )
    .expect("search");
    let repo = RepositoryConfig {
        name: "matters".into(),
        target: "dms".into(),
        search: WorkspaceSearch::Fields(fields),
        folder: None,
        libraries: Vec::new(),
        work_types: Vec::new(),
    };
    let resolver = Arc::new(Resolver::new(
        vec![repo],
        &ResolverConfig {
            cache_ttl: Duration::from_secs(3600),
            cache_size: 100_000,
        },
        HashMap::from([("dms".to_string(), client)]),
        clock,
    ));

    // Warm discovery so it is not counted as a search.
    resolver
        .resolve(&request(0, true))
        .await
        .expect("first resolution");
    dms.lock().expect("fake").searches.clear();

    let started = Instant::now();
    let mut max_requests = 0;
    for i in 0..UNCACHED {
        let idx = (i * 7919) % WORKSPACES;
        let out = resolver
            .resolve(&request(idx, true))
            .await
            .expect("resolves");
        assert_eq!(
            out.resolution.workspace_id,
            format!("ACTIVE!{}", 1000 + idx)
        );
        max_requests = max_requests.max(out.requests.len());
    }
    let took = started.elapsed();
    let searches = dms.lock().expect("fake").searches.len();
    println!(
        "uncached: {UNCACHED} resolutions in {:.2} s = {:.0}/s over HTTP against {WORKSPACES} workspaces; {searches} search requests in all, at most {max_requests} per resolution (one library)",
        took.as_secs_f64(),
        UNCACHED as f64 / took.as_secs_f64()
    );

    for i in 0..CACHED_KEYS {
        resolver.resolve(&request(i, false)).await.expect("warm");
    }
    let reqs: Arc<Vec<Request>> = Arc::new((0..CACHED_KEYS).map(|i| request(i, false)).collect());
    for tasks in [1usize, 2] {
        let before = dms.lock().expect("fake").searches.len();
        let started = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let resolver = Arc::clone(&resolver);
            let reqs = Arc::clone(&reqs);
            handles.push(tokio::spawn(async move {
                let mut hits = 0usize;
                for i in 0..CACHED_CALLS / tasks {
                    let r = &reqs[(i + t * 31) % reqs.len()];
                    if resolver.resolve(r).await.map(|o| o.cached).unwrap_or(false) {
                        hits += 1;
                    }
                }
                hits
            }));
        }
        let mut hits = 0;
        for h in handles {
            hits += h.await.expect("task");
        }
        let took = started.elapsed();
        let after = dms.lock().expect("fake").searches.len();
        println!(
            "cached, {tasks} task(s): {hits} of {CACHED_CALLS} answered from the cache in {:.2} s = {:.0}/s ({:.2} µs each); {} requests reached iManage",
            took.as_secs_f64(),
            CACHED_CALLS as f64 / took.as_secs_f64(),
            took.as_secs_f64() * 1e6 / (CACHED_CALLS / tasks) as f64,
            after - before
        );
    }
}

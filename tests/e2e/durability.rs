//! An acknowledged write is never lost: SIGKILL the daemon in the middle of
//! concurrent writes, restart it, and find every 201 it gave.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Daemon, Scim};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_concurrent_writes_loses_nothing_acknowledged() {
    let mut d = Daemon::start("");
    let token = d.token("entra");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..24 {
        let scim = Scim::new(d.base("entra"), token.clone());
        let acked = Arc::clone(&acked);
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("w{w}-{i}@firm.example"),
                });
                let resp = scim
                    .http
                    .post(format!("{}/Users", scim.base))
                    .bearer_auth(&scim.token)
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await;
                // After the kill, connections fail: stop this writer.
                let Ok(resp) = resp else { break };
                if resp.status().as_u16() != 201 {
                    break;
                }
                let Ok(v) = resp.json::<serde_json::Value>().await else {
                    break;
                };
                if let Some(id) = v["id"].as_str() {
                    acked.lock().unwrap().push(id.to_owned());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    d.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "too few writes before the kill: {}",
        acked.len()
    );

    d.spawn();
    let scim = Scim::new(d.base("entra"), token.clone());
    let (_, all) = scim.get("/Users?count=0").await;
    let total = all["totalResults"].as_u64().unwrap() as usize;
    assert!(
        total >= acked.len(),
        "stored {total} < acknowledged {}",
        acked.len()
    );
    for id in &acked {
        let (s, _) = scim.get(&format!("/Users/{id}?attributes=id")).await;
        assert_eq!(s, 200, "acknowledged user {id} was lost");
    }
    // Every stored user has its change event (same transaction).
    let status = d.cli(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["database"]["users"].as_u64().unwrap() as usize, total);
    assert_eq!(
        v["database"]["change_events"].as_u64().unwrap() as usize,
        total
    );
    eprintln!(
        "acknowledged {} writes before SIGKILL; all present after restart",
        acked.len()
    );
}

//! A strict, unreliable webhook receiver on a real port: it verifies the signature and
//! the CloudEvents shape of every request, fails a configurable share of them (500, 503,
//! 429 with Retry-After, a dropped connection, or no answer at all) and records what it accepted.
//!
//! It is also a receiver as the README describes one: it de-duplicates on the event id
//! and replays every group's `data.members` in arrival order, so a test can compare the
//! membership it derives with the bridge's. `accept_then_fail` makes it process an event
//! and then answer 500 (its answer lost on the way), the case that needs stable ids.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SECRET: &str = "whsec-test-7Yk2mQ9vL4";

#[derive(Debug, Default)]
pub struct Receiver {
    /// Share of requests to fail, 0.0 ..= 1.0.
    pub failure_rate: f64,
    /// Refuse everything with 503 (the target is down).
    pub down: bool,
    /// How long a "hanging" failure waits before answering.
    pub hang: Duration,
    rng: u64,
    /// resource id → accepted (seq, type, title) in arrival order.
    pub accepted: BTreeMap<String, Vec<(i64, String, Option<String>)>>,
    pub requests: u64,
    pub failures: u64,
    /// Requests refused for a bad signature or shape: must stay 0.
    pub rejected: Vec<String>,
    /// Every request waits `hang` before it is processed (and answered 204): the
    /// bridge times out first, so each is processed without the bridge knowing.
    pub stall: bool,
    /// Share of requests processed and then answered 500, 0.0 ..= 1.0.
    pub accept_then_fail: f64,
    /// Event ids processed; a repeat is acknowledged and not applied again.
    pub seen: std::collections::HashSet<String>,
    /// Events acknowledged without processing because their id was seen before.
    pub duplicates: u64,
    /// Change sequence number → the event id that carried it. A change carried under
    /// two ids means a receiver de-duplicating on ids would apply it twice.
    pub carried_by: std::collections::HashMap<i64, String>,
    /// Changes that arrived under a second event id: must stay empty.
    pub id_conflicts: Vec<String>,
    /// Group id → members, as replaying `data.members` derives them.
    pub groups: BTreeMap<String, std::collections::BTreeSet<String>>,
}

pub type Shared = Arc<Mutex<Receiver>>;

pub fn new_receiver(failure_rate: f64, seed: u64) -> Shared {
    Arc::new(Mutex::new(Receiver {
        failure_rate,
        rng: seed | 1,
        hang: Duration::from_secs(3),
        ..Receiver::default()
    }))
}

/// Starts the receiver on its own thread; returns its URL.
pub fn start_blocking(r: Shared) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new().route("/hook", post(hook)).with_state(r);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tx.send(format!("http://{addr}/hook")).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn next(r: &mut Receiver) -> f64 {
    // xorshift64*: deterministic per seed, no dependency.
    r.rng ^= r.rng >> 12;
    r.rng ^= r.rng << 25;
    r.rng ^= r.rng >> 27;
    (r.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

fn verify(headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Value, String> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype != "application/cloudevents+json" {
        return Err(format!("content type {ctype:?}"));
    }
    let sig = headers
        .get("x-scim-bridge-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or("no signature")?;
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .ok_or("malformed signature")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = hex::decode(v1).map_err(|_| "signature not hex")?;
    mac.verify_slice(&expected).map_err(|_| "bad signature")?;
    let event: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    for key in ["specversion", "id", "source", "type", "time", "data"] {
        if event.get(key).is_none() {
            return Err(format!("event without {key}"));
        }
    }
    Ok(event)
}

async fn hook(State(r): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let stall = {
        let g = r.lock().unwrap();
        g.stall.then_some(g.hang)
    };
    if let Some(wait) = stall {
        tokio::time::sleep(wait).await;
    }
    let (fail, hang) = {
        let mut g = r.lock().unwrap();
        g.requests += 1;
        if g.down {
            g.failures += 1;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let roll = next(&mut g);
        (roll < g.failure_rate, g.hang)
    };
    if fail {
        let kind = { next(&mut r.lock().unwrap()) };
        r.lock().unwrap().failures += 1;
        return if kind < 0.3 {
            (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
        } else if kind < 0.55 {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        } else if kind < 0.7 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "slow down",
            )
                .into_response()
        } else if kind < 0.85 {
            // A dropped connection: the handler's task dies without answering.
            panic!("fake receiver drops the connection");
        } else {
            // No answer within the bridge's timeout.
            tokio::time::sleep(hang).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        };
    }
    match verify(&headers, &body) {
        Err(why) => {
            r.lock().unwrap().rejected.push(why.clone());
            (StatusCode::BAD_REQUEST, why).into_response()
        }
        Ok(event) => {
            let answer = {
                let mut g = r.lock().unwrap();
                let roll = next(&mut g);
                if roll < g.accept_then_fail {
                    g.failures += 1;
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            };
            let mut g = r.lock().unwrap();
            let event_id = event["id"].as_str().unwrap_or_default().to_owned();
            if !g.seen.insert(event_id.clone()) {
                g.duplicates += 1;
                return answer.into_response();
            }
            replay(&mut g, &event, &event_id);
            drop(g);
            let data = &event["data"];
            let id = data["id"].as_str().unwrap_or_default().to_owned();
            let seq = data["seq"].as_i64().unwrap_or(-1);
            let kind = event["type"].as_str().unwrap_or_default().to_owned();
            let title = data["resource"]["title"].as_str().map(str::to_owned);
            r.lock()
                .unwrap()
                .accepted
                .entry(id)
                .or_default()
                .push((seq, kind, title));
            answer.into_response()
        }
    }
}

/// Applies one new event as a receiver would: its changes noted against its id, and a
/// group's membership set to `all` or changed by `added` / `removed`.
fn replay(g: &mut Receiver, event: &serde_json::Value, event_id: &str) {
    let data = &event["data"];
    for change in data["changes"].as_array().into_iter().flatten() {
        let Some(seq) = change["seq"].as_i64() else {
            continue;
        };
        match g.carried_by.get(&seq) {
            Some(first) if first != event_id => {
                let conflict = format!("change {seq} came as {first} and again as {event_id}");
                g.id_conflicts.push(conflict);
            }
            _ => {
                g.carried_by.insert(seq, event_id.to_owned());
            }
        }
    }
    if data["resourceType"] != "Group" {
        return;
    }
    let group = data["id"].as_str().unwrap_or_default().to_owned();
    if event["type"] == "com.scim-bridge.group.deleted" {
        g.groups.remove(&group);
        return;
    }
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect()
    };
    let set = g.groups.entry(group).or_default();
    let members = &data["members"];
    if members.get("all").is_some() {
        *set = ids(&members["all"]).into_iter().collect();
    }
    for id in ids(&members["added"]) {
        set.insert(id);
    }
    for id in ids(&members["removed"]) {
        set.remove(&id);
    }
}

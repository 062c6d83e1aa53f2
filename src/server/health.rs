//! `/healthz`, `/readyz`, `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use crate::store::{StoreCounts, StoreError, StoreStatus};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Liveness: the process answers. No I/O, so a slow database never gets us killed.
async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

/// Readiness: the database answers and is on the current schema.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let store = state.directory.store_status().await;
    let shutting_down = state.shutting_down.load(Ordering::SeqCst);
    let ready = ready(&store, shutting_down);
    let database = match &store {
        Ok(s) => {
            let mut database = json!({
                    "reachable": true,
                    "engine": s.engine,
                    "schema_version": s.schema_version,
                    "expected_schema_version": s.expected_schema_version,
                    "migrations_current": s.schema_version == s.expected_schema_version,
                    "last_event_seq": s.last_event_seq,
            });
            // Counts are a convenience here, not readiness: a failed count is shown,
            // and the answer stays what the status above says.
            match counts(&state, s.last_event_seq).await {
                Ok((n, at)) => {
                    database["change_events"] = n.events.into();
                    database["counted_at"] = at.to_rfc3339().into();
                }
                Err(e) => database["counts_error"] = e.to_string().into(),
            }
            database
        }
        Err(e) => json!({"reachable": false, "error": e.to_string()}),
    };
    let body = json!({
        "status": if ready { "ready" } else if shutting_down { "shutting down" } else { "not ready" },
        "database": database,
        "vault": state.vault_state,
        "providers": state.directory.providers().map(|p| p.name.clone()).collect::<Vec<_>>(),
        // A failing target does not make this instance unready: SCIM intake still
        // works and changes wait durably in the outbox.
        "targets": targets_json(&state).await,
        // What providers sent that no schema declares, by name, for `status`.
        "dropped_attributes": state.metrics.dropped_attributes(),
        "audit": audit_json(&state),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// The store's counts, recounted only as `store_counts` allows.
async fn counts(
    state: &AppState,
    last_event_seq: i64,
) -> Result<(StoreCounts, chrono::DateTime<chrono::Utc>), StoreError> {
    state
        .counts
        .get(&state.directory, last_event_seq, || state.clock.now())
        .await
}

/// Ready: the database answers, is on the current schema, and shutdown has not begun.
/// `/readyz` and the `scim_bridge_ready` gauge say the same.
fn ready(store: &Result<StoreStatus, StoreError>, shutting_down: bool) -> bool {
    !shutting_down
        && store
            .as_ref()
            .is_ok_and(|s| s.schema_version == s.expected_schema_version)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let store = state.directory.store_status().await;
    let shutting_down = state.shutting_down.load(Ordering::SeqCst);
    let mut gauges = vec![
        (
            "scim_bridge_uptime_seconds",
            "Seconds since the daemon started.",
            state.started.elapsed().as_secs_f64(),
        ),
        (
            "scim_bridge_ready",
            "1 when /readyz answers ready (database reachable, schema current, not shutting down).",
            if ready(&store, shutting_down) {
                1.0
            } else {
                0.0
            },
        ),
    ];
    if let Ok(s) = &store {
        if let Ok((n, _)) = counts(&state, s.last_event_seq).await {
            gauges.extend([
                ("scim_bridge_users", "Users stored.", n.users as f64),
                ("scim_bridge_groups", "Groups stored.", n.groups as f64),
                (
                    "scim_bridge_change_events",
                    "Change events in the outbox.",
                    n.events as f64,
                ),
            ]);
        }
        gauges.extend([
            (
                "scim_bridge_store_write_batches",
                "Write transactions committed since start (group commits).",
                s.write_batches as f64,
            ),
            (
                "scim_bridge_store_writes",
                "Writes committed since start.",
                s.write_jobs as f64,
            ),
        ]);
    }
    if let Some(a) = state.audit.as_ref().map(|j| j.status()) {
        gauges.push((
            "scim_bridge_audit_unsealed_records",
            "Provisioning-log records chained but not covered by a seal yet (all of them while the vault is locked).",
            a.unsealed as f64,
        ));
    }
    let mut text = state.metrics.render(&gauges);
    super::target_metrics::render(&state, state.clock.now(), &mut text).await;
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// The audit chain's state, for `status`.
fn audit_json(state: &AppState) -> serde_json::Value {
    match state.audit.as_ref().map(|j| j.status()) {
        Some(a) => json!({
            "log": a.log,
            "head_seq": a.head_seq,
            "sealed_through": a.sealed_through,
            "unsealed_records": a.unsealed,
            "key": a.key,
            "sealing": a.key.is_some(),
        }),
        None => serde_json::Value::Null,
    }
}

/// Each target's credentials and delivery backlog.
async fn targets_json(state: &AppState) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for t in state.targets.get().iter() {
        let auth = t
            .source
            .as_ref()
            .map(|s| serde_json::to_value(s.health()).unwrap_or_default());
        let delivery = match &t.delivery {
            Some(c) => {
                let stats = state.directory.delivery_stats(&t.name).await;
                let mut v = match stats {
                    Ok(s) => serde_json::to_value(s).unwrap_or_default(),
                    Err(e) => json!({ "error": e.to_string() }),
                };
                v["delivered"] = c.delivered.load(Ordering::Relaxed).into();
                v["retried"] = c.retried.load(Ordering::Relaxed).into();
                v["dead_lettered"] = c.dead_lettered.load(Ordering::Relaxed).into();
                v["guard"] = match state.directory.guard(&t.name).await {
                    Ok(g) if g.tripped_at.is_some() => json!({
                        "state": "tripped", "since": g.tripped_at, "reason": g.reason,
                        "release": format!("scim-bridge approve --target {}", t.name),
                    }),
                    Ok(g) => json!({ "state": "armed", "approved_until": g.approved_until }),
                    Err(e) => json!({ "error": e.to_string() }),
                };
                v
            }
            None => serde_json::Value::Null,
        };
        let reconcile = t.reconcile.as_ref().and_then(|r| {
            r.lock()
                .ok()
                .map(|r| serde_json::to_value(&*r).unwrap_or_default())
        });
        out.insert(
            t.name.clone(),
            json!({
                "auth": auth, "account_linking": t.linker.is_some(),
                "delivery": delivery, "reconcile": reconcile, "paused": t.paused,
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(schema_version: i64) -> Result<StoreStatus, StoreError> {
        Ok(StoreStatus {
            engine: "sqlite",
            location: String::new(),
            schema_version,
            expected_schema_version: 7,
            last_event_seq: 0,
            write_batches: 0,
            write_jobs: 0,
        })
    }

    /// `scim_bridge_ready` and `/readyz` share this, so the alert on one is the other.
    #[test]
    fn ready_needs_a_current_schema_a_reachable_store_and_no_shutdown() {
        assert!(ready(&status(7), false));
        assert!(!ready(&status(7), true));
        assert!(!ready(&status(6), false));
        assert!(!ready(&Err(StoreError::NotFound), false));
    }
}

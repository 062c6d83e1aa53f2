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
    let store = state.directory.store().status().await;
    let shutting_down = state.shutting_down.load(Ordering::SeqCst);
    let (ready, database) = match &store {
        Ok(s) => (
            s.schema_version == s.expected_schema_version,
            json!({
                "reachable": true,
                "engine": s.engine,
                "schema_version": s.schema_version,
                "expected_schema_version": s.expected_schema_version,
                "migrations_current": s.schema_version == s.expected_schema_version,
                "change_events": s.events,
                "last_event_seq": s.last_event_seq,
            }),
        ),
        Err(e) => (false, json!({"reachable": false, "error": e.to_string()})),
    };
    let ready = ready && !shutting_down;
    let body = json!({
        "status": if ready { "ready" } else if shutting_down { "shutting down" } else { "not ready" },
        "database": database,
        "vault": state.vault_state,
        "providers": state.directory.providers().map(|p| p.name.clone()).collect::<Vec<_>>(),
        // A failing target does not make this instance unready: SCIM intake still
        // works and changes wait durably in the outbox.
        "targets": state.targets.iter().map(|t| {
            let auth = t.source.as_ref().map(|s| serde_json::to_value(s.health()).unwrap_or_default());
            (t.name.clone(), json!({ "auth": auth, "account_linking": t.linker.is_some() }))
        }).collect::<serde_json::Map<_, _>>(),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut gauges = vec![(
        "scim_bridge_uptime_seconds",
        "Seconds since the daemon started.",
        state.started.elapsed().as_secs_f64(),
    )];
    if let Ok(s) = state.directory.store().status().await {
        gauges.extend([
            ("scim_bridge_users", "Users stored.", s.users as f64),
            ("scim_bridge_groups", "Groups stored.", s.groups as f64),
            (
                "scim_bridge_change_events",
                "Change events in the outbox.",
                s.events as f64,
            ),
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
    let mut r = state.metrics.render(&gauges).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

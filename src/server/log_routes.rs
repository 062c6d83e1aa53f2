//! The provisioning log over HTTP (admin tokens only), for the console and for
//! scripts: `GET /api/v1/log` with the filters of `scim-bridge log` as query
//! parameters (JSON, or CSV for `Accept: text/csv`), and `GET /api/v1/log/{id}`, one
//! record with the records linked to it.
//!
//! Answers are plain JSON, not SCIM, like the workspace API: `{"error": code,
//! "message": …}` on failure.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::AppState;
use super::auth::check_bearer;
use crate::directory::log::{Filters, LogError, build, entry_json, linked, member_names};
use crate::provlog::render::{csv_header, csv_line};
use crate::tokens::TokenScope;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/log", get(list))
        .route("/api/v1/log/{id}", get(one))
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn failure(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    answer(status, json!({"error": code, "message": message.into()}))
}

fn store_failure(e: &crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "provisioning log query failed");
    failure(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the provisioning log cannot be read right now; see the server log",
    )
}

async fn admit(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    check_bearer(state, headers, None, TokenScope::Admin)
        .await
        .map(|_| ())
        .map_err(|e| {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNAUTHORIZED);
            failure(status, "unauthorized", e.detail)
        })
}

/// The filters of a query string; unknown parameters are refused, so a misspelt
/// filter never silently widens the answer.
fn filters(params: &HashMap<String, String>) -> Result<Filters, String> {
    const KNOWN: [&str; 11] = [
        "person", "group", "provider", "target", "only", "action", "outcome", "since", "until",
        "before", "limit",
    ];
    if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter {unknown:?}; the filters are {}",
            KNOWN.join(", ")
        ));
    }
    let get = |k: &str| params.get(k).filter(|v| !v.is_empty()).cloned();
    let number = |k: &str| -> Result<Option<i64>, String> {
        get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("{k}={v:?} is not a number"))
            })
            .transpose()
    };
    Ok(Filters {
        person: get("person"),
        group: get("group"),
        provider: get("provider"),
        target: get("target"),
        only: get("only"),
        action: get("action"),
        outcome: get("outcome"),
        since: get("since"),
        until: get("until"),
        before: number("before")?,
        limit: number("limit")?
            .map_or(Ok(100), usize::try_from)
            .map_err(|_| "limit must be positive".to_owned())?,
    })
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&state, &headers).await {
        return r;
    }
    let f = match filters(&params) {
        Ok(f) => f,
        Err(m) => return failure(StatusCode::BAD_REQUEST, "bad_request", m),
    };
    let store = state.directory.store().as_ref();
    let providers: Vec<String> = state
        .directory
        .providers()
        .map(|p| p.name.clone())
        .collect();
    let q = match build(store, &providers, &f, state.clock.now()).await {
        Ok(q) => q,
        Err(LogError::Invalid(m)) => return failure(StatusCode::BAD_REQUEST, "bad_request", m),
        Err(LogError::Store(e)) => return store_failure(&e),
    };
    let entries = match store.log_query(&q).await {
        Ok(e) => e,
        Err(e) => return store_failure(&e),
    };
    if wants_csv(&headers) {
        let names = member_names(store, &entries, 2_000)
            .await
            .unwrap_or_default();
        let name = |id: &str| names.get(id).cloned();
        let mut out = csv_header();
        out.push_str("\r\n");
        for e in &entries {
            out.push_str(&csv_line(e, &name));
            out.push_str("\r\n");
        }
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"provisioning-log.csv\"",
                ),
            ],
            out,
        )
            .into_response();
    }
    // The next page: the same filters, before the last record shown.
    let next = (entries.len() == q.limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    answer(
        StatusCode::OK,
        json!({
            "records": entries.iter().map(entry_json).collect::<Vec<_>>(),
            "next_before": next,
        }),
    )
}

async fn one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = admit(&state, &headers).await {
        return r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return failure(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no log record {id:?}"),
        );
    };
    let store = state.directory.store().as_ref();
    let e = match store.log_entry(id).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return failure(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no log record {id}"),
            );
        }
        Err(e) => return store_failure(&e),
    };
    let linked = match linked(store, &e).await {
        Ok(l) => l,
        Err(e) => return store_failure(&e),
    };
    answer(
        StatusCode::OK,
        json!({"record": entry_json(&e), "linked": linked.iter().map(entry_json).collect::<Vec<_>>()}),
    )
}

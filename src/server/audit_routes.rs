//! `GET /api/v1/audit/export?from=&to=` (admin tokens only): the provisioning log's
//! audit chain as the JSON Lines file `scim-bridge audit export` writes, streamed
//! page by page. `from` and `to` take a seq or an RFC 3339 time.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::mpsc;

use super::AppState;
use super::auth::check_bearer;
use crate::journal::export::{Bound, Chunk, Range};
use crate::tokens::TokenScope;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/audit/export", get(export))
}

fn failure(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

async fn export(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = check_bearer(&state, &headers, None, TokenScope::Admin).await {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNAUTHORIZED);
        return failure(status, "unauthorized", e.detail);
    }
    if let Some(other) = params.keys().find(|k| !matches!(k.as_str(), "from" | "to")) {
        return failure(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("unknown parameter {other:?}: the export takes from and to"),
        );
    }
    let parse = |name: &str| {
        params
            .get(name)
            .map(|v| Bound::parse(name, v).map_err(|e| e.to_string()))
            .transpose()
    };
    let range = match (parse("from"), parse("to")) {
        (Ok(from), Ok(to)) => Range { from, to },
        (Err(e), _) | (_, Err(e)) => return failure(StatusCode::BAD_REQUEST, "invalid", e),
    };
    let Some(journal) = state.audit.clone() else {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the audit chain is not running",
        );
    };
    if journal.key().is_none() {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "unsealed",
            "the audit chain cannot be exported: no signing key (the vault is not configured, not initialised or locked)",
        );
    }
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    tokio::spawn(async move {
        if let Err(e) = journal.export(range, &tx).await {
            tracing::error!(error = %e, "audit export failed");
            // The body ends with an error, so the client sees a cut transfer rather
            // than a file that merely looks short.
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let mut r = Body::new(Chunks(rx)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl"),
    );
    r
}

/// The export's chunks as an HTTP body.
struct Chunks(mpsc::Receiver<Chunk>);

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(|bytes| Frame::data(Bytes::from(bytes)))))
    }
}

//! Reading JSON request bodies: JSON media types only, size-limited, parse errors as
//! SCIM 400s.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use serde_json::Value;

use super::AppState;
use crate::scim::ScimError;

/// A SCIM request's JSON body, within the configured `max_body_bytes`.
#[derive(Debug)]
pub(super) struct ScimBody(pub Value);

impl FromRequest<Arc<AppState>> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ScimError> {
        let (parts, body) = req.into_parts();
        read_json(&parts.headers, body, state.settings.max_body_bytes)
            .await
            .map(ScimBody)
    }
}

/// Reads a JSON body of at most `limit` bytes.
pub(super) async fn read_json(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Value, ScimError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        if !ct.contains("json") {
            return Err(ScimError::new(
                415,
                None,
                format!("unsupported content type {ct:?}; send application/scim+json"),
            ));
        }
    }
    let too_big = || {
        ScimError::new(
            413,
            None,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        drain(body, limit).await;
        return Err(too_big());
    }
    let mut body = body;
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ScimError::invalid_syntax(format!("cannot read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                drain(body, limit).await;
                return Err(too_big());
            }
            bytes.extend_from_slice(&data);
        }
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("the request body is empty"));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))
}

/// Reads and discards an oversized body (up to 16 times the limit) so the client,
/// still sending, receives the 413 instead of a reset connection.
async fn drain(mut body: Body, limit: usize) {
    let mut seen = 0usize;
    let cap = limit.saturating_mul(16);
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > cap {
                return;
            }
        }
    }
}

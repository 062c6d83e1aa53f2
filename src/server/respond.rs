//! SCIM responses: content type, ETag/Location headers, error bodies.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use std::sync::Arc;

use axum::body::Body;
use futures_util::TryStreamExt;

use crate::directory::Document;
use crate::scim::ScimError;
use crate::store::Store;

/// The SCIM media type (RFC 7644 §8.1).
pub const SCIM_JSON: &str = "application/scim+json";

/// A JSON body with the SCIM content type.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    scim_text(status, body.to_string())
}

fn scim_text(status: StatusCode, text: String) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    r
}

/// A SCIM body that may still have group members to read: small answers go out
/// whole (with a `Content-Length`), large ones chunked as the members are read. A
/// failure after the first bytes can no longer become an error status: it is
/// logged and the connection is cut, so the client sees an incomplete answer
/// instead of a wrong one.
pub fn scim_document(status: StatusCode, doc: Document, store: Arc<dyn Store>) -> Response {
    let doc = match doc.into_text() {
        Ok(text) => return scim_text(status, text),
        Err(doc) => doc,
    };
    let chunks = doc.into_chunks(store).inspect_err(|e| {
        tracing::warn!(error = %e, "a streamed SCIM answer was cut");
    });
    let mut r = (status, Body::from_stream(chunks)).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    r
}

impl IntoResponse for ScimError {
    /// The SCIM error body (RFC 7644 §3.12), with `WWW-Authenticate` on 401.
    fn into_response(self) -> Response {
        scim_error(&self)
    }
}

fn scim_error(e: &ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = scim_json(status, &e.to_json());
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scim-bridge\""),
        );
    }
    r
}

/// Adds `ETag` and, when given, `Location`.
pub fn with_resource_headers(mut r: Response, version: i64, location: Option<&str>) -> Response {
    let h: &mut HeaderMap = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&crate::directory::etag_of(version)) {
        h.insert(header::ETAG, v);
    }
    if let Some(l) = location
        && let Ok(v) = HeaderValue::from_str(l)
    {
        h.insert(header::LOCATION, v);
    }
    r
}

//! The workspace resolution API (admin tokens only):
//! `POST /api/v1/workspaces/resolve` and `GET /api/v1/workspaces/{id}/folders`.
//!
//! Answers are plain JSON, not SCIM: `{"error": code, "message": …}` on failure, with the
//! missing path or the known repositories where they help the caller.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::check_bearer;
use super::body::read_json;
use crate::resolver::{Request, ResolveError, Resolver};
use crate::scim::ScimError;
use crate::tokens::TokenScope;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/workspaces/resolve", post(resolve))
        .route("/api/v1/workspaces/{id}/{what}", get(listing))
}

fn answer(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

fn failure(e: &ResolveError) -> Response {
    let mut body = json!({"error": e.code(), "message": e.to_string()});
    match e {
        ResolveError::UnknownRepository { known, .. } => body["known"] = json!(known),
        ResolveError::Missing { path, .. } => body["path"] = json!(path),
        ResolveError::NoWorkspace { search, libraries } => {
            body["search"] = json!(search);
            body["libraries"] = json!(libraries);
        }
        ResolveError::NotLinked { link_url, .. } => body["link_url"] = json!(link_url),
        _ => {}
    }
    answer(e.status(), body)
}

/// A field as sent: of the expected type, or anything else (refused with its own
/// message, in the order the fields are checked rather than the order they came in).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Field<T> {
    Typed(T),
    Other(serde::de::IgnoredAny),
}

/// The body of `POST /api/v1/workspaces/resolve`; `null` reads as absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResolveBody {
    repository: Option<Field<String>>,
    work_type: Option<Field<String>>,
    workitem: Value,
    /// `false` searches afresh.
    cache: Option<Field<bool>>,
    /// Adds the iManage requests made to the answer.
    explain: Option<Field<bool>>,
    /// The person the search is for: iManage then answers with their rights.
    user: Option<Field<String>>,
}

impl ResolveBody {
    /// The resolution asked for, and whether to explain it.
    fn read(body: Value) -> Result<(Request, bool), ScimError> {
        // Only an object has fields; any other JSON lacks `repository`.
        let b: ResolveBody = match body {
            // Cannot fail: every field takes any JSON value.
            Value::Object(_) => serde_json::from_value(body).map_err(|e| {
                ScimError::invalid_syntax(format!(
                    "the request body is not a resolution request: {e}"
                ))
            })?,
            _ => ResolveBody::default(),
        };
        let Some(Field::Typed(repository)) = b.repository else {
            return Err(ScimError::invalid_syntax(
                "\"repository\" is required: {\"repository\": \"matters\", \"workitem\": {…}}",
            ));
        };
        let work_type = match b.work_type {
            None => None,
            Some(Field::Typed(s)) => Some(s),
            Some(Field::Other(_)) => {
                return Err(ScimError::invalid_syntax("\"work_type\" must be a string"));
            }
        };
        let fresh = match b.cache {
            None => false,
            Some(Field::Typed(cache)) => !cache,
            Some(Field::Other(_)) => {
                return Err(ScimError::invalid_syntax("\"cache\" must be true or false"));
            }
        };
        let explain = matches!(b.explain, Some(Field::Typed(true)));
        let user = match b.user {
            None => None,
            Some(Field::Typed(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(_) => {
                return Err(ScimError::invalid_syntax(
                    "\"user\" must be the person's userName, as their account link is named",
                ));
            }
        };
        let req = Request {
            repository,
            work_type,
            workitem: b.workitem,
            fresh,
            user,
        };
        Ok((req, explain))
    }
}

fn bad_request(e: &ScimError) -> Response {
    answer(
        e.status,
        json!({"error": "bad_request", "message": e.detail}),
    )
}

/// The caller's admin token, then the resolver; `Err` is the response to send.
async fn admit(state: &AppState, headers: &HeaderMap) -> Result<Arc<Resolver>, Response> {
    check_bearer(state, headers, None, TokenScope::Admin)
        .await
        .map_err(|e| {
            answer(
                e.status,
                json!({"error": "unauthorized", "message": e.detail}),
            )
        })?;
    state.resolver.get().as_ref().clone().ok_or_else(|| {
        answer(
            404,
            json!({"error": "unknown_repository", "message": "no [[repositories]] are configured", "known": []}),
        )
    })
}

async fn resolve(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let resolver = match admit(&state, &headers).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let body = match read_json(&headers, body, state.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return bad_request(&e),
    };
    let (req, explain) = match ResolveBody::read(body) {
        Ok(r) => r,
        Err(e) => return bad_request(&e),
    };
    let repository = req.repository.as_str();
    let result = resolver.resolve(&req).await;
    // Labelled by the configured name only: request text must not mint new series.
    let label = resolver
        .repositories()
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(repository.trim()))
        .map_or("(unknown)", |r| r.name.as_str());
    let outcome = match &result {
        Ok(o) if o.cached => "cached",
        Ok(_) => "searched",
        Err(e) => e.code(),
    };
    state.metrics.resolution(label, outcome);
    match result {
        Ok(outcome) => {
            let mut out = json!(outcome.resolution);
            out["cached"] = json!(outcome.cached);
            out["acted_as"] = json!(outcome.acted_as);
            if explain {
                out["requests"] = json!(outcome.requests);
            }
            answer(200, out)
        }
        Err(e) => {
            if e.status() == 502 {
                tracing::warn!(repository, error = %e, "workspace resolution failed at iManage");
            }
            failure(&e)
        }
    }
}

/// `…/{id}/folders` or `…/{id}/documents`: what is directly in a workspace, or in the
/// folder at `?path=` inside it, as `?user=` may see it when given.
async fn listing(
    State(state): State<Arc<AppState>>,
    Path((id, what)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let resolver = match admit(&state, &headers).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let arg = |k: &str| query.get(k).map(String::as_str);
    let (target, path, user) = (arg("target"), arg("path"), arg("user"));
    let listed = match what.as_str() {
        "folders" => resolver
            .list_folders(target, &id, path, user)
            .await
            .map(|f| json!(f)),
        "documents" => resolver
            .list_documents(target, &id, path, user)
            .await
            .map(|d| json!(d)),
        _ => {
            return answer(
                404,
                json!({"error": "not_found", "message": format!("no listing {what:?}: use folders or documents")}),
            );
        }
    };
    match listed {
        Ok(items) => answer(200, json!({"workspace_id": id, what: items})),
        Err(e) => failure(&e),
    }
}

//! Linking a user's account at a target (authorization code + PKCE):
//! `GET /link/{target}?user=NAME` (admin token) redirects to the provider, whose
//! consent page sends the browser back to `GET /link/{target}/callback`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::auth::check_bearer;
use crate::oauth::Linker;
use crate::scim::ScimError;
use crate::tokens::TokenScope;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/link/{target}", get(start))
        .route("/link/{target}/callback", get(callback))
}

fn linker(state: &AppState, target: &str) -> Option<Arc<Linker>> {
    state
        .targets
        .get()
        .iter()
        .find(|t| t.name == target)
        .and_then(|t| t.linker.clone())
}

async fn start(
    State(state): State<Arc<AppState>>,
    Path(target): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    check_bearer(&state, &headers, None, TokenScope::Admin).await?;
    let linker = linker(&state, &target).ok_or_else(|| {
        ScimError::not_found(format!(
            "no target named {target:?} with account linking (set [targets.auth] authorize_url)"
        ))
    })?;
    let user = query
        .get("user")
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            ScimError::new(
                400,
                None,
                "the user to link is required: /link/{target}?user=NAME",
            )
        })?;
    match linker.start(user).await {
        Ok(url) => Ok((
            StatusCode::FOUND,
            [
                (header::LOCATION, url.clone()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            axum::Json(serde_json::json!({ "authorize_url": url })),
        )
            .into_response()),
        Err(e) => {
            tracing::warn!(target_name = %target, error = %e, "cannot start an account link");
            Err(ScimError::new(400, None, e.to_string()))
        }
    }
}

/// Answers the user's browser in plain text: this page is read by a person.
async fn callback(
    State(state): State<Arc<AppState>>,
    Path(target): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let text = |code: StatusCode, body: String| {
        (code, [(header::CACHE_CONTROL, "no-store")], body).into_response()
    };
    let Some(linker) = linker(&state, &target) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("No target named {target:?} links accounts.\n"),
        );
    };
    if let Some(error) = query.get("error") {
        let detail = query
            .get("error_description")
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        tracing::info!(target_name = %target, error = %error, "account link refused at the provider");
        return text(
            StatusCode::BAD_REQUEST,
            format!("The provider did not link the account: {error}{detail}.\n"),
        );
    }
    let (Some(link_state), Some(code)) = (query.get("state"), query.get("code")) else {
        return text(
            StatusCode::BAD_REQUEST,
            "The callback needs state and code parameters.\n".into(),
        );
    };
    match linker.finish(link_state, code).await {
        Ok(user) => {
            tracing::info!(target_name = %target, user = %user, "account linked");
            text(
                StatusCode::OK,
                format!("Linked {user} to {target}. You can close this window.\n"),
            )
        }
        Err(e) => {
            tracing::warn!(target_name = %target, error = %e, "account link failed");
            text(
                StatusCode::BAD_REQUEST,
                format!("The account was not linked: {e}\n"),
            )
        }
    }
}

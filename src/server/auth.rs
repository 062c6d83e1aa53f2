//! Bearer-token authentication of a provider's SCIM base.

use std::sync::Arc;

use axum::extract::{OriginalUri, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::directory::{Provider, TokenFailure};
use crate::scim::ScimError;
use crate::tokens::{Refusal, TokenScope};

/// The provider a request is for, once authenticated.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Provider>);

/// The public id of the token a request was authenticated with (never the secret),
/// for the provisioning log.
#[derive(Debug, Clone)]
pub struct TokenId(pub String);

/// Resolves `{provider}` and checks the bearer token against the store on every
/// request, so `token revoke` from the CLI takes effect at once.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    // Inside the nested router the URI has lost its prefix; the original keeps it.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |u| u.path());
    let name = path
        .strip_prefix("/scim/v2/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let Some(provider) = state.directory.provider(name) else {
        return ScimError::not_found(format!("no provider named {name:?}")).into_response();
    };
    let token = match check_bearer(
        &state,
        req.headers(),
        Some(&provider.name),
        TokenScope::Scim,
    )
    .await
    {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(Authenticated(provider));
    req.extensions_mut().insert(TokenId(token));
    next.run(req).await
}

/// Checks the request's bearer token for `scope` (and, for SCIM tokens, `provider`),
/// recording its use; answers the token's public id. The error is what the client
/// may see.
pub async fn check_bearer(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    provider: Option<&str>,
    scope: TokenScope,
) -> Result<String, ScimError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let Some(presented) = presented else {
        state.metrics.auth_failure("missing");
        return Err(ScimError::unauthorized(
            "missing bearer token (Authorization: Bearer <token>)",
        ));
    };
    let now = state.clock.now();
    match state
        .directory
        .authenticate(presented, provider, scope, now)
        .await
    {
        Ok(id) => {
            if let Ok(mut m) = state.token_use.lock() {
                // The same few tokens call all day: no new key for each request.
                match m.get_mut(&id) {
                    Some(at) => *at = now,
                    None => {
                        m.insert(id.clone(), now);
                    }
                }
            }
            Ok(id)
        }
        Err(TokenFailure::Unavailable) => Err(ScimError::new(
            503,
            None,
            "cannot check the token right now",
        )),
        Err(TokenFailure::Refused(r)) => {
            state.metrics.auth_failure(match r {
                Refusal::Invalid => "invalid",
                Refusal::Revoked => "revoked",
                Refusal::Expired => "expired",
                Refusal::WrongAudience => "wrong_audience",
            });
            Err(ScimError::unauthorized(r.detail()))
        }
    }
}

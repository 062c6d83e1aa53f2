//! What every SCIM handler starts from: the authenticated provider, its base URL, the
//! request id, the resource kind and id of the path, and the query string.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, Query, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::auth::{Authenticated, TokenId};
use super::conn::PeerAddr;
use super::{AppState, RequestId};
use crate::directory::{Ctx, Directory};
use crate::scim::list_params::FilterRules;
use crate::scim::{Projection, Quirk, ResourceKind, ScimError, dropped_fix};

/// One call to a provider's SCIM base. Extracted first, so an unknown resource type
/// is answered (404) before the query string or the body is looked at.
pub(super) struct ScimCall {
    /// Provider, base URL, request id and the quirks tolerated so far.
    pub ctx: Ctx,
    /// The daemon's shared state.
    pub state: Arc<AppState>,
    /// `{kind}` of the route, when it has one.
    kind: Option<ResourceKind>,
    /// `{id}` of the route, when it has one.
    id: Option<String>,
    /// `If-Match`, for writes.
    pub if_match: Option<String>,
}

impl ScimCall {
    /// The resource type of a `/{kind}` route.
    pub fn kind(&self) -> Result<ResourceKind, ScimError> {
        self.kind
            .ok_or_else(|| ScimError::not_found("no resource type"))
    }

    /// `{id}` of the route (empty when it has none, which finds nothing).
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// The SCIM resource service.
    pub fn directory(&self) -> &Directory {
        &self.state.directory
    }

    /// The context and the service, apart, for operations that note quirks.
    pub fn split(&mut self) -> (&mut Ctx, &Directory) {
        (&mut self.ctx, &self.state.directory)
    }

    /// How this provider's filters are read; notes quirks on this call.
    pub fn filter_rules(&mut self) -> FilterRules<'_> {
        FilterRules {
            dialect: self.ctx.provider.dialect,
            limits: self.state.directory.limits().filter,
            quirks: &mut self.ctx.quirks,
        }
    }
}

impl Drop for ScimCall {
    /// Counts the tolerated quirks however the handler ends, `?` included, and says
    /// once per provider and attribute that an undeclared attribute was dropped.
    fn drop(&mut self) {
        let provider = &self.ctx.provider;
        for q in &self.ctx.quirks {
            self.state.metrics.quirk(&provider.name, q.as_str());
            if let Quirk::UnknownAttributeIgnored(attribute) = q
                && self.state.metrics.dropped_attribute(
                    &provider.name,
                    attribute,
                    self.state.clock.now(),
                )
            {
                // Bulk carries no type in its path; its operations are mostly users.
                let kind = self.kind.unwrap_or(ResourceKind::User);
                let fix = dropped_fix(&provider.registry, kind, attribute);
                tracing::warn!(provider = %provider.name, %attribute, kind = kind.name(), %fix, "the identity provider sent an attribute no schema declares; the bridge drops it (said once per provider and attribute; `scim-bridge status` counts them)");
            }
        }
    }
}

impl FromRequestParts<Arc<AppState>> for ScimCall {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let (Some(Authenticated(provider)), Some(RequestId(request_id))) = (
            parts.extensions.get::<Authenticated>().cloned(),
            parts.extensions.get::<RequestId>().cloned(),
        ) else {
            // Both are inserted by middleware on every SCIM route.
            return Err(
                ScimError::new(500, None, "the request was not authenticated").into_response(),
            );
        };
        // The route's own parameters, read where the router left them. Deserialising
        // them into a `HashMap<String, String>` built a map and a string for every
        // name and value on each request; and its rejection was axum's plain text,
        // not a SCIM error.
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| match rejection {
                RawPathParamsRejection::InvalidUtf8InPathParam(_) => ScimError::new(
                    400,
                    None,
                    "the path holds a percent-encoded byte sequence that is not UTF-8",
                )
                .into_response(),
                other => other.into_response(),
            })?;
        let (mut kind, mut id) = (None, None);
        for (name, value) in &params {
            match name {
                "kind" => kind = Some(value),
                "id" => id = Some(value.to_owned()),
                _ => {}
            }
        }
        let kind = match kind {
            None => None,
            Some("Users") => Some(ResourceKind::User),
            Some("Groups") => Some(ResourceKind::Group),
            Some(other) => {
                return Err(ScimError::not_found(format!(
                    "no resource type at /{other}; use /Users or /Groups"
                ))
                .into_response());
            }
        };
        let if_match = parts
            .headers
            .get(header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ScimCall {
            ctx: Ctx {
                base_url: state.settings.scim_base(&provider.name),
                provider,
                request_id: Some(request_id),
                client: client_address(parts, state),
                token: parts.extensions.get::<TokenId>().map(|t| t.0.clone()),
                quirks: Vec::new(),
            },
            state: Arc::clone(state),
            kind,
            id,
            if_match,
        })
    }
}

/// The client's address as the network policy sees it: the peer, or the address a
/// trusted proxy forwarded.
fn client_address(parts: &Parts, state: &AppState) -> Option<String> {
    let peer = parts.extensions.get::<PeerAddr>()?.0.ip();
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    state
        .network
        .get()
        .client(peer, forwarded)
        .map(|ip| ip.to_string())
}

/// The query string, with parameter names lower-cased (SCIM names are
/// case-insensitive); a malformed one is a SCIM 400.
pub(super) struct ScimQuery(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for ScimQuery {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ScimError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ScimError::invalid_syntax(format!("bad query string: {e}")))?;
        Ok(ScimQuery(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        ))
    }
}

/// `attributes` and `excludedAttributes` of the query string, read before the body.
pub(super) struct Projected(pub Projection);

impl<S: Send + Sync> FromRequestParts<S> for Projected {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ScimError> {
        let ScimQuery(q) = ScimQuery::from_request_parts(parts, state).await?;
        Projection::parse(
            q.get("attributes").as_slice(),
            q.get("excludedattributes").as_slice(),
        )
        .map(Projected)
    }
}

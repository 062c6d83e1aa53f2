//! Routes of one provider's SCIM base, `/scim/v2/{provider}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::auth::{Authenticated, require_token};
use super::respond::{scim_error, scim_json, with_resource_headers};
use super::{AppState, RequestId, method_not_allowed};
use crate::directory::{Ctx, ListParams, Projection};
use crate::scim::schema_json::{
    resource_type_json, resource_types_list_json, schema_json, schemas_list_json,
};
use crate::scim::{ResourceKind, ScimError, parse_attr_list};

pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/ServiceProviderConfig",
            get(service_provider_config).fallback(method_not_allowed),
        )
        .route("/Schemas", get(schemas).fallback(method_not_allowed))
        .route("/Schemas/{id}", get(schema).fallback(method_not_allowed))
        .route(
            "/ResourceTypes",
            get(resource_types).fallback(method_not_allowed),
        )
        .route(
            "/ResourceTypes/{id}",
            get(resource_type).fallback(method_not_allowed),
        )
        .route("/.search", post(search_all).fallback(method_not_allowed))
        .route("/Bulk", post(bulk).fallback(method_not_allowed))
        .route(
            "/{kind}",
            get(list).post(create).fallback(method_not_allowed),
        )
        .route("/{kind}/.search", post(search).fallback(method_not_allowed))
        .route(
            "/{kind}/{id}",
            get(read)
                .put(replace)
                .patch(patch)
                .delete(delete)
                .fallback(method_not_allowed),
        )
        .fallback(|| async { scim_error(&ScimError::not_found("no such SCIM endpoint")) })
        .layer(middleware::from_fn_with_state(state, require_token))
}

type Params = Path<HashMap<String, String>>;
type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn kind_of(p: &HashMap<String, String>) -> Result<ResourceKind, ScimError> {
    match p.get("kind").map(String::as_str) {
        Some("Users") => Ok(ResourceKind::User),
        Some("Groups") => Ok(ResourceKind::Group),
        Some(other) => Err(ScimError::not_found(format!(
            "no resource type at /{other}; use /Users or /Groups"
        ))),
        None => Err(ScimError::not_found("no resource type")),
    }
}

fn ctx(state: &AppState, auth: &Authenticated, rid: &RequestId) -> Ctx {
    Ctx {
        provider: Arc::clone(&auth.0),
        base_url: format!("{}/scim/v2/{}", state.settings.public_url, auth.0.name),
        request_id: Some(rid.0.clone()),
        quirks: Vec::new(),
    }
}

/// Counts tolerated quirks, then turns the outcome into a response.
fn finish(state: &AppState, ctx: &Ctx, r: Result<Response, ScimError>) -> Response {
    for q in &ctx.quirks {
        state.metrics.quirk(&ctx.provider.name, q.as_str());
    }
    r.unwrap_or_else(|e| scim_error(&e))
}

fn query_params(q: RawQuery) -> Result<HashMap<String, String>, ScimError> {
    let Query(pairs) =
        q.map_err(|e| ScimError::invalid_syntax(format!("bad query string: {e}")))?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect())
}

fn projection(q: &HashMap<String, String>) -> Result<Projection, ScimError> {
    let list = |k: &str| {
        q.get(k)
            .map(|s| parse_attr_list(s))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(Projection {
        attributes: list("attributes")?,
        excluded: list("excludedattributes")?,
    })
}

fn list_params(q: &HashMap<String, String>) -> Result<ListParams, ScimError> {
    let int = |k: &str, name: &str| {
        q.get(k)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer")))
            })
            .transpose()
    };
    Ok(ListParams {
        filter: q.get("filter").cloned(),
        start_index: int("startindex", "startIndex")?,
        count: int("count", "count")?,
        sort_by: q.get("sortby").cloned(),
        sort_order: q.get("sortorder").cloned(),
        attributes: q.get("attributes").cloned(),
        excluded_attributes: q.get("excludedattributes").cloned(),
    })
}

/// Reads a JSON body: JSON media types only, size-limited, parse errors as SCIM 400.
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

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn list(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Extension(rid): Extension<RequestId>,
    Path(p): Params,
    q: RawQuery,
) -> Response {
    let mut ctx = ctx(&state, &auth, &rid);
    let r = async {
        let kind = kind_of(&p)?;
        let params = list_params(&query_params(q)?)?;
        let body = state.directory.list(&mut ctx, &[kind], &params).await?;
        Ok(scim_json(StatusCode::OK, &body))
    }
    .await;
    finish(&state, &ctx, r)
}

async fn search(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Extension(rid): Extension<RequestId>,
    Path(p): Params,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = ctx(&state, &auth, &rid);
    let r = async {
        let kind = kind_of(&p)?;
        let body = read_json(&headers, body, state.settings.max_body_bytes).await?;
        let params = ListParams::from_search_request(&body)?;
        let out = state.directory.list(&mut ctx, &[kind], &params).await?;
        Ok(scim_json(StatusCode::OK, &out))
    }
    .await;
    finish(&state, &ctx, r)
}

async fn search_all(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = ctx(&state, &auth, &rid);
    let r = async {
        let body = read_json(&headers, body, state.settings.max_body_bytes).await?;
        let params = ListParams::from_search_request(&body)?;
        let out = state
            .directory
            .list(
                &mut ctx,
                &[ResourceKind::User, ResourceKind::Group],
                &params,
            )
            .await?;
        Ok(scim_json(StatusCode::OK, &out))
    }
    .await;
    finish(&state, &ctx, r)
}

async fn create(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Extension(rid): Extension<RequestId>,
    Path(p): Params,
    q: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = ctx(&state, &auth, &rid);
    let r = async {
        let kind = kind_of(&p)?;
        let proj = projection(&query_params(q)?)?;
        let body = read_json(&headers, body, state.settings.max_body_bytes).await?;
        let w = state.directory.create(&mut ctx, kind, body, &proj).await?;
        let resp = scim_json(StatusCode::CREATED, &w.body.unwrap_or(Value::Null));
        Ok(with_resource_headers(resp, w.version, Some(&w.location)))
    }
    .await;
    finish(&state, &ctx, r)
}

async fn read(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Extension(rid): Extension<RequestId>,
    Path(p): Params,
    q: RawQuery,
) -> Response {
    let ctx = ctx(&state, &auth, &rid);
    let r = async {
        let kind = kind_of(&p)?;
        let id = p.get("id").map(String::as_str).unwrap_or_default();
        let proj = projection(&query_params(q)?)?;
        let (body, version) = state.directory.get(&ctx, kind, id, &proj).await?;
        let location = body
            .pointer("/meta/location")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(with_resource_headers(
            scim_json(StatusCode::OK, &body),
            version,
            location.as_deref(),
        ))
    }
    .await;
    finish(&state, &ctx, r)
}

async fn replace(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Extension(rid): Extension<RequestId>,
    Path(p): Params,
    q: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = ctx(&state, &auth, &rid);
    let r = async {
        let kind = kind_of(&p)?;
        let id = p.get("id").map(String::as_str).unwrap_or_default();
        let proj = projection(&query_params(q)?)?;
        let body = read_json(&headers, body, state.settings.max_body_bytes).await?;
        let w = state
            .directory
            .replace(
                &mut ctx,
                kind,
                id,
                body,
                if_match(&headers).as_deref(),
                &proj,
            )
            .await?;
        let resp = scim_json(StatusCode::OK, &w.body.unwrap_or(Value::Null));
        Ok(with_resource_headers(resp, w.version, Some(&w.location)))
    }
    .await;
    finish(&state, &ctx, r)
}

async fn patch(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Extension(rid): Extension<RequestId>,
    Path(p): Params,
    q: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = ctx(&state, &auth, &rid);
    let r = async {
        let kind = kind_of(&p)?;
        let id = p.get("id").map(String::as_str).unwrap_or_default();
        let proj = projection(&query_params(q)?)?;
        let body = read_json(&headers, body, state.settings.max_body_bytes).await?;
        let w = state
            .directory
            .patch(
                &mut ctx,
                kind,
                id,
                &body,
                if_match(&headers).as_deref(),
                &proj,
            )
            .await?;
        let resp = match &w.body {
            Some(b) => scim_json(StatusCode::OK, b),
            None => StatusCode::NO_CONTENT.into_response(),
        };
        Ok(with_resource_headers(resp, w.version, Some(&w.location)))
    }
    .await;
    finish(&state, &ctx, r)
}

async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Extension(rid): Extension<RequestId>,
    Path(p): Params,
    headers: HeaderMap,
) -> Response {
    let ctx = ctx(&state, &auth, &rid);
    let r = async {
        let kind = kind_of(&p)?;
        let id = p.get("id").map(String::as_str).unwrap_or_default();
        state
            .directory
            .delete(&ctx, kind, id, if_match(&headers).as_deref())
            .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    finish(&state, &ctx, r)
}

async fn bulk(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = ctx(&state, &auth, &rid);
    let r = async {
        let limit = state
            .directory
            .limits()
            .bulk
            .max_payload_bytes
            .min(state.settings.max_body_bytes);
        let body = read_json(&headers, body, limit).await?;
        let out = state.directory.bulk(&mut ctx, &body).await?;
        Ok(scim_json(StatusCode::OK, &out))
    }
    .await;
    finish(&state, &ctx, r)
}

async fn service_provider_config(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    let l = state.directory.limits();
    let base = format!("{}/scim/v2/{}", state.settings.public_url, auth.0.name);
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://github.com/scim-bridge/scim-bridge#readme",
            "patch": {"supported": true},
            "bulk": {
                "supported": true,
                "maxOperations": l.bulk.max_operations,
                "maxPayloadSize": l.bulk.max_payload_bytes,
            },
            "filter": {"supported": true, "maxResults": l.max_page_size},
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A long-lived token created with `scim-bridge token create --provider NAME`.",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base}/ServiceProviderConfig"),
            },
        }),
    )
}

async fn schemas(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    let base = format!("{}/scim/v2/{}", state.settings.public_url, auth.0.name);
    scim_json(StatusCode::OK, &schemas_list_json(&auth.0.registry, &base))
}

async fn schema(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Path(p): Params,
) -> Response {
    let base = format!("{}/scim/v2/{}", state.settings.public_url, auth.0.name);
    let id = p.get("id").map(String::as_str).unwrap_or_default();
    match auth.0.registry.all().into_iter().find(|s| s.id == id) {
        Some(s) => scim_json(StatusCode::OK, &schema_json(s, &base)),
        None => scim_error(&ScimError::not_found(format!("no schema {id:?}"))),
    }
}

async fn resource_types(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    let base = format!("{}/scim/v2/{}", state.settings.public_url, auth.0.name);
    scim_json(
        StatusCode::OK,
        &resource_types_list_json(&auth.0.registry, &base),
    )
}

async fn resource_type(
    State(state): State<Arc<AppState>>,
    Extension(auth): Extension<Authenticated>,
    Path(p): Params,
) -> Response {
    let base = format!("{}/scim/v2/{}", state.settings.public_url, auth.0.name);
    let kind = match p.get("id").map(String::as_str) {
        Some("User") => ResourceKind::User,
        Some("Group") => ResourceKind::Group,
        other => {
            return scim_error(&ScimError::not_found(format!(
                "no resource type {:?}",
                other.unwrap_or_default()
            )));
        }
    };
    scim_json(
        StatusCode::OK,
        &resource_type_json(&auth.0.registry, kind, &base),
    )
}

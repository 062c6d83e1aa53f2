//! Routes of one provider's SCIM base, `/scim/v2/{provider}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::auth::require_token;
use super::body::{ScimBody, read_json};
use super::call::{Projected, ScimCall, ScimQuery};
use super::respond::{scim_document, scim_json, with_resource_headers};
use super::{AppState, method_not_allowed};
use crate::directory::{Document, Written};
use crate::scim::schema_json::{
    resource_type_json, resource_types_list_json, schema_json, schemas_list_json,
    service_provider_config_json,
};
use crate::scim::{ListParams, ResourceKind, ScimError};

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
        .fallback(|| async { ScimError::not_found("no such SCIM endpoint") })
        .layer(middleware::from_fn_with_state(state, require_token))
}

type Answer = Result<Response, ScimError>;

/// A written resource with `body`, its `ETag` and `Location`.
fn written(status: StatusCode, body: &Value, w: &Written) -> Response {
    with_resource_headers(scim_json(status, body), w.version, Some(&w.location))
}

/// A 200 whose large groups' members are read as it is sent.
fn document(call: &ScimCall, doc: Document) -> Response {
    scim_document(StatusCode::OK, doc, Arc::clone(call.directory().store()))
}

async fn list(mut call: ScimCall, ScimQuery(q): ScimQuery) -> Answer {
    let kind = call.kind()?;
    let params = ListParams::from_query(&q, call.filter_rules())?;
    let body = call.directory().list(&call.ctx, &[kind], &params).await?;
    Ok(document(&call, body))
}

async fn search(mut call: ScimCall, ScimBody(body): ScimBody) -> Answer {
    let kind = call.kind()?;
    let params = ListParams::from_search_request(&body, call.filter_rules())?;
    let out = call.directory().list(&call.ctx, &[kind], &params).await?;
    Ok(document(&call, out))
}

async fn search_all(mut call: ScimCall, ScimBody(body): ScimBody) -> Answer {
    let params = ListParams::from_search_request(&body, call.filter_rules())?;
    let kinds = [ResourceKind::User, ResourceKind::Group];
    let out = call.directory().list(&call.ctx, &kinds, &params).await?;
    Ok(document(&call, out))
}

async fn create(
    mut call: ScimCall,
    Projected(proj): Projected,
    ScimBody(body): ScimBody,
) -> Answer {
    let kind = call.kind()?;
    let (ctx, directory) = call.split();
    let w = directory.create(ctx, kind, body, &proj).await?;
    Ok(written(
        StatusCode::CREATED,
        w.body.as_ref().unwrap_or(&Value::Null),
        &w,
    ))
}

async fn read(call: ScimCall, Projected(proj): Projected) -> Answer {
    let kind = call.kind()?;
    let (body, version, location) = call
        .directory()
        .get(&call.ctx, kind, call.id(), &proj)
        .await?;
    Ok(with_resource_headers(
        document(&call, body),
        version,
        location.as_deref(),
    ))
}

async fn replace(
    mut call: ScimCall,
    Projected(proj): Projected,
    ScimBody(body): ScimBody,
) -> Answer {
    let kind = call.kind()?;
    let (id, if_match) = (call.id().to_owned(), call.if_match.take());
    let (ctx, directory) = call.split();
    let w = directory
        .replace(ctx, kind, &id, body, if_match.as_deref(), &proj)
        .await?;
    Ok(written(
        StatusCode::OK,
        w.body.as_ref().unwrap_or(&Value::Null),
        &w,
    ))
}

async fn patch(mut call: ScimCall, Projected(proj): Projected, ScimBody(body): ScimBody) -> Answer {
    let kind = call.kind()?;
    let (id, if_match) = (call.id().to_owned(), call.if_match.take());
    let (ctx, directory) = call.split();
    let w = directory
        .patch(ctx, kind, &id, &body, if_match.as_deref(), &proj)
        .await?;
    Ok(match &w.body {
        Some(b) => written(StatusCode::OK, b, &w),
        None => with_resource_headers(
            StatusCode::NO_CONTENT.into_response(),
            w.version,
            Some(&w.location),
        ),
    })
}

async fn delete(call: ScimCall) -> Answer {
    let kind = call.kind()?;
    call.directory()
        .delete(&call.ctx, kind, call.id(), call.if_match.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn bulk(mut call: ScimCall, headers: HeaderMap, body: Body) -> Answer {
    // Memory: a few bulk requests at a time (`BULK_AT_ONCE`), each read only once
    // it is its turn. The gate is never closed.
    let state = Arc::clone(&call.state);
    let _turn = state
        .bulk_gate
        .acquire()
        .await
        .map_err(|_| ScimError::new(503, None, "the server is shutting down"))?;
    // Bulk has its own, advertised, payload limit.
    let limit = call
        .directory()
        .limits()
        .bulk
        .max_payload_bytes
        .min(call.state.settings.max_body_bytes);
    let body = read_json(&headers, body, limit).await?;
    let (ctx, directory) = call.split();
    let out = directory.bulk(ctx, &body).await;
    // A bulk request is the burst of small allocations that fragments malloc's
    // heaps (see `heap`): once its operations are freed, give the pages back.
    drop(body);
    let _ = tokio::task::spawn_blocking(super::heap::release_free_memory).await;
    Ok(scim_json(StatusCode::OK, &out?))
}

async fn service_provider_config(call: ScimCall) -> Response {
    let advertised = call.directory().limits().advertised();
    scim_json(
        StatusCode::OK,
        &service_provider_config_json(advertised, &call.ctx.base_url),
    )
}

async fn schemas(call: ScimCall) -> Response {
    let body = schemas_list_json(&call.ctx.provider.registry, &call.ctx.base_url);
    scim_json(StatusCode::OK, &body)
}

async fn schema(call: ScimCall) -> Answer {
    let id = call.id();
    let registry = &call.ctx.provider.registry;
    let s = registry
        .all()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ScimError::not_found(format!("no schema {id:?}")))?;
    Ok(scim_json(
        StatusCode::OK,
        &schema_json(s, &call.ctx.base_url),
    ))
}

async fn resource_types(call: ScimCall) -> Response {
    let body = resource_types_list_json(&call.ctx.provider.registry, &call.ctx.base_url);
    scim_json(StatusCode::OK, &body)
}

async fn resource_type(call: ScimCall) -> Answer {
    let kind = match call.id() {
        "User" => ResourceKind::User,
        "Group" => ResourceKind::Group,
        other => return Err(ScimError::not_found(format!("no resource type {other:?}"))),
    };
    let body = resource_type_json(&call.ctx.provider.registry, kind, &call.ctx.base_url);
    Ok(scim_json(StatusCode::OK, &body))
}

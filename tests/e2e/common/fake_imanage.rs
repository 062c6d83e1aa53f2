//! A strict fake of the iManage Work REST API v2 on a real port: checks the
//! `X-Auth-Token` header, JSON content types and field names, answers 404 and 409 with
//! iManage's error envelope, refuses membership changes of disabled groups and, now and
//! then, answers 429 or 503 with `Retry-After` as a busy server does.
//!
//! Per-user accounts: [`approve`] plays iManage's consent page, `/auth/oauth2/token`
//! exchanges the code (PKCE S256, redirect URI, single use) and rotates refresh tokens,
//! `/auth/oauth2/revoke-token` revokes (RFC 7009), and requests made with a user's token
//! act as that user: `/api` names them and workspaces with an `acl` they are not on are
//! hidden from them.
#![allow(dead_code)]
// Handlers return whole responses as errors; boxing them would only obscure the fake.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const TOKEN: &str = "imanage-token-Qv7Lr2Zp";
pub const CLIENT_ID: &str = "scim-bridge";
pub const CLIENT_SECRET: &str = "imanage-client-secret-Hd7Qm2";
pub const SERVICE_USER: &str = "svc";
pub const SERVICE_PASSWORD: &str = "svc-password-Lp4Xn8";

/// Whether a per-user token still works, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Live,
    /// Access tokens past `user_token_ttl` or expired by [`Dms::expire_user_tokens`].
    Expired,
    /// Refresh tokens already exchanged: rotation makes them single use.
    Rotated,
    /// Revoked at `/auth/oauth2/revoke-token`, or because their code was reused.
    Revoked,
}

/// A token issued to a user through the authorization-code flow or a refresh.
#[derive(Debug, Clone)]
pub struct UserToken {
    /// iManage user id, upper-case.
    pub user: String,
    /// The authorization code the grant began with. Every token descended from one code,
    /// through any number of refreshes, shares it, so a reused code or a revoked refresh
    /// token can take down the whole grant (RFC 6749 section 10.5, RFC 7009 section 2.1).
    pub grant: String,
    pub state: TokenState,
    /// Access tokens: when they stop working. Absolute from issue, which is stricter
    /// than iManage's sliding inactivity timeout: a client that trusts `expires_in`
    /// works with both.
    pub expires: Option<std::time::Instant>,
}

/// An authorization code minted by [`approve`].
#[derive(Debug, Clone)]
pub struct AuthCode {
    /// iManage user id, upper-case.
    pub user: String,
    /// The S256 `code_challenge` of the authorization request.
    pub challenge: String,
    pub redirect_uri: String,
    /// Set by the first exchange attempt, successful or not: a code is single use.
    pub used: bool,
}

#[derive(Debug)]
pub struct Dms {
    /// id (upper-case) → user
    pub users: BTreeMap<String, Value>,
    /// id → (group, members)
    pub groups: BTreeMap<String, (Value, BTreeSet<String>)>,
    /// Workspaces in server order: `{id, name, database, custom1, …}`.
    pub workspaces: Vec<Value>,
    /// Container id (workspace or folder) → its child folders `{id, name, wstype}`.
    pub children: BTreeMap<String, Vec<Value>>,
    /// Every workspace search and children listing, as `library?query`.
    pub searches: Vec<String>,
    /// Largest page the server returns whatever `limit` asks (0 = no cap).
    pub page_cap: usize,
    /// Access tokens issued by `/auth/oauth2/token` and still valid.
    pub live_tokens: BTreeSet<String>,
    /// Tokens that were valid and have expired (answered 401 "expired").
    pub expired_tokens: BTreeSet<String>,
    /// `grant_type` of every token request.
    pub grants: Vec<String>,
    /// When each token request arrived, busy answers included.
    pub token_times: Vec<std::time::Instant>,
    /// The next token requests are answered with these (status, `Retry-After`), one
    /// each, as an overloaded or restarting auth server does.
    pub token_busy: std::collections::VecDeque<(u16, String)>,
    /// Page by offset only: never return a cursor.
    pub no_cursor: bool,
    /// Answer workspace searches with this status and an error envelope.
    pub fail_searches: Option<u16>,
    pub requests: u64,
    /// Requests allowed in any one-second window (0 = unlimited); more get 429.
    pub rate_limit: usize,
    /// Arrival times within the last second, for `rate_limit`.
    pub recent: std::collections::VecDeque<std::time::Instant>,
    /// The most requests seen in any one-second window.
    pub busiest_second: usize,
    /// Requests refused for exceeding `rate_limit`.
    pub rate_refusals: u64,
    /// Every Nth write is refused with 429 or 503 (0 = never).
    pub busy_every: u64,
    pub refused: Vec<String>,
    /// Requests whose path matched no route (`METHOD path` as sent, still encoded): an
    /// id with a raw `/` splits its segment and lands here, as on a real server.
    pub unrouted: Vec<String>,
    /// Service tokens (`TOKEN` or issued) revoked at `/auth/oauth2/revoke-token`.
    pub revoked_tokens: BTreeSet<String>,
    /// Authorization codes minted by [`approve`], used or not.
    pub codes: BTreeMap<String, AuthCode>,
    /// Per-user access tokens, whatever their state.
    pub user_access: BTreeMap<String, UserToken>,
    /// Per-user refresh tokens, whatever their state.
    pub user_refresh: BTreeMap<String, UserToken>,
    /// `expires_in` of per-user access tokens, in seconds (default 1800, iManage's
    /// default inactivity timeout); enforced.
    pub user_token_ttl: u64,
    /// `refresh_token` grant requests from an authenticated client, refused ones too.
    pub refresh_grants: u64,
    /// The user each authenticated API request acted as, in request order: `SVC` for
    /// the service account, else the upper-case user id.
    pub acted_as: Vec<String>,
    /// Every revocation request from an authenticated client as (user, kind): kind is
    /// what the token was, `access_token` or `refresh_token`, whatever the hint said;
    /// an unknown token is `("", "unknown")`. Service tokens are user `SVC`.
    pub revocations: Vec<(String, String)>,
    /// Numbers codes and per-user tokens.
    pub minted: u64,
    /// While set, every write (not a GET) waits for a permit of this gate before it
    /// is answered: a target slow to answer, whose answer the test lets go.
    pub write_gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Default for Dms {
    fn default() -> Self {
        Self {
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            workspaces: Vec::new(),
            children: BTreeMap::new(),
            searches: Vec::new(),
            page_cap: 0,
            live_tokens: BTreeSet::new(),
            expired_tokens: BTreeSet::new(),
            grants: Vec::new(),
            token_times: Vec::new(),
            token_busy: std::collections::VecDeque::new(),
            no_cursor: false,
            fail_searches: None,
            requests: 0,
            rate_limit: 0,
            recent: std::collections::VecDeque::new(),
            busiest_second: 0,
            rate_refusals: 0,
            busy_every: 0,
            refused: Vec::new(),
            unrouted: Vec::new(),
            revoked_tokens: BTreeSet::new(),
            codes: BTreeMap::new(),
            user_access: BTreeMap::new(),
            user_refresh: BTreeMap::new(),
            user_token_ttl: 1800,
            refresh_grants: 0,
            acted_as: Vec::new(),
            revocations: Vec::new(),
            minted: 0,
            write_gate: None,
        }
    }
}

/// The service account as [`Dms::acted_as`] names it.
pub const SVC: &str = "SVC";

pub type Shared = Arc<Mutex<Dms>>;

fn envelope(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": {"code": code, "code_message": message, "messages": [], "dms_version": "10.4", "transaction": "t-1"}}).to_string(),
    )
        .into_response()
}

/// Counts a request against `rate_limit`, API and token requests alike: one host,
/// one limit.
fn rate(d: &mut Dms) -> Result<(), Response> {
    let now = std::time::Instant::now();
    while d
        .recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= std::time::Duration::from_secs(1))
    {
        d.recent.pop_front();
    }
    if d.rate_limit > 0 && d.recent.len() >= d.rate_limit {
        d.rate_refusals += 1;
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "rate limit",
        )
            .into_response());
    }
    d.recent.push_back(now);
    d.busiest_second = d.busiest_second.max(d.recent.len());
    Ok(())
}

/// Why a presented token does not work.
enum Refusal {
    Bad,
    Expired,
    Revoked,
}

/// Who `presented` acts as: [`SVC`] for the service account, else the user.
fn identify(d: &mut Dms, presented: Option<&str>) -> Result<String, Refusal> {
    let t = presented.ok_or(Refusal::Bad)?;
    if d.revoked_tokens.contains(t) {
        return Err(Refusal::Revoked);
    }
    if t == TOKEN || d.live_tokens.contains(t) {
        return Ok(SVC.into());
    }
    if d.expired_tokens.contains(t) {
        return Err(Refusal::Expired);
    }
    let Some(ut) = d.user_access.get_mut(t) else {
        return Err(Refusal::Bad);
    };
    if ut.state == TokenState::Live && ut.expires.is_some_and(|e| e <= std::time::Instant::now()) {
        ut.state = TokenState::Expired;
    }
    match ut.state {
        TokenState::Live => Ok(ut.user.clone()),
        TokenState::Expired => Err(Refusal::Expired),
        TokenState::Rotated | TokenState::Revoked => Err(Refusal::Revoked),
    }
}

/// Checks auth, content type and allowed fields; counts busy refusals. Answers the
/// user the request acts as ([`SVC`] or an upper-case user id), also recorded in
/// `acted_as`.
fn check(
    d: &mut Dms,
    method: &Method,
    headers: &HeaderMap,
    body: Option<&Value>,
    allowed: &[&str],
) -> Result<String, Response> {
    d.requests += 1;
    rate(d)?;
    let presented = headers.get("x-auth-token").and_then(|v| v.to_str().ok());
    let who = match identify(d, presented) {
        // The default header is X-Auth-Token: a bearer header means a misconfigured client.
        Ok(_) if headers.contains_key(header::AUTHORIZATION) => Err(Refusal::Bad),
        other => other,
    };
    let who = match who {
        Ok(who) => who,
        Err(refusal) => {
            let (refused, message) = match refusal {
                Refusal::Expired => ("expired token", "token expired"),
                Refusal::Revoked => ("revoked token", "bad token"),
                Refusal::Bad => ("auth", "bad token"),
            };
            d.refused.push(refused.into());
            return Err(envelope(StatusCode::UNAUTHORIZED, "NRC_AUTH", message));
        }
    };
    if *method != Method::GET {
        if d.busy_every > 0 && d.requests.is_multiple_of(d.busy_every) {
            let status = if d.requests.is_multiple_of(2) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return Err((status, [(header::RETRY_AFTER, "1")], "busy").into_response());
        }
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ctype.starts_with("application/json") {
            d.refused.push(format!("content type {ctype}"));
            return Err(envelope(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "NRC_BAD_CONTENT",
                "json only",
            ));
        }
        if let Some(obj) = body.and_then(Value::as_object) {
            for k in obj.keys() {
                if !allowed.contains(&k.as_str()) {
                    d.refused.push(format!("unknown field {k}"));
                    return Err(envelope(
                        StatusCode::BAD_REQUEST,
                        "NRC_INVALID_PARAM",
                        &format!("unknown field {k}"),
                    ));
                }
            }
        }
    }
    d.acted_as.push(who.clone());
    Ok(who)
}

const USER_FIELDS: &[&str] = &[
    "id",
    "full_name",
    "email",
    "allow_logon",
    "user_nos",
    "location",
    "phone",
];
const GROUP_FIELDS: &[&str] = &["id", "full_name", "enabled", "group_nos", "is_external"];
const MEMBER_FIELDS: &[&str] = &["database", "data_type", "data", "action"];

pub fn start_blocking(dms: Shared) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new()
                .route("/api", get(discovery))
                .route("/auth/oauth2/token", post(token))
                .route("/auth/oauth2/revoke-token", post(revoke))
                .route("/work/api/v2/customers/{cid}/users", get(list_users))
                .route("/work/api/v2/customers/{cid}/groups", get(list_groups))
                .route("/work/api/v2/customers/{cid}/users", post(create_user))
                .route(
                    "/work/api/v2/customers/{cid}/users/{id}",
                    patch(update_user).get(get_user),
                )
                .route(
                    "/work/api/v2/customers/{cid}/users/{id}/groups",
                    get(user_groups),
                )
                .route(
                    "/work/api/v2/customers/{cid}/libraries/{lib}/groups",
                    post(create_group),
                )
                .route(
                    "/work/api/v2/customers/{cid}/groups/{gid}",
                    patch(update_group).get(get_group),
                )
                .route(
                    "/work/api/v2/customers/{cid}/libraries/{lib}/groups/{gid}/members",
                    put(members).get(list_members),
                )
                .route(
                    "/work/api/v2/customers/{cid}/libraries/{lib}/workspaces",
                    get(search_workspaces),
                )
                .route(
                    "/work/api/v2/customers/{cid}/libraries/{lib}/workspaces/{id}/children",
                    get(children),
                )
                .route(
                    "/work/api/v2/customers/{cid}/libraries/{lib}/folders/{id}/children",
                    get(children),
                )
                .fallback(unrouted)
                .layer(axum::middleware::from_fn_with_state(dms.clone(), gated))
                .with_state(dms);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}", listener.local_addr().unwrap()))
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Holds a write until the test opens [`Dms::write_gate`].
async fn gated(
    State(d): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let gate = d.lock().unwrap().write_gate.clone();
    if let Some(gate) = gate.filter(|_| req.method() != Method::GET) {
        let _open = gate.acquire().await;
    }
    next.run(req).await
}

/// Any path no route matches: iManage's 404 envelope, recorded for the test.
async fn unrouted(State(d): State<Shared>, method: Method, uri: axum::http::Uri) -> Response {
    d.lock()
        .unwrap()
        .unrouted
        .push(format!("{method} {}", uri.path()));
    envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such resource")
}

/// `GET /api`: discovery, answered as the token's user, so a client can ask who
/// approved a link.
async fn discovery(State(d): State<Shared>, headers: HeaderMap) -> Response {
    let who = match check(&mut d.lock().unwrap(), &Method::GET, &headers, None, &[]) {
        Ok(who) => who,
        Err(r) => return r,
    };
    let id = if who == SVC {
        SERVICE_USER.to_owned()
    } else {
        who
    };
    axum::Json(json!({"data": {"user": {"customer_id": 1, "id": id}, "work": {"preferred_library": "ACTIVE", "libraries": [{"alias": "ACTIVE"}]}, "versions": []}})).into_response()
}

fn parse(body: &str) -> Result<Value, Response> {
    serde_json::from_str(body)
        .map_err(|_| envelope(StatusCode::BAD_REQUEST, "NRC_INVALID_JSON", "bad json"))
}

/// Parses the JSON body and runs [`check`]; hands back the locked state and the body.
fn begin<'a>(
    d: &'a Shared,
    method: Method,
    headers: &HeaderMap,
    body: &str,
    fields: &[&str],
) -> Result<(std::sync::MutexGuard<'a, Dms>, Value), Response> {
    let v = parse(body)?;
    let mut guard = d.lock().unwrap();
    check(&mut guard, &method, headers, Some(&v), fields)?;
    Ok((guard, v))
}

async fn create_user(
    State(d): State<Shared>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (mut d, v) = match begin(&d, Method::POST, &headers, &body, USER_FIELDS) {
        Ok(x) => x,
        Err(r) => return r,
    };
    assert_eq!(cid, "1");
    let id = v["id"].as_str().unwrap_or("").to_uppercase();
    if id.is_empty() || id.contains(char::is_whitespace) {
        return envelope(StatusCode::BAD_REQUEST, "NRC_INVALID_PARAM", "bad id");
    }
    if d.users.contains_key(&id) {
        return envelope(StatusCode::CONFLICT, "NRC_ALREADY_EXISTS", "user exists");
    }
    d.users.insert(id, v.clone());
    (StatusCode::CREATED, axum::Json(json!({"data": v}))).into_response()
}

async fn update_user(
    State(d): State<Shared>,
    Path((_cid, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (mut d, v) = match begin(&d, Method::PATCH, &headers, &body, USER_FIELDS) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(user) = d.users.get_mut(&id.to_uppercase()) else {
        return envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such user");
    };
    for (k, val) in v.as_object().unwrap() {
        user[k] = val.clone();
    }
    axum::Json(json!({"data": user.clone()})).into_response()
}

async fn create_group(
    State(d): State<Shared>,
    Path((_cid, lib)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (mut d, v) = match begin(&d, Method::POST, &headers, &body, GROUP_FIELDS) {
        Ok(x) => x,
        Err(r) => return r,
    };
    assert_eq!(lib, "ACTIVE");
    let id = v["id"].as_str().unwrap_or("").to_owned();
    if d.groups.contains_key(&id) {
        return envelope(StatusCode::CONFLICT, "NRC_ALREADY_EXISTS", "group exists");
    }
    d.groups.insert(id, (v.clone(), BTreeSet::new()));
    (StatusCode::CREATED, axum::Json(json!({"data": v}))).into_response()
}

async fn update_group(
    State(d): State<Shared>,
    Path((_cid, gid)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (mut d, v) = match begin(&d, Method::PATCH, &headers, &body, GROUP_FIELDS) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some((group, _)) = d.groups.get_mut(&gid) else {
        return envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such group");
    };
    for (k, val) in v.as_object().unwrap() {
        group[k] = val.clone();
    }
    axum::Json(json!({"data": group.clone()})).into_response()
}

async fn members(
    State(d): State<Shared>,
    Path((_cid, lib, gid)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (mut d, v) = match begin(&d, Method::PUT, &headers, &body, MEMBER_FIELDS) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if v["database"] != lib || v["data_type"] != "users" {
        return envelope(
            StatusCode::BAD_REQUEST,
            "NRC_INVALID_PARAM",
            "database/data_type",
        );
    }
    let ids: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_uppercase())
        .collect();
    if let Some(missing) = ids.iter().find(|i| !d.users.contains_key(*i)) {
        return envelope(
            StatusCode::NOT_FOUND,
            "NRC_NO_RECORD",
            &format!("no user {missing}"),
        );
    }
    let Some((group, set)) = d.groups.get_mut(&gid) else {
        return envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such group");
    };
    if group["enabled"] == false {
        return envelope(
            StatusCode::BAD_REQUEST,
            "NRC_GROUP_DISABLED",
            "disabled group",
        );
    }
    for id in ids {
        match v["action"].as_str() {
            Some("add") => {
                set.insert(id);
            }
            Some("delete") => {
                set.remove(&id);
            }
            _ => return envelope(StatusCode::BAD_REQUEST, "NRC_INVALID_PARAM", "action"),
        }
    }
    axum::Json(json!({"data": {}})).into_response()
}

/// Words of a title as iManage's name search sees them.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn search_params_ok(params: &[(String, String)]) -> Result<(), Response> {
    for (k, v) in params {
        let custom = k
            .strip_prefix("custom")
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=30).contains(&n));
        let known = custom
            || matches!(
                k.as_str(),
                "name" | "description" | "limit" | "offset" | "cursor" | "total"
            );
        if !known {
            return Err(envelope(
                StatusCode::BAD_REQUEST,
                "NRC_INVALID_PARAM",
                &format!("unknown parameter {k}"),
            ));
        }
        if v.trim().is_empty() {
            return Err(envelope(
                StatusCode::BAD_REQUEST,
                "NRC_INVALID_PARAM",
                &format!("empty {k}"),
            ));
        }
        if k == "limit" && v.parse::<usize>().map_or(true, |n| n == 0 || n > 9999) {
            return Err(envelope(
                StatusCode::BAD_REQUEST,
                "NRC_INVALID_PARAM",
                "limit",
            ));
        }
    }
    Ok(())
}

/// `GET …/libraries/{lib}/workspaces`: word search on `name`, exact case-insensitive
/// `customN`, cursor or offset paging, `{"data":{"results":[…]}}`.
async fn search_workspaces(
    State(d): State<Shared>,
    Path((_cid, lib)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let mut d = d.lock().unwrap();
    let who = match check(&mut d, &Method::GET, &headers, None, &[]) {
        Ok(who) => who,
        Err(r) => return r,
    };
    if let Err(r) = search_params_ok(&params) {
        return r;
    }
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    d.searches.push(format!("{lib}?{}", query.join("&")));
    if let Some(status) = d.fail_searches {
        return envelope(
            StatusCode::from_u16(status).unwrap(),
            "NRC_INTERNAL",
            "search index unavailable",
        );
    }
    let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    let hits: Vec<Value> = d
        .workspaces
        .iter()
        .filter(|w| w["database"] == lib.as_str())
        .filter(|w| visible(w, &who))
        .filter(|w| {
            params.iter().all(|(k, v)| match k.as_str() {
                "name" => {
                    let have = words(w["name"].as_str().unwrap_or(""));
                    words(v).iter().all(|x| have.contains(x))
                }
                k if k.starts_with("custom") => {
                    w[k].as_str().is_some_and(|x| x.eq_ignore_ascii_case(v))
                }
                _ => true,
            })
        })
        .map(public)
        .collect();
    let mut limit: usize = get("limit").map_or(100, |l| l.parse().unwrap());
    if d.page_cap > 0 {
        limit = limit.min(d.page_cap);
    }
    let start = match (get("cursor"), get("offset")) {
        (Some(c), _) => c.trim_start_matches('c').parse().unwrap(),
        (None, Some(o)) => o.parse().unwrap(),
        (None, None) => 0,
    };
    let page: Vec<Value> = hits.iter().skip(start).take(limit).cloned().collect();
    let mut body = json!({"data": {"results": page}});
    if start + limit < hits.len() && !d.no_cursor {
        body["cursor"] = json!(format!("c{}", start + limit));
    }
    axum::Json(body).into_response()
}

/// Whether `who` may see workspace `w`: iManage security (matter access, ethical walls)
/// hides a workspace with an `acl` from users not on it; the service account and
/// workspaces without an `acl` are unrestricted.
fn visible(w: &Value, who: &str) -> bool {
    who == SVC
        || w.get("acl").and_then(Value::as_array).is_none_or(|acl| {
            acl.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(who)))
        })
}

/// A workspace or folder as iManage answers it: its security is never shown.
fn public(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("acl");
    }
    v
}

/// Whether container `id`, a workspace or a folder at any depth inside one, lies in a
/// workspace hidden from `who`: a folder id learnt elsewhere must not get round the
/// workspace's security.
fn container_hidden(d: &Dms, id: &str, who: &str) -> bool {
    let mut id = id.to_owned();
    // Bounded: a seeded tree with a cycle must not hang the fake.
    for _ in 0..64 {
        if let Some(w) = d.workspaces.iter().find(|w| w["id"] == id.as_str()) {
            return !visible(w, who);
        }
        match d
            .children
            .iter()
            .find(|(_, kids)| kids.iter().any(|k| k["id"] == id.as_str()))
        {
            Some((parent, _)) => id = parent.clone(),
            None => return false,
        }
    }
    false
}

/// Children of a workspace or folder, in the POST-style shape `{"data":[…]}`.
async fn children(
    State(d): State<Shared>,
    Path((_cid, lib, id)): Path<(String, String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let mut d = d.lock().unwrap();
    let who = match check(&mut d, &Method::GET, &headers, None, &[]) {
        Ok(who) => who,
        Err(r) => return r,
    };
    d.searches.push(format!("{lib}/{id}/children"));
    // Folders only with exclude_docs=true; documents too without it.
    let folders_only = params
        .iter()
        .any(|(k, v)| k == "exclude_docs" && v == "true");
    if !id.starts_with(&format!("{lib}!")) {
        return envelope(
            StatusCode::NOT_FOUND,
            "NRC_NO_RECORD",
            "not in this library",
        );
    }
    // Answered exactly as for a container that does not exist: its existence must not leak.
    if container_hidden(&d, &id, &who) {
        return envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such container");
    }
    let (limit, start) = match paging(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match d.children.get(&id) {
        Some(items) => {
            let page: Vec<Value> = items
                .iter()
                .filter(|i| !folders_only || i["wstype"] != "document")
                .skip(start)
                .take(limit)
                .map(public)
                .collect();
            axum::Json(json!({"data": page})).into_response()
        }
        None if d.workspaces.iter().any(|w| w["id"] == id.as_str()) => {
            axum::Json(json!({"data": []})).into_response()
        }
        None => envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such container"),
    }
}

impl Dms {
    /// Expires every issued token, as iManage's inactivity timeout does.
    pub fn expire_tokens(&mut self) {
        let live = std::mem::take(&mut self.live_tokens);
        self.expired_tokens.extend(live);
    }

    /// Expires `user`'s live access tokens as the inactivity timeout does; refresh
    /// tokens stay valid, so the next use must refresh.
    pub fn expire_user_tokens(&mut self, user: &str) {
        let user = user.to_uppercase();
        for t in self.user_access.values_mut() {
            if t.user == user && t.state == TokenState::Live {
                t.state = TokenState::Expired;
            }
        }
    }
}

/// `POST /auth/oauth2/token`: client credentials or the service account's password
/// grant (service tokens, live until expired by the test), and a user's
/// authorization code or refresh token (per-user tokens, see [`approve`]); client
/// authenticated in the form or with HTTP Basic.
async fn token(State(d): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut d = d.lock().unwrap();
    d.token_times.push(std::time::Instant::now());
    // iManage's auth endpoint is on the API host: its requests count against the limit.
    if let Err(r) = rate(&mut d) {
        return r;
    }
    if let Some((status, retry_after)) = d.token_busy.pop_front() {
        // iManage's envelope, not an OAuth error: what its gateway sends when busy.
        let mut r = envelope(
            StatusCode::from_u16(status).unwrap(),
            "NRC_SERVICE_BUSY",
            "authentication service busy",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, retry_after.parse().unwrap());
        return r;
    }
    let form = match form_body(&headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    d.grants.push(grant.clone());
    if !client_authenticated(&headers, &form) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "bad client credentials",
        );
    }
    let field = |k: &str| form.get(k).map(String::as_str);
    match grant.as_str() {
        "client_credentials" => {}
        "password"
            if field("username") == Some(SERVICE_USER)
                && field("password") == Some(SERVICE_PASSWORD) => {}
        "password" => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "bad user credentials",
            );
        }
        "authorization_code" => return exchange_code(&mut d, &form),
        "refresh_token" => return refresh(&mut d, &form),
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant not supported",
            );
        }
    }
    let access = format!("im-at-{}-Wq3", d.grants.len());
    d.live_tokens.insert(access.clone());
    axum::Json(json!({"access_token": access, "token_type": "bearer", "expires_in": 1800, "scope": "admin"})).into_response()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// The form of a token or revocation request: `application/x-www-form-urlencoded` only.
fn form_body(headers: &HeaderMap, body: &str) -> Result<BTreeMap<String, String>, Response> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype.starts_with("application/x-www-form-urlencoded") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "form body required",
        ));
    }
    Ok(url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect())
}

/// Client authentication with the secret in the form or in HTTP Basic (RFC 6749
/// section 2.3.1: Basic's id and secret form-encoded first), never both at once.
fn client_authenticated(headers: &HeaderMap, form: &BTreeMap<String, String>) -> bool {
    let field = |k: &str| form.get(k).map(String::as_str);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match basic {
        Some(pair) => {
            let decode = |s: &str| -> String {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            let (id, secret) = pair.split_once(':').unwrap_or((pair.as_str(), ""));
            decode(id) == CLIENT_ID
                && decode(secret) == CLIENT_SECRET
                && field("client_secret").is_none()
                && field("client_id").is_none_or(|c| c == CLIENT_ID)
        }
        None => {
            field("client_id") == Some(CLIENT_ID) && field("client_secret") == Some(CLIENT_SECRET)
        }
    }
}

/// Mints an access and a refresh token for `user` under `grant` (the code it began with).
fn issue_user_tokens(d: &mut Dms, user: &str, grant: &str) -> Response {
    d.minted += 1;
    let n = d.minted;
    let access = format!("im-uat-{n}-Rk8");
    let refresh = format!("im-urt-{n}-Zt5");
    let token = UserToken {
        user: user.to_owned(),
        grant: grant.to_owned(),
        state: TokenState::Live,
        expires: Some(std::time::Instant::now() + std::time::Duration::from_secs(d.user_token_ttl)),
    };
    d.user_refresh.insert(
        refresh.clone(),
        UserToken {
            expires: None,
            ..token.clone()
        },
    );
    d.user_access.insert(access.clone(), token);
    axum::Json(json!({"access_token": access, "token_type": "bearer", "expires_in": d.user_token_ttl, "refresh_token": refresh, "scope": "user"})).into_response()
}

/// Marks every token descended from `grant` revoked.
fn revoke_grant(d: &mut Dms, grant: &str) {
    for t in d
        .user_access
        .values_mut()
        .chain(d.user_refresh.values_mut())
    {
        if t.grant == grant {
            t.state = TokenState::Revoked;
        }
    }
}

/// `grant_type=authorization_code` (RFC 6749 section 4.1.3, RFC 7636 section 4.6).
fn exchange_code(d: &mut Dms, form: &BTreeMap<String, String>) -> Response {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let code = field("code");
    let Some(c) = d.codes.get_mut(code) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
    };
    if c.used {
        // A second use means the code may have leaked: nothing issued from it is
        // trusted any more (RFC 6749 sections 4.1.2 and 10.5).
        revoke_grant(d, code);
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code already used",
        );
    }
    // Spent by any attempt, so a stolen code cannot be tried against many verifiers.
    c.used = true;
    let c = c.clone();
    if field("redirect_uri") != c.redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri does not match the authorization request",
        );
    }
    let verifier = field("code_verifier");
    // RFC 7636 section 4.1: 43 to 128 unreserved characters.
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    if !well_formed || computed != c.challenge {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed",
        );
    }
    issue_user_tokens(d, &c.user, code)
}

/// `grant_type=refresh_token` with rotation: the refresh token presented is spent and a
/// new one comes with the new access token.
fn refresh(d: &mut Dms, form: &BTreeMap<String, String>) -> Response {
    d.refresh_grants += 1;
    let presented = form.get("refresh_token").map(String::as_str).unwrap_or("");
    let Some(t) = d
        .user_refresh
        .get_mut(presented)
        .filter(|t| t.state == TokenState::Live)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token unknown, used or revoked",
        );
    };
    t.state = TokenState::Rotated;
    let (user, grant) = (t.user.clone(), t.grant.clone());
    issue_user_tokens(d, &user, &grant)
}

/// `POST /auth/oauth2/revoke-token` (RFC 7009): the token in `token`, or in iManage's
/// documented `access_token` field. A refresh token takes down every token of its
/// grant (RFC 7009 section 2.1); an unknown token is still 200 (section 2.2).
async fn revoke(State(d): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut d = d.lock().unwrap();
    // Same host and limit as the token endpoint.
    if let Err(r) = rate(&mut d) {
        return r;
    }
    let form = match form_body(&headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !client_authenticated(&headers, &form) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "bad client credentials",
        );
    }
    let Some(token) = form.get("token").or_else(|| form.get("access_token")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token required");
    };
    // The hint only speeds up a real server's lookup; every kind is searched.
    let record = if let Some(t) = d.user_access.get_mut(token) {
        t.state = TokenState::Revoked;
        (t.user.clone(), "access_token")
    } else if let Some(t) = d.user_refresh.get(token) {
        let (user, grant) = (t.user.clone(), t.grant.clone());
        revoke_grant(&mut d, &grant);
        (user, "refresh_token")
    } else if token == TOKEN || d.live_tokens.contains(token) || d.expired_tokens.contains(token) {
        d.live_tokens.remove(token);
        d.expired_tokens.remove(token);
        d.revoked_tokens.insert(token.clone());
        (SVC.to_owned(), "access_token")
    } else {
        (String::new(), "unknown")
    };
    d.revocations.push((record.0, record.1.to_owned()));
    StatusCode::OK.into_response()
}

/// What iManage's consent page does when `user` signs in and approves the bridge's
/// authorization request: mints a single-use code bound to that user, the request's S256
/// `code_challenge` and its `redirect_uri`, and returns it for the callback.
pub fn approve(dms: &Shared, user: &str, code_challenge: &str, redirect_uri: &str) -> String {
    let mut d = dms.lock().unwrap();
    d.minted += 1;
    let code = format!("im-code-{}-Pv6", d.minted);
    d.codes.insert(
        code.clone(),
        AuthCode {
            user: user.to_uppercase(),
            challenge: code_challenge.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            used: false,
        },
    );
    code
}

/// Reads `(state, code_challenge, redirect_uri)` from the URL the bridge sends a
/// browser to, asserting it is an authorization-code request with PKCE S256 for this
/// fake's client at iManage's authorize path.
pub fn authorize_params(url: &str) -> (String, String, String) {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("authorize URL {url}: {e}"));
    assert_eq!(parsed.path(), "/auth/oauth2/authorize", "{url}");
    let q: BTreeMap<String, String> = parsed.query_pairs().into_owned().collect();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    assert_eq!(get("response_type"), "code", "{url}");
    assert_eq!(get("code_challenge_method"), "S256", "{url}");
    assert_eq!(get("client_id"), CLIENT_ID, "{url}");
    // S256 of anything is 32 bytes: 43 base64url characters without padding.
    assert_eq!(get("code_challenge").len(), 43, "{url}");
    assert!(!get("state").is_empty(), "{url}");
    assert!(!get("redirect_uri").is_empty(), "{url}");
    (get("state"), get("code_challenge"), get("redirect_uri"))
}

fn paging(params: &[(String, String)]) -> Result<(usize, usize), Response> {
    let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    let limit = match get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if (1..=9999).contains(&l) => l,
        _ => {
            return Err(envelope(
                StatusCode::BAD_REQUEST,
                "NRC_INVALID_PARAM",
                "limit",
            ));
        }
    };
    let start = match (get("cursor"), get("offset")) {
        (Some(c), _) => c
            .trim_start_matches('c')
            .parse()
            .map_err(|_| envelope(StatusCode::BAD_REQUEST, "NRC_INVALID_PARAM", "cursor"))?,
        (None, Some(o)) => o
            .parse()
            .map_err(|_| envelope(StatusCode::BAD_REQUEST, "NRC_INVALID_PARAM", "offset"))?,
        (None, None) => 0,
    };
    Ok((limit, start))
}

/// Locks the fake, checks the request and reads its paging (capped by `page_cap`).
fn listing<'a>(
    d: &'a Shared,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<(std::sync::MutexGuard<'a, Dms>, usize, usize), Response> {
    let mut d = d.lock().unwrap();
    check(&mut d, &Method::GET, headers, None, &[])?;
    let (mut limit, start) = paging(params)?;
    if d.page_cap > 0 {
        limit = limit.min(d.page_cap);
    }
    Ok((d, limit, start))
}

/// `GET …/users`: offset paging only, `{"data":{"results":[…]}, "total_count"}`.
async fn list_users(
    State(d): State<Shared>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let (d, limit, start) = match listing(&d, &headers, &params) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut all: Vec<Value> =
        vec![json!({"id": "SVC", "full_name": "Service account", "allow_logon": true})];
    all.extend(d.users.iter().map(|(id, u)| {
        let mut u = u.clone();
        u["id"] = json!(id);
        u
    }));
    // iManage's `email` filter matches part of the address, ignoring case: the
    // bridge must compare whole addresses itself.
    if let Some((_, want)) = params.iter().find(|(k, _)| k == "email") {
        let want = want.to_lowercase();
        all.retain(|u| {
            u["email"]
                .as_str()
                .is_some_and(|e| e.to_lowercase().contains(&want))
        });
    }
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    axum::Json(json!({"data": {"results": page}, "total_count": all.len()})).into_response()
}

/// `GET …/groups`: cursor paging, in the POST-style shape `{"data":[…], "cursor"}`.
async fn list_groups(
    State(d): State<Shared>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let (d, limit, start) = match listing(&d, &headers, &params) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut all: Vec<Value> = d.groups.values().map(|(g, _)| g.clone()).collect();
    // `query` matches words of the id or name, ignoring case.
    if let Some((_, want)) = params.iter().find(|(k, _)| k == "query") {
        let want = want.to_lowercase();
        all.retain(|g| {
            ["id", "full_name"].iter().any(|k| {
                g[*k]
                    .as_str()
                    .is_some_and(|v| v.to_lowercase().contains(&want))
            })
        });
    }
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let mut body = json!({"data": page});
    if start + limit < all.len() {
        body["cursor"] = json!(format!("c{}", start + limit));
    }
    axum::Json(body).into_response()
}

/// `GET …/groups/{gid}/members`: paged like the other lists (`limit` capped by
/// `page_cap`, `offset` or `cursor`), `{"data":[…]}` with a `cursor` while more exist.
async fn list_members(
    State(d): State<Shared>,
    Path((_cid, _lib, gid)): Path<(String, String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let (d, limit, start) = match listing(&d, &headers, &params) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some((_, members)) = d.groups.get(&gid) else {
        return envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such group");
    };
    let page: Vec<Value> = members
        .iter()
        .skip(start)
        .take(limit)
        .map(|m| json!({"id": m}))
        .collect();
    let mut body = json!({"data": page});
    if start + limit < members.len() && !d.no_cursor {
        body["cursor"] = json!(format!("c{}", start + limit));
    }
    axum::Json(body).into_response()
}

/// `GET …/users/{id}`: one user, `{"data": {…}}`.
async fn get_user(
    State(d): State<Shared>,
    Path((_cid, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut d = d.lock().unwrap();
    if let Err(r) = check(&mut d, &Method::GET, &headers, None, &[]) {
        return r;
    }
    let id = id.to_uppercase();
    match d.users.get(&id) {
        Some(u) => {
            let mut u = u.clone();
            u["id"] = json!(id);
            axum::Json(json!({"data": u})).into_response()
        }
        None => envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such user"),
    }
}

/// `GET …/users/{id}/groups`: the groups a user is a member of.
async fn user_groups(
    State(d): State<Shared>,
    Path((_cid, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut d = d.lock().unwrap();
    if let Err(r) = check(&mut d, &Method::GET, &headers, None, &[]) {
        return r;
    }
    let id = id.to_uppercase();
    if !d.users.contains_key(&id) {
        return envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such user");
    }
    let data: Vec<Value> = d
        .groups
        .values()
        .filter(|(_, members)| members.contains(&id))
        .map(|(g, _)| {
            let mut g = g.clone();
            g["database"] = json!("ACTIVE");
            g
        })
        .collect();
    axum::Json(json!({"data": data})).into_response()
}

/// `GET …/groups/{gid}`: one group.
async fn get_group(
    State(d): State<Shared>,
    Path((_cid, gid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut d = d.lock().unwrap();
    if let Err(r) = check(&mut d, &Method::GET, &headers, None, &[]) {
        return r;
    }
    match d.groups.get(&gid) {
        Some((g, _)) => axum::Json(json!({"data": g})).into_response(),
        None => envelope(StatusCode::NOT_FOUND, "NRC_NO_RECORD", "no such group"),
    }
}

//! A strict fake OAuth2 authorization server and a resource API behind it, on a real
//! local port: checks client authentication, content types, grant parameters and PKCE
//! exactly, and counts every token request.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "bridge-client";
pub const CLIENT_SECRET: &str = "client-secret-Zq8v2Lr5Tn1Wk7Py";

/// What the fake does with token requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// 401 `invalid_client` for everything.
    InvalidClient,
    /// 200 with an HTML login page.
    Html,
    /// 200 JSON without `access_token`, but with a secret-looking field.
    Garbage,
}

#[derive(Debug)]
pub struct Fake {
    pub mode: Mode,
    /// How the client must authenticate: `basic` or `post`.
    pub client_auth: &'static str,
    pub expires_in: Option<u64>,
    pub issue_refresh: bool,
    pub reject_refresh: bool,
    pub delay: Duration,
    /// `grant_type` of every token request, in order.
    pub grants: Vec<String>,
    pub scopes_seen: Vec<String>,
    pub access: HashSet<String>,
    pub refresh: HashSet<String>,
    /// code → (code_challenge, redirect_uri)
    pub codes: HashMap<String, (String, String)>,
    pub next: u64,
    pub api_calls: u64,
}

pub type Shared = Arc<Mutex<Fake>>;

pub fn new_fake(client_auth: &'static str) -> Shared {
    Arc::new(Mutex::new(Fake {
        mode: Mode::Normal,
        client_auth,
        expires_in: Some(3600),
        issue_refresh: false,
        reject_refresh: false,
        delay: Duration::ZERO,
        grants: Vec::new(),
        scopes_seen: Vec::new(),
        access: HashSet::new(),
        refresh: HashSet::new(),
        codes: HashMap::new(),
        next: 0,
        api_calls: 0,
    }))
}

/// Starts the fake; returns its base URL.
pub async fn start(fake: Shared) -> String {
    let app = Router::new()
        .route("/oauth2/token", post(token))
        .route("/api", get(api))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

/// Starts the fake on its own runtime thread, for tests that drive the real binary
/// from synchronous code.
pub fn start_blocking(fake: Shared) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tx.send(start(fake).await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// Simulates the user's consent at the provider: registers a code for the given PKCE
/// challenge and returns it.
pub fn approve(fake: &Shared, challenge: &str, redirect_uri: &str) -> String {
    let mut f = fake.lock().unwrap();
    f.next += 1;
    let code = format!("code-{}", f.next);
    f.codes.insert(
        code.clone(),
        (challenge.to_owned(), redirect_uri.to_owned()),
    );
    code
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"error": code, "error_description": description}).to_string(),
    )
        .into_response()
}

async fn token(State(fake): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let delay = fake.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let mut f = fake.lock().unwrap();
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "form body required",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    f.grants.push(grant.clone());
    if let Some(s) = form.get("scope") {
        f.scopes_seen.push(s.clone());
    }
    match f.mode {
        Mode::Normal => {}
        Mode::InvalidClient => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
        }
        Mode::Html => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<html>\n<body><h1>Sign in</h1><form>...</form></body></html>",
            )
                .into_response();
        }
        Mode::Garbage => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"token_type":"bearer","expires_in":"soon","access_token":"leaked-token-value-123"}"#,
            )
                .into_response();
        }
    }
    // Client authentication, strictly as configured.
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let authenticated = match f.client_auth {
        "basic" => {
            basic.as_deref() == Some(&format!("{CLIENT_ID}:{CLIENT_SECRET}"))
                && !form.contains_key("client_secret")
        }
        _ => {
            basic.is_none()
                && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        }
    };
    if !authenticated {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "bad client credentials",
        );
    }
    match grant.as_str() {
        "client_credentials" => {}
        "password" => {
            if form.get("username").map(String::as_str) != Some("svc-bridge")
                || form.get("password").map(String::as_str) != Some("service-pass-9")
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "bad user credentials",
                );
            }
        }
        "refresh_token" => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            if f.reject_refresh || !f.refresh.remove(&rt) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token expired",
                );
            }
        }
        "authorization_code" => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((challenge, redirect)) = f.codes.remove(&code) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            if computed != challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            if form.get("redirect_uri") != Some(&redirect) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri mismatch",
                );
            }
        }
        other => {
            return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", other);
        }
    }
    f.next += 1;
    let access = format!("at-{}-Xr4kW9", f.next);
    f.access.insert(access.clone());
    let mut body = serde_json::json!({"access_token": access, "token_type": "bearer"});
    if let Some(e) = f.expires_in {
        body["expires_in"] = e.into();
    }
    if f.issue_refresh {
        let rt = format!("rt-{}-Jm2pQ7", f.next);
        f.refresh.insert(rt.clone());
        body["refresh_token"] = rt.into();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A resource that accepts the current access tokens in `X-Auth-Token`, as iManage does.
async fn api(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    let mut f = fake.lock().unwrap();
    f.api_calls += 1;
    let presented = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if headers.contains_key(header::AUTHORIZATION) || !f.access.contains(presented) {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"unauthorized\"}").into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"data\":{}}",
    )
        .into_response()
}

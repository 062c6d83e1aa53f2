//! A strict fake OpenID Connect provider on a real local port, for what a real one
//! will not do on request: ID tokens with a wrong nonce, audience or expiry, a key
//! rotation, an outage. It checks what a real provider checks (client
//! authentication, redirect URI, PKCE S256, codes used once) and signs ES256 with a
//! key made at start. Its `/authorize` signs the configured person in at once.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "scim-bridge";
pub const CLIENT_SECRET: &str = "oidc-client-secret-Hq3Zt9Lm2Vx8";

/// What the next ID token says, and how the fake behaves.
pub struct Fake {
    pub issuer: String,
    key: EcdsaKeyPair,
    pub kid: String,
    /// Who `/authorize` signs in: subject, name, groups.
    pub person: (String, String, Vec<String>),
    pub nonce: Option<String>,
    pub aud: Option<String>,
    /// Seconds from now to the token's `exp`.
    pub expires_in: i64,
    /// Every endpoint answers 503.
    pub down: bool,
    /// code → (challenge, redirect_uri, nonce); removed when exchanged.
    codes: HashMap<String, (String, String, String)>,
    next: u64,
    pub jwks_fetches: u64,
}

pub type Shared = Arc<Mutex<Fake>>;

fn new_key() -> (EcdsaKeyPair, String) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let kid = hex::encode(&Sha256::digest(key.public_key().as_ref())[..8]);
    (key, kid)
}

impl Fake {
    /// A new signing key under a new `kid`; the old one is no longer published.
    pub fn rotate(&mut self) {
        let (key, kid) = new_key();
        self.key = key;
        self.kid = kid;
    }

    /// Who signs in next.
    pub fn person(&mut self, sub: &str, name: &str, groups: &[&str]) {
        self.person = (
            sub.into(),
            name.into(),
            groups.iter().map(|g| g.to_string()).collect(),
        );
    }

    fn id_token(&self, nonce: &str) -> String {
        let now = scim_bridge::clock::Clock::now(&scim_bridge::clock::SystemClock).timestamp();
        let (sub, name, groups) = &self.person;
        let claims = json!({
            "iss": self.issuer, "sub": sub, "aud": self.aud.as_deref().unwrap_or(CLIENT_ID),
            "iat": now, "exp": now + self.expires_in,
            "nonce": self.nonce.as_deref().unwrap_or(nonce),
            "name": name, "groups": groups,
        });
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(json!({"error": code}))).into_response()
}

async fn discovery(State(f): State<Shared>) -> Response {
    let f = f.lock().unwrap();
    if f.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let i = &f.issuer;
    axum::Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn jwks(State(f): State<Shared>) -> Response {
    let mut f = f.lock().unwrap();
    if f.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    f.jwks_fetches += 1;
    let public = f.key.public_key().as_ref();
    axum::Json(json!({"keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": f.kid,
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..]),
    }]}))
    .into_response()
}

/// Signs the configured person in at once and sends the browser back with a code.
async fn authorize(State(f): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut f = f.lock().unwrap();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != CLIENT_ID
        || get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").len() != 43
        || get("state").is_empty()
        || get("nonce").is_empty()
        || !get("scope").split(' ').any(|s| s == "openid")
        || !get("redirect_uri").ends_with("/ui/signin/oidc/callback")
    {
        return (
            StatusCode::BAD_REQUEST,
            format!("bad authorization request: {q:?}"),
        )
            .into_response();
    }
    f.next += 1;
    let code = format!("code-{}", f.next);
    f.codes.insert(
        code.clone(),
        (get("code_challenge"), get("redirect_uri"), get("nonce")),
    );
    let mut to = url::Url::parse(&get("redirect_uri")).unwrap();
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &get("state"))
        .append_pair("iss", &f.issuer);
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

async fn token(
    State(f): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut f = f.lock().unwrap();
    if f.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
        || form.contains_key("client_secret")
    {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // Used once: a second exchange of the same code is refused.
    let Some((challenge, redirect, nonce)) = f.codes.remove(&get("code")) else {
        return error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let verifier = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
    if verifier != challenge || redirect != get("redirect_uri") {
        return error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    axum::Json(json!({
        "access_token": "at-not-used", "token_type": "Bearer", "expires_in": 300,
        "id_token": f.id_token(&nonce),
    }))
    .into_response()
}

/// Starts the fake on its own runtime thread; returns it and its issuer URL.
pub fn start() -> (Shared, String) {
    let (key, kid) = new_key();
    let fake = Arc::new(Mutex::new(Fake {
        issuer: String::new(),
        key,
        kid,
        person: (
            "ada".into(),
            "Ada Lovelace".into(),
            vec!["Console-Admins".into()],
        ),
        nonce: None,
        aud: None,
        expires_in: 300,
        down: false,
        codes: HashMap::new(),
        next: 0,
        jwks_fetches: 0,
    }));
    let shared = Arc::clone(&fake);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
            shared.lock().unwrap().issuer = issuer.clone();
            let app = Router::new()
                .route("/.well-known/openid-configuration", get(discovery))
                .route("/jwks", get(jwks))
                .route("/authorize", get(authorize))
                .route("/token", post(token))
                .with_state(shared);
            tx.send(issuer).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let issuer = rx.recv().unwrap();
    (fake, issuer)
}

/// The `[console]` section signing in through the provider at `issuer`, with the
/// client secret in file `oidc.secret` (write it with [`CLIENT_SECRET`]).
pub fn console_config(issuer: &str, scopes: &str) -> String {
    format!(
        r#"
[console]
enabled = true
session_lifetime = "1h"
[console.oidc]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = {{ file = "oidc.secret" }}
display_name = "Firm SSO"
scopes = [{scopes}]
admin_groups = ["Console-Admins"]
viewer_groups = ["Console-Readers"]
admin_subjects = ["break-glass"]
"#
    )
}

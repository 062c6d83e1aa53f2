//! The fake iManage's per-user OAuth rules, driven directly over HTTP (no bridge), so
//! tests that link accounts through it can trust what it accepts and refuses: the
//! authorization code with PKCE, single use of a code, refresh-token rotation,
//! revocation, `/api` answering as the token's user, and workspace security.

use crate::common;

use std::sync::{Arc, Mutex};

use base64::Engine;
use common::fake_imanage::{self, CLIENT_ID, CLIENT_SECRET, Dms, Shared, TOKEN};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "https://bridge.example.com/link/dms/callback";
/// 43 unreserved characters: the shortest verifier RFC 7636 allows.
const VERIFIER: &str = "verifier-0123456789-abcdefghijklmnopqrstuvw";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))
}

/// A form body: reqwest is built without its `form` feature.
fn form_body(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// Sends `req` with `fields` as its form body.
async fn post_form(req: reqwest::RequestBuilder, fields: &[(&str, &str)]) -> reqwest::Response {
    req.header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(fields))
        .send()
        .await
        .unwrap()
}

struct Rig {
    dms: Shared,
    host: String,
    http: reqwest::Client,
}

fn rig(dms: Dms) -> Rig {
    let dms = Arc::new(Mutex::new(dms));
    let host = fake_imanage::start_blocking(dms.clone());
    Rig {
        dms,
        host,
        // The bridge's client: reqwest is built without a TLS provider of its own.
        http: scim_bridge::oauth::build_client(std::time::Duration::from_secs(30)).unwrap(),
    }
}

impl Rig {
    /// POSTs a form to `path` with the client authenticated in the form.
    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
        let mut all = vec![("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
        all.extend_from_slice(fields);
        let r = post_form(self.http.post(format!("{}{path}", self.host)), &all).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn exchange(&self, code: &str, verifier: &str, redirect: &str) -> (u16, Value) {
        self.form(
            "/auth/oauth2/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect),
            ],
        )
        .await
    }

    async fn refresh(&self, refresh: &str) -> (u16, Value) {
        self.form(
            "/auth/oauth2/token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await
    }

    /// `user` approves and the code is exchanged: (access, refresh).
    async fn link(&self, user: &str) -> (String, String) {
        let code = fake_imanage::approve(&self.dms, user, &challenge(VERIFIER), REDIRECT);
        let (status, body) = self.exchange(&code, VERIFIER, REDIRECT).await;
        assert_eq!(status, 200, "{body}");
        let s = |k: &str| body[k].as_str().unwrap().to_owned();
        (s("access_token"), s("refresh_token"))
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.host))
            .header("X-Auth-Token", token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Who `/api` says the token belongs to, or the HTTP status when refused.
    async fn whoami(&self, token: &str) -> Result<String, u16> {
        match self.get("/api", token).await {
            (200, body) => Ok(body["data"]["user"]["id"].as_str().unwrap().to_owned()),
            (status, _) => Err(status),
        }
    }
}

#[tokio::test]
async fn the_code_flow_checks_pkce_and_the_redirect_and_acts_as_the_user() {
    let r = rig(Dms {
        user_token_ttl: 600,
        ..Default::default()
    });
    // The helper reads what the bridge put in its redirect, and checks the request.
    let url = format!(
        "{}/auth/oauth2/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&state=st-1&code_challenge={}&code_challenge_method=S256&scope=user",
        r.host,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        challenge(VERIFIER)
    );
    let (state, code_challenge, redirect) = fake_imanage::authorize_params(&url);
    assert_eq!((state.as_str(), redirect.as_str()), ("st-1", REDIRECT));

    // Another verifier, or another redirect URI, is refused; either attempt spends the code.
    let code = fake_imanage::approve(&r.dms, "alice@firm.example", &code_challenge, &redirect);
    let other = "another-verifier-0123456789-abcdefghijklmnop";
    let (status, body) = r.exchange(&code, other, &redirect).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")));
    let code = fake_imanage::approve(&r.dms, "alice@firm.example", &code_challenge, &redirect);
    let (status, body) = r
        .exchange(&code, VERIFIER, "https://evil.example/callback")
        .await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")));

    // The right verifier and redirect: a user token, which acts as Alice.
    let code = fake_imanage::approve(&r.dms, "alice@firm.example", &code_challenge, &redirect);
    let (status, body) = r.exchange(&code, VERIFIER, &redirect).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "user");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(r.whoami(access).await, Ok("ALICE@FIRM.EXAMPLE".into()));
    // The service token is still the service account.
    assert_eq!(r.whoami(TOKEN).await, Ok("svc".into()));
    assert_eq!(
        r.dms.lock().unwrap().acted_as,
        ["ALICE@FIRM.EXAMPLE", "SVC"]
    );

    // The client may authenticate with HTTP Basic instead of the form.
    let code = fake_imanage::approve(&r.dms, "bob@firm.example", &code_challenge, &redirect);
    let resp = post_form(
        r.http
            .post(format!("{}/auth/oauth2/token", r.host))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", redirect.as_str()),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let bob = body["access_token"].as_str().unwrap();
    assert_eq!(r.whoami(bob).await, Ok("BOB@FIRM.EXAMPLE".into()));
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_what_it_issued() {
    let r = rig(Dms::default());
    let code = fake_imanage::approve(&r.dms, "alice@firm.example", &challenge(VERIFIER), REDIRECT);
    let (status, body) = r.exchange(&code, VERIFIER, REDIRECT).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(r.whoami(access).await.is_ok());

    let (status, body) = r.exchange(&code, VERIFIER, REDIRECT).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")));
    // Whoever holds the tokens from the first use, they no longer work.
    assert_eq!(r.whoami(access).await, Err(401));
    assert_eq!(r.refresh(refresh).await.0, 400);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_the_old_one_is_refused() {
    let r = rig(Dms::default());
    let (access, refresh) = r.link("alice@firm.example").await;

    // Inactivity expires the access token; the refresh token still works.
    r.dms
        .lock()
        .unwrap()
        .expire_user_tokens("alice@firm.example");
    let (status, body) = r.get("/api", &access).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code_message"], "token expired");

    let (status, body) = r.refresh(&refresh).await;
    assert_eq!(status, 200, "{body}");
    let access2 = body["access_token"].as_str().unwrap();
    let refresh2 = body["refresh_token"].as_str().unwrap();
    assert_ne!((access2, refresh2), (access.as_str(), refresh.as_str()));
    assert_eq!(r.whoami(access2).await, Ok("ALICE@FIRM.EXAMPLE".into()));

    let (status, body) = r.refresh(&refresh).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")));
    assert_eq!(r.refresh(refresh2).await.0, 200);
    assert_eq!(r.dms.lock().unwrap().refresh_grants, 3);
}

#[tokio::test]
async fn revocation_reaches_the_provider_and_the_token_stops_working() {
    let r = rig(Dms::default());
    let (access, _) = r.link("alice@firm.example").await;
    let (status, _) = r
        .form(
            "/auth/oauth2/revoke-token",
            &[
                ("token", access.as_str()),
                ("token_type_hint", "access_token"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(r.whoami(&access).await, Err(401));

    // A refresh token, in iManage's own `access_token` field, takes the access tokens
    // of its grant with it.
    let (access, refresh) = r.link("bob@firm.example").await;
    let (status, _) = r
        .form(
            "/auth/oauth2/revoke-token",
            &[("access_token", refresh.as_str())],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(r.whoami(&access).await, Err(401));
    assert_eq!(r.refresh(&refresh).await.0, 400);

    // An unknown token is fine (RFC 7009); an unknown client is not.
    let (status, _) = r
        .form("/auth/oauth2/revoke-token", &[("token", "never-issued")])
        .await;
    assert_eq!(status, 200);
    let resp = post_form(
        r.http.post(format!("{}/auth/oauth2/revoke-token", r.host)),
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
            ("token", "x"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 401);

    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        r.dms.lock().unwrap().revocations,
        pairs(&[
            ("ALICE@FIRM.EXAMPLE", "access_token"),
            ("BOB@FIRM.EXAMPLE", "refresh_token"),
            ("", "unknown"),
        ])
    );
}

#[tokio::test]
async fn a_workspace_acl_hides_it_from_users_not_on_it() {
    let ws = |id: &str, acl: Option<&[&str]>| {
        let mut w =
            json!({"id": id, "name": "Smith v Jones", "database": "ACTIVE", "wstype": "workspace"});
        if let Some(acl) = acl {
            w["acl"] = json!(acl);
        }
        w
    };
    let mut dms = Dms {
        workspaces: vec![
            ws("ACTIVE!1", Some(&["alice@firm.example"])),
            ws("ACTIVE!2", None),
        ],
        ..Default::default()
    };
    dms.children.insert(
        "ACTIVE!1".into(),
        vec![json!({"id": "ACTIVE!F1", "name": "Correspondence", "wstype": "folder"})],
    );
    dms.children.insert(
        "ACTIVE!F1".into(),
        vec![json!({"id": "ACTIVE!F2", "name": "Inbound", "wstype": "folder"})],
    );
    let r = rig(dms);
    let (alice, _) = r.link("alice@firm.example").await;
    let (bob, _) = r.link("bob@firm.example").await;

    let base = "/work/api/v2/customers/1/libraries/ACTIVE";
    let search = format!("{base}/workspaces?name=Smith");
    let found = |body: &Value| -> Vec<String> {
        let results = body["data"]["results"].as_array().unwrap();
        assert!(results.iter().all(|w| w.get("acl").is_none()), "{body}");
        results
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for (token, want) in [
        (alice.as_str(), vec!["ACTIVE!1", "ACTIVE!2"]),
        (bob.as_str(), vec!["ACTIVE!2"]),
        (TOKEN, vec!["ACTIVE!1", "ACTIVE!2"]),
    ] {
        let (status, body) = r.get(&search, token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(found(&body), want);
    }

    // Bob cannot list the workspace's folders, nor a folder inside it by its id.
    for path in [
        format!("{base}/workspaces/ACTIVE!1/children?exclude_docs=true"),
        format!("{base}/folders/ACTIVE!F1/children?exclude_docs=true"),
    ] {
        let (status, body) = r.get(&path, &bob).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("NRC_NO_RECORD"))
        );
        let (status, body) = r.get(&path, &alice).await;
        assert_eq!(status, 200, "{body}");
    }
}

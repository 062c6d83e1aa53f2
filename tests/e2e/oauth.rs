//! Token sources and account links against a real local OAuth2 server (a strict
//! fake), with tokens kept in a real vault on a real SQLite file.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::fake_oauth::{self, CLIENT_ID, CLIENT_SECRET, Mode, Shared};
use scim_bridge::clock::{Clock, ManualClock};
use scim_bridge::config::{AuthHeader, ClientAuth};
use scim_bridge::entropy::{Entropy, OsEntropy};
use scim_bridge::oauth::{
    Credentials, Grant, Linker, LinkerConfig, OAuthError, SecretsTokenStore, SourceConfig,
    TokenEndpoint, TokenSource, TokenStore, build_client,
};
use scim_bridge::store::Store;
use scim_bridge::store::sqlite::SqliteStore;
use scim_bridge::vault::{KdfParams, Passphrase, Secrets, Vault};
use secrecy::{ExposeSecret, SecretString};

struct Kit {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    clock: Arc<ManualClock>,
    tokens: Arc<dyn TokenStore>,
}

async fn kit() -> Kit {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bridge.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
    ));
    let pass = Passphrase::new("p".repeat(120)).unwrap();
    let params = KdfParams {
        m_cost_kib: 1024,
        t_cost: 1,
        p_cost: 1,
    };
    let (header, key) = Vault::init(&pass, params, &OsEntropy).unwrap();
    let header = header.to_json().unwrap();
    store.init_vault(header.clone(), clock.now()).await.unwrap();
    let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
    let secrets = Arc::new(Secrets::new(
        Arc::clone(&store),
        key,
        header,
        entropy,
        clock.clone(),
    ));
    Kit {
        _dir: dir,
        db,
        clock,
        tokens: Arc::new(SecretsTokenStore(secrets)),
    }
}

fn endpoint(base: &str, auth: ClientAuth, scopes: &[&str]) -> TokenEndpoint {
    TokenEndpoint {
        token_url: format!("{base}/oauth2/token"),
        client_id: CLIENT_ID.into(),
        client_secret: Some(SecretString::from(CLIENT_SECRET)),
        client_auth: auth,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

fn source_cfg(base: &str, auth: ClientAuth) -> SourceConfig {
    SourceConfig {
        target: "imanage".into(),
        endpoint: endpoint(base, auth, &["user", "admin"]),
        grant: Grant::ClientCredentials,
        refresh_ahead: Duration::from_secs(60),
    }
}

fn source(k: &Kit, cfg: SourceConfig) -> Arc<TokenSource> {
    Arc::new(TokenSource::new(
        cfg,
        build_client(Duration::from_secs(5)).unwrap(),
        k.clock.clone(),
        Some(Arc::clone(&k.tokens)),
    ))
}

fn grants(fake: &Shared) -> Vec<String> {
    fake.lock().unwrap().grants.clone()
}

#[tokio::test]
async fn caches_until_expiry_then_requests_again() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    let base = fake_oauth::start(fake.clone()).await;
    let s = source(&k, source_cfg(&base, ClientAuth::Basic));
    let first = s.get().await.unwrap();
    for _ in 0..10 {
        assert!(Arc::ptr_eq(&first, &s.get().await.unwrap()));
    }
    assert_eq!(grants(&fake), ["client_credentials"]);
    assert_eq!(fake.lock().unwrap().scopes_seen, ["user admin"]);
    k.clock.advance(chrono::Duration::seconds(3600));
    let second = s.get().await.unwrap();
    assert_ne!(
        first.access().expose_secret(),
        second.access().expose_secret()
    );
    assert_eq!(grants(&fake).len(), 2);
    assert_eq!(s.health().state, "ok");
}

#[tokio::test]
async fn refreshes_ahead_of_expiry_without_making_others_wait() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    let base = fake_oauth::start(fake.clone()).await;
    let s = source(&k, source_cfg(&base, ClientAuth::Basic));
    let first = s.get().await.unwrap();
    // 30 s left, inside the 60 s window: one caller refreshes (slowly), another gets
    // the still-valid token at once.
    k.clock.advance(chrono::Duration::seconds(3570));
    fake.lock().unwrap().delay = Duration::from_millis(400);
    let refresher = tokio::spawn({
        let s = Arc::clone(&s);
        async move { s.get().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let meanwhile = s.get().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "a caller waited for the early refresh"
    );
    assert!(Arc::ptr_eq(&first, &meanwhile));
    let refreshed = refresher.await.unwrap();
    assert!(!Arc::ptr_eq(&first, &refreshed));
    assert_eq!(grants(&fake).len(), 2);
}

#[tokio::test]
async fn one_token_request_for_a_hundred_concurrent_callers() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("post");
    fake.lock().unwrap().delay = Duration::from_millis(200);
    let base = fake_oauth::start(fake.clone()).await;
    let s = source(&k, source_cfg(&base, ClientAuth::Post));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move { s.get().await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    assert_eq!(
        grants(&fake),
        ["client_credentials"],
        "exactly one token request"
    );
    assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
    assert_eq!(s.token_requests(), 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_failure() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    {
        let mut f = fake.lock().unwrap();
        f.mode = Mode::InvalidClient;
        f.delay = Duration::from_millis(200);
    }
    let base = fake_oauth::start(fake.clone()).await;
    let s = source(&k, source_cfg(&base, ClientAuth::Basic));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move { s.get().await })
        })
        .collect();
    for t in tasks {
        let e = t.await.unwrap().unwrap_err();
        assert!(
            matches!(&e, OAuthError::Refused { code, .. } if code == "invalid_client"),
            "{e}"
        );
    }
    assert_eq!(grants(&fake).len(), 1);
    // One request failed, counted once for `/metrics`, however many waited for it.
    assert_eq!(s.token_failures(), 1);
    let h = s.health();
    assert_eq!(h.state, "error");
    let shown = h.error.unwrap();
    assert!(
        shown.contains("invalid_client") && shown.contains("client authentication failed"),
        "{shown}"
    );
}

#[tokio::test]
async fn wrong_client_authentication_style_is_refused() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("post");
    let base = fake_oauth::start(fake.clone()).await;
    let e = source(&k, source_cfg(&base, ClientAuth::Basic))
        .get()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid_client"), "{e}");
    source(&k, source_cfg(&base, ClientAuth::Post))
        .get()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_401_from_the_target_gets_a_new_token_and_one_retry() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    let base = fake_oauth::start(fake.clone()).await;
    let s = source(&k, source_cfg(&base, ClientAuth::Basic));
    let creds = Credentials::OAuth {
        source: Arc::clone(&s),
        header: AuthHeader::XAuthToken,
    };
    let http = build_client(Duration::from_secs(5)).unwrap();
    let api = format!("{base}/api");
    let unpaced = scim_bridge::delivery::Pacer::new(None);
    assert_eq!(
        creds
            .send(&unpaced, || http.get(&api))
            .await
            .unwrap()
            .status(),
        200
    );
    // The server forgets every token (restart, revocation): one 401, a new token, 200.
    fake.lock().unwrap().access.clear();
    assert_eq!(
        creds
            .send(&unpaced, || http.get(&api))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(grants(&fake).len(), 2);
    assert_eq!(fake.lock().unwrap().api_calls, 3);
    // A target that refuses every token: one retry, then the 401 comes back.
    fake.lock().unwrap().access.clear();
    fake.lock().unwrap().mode = Mode::InvalidClient;
    let e = creds.send(&unpaced, || http.get(&api)).await.unwrap_err();
    assert!(e.to_string().contains("invalid_client"), "{e}");
    assert_eq!(fake.lock().unwrap().api_calls, 4);
}

#[tokio::test]
async fn refresh_tokens_are_used_and_a_refused_one_falls_back_to_the_grant() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    fake.lock().unwrap().issue_refresh = true;
    let base = fake_oauth::start(fake.clone()).await;
    let mut cfg = source_cfg(&base, ClientAuth::Basic);
    cfg.grant = Grant::Password {
        username: "svc-bridge".into(),
        password: SecretString::from("service-pass-9"),
    };
    let s = source(&k, cfg);
    s.get().await.unwrap();
    k.clock.advance(chrono::Duration::seconds(3700));
    s.get().await.unwrap();
    assert_eq!(grants(&fake), ["password", "refresh_token"]);
    fake.lock().unwrap().reject_refresh = true;
    k.clock.advance(chrono::Duration::seconds(3700));
    s.get().await.unwrap();
    assert_eq!(
        grants(&fake),
        ["password", "refresh_token", "refresh_token", "password"]
    );
}

#[tokio::test]
async fn garbage_from_the_token_endpoint_is_a_clear_error_without_the_body_secrets() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    let base = fake_oauth::start(fake.clone()).await;
    fake.lock().unwrap().mode = Mode::Html;
    let e = source(&k, source_cfg(&base, ClientAuth::Basic))
        .get()
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("HTTP 200") && shown.contains("text/html") && shown.contains("Sign in"),
        "{shown}"
    );
    fake.lock().unwrap().mode = Mode::Garbage;
    let e = source(&k, source_cfg(&base, ClientAuth::Basic))
        .get()
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("not a token response") && shown.contains("expires_in"),
        "{shown}"
    );
    assert!(!shown.contains("leaked-token-value"), "{shown}");
    // Nothing listening.
    let port = common::free_port();
    let e = source(
        &k,
        source_cfg(&format!("http://127.0.0.1:{port}"), ClientAuth::Basic),
    )
    .get()
    .await
    .unwrap_err();
    assert!(matches!(e, OAuthError::Unreachable(_)), "{e}");
    assert!(e.to_string().to_lowercase().contains("connect"), "{e}");
}

#[tokio::test]
async fn tokens_survive_a_restart_in_the_vault_and_are_not_on_disk_in_plaintext() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    fake.lock().unwrap().issue_refresh = true;
    let base = fake_oauth::start(fake.clone()).await;
    let token = source(&k, source_cfg(&base, ClientAuth::Basic))
        .get()
        .await
        .unwrap();
    // A new source (a restarted daemon) reuses the stored token.
    let again = source(&k, source_cfg(&base, ClientAuth::Basic))
        .get()
        .await
        .unwrap();
    assert_eq!(
        token.access().expose_secret(),
        again.access().expose_secret()
    );
    assert_eq!(grants(&fake).len(), 1);
    // Other settings (scopes) do not reuse it.
    let mut other = source_cfg(&base, ClientAuth::Basic);
    other.endpoint.scopes = vec!["user".into()];
    source(&k, other).get().await.unwrap();
    assert_eq!(grants(&fake).len(), 2);
    // Neither the access nor the refresh token is anywhere in the files.
    let needles = [
        token.access().expose_secret().to_owned(),
        token.refresh().unwrap().expose_secret().to_owned(),
    ];
    for path in [k.db.clone(), k.db.with_extension("db-wal")] {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                "{n} found in {}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn pkce_link_end_to_end() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    {
        let mut f = fake.lock().unwrap();
        f.issue_refresh = true;
        f.expires_in = Some(600);
    }
    let base = fake_oauth::start(fake.clone()).await;
    let redirect = "https://bridge.example.com/link/imanage/callback";
    let linker = Linker::new(
        LinkerConfig {
            target: "imanage".into(),
            authorize_url: format!("{base}/oauth2/authorize"),
            endpoint: endpoint(&base, ClientAuth::Basic, &["user"]),
            redirect_url: redirect.into(),
            refresh_ahead: Duration::from_secs(60),
            revoke_url: None,
            approver: None,
        },
        build_client(Duration::from_secs(5)).unwrap(),
        k.clock.clone(),
        Arc::new(OsEntropy),
        Arc::clone(&k.tokens),
    );
    let url = url::Url::parse(&linker.start("alice@firm.example").await.unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    // The pending link's name (stored in clear, unlike its sealed value) holds neither
    // the state nor anything about the person.
    let pending = k.tokens.names("link-pending.").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(!pending[0].contains(q["state"].as_str()), "{pending:?}");
    assert!(!pending[0].contains("alice"), "{pending:?}");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], redirect);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "user");
    assert_eq!(q["code_challenge"].len(), 43);
    let code = fake_oauth::approve(&fake, &q["code_challenge"], redirect);

    // A forged state is refused; the real one links once and only once.
    assert!(linker.finish("forged-state", &code).await.is_err());
    assert_eq!(
        linker.finish(&q["state"], &code).await.unwrap(),
        "alice@firm.example"
    );
    let e = linker.finish(&q["state"], &code).await.unwrap_err();
    assert!(e.to_string().contains("already used"), "{e}");
    assert_eq!(grants(&fake), ["authorization_code"]);

    let links = linker.list().await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].user, "alice@firm.example");
    assert!(links[0].refreshable);

    // Fresh token used as is; near expiry it is refreshed with the user's refresh token.
    let t1 = linker.access_token("alice@firm.example").await.unwrap();
    k.clock.advance(chrono::Duration::seconds(580));
    let t2 = linker.access_token("alice@firm.example").await.unwrap();
    assert_ne!(t1.expose_secret(), t2.expose_secret());
    assert_eq!(grants(&fake), ["authorization_code", "refresh_token"]);
    assert!(fake.lock().unwrap().access.contains(t2.expose_secret()));
    assert_eq!(linker.linked_count().await.unwrap(), 1);
    assert_eq!(linker.refresh_failures(), 0);

    // A refresh the provider answers with a login page fails, and is counted.
    fake.lock().unwrap().mode = Mode::Html;
    k.clock.advance(chrono::Duration::seconds(580));
    assert!(linker.access_token("alice@firm.example").await.is_err());
    assert_eq!(linker.refresh_failures(), 1);
    fake.lock().unwrap().mode = Mode::Normal;

    // A code bound to another challenge fails PKCE verification at the server.
    let url = url::Url::parse(&linker.start("bob").await.unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let code = fake_oauth::approve(
        &fake,
        "not-the-challenge-of-this-verifier-000000000",
        redirect,
    );
    let e = linker.finish(&q["state"], &code).await.unwrap_err();
    assert!(e.to_string().contains("PKCE"), "{e}");

    // An abandoned link expires.
    let url = url::Url::parse(&linker.start("carol").await.unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    k.clock.advance(chrono::Duration::minutes(11));
    let code = fake_oauth::approve(&fake, &q["code_challenge"], redirect);
    let e = linker.finish(&q["state"], &code).await.unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    // Abandoned links are swept on their own, without a new start.
    let _ = linker.start("dave").await.unwrap();
    k.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(linker.sweep_pending().await, 1);
    assert!(k.tokens.names("link-pending.").await.unwrap().is_empty());

    // No revocation endpoint configured: forgotten here only, and said so.
    assert_eq!(
        linker.revoke("alice@firm.example").await.unwrap(),
        scim_bridge::oauth::Revoked::LocallyOnly
    );
    assert!(linker.list().await.unwrap().is_empty());
    assert!(linker.access_token("alice@firm.example").await.is_err());
}

#[tokio::test]
async fn a_process_holding_the_old_key_cannot_write_after_a_rotation() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    let base = fake_oauth::start(fake.clone()).await;
    source(&k, source_cfg(&base, ClientAuth::Basic))
        .get()
        .await
        .unwrap();
    // Another process rotates the vault: the header changes under us.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&k.db).unwrap());
    let old = store.vault().await.unwrap().unwrap().header;
    let pass = Passphrase::new("q".repeat(120)).unwrap();
    let params = KdfParams {
        m_cost_kib: 1024,
        t_cost: 1,
        p_cost: 1,
    };
    let (new_header, _) = Vault::init(&pass, params, &OsEntropy).unwrap();
    let rows: Vec<_> = store
        .secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.sealed))
        .collect();
    store
        .rotate_vault(
            old,
            new_header.to_json().unwrap(),
            rows,
            scim_bridge::clock::Clock::now(&scim_bridge::clock::SystemClock),
        )
        .await
        .unwrap();
    let e = k
        .tokens
        .save("oauth.other", &SecretString::from("x"))
        .await
        .unwrap_err();
    assert!(e.contains("rotated"), "{e}");
}

/// Two instances sharing one database refresh the same person's expired token at once.
/// The provider rotates refresh tokens, so it refuses the second refresh: that
/// instance then finds the pair the first one stored and uses it, instead of failing
/// (or, with a provider that ends the grant on reuse, breaking the link).
#[tokio::test]
async fn a_refresh_lost_to_another_instance_uses_the_pair_it_stored() {
    let k = kit().await;
    let fake = fake_oauth::new_fake("basic");
    {
        let mut f = fake.lock().unwrap();
        f.issue_refresh = true;
        f.expires_in = Some(600);
    }
    let base = fake_oauth::start(fake.clone()).await;
    let redirect = "https://bridge.example.com/link/imanage/callback";
    let instance = || {
        Linker::new(
            LinkerConfig {
                target: "imanage".into(),
                authorize_url: format!("{base}/oauth2/authorize"),
                endpoint: endpoint(&base, ClientAuth::Basic, &["user"]),
                redirect_url: redirect.into(),
                refresh_ahead: Duration::from_secs(60),
                revoke_url: None,
                approver: None,
            },
            build_client(Duration::from_secs(5)).unwrap(),
            k.clock.clone(),
            Arc::new(OsEntropy),
            Arc::clone(&k.tokens),
        )
    };
    let (a, b) = (instance(), instance());
    let url = url::Url::parse(&a.start("alice@firm.example").await.unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let code = fake_oauth::approve(&fake, &q["code_challenge"], redirect);
    a.finish(&q["state"], &code).await.unwrap();
    // Both read the expired pair before either refresh is answered.
    k.clock.advance(chrono::Duration::seconds(590));
    fake.lock().unwrap().delay = Duration::from_millis(300);
    let (ta, tb) = tokio::join!(
        a.access_token("alice@firm.example"),
        b.access_token("alice@firm.example")
    );
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert_eq!(
        ta.expose_secret(),
        tb.expose_secret(),
        "both use the one pair that was stored"
    );
    assert_eq!(
        grants(&fake),
        ["authorization_code", "refresh_token", "refresh_token"],
        "the second refresh was refused by rotation"
    );
    assert!(fake.lock().unwrap().access.contains(ta.expose_secret()));
}

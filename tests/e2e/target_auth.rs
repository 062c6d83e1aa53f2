//! The real binary with an OAuth-authenticated target: client secret from the vault,
//! token state on /readyz, the token kept across a restart, a bad secret reported,
//! and a user account linked through /link with PKCE, then listed and revoked.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_oauth::{self, CLIENT_SECRET, Mode};
use common::{BIN, Daemon, config_text, free_port, run};

fn setup(token_base: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pass = dir.path().join("vault.pass");
    std::fs::write(&pass, "v".repeat(110)).unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let extra = format!(
        r#"
[vault]
passphrase = {{ file = "vault.pass" }}
memory_kib = 8192
iterations = 1

# The generic OAuth flows (a SCIM app's): iManage's own check of who approved a link
# is tested against the iManage fake in tests/linked_accounts.rs.
[[targets]]
name = "imanage"
kind = "scim"
url = "{token_base}/scim/v2"
[targets.auth]
method = "client_credentials"
token_url = "{token_base}/oauth2/token"
authorize_url = "{token_base}/oauth2/authorize"
client_id = "{client_id}"
client_secret = {{ vault = "imanage.client_secret" }}
scopes = ["user"]
"#,
        client_id = fake_oauth::CLIENT_ID
    );
    let config = dir.path().join("scim-bridge.toml");
    std::fs::write(&config, config_text(port, &dir.path().join("data"), &extra)).unwrap();
    Daemon::unstarted(dir, config, port)
}

fn cli(d: &Daemon, args: &[&str]) -> std::process::Output {
    d.cli(args)
}

fn set_secret(d: &Daemon, name: &str, value: &str) {
    let mut child = Command::new(BIN)
        .args(["secret", "set", name, "--config"])
        .arg(&d.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn readyz(d: &Daemon) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-s", &d.url("/readyz")])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// `/metrics`, and the value of one `imanage` series in it (`labels` after the target).
fn token_metric(d: &Daemon, name: &str, labels: &str) -> (Option<f64>, String) {
    let out = Command::new("curl")
        .args(["-s", &d.url("/metrics")])
        .output()
        .unwrap();
    let m = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = common::sample(&m, &format!("{name}{{target=\"imanage\"{labels}}}"));
    (v, m)
}

/// `scim_bridge_target_token_state` is 1 for `current` and 0 for the other states.
fn assert_token_state(d: &Daemon, current: &str) {
    for s in ["pending", "ok", "error"] {
        let (v, m) = token_metric(
            d,
            "scim_bridge_target_token_state",
            &format!(",state=\"{s}\""),
        );
        let want = if s == current { 1.0 } else { 0.0 };
        assert_eq!(v, Some(want), "{s}\n{m}");
    }
}

fn wait_auth_state(d: &Daemon, want: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = readyz(d);
        if r["targets"]["imanage"]["auth"]["state"] == want {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "auth never became {want}: {r}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn missing_vault_secret_stops_the_daemon_with_the_fix() {
    let d = setup("http://127.0.0.1:9");
    assert!(cli(&d, &["vault", "init"]).status.success());
    let out = run(&["serve", "--config", d.config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("targets[0].auth.client_secret")
            && err.contains("scim-bridge secret set imanage.client_secret"),
        "{err}"
    );
}

#[test]
fn token_on_readyz_kept_across_restart_and_bad_secret_reported() {
    let fake = fake_oauth::new_fake("basic");
    let base = fake_oauth::start_blocking(fake.clone());
    let mut d = setup(&base);
    assert!(cli(&d, &["vault", "init"]).status.success());
    set_secret(&d, "imanage.client_secret", CLIENT_SECRET);
    d.spawn();
    let r = wait_auth_state(&d, "ok");
    assert_eq!(r["status"], "ready");
    assert_eq!(fake.lock().unwrap().grants.len(), 1);
    assert!(
        r["targets"]["imanage"]["auth"]["token_expires"].is_string(),
        "{r}"
    );
    assert_eq!(r["targets"]["imanage"]["account_linking"], true);
    // The same, as the alert rules read it.
    assert_token_state(&d, "ok");
    let (expiry, m) = token_metric(&d, "scim_bridge_target_token_expiry_timestamp_seconds", "");
    assert!(expiry.is_some_and(|t| t > 1.6e9), "{m}");
    let failures = |credential: &str| {
        token_metric(
            &d,
            "scim_bridge_target_token_refresh_failures_total",
            &format!(",credential=\"{credential}\""),
        )
        .0
    };
    assert_eq!(failures("service"), Some(0.0));
    assert_eq!(failures("linked"), Some(0.0));
    assert_eq!(
        token_metric(&d, "scim_bridge_target_token_requests_total", "").0,
        Some(1.0)
    );
    assert_eq!(
        token_metric(&d, "scim_bridge_target_linked_accounts", "").0,
        Some(0.0)
    );

    // A restart reuses the token kept in the vault.
    assert_eq!(d.terminate(), Some(0));
    d.spawn();
    wait_auth_state(&d, "ok");
    assert_eq!(
        fake.lock().unwrap().grants.len(),
        1,
        "a restart minted a new token"
    );
    assert_eq!(d.terminate(), Some(0));

    // The token endpoint refuses the client: the instance stays ready (SCIM intake
    // works) and says why.
    fake.lock().unwrap().mode = Mode::InvalidClient;
    fake.lock().unwrap().access.clear();
    let out = cli(&d, &["secret", "delete", "oauth.imanage"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.spawn();
    let r = wait_auth_state(&d, "error");
    assert_eq!(r["status"], "ready");
    let err = r["targets"]["imanage"]["auth"]["error"].as_str().unwrap();
    assert!(
        err.contains("invalid_client") && err.contains("client authentication failed"),
        "{err}"
    );
    assert_token_state(&d, "error");
    let (failed, m) = token_metric(
        &d,
        "scim_bridge_target_token_refresh_failures_total",
        ",credential=\"service\"",
    );
    assert!(failed.is_some_and(|n| n >= 1.0), "{m}");
    let status = String::from_utf8_lossy(&cli(&d, &["status"]).stdout).into_owned();
    assert!(
        status.contains("target     imanage: token endpoint failing since")
            && status.contains("invalid_client"),
        "{status}"
    );
    let log = d.log_text();
    assert!(log.contains("invalid_client"), "{log}");
    assert!(!log.contains(CLIENT_SECRET), "client secret in the log");
}

#[test]
fn link_a_user_account_through_the_daemon() {
    let fake = fake_oauth::new_fake("basic");
    fake.lock().unwrap().issue_refresh = true;
    let base = fake_oauth::start_blocking(fake.clone());
    let mut d = setup(&base);
    assert!(cli(&d, &["vault", "init"]).status.success());
    set_secret(&d, "imanage.client_secret", CLIENT_SECRET);
    d.spawn();
    let out = cli(&d, &["token", "create", "--scope", "admin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let scim = d.token("entra");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = scim_bridge::oauth::build_client(Duration::from_secs(10)).unwrap();
        let start = d.url("/link/imanage?user=alice%40firm.example");
        // Without a token, or with a SCIM token, nobody starts a link.
        assert_eq!(http.get(&start).send().await.unwrap().status(), 401);
        assert_eq!(
            http.get(&start)
                .bearer_auth(&scim)
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        let r = http.get(&start).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&format!("{base}/oauth2/authorize?")),
            "{location}"
        );
        let url = url::Url::parse(&location).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        let redirect = q["redirect_uri"].clone();
        assert_eq!(redirect, d.url("/link/imanage/callback"));

        // The provider sends the browser back with a code.
        let code = fake_oauth::approve(&fake, &q["code_challenge"], &redirect);
        let cb = format!("{redirect}?code={code}&state={}", q["state"]);
        let r = http.get(&cb).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Linked alice@firm.example to imanage")
        );
        // Replaying the callback does nothing.
        let r = http.get(&cb).send().await.unwrap();
        assert_eq!(r.status(), 400);
        // The provider's refusal is shown as such.
        let r = http
            .get(format!(
                "{redirect}?error=access_denied&error_description=User+said+no"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("access_denied (User said no)")
        );
    });

    let out = cli(&d, &["link", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(links[0]["user"], "alice@firm.example");
    assert_eq!(links[0]["refreshable"], true);
    assert_eq!(
        token_metric(&d, "scim_bridge_target_linked_accounts", "").0,
        Some(1.0)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("at-") && !text.contains("rt-"),
        "tokens printed: {text}"
    );

    let out = cli(
        &d,
        &[
            "link",
            "revoke",
            "--target",
            "imanage",
            "--user",
            "alice@firm.example",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&d, &["link", "list", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    assert_eq!(
        token_metric(&d, "scim_bridge_target_linked_accounts", "").0,
        Some(0.0)
    );
}

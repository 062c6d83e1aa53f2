//! Console sign-in through OpenID Connect. Over plain HTTP against a strict fake
//! provider (`common::fake_oidc`): the state, the code (used once), the ID token's
//! signature, nonce, audience and expiry, key rotation, an outage, the role from the
//! groups claim, and a session that survives a restart of the daemon. In headless
//! Chromium against a real provider, npm's `oidc-provider` (scripts/peer/oidc): an
//! admin signs in through its login form and lands on the overview, a viewer gets
//! read-only, a person in no allowed group is refused with a clear page.

use crate::common;
use crate::console::{Answer, Client};

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::fake_oidc::{self, CLIENT_SECRET};
use common::webdriver::{self, Browser};
use common::{Daemon, InProcess};

fn http() -> reqwest::Client {
    scim_bridge::oauth::build_client(Duration::from_secs(30)).unwrap()
}

/// Starts a sign-in at the console, lets the fake provider answer, and returns the
/// callback (path and query) without following it.
async fn to_provider_and_back(c: &mut Client, base: &str) -> String {
    let start = c.get("/ui/signin/oidc").await;
    assert_eq!(start.status, 303, "{}", start.body);
    assert!(
        start
            .set_cookies()
            .iter()
            .any(|v| v.starts_with("sb_console_oidc=")
                && v.contains("SameSite=Lax")
                && v.contains("HttpOnly")),
        "{:?}",
        start.set_cookies()
    );
    let at_idp = http().get(start.location()).send().await.unwrap();
    assert_eq!(at_idp.status(), 302, "{}", at_idp.text().await.unwrap());
    let back = at_idp.headers()["location"].to_str().unwrap().to_owned();
    back.strip_prefix(base)
        .unwrap_or_else(|| panic!("{back} is not under {base}"))
        .to_owned()
}

/// Signs in through the fake, all the way: the callback's answer.
async fn oidc_sign_in(c: &mut Client, base: &str) -> Answer {
    let back = to_provider_and_back(c, base).await;
    c.get(&back).await
}

fn assert_refused(a: &Answer, status: u16, says: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert!(a.body.contains(says), "expected {says:?} in {}", a.body);
    assert!(
        !a.set_cookies()
            .iter()
            .any(|c| c.starts_with("sb_console=") && !c.contains("Max-Age=0"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_checks_state_code_and_id_token() {
    let (fake, issuer) = fake_oidc::start();
    let d = InProcess::start_with_secrets(
        &fake_oidc::console_config(&issuer, r#""openid", "profile""#),
        &[("oidc.secret", CLIENT_SECRET)],
    );
    let base = d.url("");

    // The sign-in page offers the provider beside the token form.
    let mut c = Client::new(&d);
    let page = c.get("/ui/signin").await;
    assert!(page.body.contains("Sign in with Firm SSO"), "{}", page.body);
    assert!(page.body.contains("API token"), "{}", page.body);

    // The provider down: a clear page, no panic, no session.
    fake.lock().unwrap().down = true;
    let a = c.get("/ui/signin/oidc").await;
    assert_refused(&a, 502, "Identity provider unavailable");
    assert!(a.body.contains("sign in with an API token"), "{}", a.body);
    fake.lock().unwrap().down = false;

    // An admin by group: signed in, on the overview, named in the page that says so.
    let a = oidc_sign_in(&mut c, &base).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body
            .contains("Signed in as Ada Lovelace (oidc:ada) (admin)"),
        "{}",
        a.body
    );
    assert!(a.body.contains(r#"content="0; url=/ui/""#), "{}", a.body);
    let session = a
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("sb_console="))
        .expect("a session cookie");
    assert!(
        session.contains("SameSite=Strict") && session.contains("HttpOnly"),
        "{session}"
    );
    assert!(
        !c.cookies.contains_key("sb_console_oidc"),
        "the flow cookie is cleared"
    );
    let overview = c.get("/ui/").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(
        overview.body.contains("Signed in: admin"),
        "{}",
        overview.body
    );
    // No secret, code or token on any page.
    for p in [&a.body, &overview.body] {
        assert!(!p.contains(CLIENT_SECRET) && !p.contains("code-") && !p.contains("eyJ"));
    }

    // The same answer again (a replayed callback, with its flow cookie): refused.
    let mut replay = Client::new(&d);
    let back = to_provider_and_back(&mut replay, &base).await;
    let flow = replay.cookies["sb_console_oidc"].clone();
    assert_eq!(replay.get(&back).await.status, 200);
    replay.cookies.insert("sb_console_oidc".into(), flow);
    assert_refused(&replay.get(&back).await, 403, "already completed");
    // An answer without the flow cookie (another browser): refused.
    let mut other = Client::new(&d);
    assert_refused(
        &other.get(&back).await,
        400,
        "did not start in this browser",
    );

    // A state that is not this browser's.
    let mut c = Client::new(&d);
    let back = to_provider_and_back(&mut c, &base).await;
    let url = url::Url::parse(&format!("{base}{back}")).unwrap();
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let a = c
        .get(&format!(
            "/ui/signin/oidc/callback?code={code}&state=forged"
        ))
        .await;
    assert_refused(&a, 403, "state did not match");

    // ID tokens that must not be trusted: another nonce, another audience, expired.
    for (tamper, says) in [
        ("nonce", "does not carry this sign-in"),
        ("aud", "is not for this client"),
        ("exp", "has expired"),
    ] {
        {
            let mut f = fake.lock().unwrap();
            match tamper {
                "nonce" => f.nonce = Some("someone-elses".into()),
                "aud" => f.aud = Some("another-app".into()),
                _ => f.expires_in = -3600,
            }
        }
        let mut c = Client::new(&d);
        let a = oidc_sign_in(&mut c, &base).await;
        assert_refused(&a, 403, says);
        let mut f = fake.lock().unwrap();
        (f.nonce, f.aud, f.expires_in) = (None, None, 300);
    }

    // The provider rotates its key: the new kid is fetched, the sign-in goes through.
    let fetched = fake.lock().unwrap().jwks_fetches;
    fake.lock().unwrap().rotate();
    let mut c = Client::new(&d);
    assert_eq!(oidc_sign_in(&mut c, &base).await.status, 200);
    assert_eq!(fake.lock().unwrap().jwks_fetches, fetched + 1);

    // A viewer by group reads and cannot act.
    fake.lock()
        .unwrap()
        .person("grace", "Grace Hopper", &["Console-Readers"]);
    let mut viewer = Client::new(&d);
    assert_eq!(oidc_sign_in(&mut viewer, &base).await.status, 200);
    let page = viewer.get("/ui/guard").await;
    assert!(
        page.body.contains("Signed in: viewer (read only)"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let a = viewer
        .post("/ui/guard/hooks/approve", &[("csrf", &csrf)])
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body.contains("viewer group, not its admin group"),
        "{}",
        a.body
    );

    // An admin by subject, whatever the groups.
    fake.lock().unwrap().person("break-glass", "", &[]);
    let mut c = Client::new(&d);
    let a = oidc_sign_in(&mut c, &base).await;
    assert!(
        a.body.contains("Signed in as oidc:break-glass (admin)"),
        "{}",
        a.body
    );

    // In no allowed group: refused, with who they are and why.
    fake.lock()
        .unwrap()
        .person("00u-mallory", "Mallory Jones", &["Marketing"]);
    let mut c = Client::new(&d);
    let a = oidc_sign_in(&mut c, &base).await;
    assert_refused(
        &a,
        403,
        "You signed in at Firm SSO as Mallory Jones (subject 00u-mallory)",
    );
    assert!(
        a.body.contains("in none of the groups allowed"),
        "{}",
        a.body
    );
    assert_eq!(c.get("/ui/").await.status, 303);

    // The log names people and never holds the secret, a code or a token.
    let log = d.log_text();
    assert!(
        !log.contains(CLIENT_SECRET) && !log.contains("eyJ"),
        "{log}"
    );
}

#[test]
fn an_oidc_session_survives_a_restart_and_a_replayed_code_is_refused() {
    let (_fake, issuer) = fake_oidc::start();
    let mut d = Daemon::start_with_secrets(
        &fake_oidc::console_config(&issuer, r#""openid""#),
        &[("oidc.secret", CLIENT_SECRET)],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = d.url("");
    let mut c = Client::new(&d);
    let back = rt.block_on(to_provider_and_back(&mut c, &base));
    let flow = c.cookies["sb_console_oidc"].clone();
    let a = rt.block_on(c.get(&back));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(rt.block_on(c.get("/ui/")).status, 200);

    d.terminate();
    d.spawn();
    // Still signed in after the restart: the session is in the database.
    let page = rt.block_on(c.get("/ui/"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Signed in: admin"), "{}", page.body);
    // This instance has not seen the answer; the provider refuses its code again.
    let mut replay = Client::new(&d);
    replay.cookies.insert("sb_console_oidc".into(), flow);
    let a = rt.block_on(replay.get(&back));
    assert_refused(&a, 403, "refused the sign-in");
    // Signing out ends it for good.
    let csrf = page.csrf();
    assert_eq!(
        rt.block_on(c.post("/ui/signout", &[("csrf", &csrf)]))
            .status,
        303
    );
    d.terminate();
    d.spawn();
    assert_eq!(rt.block_on(c.get("/ui/")).status, 303);
}

/// `target/`, beside the test binary's `target/debug/deps`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("target directory")
        .to_path_buf()
}

/// Whether a missing tool fails the test (CI) or skips it with a reason (locally).
#[allow(clippy::disallowed_methods)] // the test run's own switches, not the daemon's
fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var_os("SCIM_BRIDGE_REQUIRE_OIDC").is_some()
}

/// npm's oidc-provider, installed under target/oidc-peer (the install script is
/// idempotent), started with the bridge's client; `None` with the reason when node
/// or npm is missing.
fn start_provider() -> Result<(Child, String), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = target_dir().join("oidc-peer");
    let install = Command::new(root.join("scripts/peer/install-oidc.sh"))
        .env("OIDC_PEER_DIR", &dir)
        .current_dir(&root)
        .output()
        .map_err(|e| format!("scripts/peer/install-oidc.sh: {e}"))?;
    if !install.status.success() {
        return Err(format!(
            "oidc-provider could not be installed: {}",
            String::from_utf8_lossy(&install.stderr).trim()
        ));
    }
    let mut child = Command::new("node")
        .arg(dir.join("provider.mjs"))
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_CLIENT_ID", fake_oidc::CLIENT_ID)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("node: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .map_err(|e| format!("oidc-provider: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&line).map_err(|_| format!("oidc-provider said {line:?}"))?;
    Ok((child, v["issuer"].as_str().unwrap_or_default().to_owned()))
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Signs `login` in at oidc-provider's own form, from the console's sign-in page.
async fn sign_in_at_idp(b: &Browser, d: &InProcess, login: &str, shot: Option<PathBuf>) {
    b.goto(&d.url("/ui/signin")).await;
    b.click("#signin-idp").await;
    b.wait_text("Sign-in").await;
    b.type_into("input[name=login]", login).await;
    b.type_into("input[name=password]", "any password").await;
    if let Some(shot) = shot {
        b.screenshot(&shot).await;
    }
    b.click("button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_through_a_real_oidc_provider_in_chromium() {
    let Some((driver, chromium)) = webdriver::installed() else {
        let why = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)";
        assert!(!required(), "{why}");
        eprintln!("skipped: {why}");
        return;
    };
    let (provider, issuer) = match start_provider() {
        Ok(p) => p,
        Err(why) => {
            assert!(!required(), "{why}");
            eprintln!("skipped: {why}");
            return;
        }
    };
    let _provider = Stop(provider);
    let d = InProcess::start_with_secrets(
        &fake_oidc::console_config(&issuer, r#""openid", "profile", "email", "groups""#),
        &[("oidc.secret", CLIENT_SECRET)],
    );
    let shots = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // An admin by group: the provider's login form, then the overview. The provider
    // is at `localhost`, the console at `127.0.0.1`: the way back crosses sites.
    let b = Browser::start(&driver, &chromium).await;
    sign_in_at_idp(&b, &d, "ada", Some(shots.join("oidc-idp-signin.png"))).await;
    let text = b.wait_text("Identity providers").await;
    assert_eq!(b.title().await, "Overview — scim-bridge console");
    assert!(text.contains("Signed in: admin"), "{text}");
    b.screenshot(&shots.join("oidc-overview.png")).await;
    b.click("form.signout button").await;
    b.wait_text("Sign in with Firm SSO").await;
    drop(b);

    // A viewer by group: read only.
    let b = Browser::start(&driver, &chromium).await;
    sign_in_at_idp(&b, &d, "grace", None).await;
    let text = b.wait_text("Identity providers").await;
    assert!(text.contains("Signed in: viewer (read only)"), "{text}");
    drop(b);

    // In no allowed group: refused, saying who and why.
    let b = Browser::start(&driver, &chromium).await;
    sign_in_at_idp(&b, &d, "mallory", None).await;
    let text = b.wait_text("Not allowed").await;
    assert!(
        text.contains("as Mallory Jones (subject mallory)")
            && text.contains("none of the groups allowed"),
        "{text}"
    );
    b.screenshot(&shots.join("oidc-refused.png")).await;
    b.goto(&d.url("/ui/")).await;
    assert!(b.url().await.ends_with("/ui/signin"), "{}", b.url().await);
}

/// What a person signed in through the provider does is recorded with their name
/// and subject, not a token id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_action_is_recorded_with_their_name_and_subject() {
    let receiver = common::fake_webhook::new_receiver(0.0, 3);
    let url = common::fake_webhook::start_blocking(receiver);
    let (_fake, issuer) = fake_oidc::start();
    let extra = format!(
        r#"{}
[[targets]]
name = "hooks"
kind = "webhook"
url = "{url}"
providers = ["entra"]
signing_secret = {{ file = "hook.secret" }}
timeout = "1s"
[targets.guard]
max_deprovisions = 1
window = "1h"
"#,
        fake_oidc::console_config(&issuer, r#""openid""#)
    );
    let d = InProcess::start_with_secrets(
        &extra,
        &[
            ("oidc.secret", CLIENT_SECRET),
            ("hook.secret", common::fake_webhook::SECRET),
        ],
    );
    let entra = common::Scim::new(d.base("entra"), d.token("entra"));
    let okta = common::Scim::new(d.base("okta"), d.token("okta"));
    let fx = crate::console::Fixture { d, entra, okta };
    let base = fx.d.url("");
    {
        // The console fixture's trip_guards waits on its two targets; this daemon has
        // one, tripped the same way: three deletions, the guard lets one through.
        let mut ids = Vec::new();
        for name in ["ada", "grace", "edsger"] {
            let name = format!("{name}@firm.example");
            let (status, body) = fx
                .entra
                .post("/Users", crate::console::user(&name, &name))
                .await;
            assert_eq!(status, 201, "{body}");
            ids.push(body["id"].as_str().unwrap().to_owned());
        }
        fx.d.wait_drained("hooks").await;
        for id in &ids {
            assert_eq!(fx.entra.delete(&format!("/Users/{id}")).await, 204);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = fx.d.delivery("hooks").await;
            if s["guard"]["state"] == "tripped" && s["queued"].as_u64().unwrap_or(0) >= 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "guard never tripped: {s}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut c = Client::new(&fx.d);
    assert_eq!(oidc_sign_in(&mut c, &base).await.status, 200);
    let guard = c.get("/ui/guard").await;
    let csrf = guard.csrf();
    let a = c.post("/ui/guard/hooks/reject", &[("csrf", &csrf)]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let out = fx.d.cli(&["log", "--only", "operators", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trail: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(trail.len(), 1, "{trail:#?}");
    assert_eq!(trail[0]["action"], "guard.reject");
    assert_eq!(trail[0]["via"], "console");
    assert_eq!(trail[0]["who"], "Ada Lovelace (oidc:ada)", "{trail:#?}");
}

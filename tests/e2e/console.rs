//! The operator's console over plain HTTP (no browser): no page or action without a
//! session, CSRF refused, sessions that end (sign-out, token revoked, expiry on the
//! daemon's clock), a viewer who cannot act, no secret ever rendered, and the
//! headers and cookie every answer carries. `console_browser.rs` drives the same
//! console in Chromium.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_webhook::{self, SECRET};
use common::{InProcess, Scim};
use reqwest::header::HeaderMap;
use scim_bridge::clock::{Clock, ManualClock, SystemClock};
use serde_json::{Value, json};

/// A daemon with the console on, two webhook targets for entra (each guard trips on
/// the second deprovisioning within an hour), okta routed nowhere.
pub struct Fixture {
    pub d: InProcess,
    pub entra: Scim,
    pub okta: Scim,
}

pub fn start(clock: Arc<dyn Clock>) -> Fixture {
    let receiver = fake_webhook::new_receiver(0.0, 3);
    let url = fake_webhook::start_blocking(receiver);
    let target = |name: &str| {
        format!(
            r#"
[[targets]]
name = "{name}"
kind = "webhook"
url = "{url}"
providers = ["entra"]
signing_secret = {{ file = "hook.secret" }}
timeout = "1s"
[targets.guard]
max_deprovisions = 1
window = "1h"
"#
        )
    };
    let extra = format!(
        "\n[console]\nenabled = true\nsession_lifetime = \"1h\"\n{}{}",
        target("hooks"),
        target("archive")
    );
    let d = InProcess::start_with_clock_and_secrets(&extra, &[("hook.secret", SECRET)], clock);
    let entra = Scim::new(d.base("entra"), d.token("entra"));
    let okta = Scim::new(d.base("okta"), d.token("okta"));
    Fixture { d, entra, okta }
}

pub fn user(name: &str, display: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "displayName": display, "active": true,
        "emails": [{"value": name.replace("@", ".mail@"), "type": "work", "primary": true}],
    })
}

impl Fixture {
    /// Three entra users delivered, then deleted: each target's guard trips and
    /// holds the deletions it did not let through (two, or all three when the
    /// guard counted them all before delivering one). Returns how many "hooks" holds.
    pub async fn trip_guards(&self) -> u64 {
        let mut ids = Vec::new();
        for name in ["ada", "grace", "edsger"] {
            let name = format!("{name}@firm.example");
            let (status, body) = self.entra.post("/Users", user(&name, &name)).await;
            assert_eq!(status, 201, "{body}");
            ids.push(body["id"].as_str().unwrap().to_owned());
        }
        for t in ["hooks", "archive"] {
            self.d.wait_drained(t).await;
        }
        for id in &ids {
            assert_eq!(self.entra.delete(&format!("/Users/{id}")).await, 204);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut held = 0;
        for t in ["hooks", "archive"] {
            let mut last = Value::Null;
            loop {
                let s = self.d.delivery(t).await;
                let queued = s["queued"].as_u64().unwrap_or(0);
                // Tripped, and the queue no longer moving.
                if s["guard"]["state"] == "tripped" && queued >= 2 && s == last {
                    if t == "hooks" {
                        held = queued;
                    }
                    break;
                }
                assert!(Instant::now() < deadline, "guard of {t} never tripped: {s}");
                last = s;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        held
    }
}

/// A browser without a browser: a cookie jar and the forms' CSRF fields.
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub cookies: HashMap<String, String>,
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

impl Client {
    pub fn new(d: &common::Site) -> Client {
        Client {
            http: scim_bridge::oauth::build_client(Duration::from_secs(30)).unwrap(),
            base: d.url(""),
            cookies: HashMap::new(),
        }
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let text = v.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Answer {
        let r = if self.cookies.is_empty() {
            r
        } else {
            r.header("cookie", self.cookie_header())
        };
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.keep(&headers);
        let body = resp.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body: String = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(r).await
    }

    /// Signs in with `token`; the answer to the form's POST.
    pub async fn sign_in(&mut self, token: &str) -> Answer {
        let form = self.get("/ui/signin").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf();
        self.post("/ui/signin", &[("token", token), ("csrf", &csrf)])
            .await
    }

    /// Signs in and returns the overview.
    pub async fn signed_in(d: &InProcess, token: &str) -> (Client, Answer) {
        let mut c = Client::new(d);
        let a = c.sign_in(token).await;
        assert_eq!(a.status, 303, "{}", a.body);
        assert_eq!(a.location(), "/ui/");
        let page = c.get("/ui/").await;
        assert_eq!(page.status, 200, "{}", page.body);
        (c, page)
    }
}

const PAGES: &[&str] = &[
    "/ui/",
    "/ui/people",
    "/ui/people?q=ada%40firm.example",
    "/ui/dead-letters",
    "/ui/guard",
];
const ACTIONS: &[&str] = &[
    "/ui/dead-letters/1/retry",
    "/ui/dead-letters/1/drop",
    "/ui/guard/hooks/approve",
    "/ui/guard/hooks/reject",
    "/ui/signout",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_or_action_without_a_session() {
    let fx = start(Arc::new(SystemClock));
    let held = fx.trip_guards().await;
    let (_, created) = fx
        .entra
        .post("/Users", user("kept@firm.example", "Kept"))
        .await;
    let person = format!("/ui/people/entra/users/{}", created["id"].as_str().unwrap());
    let mut c = Client::new(&fx.d);
    for jar in [None, Some("sb_console=forged-session-id")] {
        c.cookies.clear();
        if let Some(cookie) = jar {
            let (k, v) = cookie.split_once('=').unwrap();
            c.cookies.insert(k.into(), v.into());
        }
        for path in PAGES.iter().copied().chain([person.as_str()]) {
            let a = c.get(path).await;
            assert_eq!(a.status, 303, "{path}: {}", a.body);
            assert_eq!(a.location(), "/ui/signin", "{path}");
            assert!(!a.body.contains("firm.example"), "{path}: {}", a.body);
        }
        for path in ACTIONS {
            let a = c.post(path, &[("csrf", "x")]).await;
            assert_eq!(a.status, 403, "{path}: {}", a.body);
            assert!(a.body.contains("sign in again"), "{path}: {}", a.body);
        }
    }
    // Nothing was acted on.
    for t in ["hooks", "archive"] {
        let s = fx.d.delivery(t).await;
        assert_eq!(s["guard"]["state"], "tripped", "{s}");
        assert!(s["queued"].as_u64().unwrap() >= 2, "{s}");
    }
    // The sign-in page itself is open, and carries the headers every page does.
    let a = c.get("/ui/signin").await;
    assert_eq!(a.status, 200);
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(a.headers["x-frame-options"], "DENY");
    assert_eq!(a.headers["cache-control"], "no-store");
    assert_eq!(a.headers["referrer-policy"], "no-referrer");
    assert!(!a.body.contains("<script"), "{}", a.body);
    assert!(held >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_gives_a_strict_cookie_and_sign_out_or_revocation_ends_it() {
    let fx = start(Arc::new(SystemClock));
    let mut c = Client::new(&fx.d);
    // Wrong tokens: a made-up one, a SCIM token.
    for (token, says) in [
        ("sb_0123456789abcdef_nope", "invalid bearer token"),
        (fx.entra.token.as_str(), "does not open the console"),
    ] {
        let a = c.sign_in(token).await;
        assert_eq!(a.status, 401, "{}", a.body);
        assert!(a.body.contains(says), "{}", a.body);
        assert!(!a.set_cookies().iter().any(|s| s.starts_with("sb_console=")));
    }
    let admin = fx.d.admin_token();
    let a = c.sign_in(&admin).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let cookie = a
        .set_cookies()
        .into_iter()
        .find(|s| s.starts_with("sb_console="))
        .expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=3600"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    // Plain HTTP to a daemon without an https:// public URL: not Secure, or the
    // browser would never send it back.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let page = c.get("/ui/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("entra") && page.body.contains("hooks"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Signed in: admin"), "{}", page.body);
    let stolen = c.cookies.clone();
    let csrf = page.csrf();
    let out = c.post("/ui/signout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/ui/signin");
    assert!(!c.cookies.contains_key("sb_console"));
    // The old cookie, replayed, opens nothing: the session is gone server-side.
    c.cookies = stolen;
    assert_eq!(c.get("/ui/").await.status, 303);

    // Revoking the token ends its sessions at their next request.
    let (mut c, _) = Client::signed_in(&fx.d, &admin).await;
    let id = admin.split('_').nth(1).unwrap();
    let out = fx.d.cli(&["token", "revoke", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = c.get("/ui/").await;
    assert_eq!(a.status, 303);
    assert_eq!(a.location(), "/ui/signin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_is_refused_and_a_viewer_cannot_act() {
    let fx = start(Arc::new(SystemClock));
    let held = fx.trip_guards().await;
    // The sign-in form without its own CSRF cookie (a form posted from elsewhere).
    let mut c = Client::new(&fx.d);
    let admin = fx.d.admin_token();
    let a = c
        .post("/ui/signin", &[("token", &admin), ("csrf", "forged")])
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(!a.set_cookies().iter().any(|s| s.starts_with("sb_console=")));

    let (mut c, page) = Client::signed_in(&fx.d, &admin).await;
    let good = page.csrf();
    // Another session's token is as wrong as a made-up one.
    let (_, other) = Client::signed_in(&fx.d, &admin).await;
    let foreign = other.csrf();
    assert_ne!(good, foreign);
    for csrf in ["", "forged", foreign.as_str()] {
        for path in [
            "/ui/guard/hooks/approve",
            "/ui/guard/hooks/reject",
            "/ui/signout",
        ] {
            let a = c.post(path, &[("csrf", csrf)]).await;
            assert_eq!(a.status, 403, "{path} {csrf:?}: {}", a.body);
        }
    }
    let a = c.post("/ui/guard/hooks/approve", &[]).await;
    assert!(a.status >= 400, "{}", a.body);
    let s = fx.d.delivery("hooks").await;
    assert_eq!(s["guard"]["state"], "tripped", "{s}");
    assert_eq!(s["queued"], held, "{s}");

    // A viewer reads every page, sees no action and may not act.
    let viewer = fx.d.viewer_token();
    let (mut v, page) = Client::signed_in(&fx.d, &viewer).await;
    assert!(page.body.contains("viewer (read only)"), "{}", page.body);
    let csrf = page.csrf();
    let guard = v.get("/ui/guard").await;
    assert_eq!(guard.status, 200);
    // Which deletion the guard let through first depends on timing; it names each
    // one it holds.
    let named = ["ada", "grace", "edsger"]
        .iter()
        .filter(|n| guard.body.contains(&format!("{n}@firm.example")))
        .count();
    assert!(named as u64 >= held, "{}", guard.body);
    assert!(!guard.body.contains("/approve"), "{}", guard.body);
    for path in ["/ui/guard/hooks/approve", "/ui/guard/hooks/reject"] {
        let a = v.post(path, &[("csrf", &csrf)]).await;
        assert_eq!(a.status, 403, "{}", a.body);
        assert!(a.body.contains("viewer token"), "{}", a.body);
    }
    let s = fx.d.delivery("hooks").await;
    assert_eq!(s["guard"]["state"], "tripped", "{s}");

    // The admin, with the right token, acts.
    let a = c.post("/ui/guard/hooks/reject", &[("csrf", &good)]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let letters = c.get(a.location()).await;
    assert!(
        letters
            .body
            .contains(&format!("Rejected: {held} held change(s) of hooks")),
        "{}",
        letters.body
    );
    let dead = c.get("/ui/dead-letters").await;
    assert!(
        dead.body.contains("grace@firm.example") || dead.body.contains("edsger@firm.example"),
        "{}",
        dead.body
    );
    let s = fx.d.delivery("hooks").await;
    assert_eq!(s["guard"]["state"], "armed", "{s}");
    assert_eq!(s["dead_letters"], held, "{s}");
    // Viewers see dead letters without buttons.
    let dead = v.get("/ui/dead-letters").await;
    assert!(
        dead.body
            .contains("rejected at the mass-deprovisioning guard"),
        "{}",
        dead.body
    );
    assert!(!dead.body.contains("/retry"), "{}", dead.body);

    // The audit trail has the admin's rejection, with who, and none of the refused
    // attempts; then the admin's retry of one dead letter, naming the person.
    let records = |d: &InProcess| -> Vec<Value> {
        let out = d.cli(&["log", "--only", "operators", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let trail = records(&fx.d);
    assert_eq!(trail.len(), 1, "{trail:#?}");
    assert_eq!(trail[0]["action"], "guard.reject");
    assert_eq!(trail[0]["via"], "console");
    assert_eq!(trail[0]["target"], "hooks");
    // Who: the signed-in token's public id (never the token).
    let who = trail[0]["who"].as_str().unwrap();
    assert!(
        !who.is_empty() && admin.contains(who) && admin != who,
        "{trail:#?}"
    );
    let dead = c.get("/ui/dead-letters").await;
    let retry = dead
        .body
        .split("action=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|a| a.ends_with("/retry"))
        .unwrap()
        .to_owned();
    let csrf = dead.csrf();
    let a = c.post(&retry, &[("csrf", &csrf)]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let trail = records(&fx.d);
    assert_eq!(trail.len(), 2, "{trail:#?}");
    assert_eq!(trail[0]["action"], "dlq.retry");
    let name = trail[0]["resource"]["userName"].as_str().unwrap();
    assert!(name.ends_with("@firm.example"), "{trail:#?}");
    assert!(
        trail[0]["detail"].as_str().unwrap().contains(name),
        "{trail:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_on_the_daemons_clock() {
    let t0 = chrono::TimeZone::timestamp_opt(&chrono::Utc, 1_800_000_000, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let fx = start(clock.clone());
    let admin = fx.d.admin_token();
    let (mut c, _) = Client::signed_in(&fx.d, &admin).await;
    clock.advance(chrono::Duration::minutes(59));
    assert_eq!(c.get("/ui/guard").await.status, 200);
    clock.advance(chrono::Duration::minutes(2));
    let a = c.get("/ui/guard").await;
    assert_eq!(a.status, 303);
    assert_eq!(a.location(), "/ui/signin");
    // Signing in again works on the same clock.
    Client::signed_in(&fx.d, &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_ever_rendered() {
    let fx = start(Arc::new(SystemClock));
    let mut with_password = user("pat@firm.example", "Pat");
    with_password["password"] = json!("hunter2-Secret!");
    let (status, body) = fx.entra.post("/Users", with_password).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    fx.trip_guards().await;
    let admin = fx.d.admin_token();
    let viewer = fx.d.viewer_token();
    let (mut c, _) = Client::signed_in(&fx.d, &admin).await;
    let mut pages: Vec<String> = PAGES.iter().map(|p| p.to_string()).collect();
    pages.push(format!("/ui/people/entra/users/{id}"));
    pages.push("/ui/people?q=pat%40firm.example".into());
    // `sb_<hex id>_<base64url secret>`: the secret itself may hold `_`.
    let secret_of = |t: &str| {
        let (_, secret) = t.strip_prefix("sb_").unwrap().split_once('_').unwrap();
        secret.to_owned()
    };
    let forbidden = [
        admin.clone(),
        secret_of(&admin),
        viewer.clone(),
        secret_of(&viewer),
        fx.entra.token.clone(),
        secret_of(&fx.entra.token),
        SECRET.to_owned(),
        "hunter2".to_owned(),
    ];
    let mut seen_person = false;
    for p in &pages {
        let a = c.get(p).await;
        assert_eq!(a.status, 200, "{p}: {}", a.body);
        seen_person |= a.body.contains("pat@firm.example");
        for f in &forbidden {
            assert!(!a.body.contains(f.as_str()), "{p} shows a secret");
        }
    }
    assert!(seen_person);
    // A refused sign-in does not echo the token either.
    let mut anon = Client::new(&fx.d);
    let a = anon.sign_in(&format!("{}x", fx.entra.token)).await;
    assert!(!a.body.contains(&secret_of(&fx.entra.token)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_page_shows_scope_target_id_groups_and_attempts() {
    let fx = start(Arc::new(SystemClock));
    let (_, u) = fx
        .entra
        .post("/Users", user("lin@firm.example", "Lin Ko"))
        .await;
    let id = u["id"].as_str().unwrap().to_owned();
    let (status, g) = fx
        .entra
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "Partners", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!(status, 201, "{g}");
    for t in ["hooks", "archive"] {
        fx.d.wait_drained(t).await;
    }
    let (mut c, _) = Client::signed_in(&fx.d, &fx.d.admin_token()).await;
    // Found by userName (any case), email and display name.
    for q in ["LIN@firm.example", "lin.mail%40firm.example", "lin%20ko"] {
        let a = c.get(&format!("/ui/people?q={q}")).await;
        assert!(a.body.contains("1 match for"), "{q}: {}", a.body);
        assert!(
            a.body.contains(&format!("/ui/people/entra/users/{id}")),
            "{q}: {}",
            a.body
        );
    }
    let a = c.get(&format!("/ui/people/entra/users/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    for expected in [
        "Lin Ko",
        "Partners",
        "in scope",
        "hooks",
        "archive",
        "delivered",
        "Provisioning log",
        // The log's records: the creation received, and what each target was sent.
        "entra → scim-bridge",
        "entra → hooks",
        "displayName: (none) → Lin Ko",
    ] {
        assert!(a.body.contains(expected), "{expected}: {}", a.body);
    }
    // A webhook keeps no id of its own for anyone.
    assert!(a.body.contains("none recorded"), "{}", a.body);
    let group = c
        .get(&format!(
            "/ui/people/entra/groups/{}",
            g["id"].as_str().unwrap()
        ))
        .await;
    assert!(group.body.contains("lin@firm.example"), "{}", group.body);
    // okta is routed to no target.
    let (_, o) = fx
        .okta
        .post("/Users", user("solo@firm.example", "Solo"))
        .await;
    let a = c
        .get(&format!(
            "/ui/people/okta/users/{}",
            o["id"].as_str().unwrap()
        ))
        .await;
    assert!(a.body.contains("No target receives okta"), "{}", a.body);
    assert_eq!(c.get("/ui/people/entra/users/nope").await.status, 404);
}

/// The text of the `<dd>` after `<dt>{term}</dt>` in `a`'s `n`th target article.
fn described(body: &str, target: &str, term: &str) -> String {
    let article = body
        .split("<article class=\"target\"")
        .find(|a| a.starts_with(&format!(" aria-label=\"{target}\"")))
        .unwrap_or_else(|| panic!("no article for {target}: {body}"));
    let needle = format!("<dt>{term}</dt><dd>");
    let at = article
        .find(&needle)
        .unwrap_or_else(|| panic!("no {term} for {target}: {article}"));
    let rest = &article[at + needle.len()..];
    rest[..rest.find("</dd>").unwrap()].to_owned()
}

/// What each target gets, on a person's page: a SCIM app's role from its rules and
/// the manager by name (never the bridge's id), and the version each target last
/// acknowledged, marked pending once the person has changed since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_page_shows_role_manager_and_the_last_delivered_version() {
    let receiver = fake_webhook::new_receiver(0.0, 5);
    let url = fake_webhook::start_blocking(receiver.clone());
    let extra = format!(
        r#"
[console]
enabled = true
[[targets]]
name = "hooks"
kind = "webhook"
url = "{url}"
providers = ["entra"]
signing_secret = {{ file = "hook.secret" }}
timeout = "1s"
[[targets]]
name = "app"
kind = "scim"
url = "http://127.0.0.1:9/scim/v2"
providers = ["entra"]
paused = true
[targets.roles]
order = ["Owner", "Manager", "Adviser"]
default = "Adviser"
[targets.roles.groups]
Manager = ["Claras-Managers"]
"#
    );
    let t0 = chrono::TimeZone::timestamp_opt(&chrono::Utc, 1_800_000_000, 0).unwrap();
    let d = InProcess::start_with_clock_and_secrets(
        &extra,
        &[("hook.secret", SECRET)],
        Arc::new(ManualClock::new(t0)),
    );
    let entra = Scim::new(d.base("entra"), d.token("entra"));
    let (_, grace) = entra
        .post("/Users", user("grace@firm.example", "Grace Hopper"))
        .await;
    let grace_id = grace["id"].as_str().unwrap().to_owned();
    let mut ada = user("ada@firm.example", "Ada Lovelace");
    ada["schemas"] = json!([
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    ]);
    ada["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"manager": {"value": grace_id}});
    let (status, ada) = entra.post("/Users", ada).await;
    assert_eq!(status, 201, "{ada}");
    let id = ada["id"].as_str().unwrap().to_owned();
    let (status, g) = entra
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "Claras-Managers", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!(status, 201, "{g}");
    d.wait_drained("hooks").await;

    let (mut c, _) = Client::signed_in(&d, &d.admin_token()).await;
    let path = format!("/ui/people/entra/users/{id}");
    let a = c.get(&path).await;
    assert_eq!(a.status, 200, "{}", a.body);
    // The app's rules make ada a Manager through her group; the app has not got
    // grace (it is paused), so her reference waits, named, not by id.
    let role = described(&a.body, "app", "Role");
    assert!(role.starts_with("Manager "), "{role}");
    assert!(role.contains("Claras-Managers"), "{role}");
    let manager = described(&a.body, "app", "Manager");
    assert!(
        manager.starts_with("grace@firm.example: not at the target yet"),
        "{manager}"
    );
    assert!(!manager.contains(&grace_id), "{manager}");
    assert_eq!(described(&a.body, "app", "Last delivered"), "none recorded");
    // A webhook gets the resource as stored: no role; the manager by name.
    assert!(described(&a.body, "hooks", "Role").starts_with("none "));
    assert_eq!(
        described(&a.body, "hooks", "Manager"),
        "grace@firm.example (as stored, by the bridge&#39;s id)"
    );
    let delivered = described(&a.body, "hooks", "Last delivered");
    assert!(
        delivered.starts_with("version 1, 2027-01-15 08:00:00 UTC (create)"),
        "{delivered}"
    );
    assert!(!delivered.contains("pending"), "{delivered}");
    assert!(a.body.contains("What app gets"), "{}", a.body);

    // hooks goes down and ada changes: her new version waits, and the page says so.
    receiver.lock().unwrap().down = true;
    let (status, body) = entra
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "title", "value": "Countess"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.delivery("hooks").await["retrying"] != 1 {
        assert!(Instant::now() < deadline, "never retrying");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = c.get(&path).await;
    let delivered = described(&a.body, "hooks", "Last delivered");
    assert!(delivered.starts_with("version 1, "), "{delivered}");
    assert!(
        delivered.contains("<span class=\"badge warn\">pending</span>"),
        "{delivered}"
    );
    assert!(delivered.contains("version 2 is newer"), "{delivered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_hold_is_logged_once_however_often_it_is_looked_at_again() {
    let t0 = chrono::TimeZone::timestamp_opt(&chrono::Utc, 1_800_000_000, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let fx = start(clock.clone());
    let held = fx.trip_guards().await;
    let held_records = |d: &InProcess| -> usize {
        let out = d.cli(&["log", "--target", "hooks", "--outcome", "held", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert_eq!(held_records(&fx.d) as u64, held);
    // The engine looks at held changes again every 5 s of its clock; each look is
    // counted in /metrics, not written to the provisioning log again.
    let looks = |m: String| {
        m.lines()
            .find(|l| {
                l.starts_with("scim_bridge_deliveries_total{")
                    && l.contains("target=\"hooks\"")
                    && l.contains("outcome=\"paused\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let first_looks = looks(fx.d.metrics().await);
    let before = fx.d.delivery("hooks").await;
    for _ in 0..4 {
        clock.advance(chrono::Duration::seconds(6));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let after = fx.d.delivery("hooks").await;
    assert_eq!(after["guard"]["state"], "tripped", "{after}");
    assert_eq!(before["queued"], after["queued"], "{after}");
    assert!(
        looks(fx.d.metrics().await) > first_looks,
        "the engine looked again"
    );
    assert_eq!(held_records(&fx.d) as u64, held, "each hold once");
}

//! Provision on demand and reconciliation from the console, against the strict
//! iManage fake: over plain HTTP (a person created downstream with each step and
//! HTTP call shown by name, each step streamed before the target has answered, a
//! viewer and a forged form refused, a paused target left
//! alone, a guard hold kept, a dry run in names whose apply applies exactly that plan
//! and refuses a stale one), and in Chromium (one person provisioned on demand, one
//! dry run, screenshots under `target/console-screenshots/`).
//!
//! The daemon runs on a manual clock that never moves unless a test moves it: a
//! change that failed once waits for a retry that never comes due, which is the
//! moment an admin reaches for "Provision on demand".

use crate::common;
use crate::console::{Answer, Client, user};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_imanage::{self, Dms, TOKEN};
use common::webdriver::{self, Browser, screenshots};
use common::{InProcess, Scim};
use scim_bridge::clock::ManualClock;
use serde_json::{Value, json};

struct Fixture {
    d: InProcess,
    entra: Scim,
    /// The target `dms` (its guard trips on the second deactivation in an hour).
    dms: fake_imanage::Shared,
    /// The target `frozen`, configured `paused`.
    frozen: fake_imanage::Shared,
}

fn start() -> Fixture {
    let dms = Arc::new(Mutex::new(Dms::default()));
    let frozen = Arc::new(Mutex::new(Dms::default()));
    let target = |name: &str, host: &str, more: &str| {
        format!(
            r#"
[[targets]]
name = "{name}"
kind = "imanage"
url = "{host}"
providers = ["entra"]
timeout = "5s"
{more}
[targets.auth]
method = "bearer"
token = {{ file = "imanage.token" }}
[targets.guard]
max_deprovisions = 1
window = "1h"
"#
        )
    };
    let extra = format!(
        "\n[console]\nenabled = true\nsession_lifetime = \"1h\"\n{}{}",
        target("dms", &fake_imanage::start_blocking(dms.clone()), ""),
        target(
            "frozen",
            &fake_imanage::start_blocking(frozen.clone()),
            "paused = true"
        )
    );
    let t0 = chrono::TimeZone::timestamp_opt(&chrono::Utc, 1_800_000_000, 0).unwrap();
    let d = InProcess::start_with_clock_and_secrets(
        &extra,
        &[("imanage.token", TOKEN)],
        Arc::new(ManualClock::new(t0)),
    );
    let entra = Scim::new(d.base("entra"), d.token("entra"));
    Fixture {
        d,
        entra,
        dms,
        frozen,
    }
}

impl Fixture {
    /// Creates an entra user; its id.
    async fn person(&self, name: &str, display: &str) -> String {
        let (status, body) = self.entra.post("/Users", user(name, display)).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Waits until `dms`'s figures satisfy `done`; returns them.
    async fn until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.d.delivery("dms").await;
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "never {what}: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A person whose first delivery to `dms` failed (the fake was busy) and whose
    /// retry never comes due on the stopped clock; the fake is well again after.
    async fn stuck(&self, name: &str, display: &str) -> String {
        self.dms.lock().unwrap().busy_every = 1;
        let id = self.person(name, display).await;
        self.until("retrying", |s| s["retrying"] == 1).await;
        let mut dms = self.dms.lock().unwrap();
        dms.busy_every = 0;
        let key = name.to_uppercase();
        assert!(!dms.users.contains_key(&key), "{:?}", dms.users);
        id
    }

    /// The provisioning log's records (newest first), as the admin API gives them.
    async fn log(&self) -> Vec<Value> {
        let r: Value = scim_bridge::oauth::build_client(Duration::from_secs(30))
            .unwrap()
            .get(self.d.url("/api/v1/log?limit=200"))
            .bearer_auth(self.d.admin_token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["records"].as_array().unwrap().clone()
    }

    /// Whether `dms` holds the user with this (upper-case) id.
    fn has(&self, user: &str) -> bool {
        self.dms.lock().unwrap().users.contains_key(user)
    }

    async fn operator_actions(&self, action: &str) -> Vec<Value> {
        self.log()
            .await
            .into_iter()
            .filter(|r| r["kind"] == "operator.action" && r["action"] == action)
            .collect()
    }
}

fn provision_path(id: &str, target: &str) -> String {
    format!("/ui/people/entra/users/{id}/provision/{target}")
}

/// The value of the page's hidden field `name`.
fn field(a: &Answer, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = a
        .body
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} field in {}", a.body));
    let rest = &a.body[at + needle.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_on_demand_creates_the_person_and_shows_each_step_by_name() {
    let fx = start();
    let id = fx.stuck("ada@firm.example", "Ada Lovelace").await;
    let admin = fx.d.admin_token();
    let (mut c, _) = Client::signed_in(&fx.d, &admin).await;
    let person = c.get(&format!("/ui/people/entra/users/{id}")).await;
    assert_eq!(person.status, 200, "{}", person.body);
    let action = provision_path(&id, "dms");
    assert!(
        person.body.contains(&format!("action=\"{action}\"")),
        "{}",
        person.body
    );
    let csrf = person.csrf();

    // A forged form and a viewer are refused, and nothing is sent.
    let a = c.post(&action, &[("csrf", "forged")]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("CSRF"), "{}", a.body);
    let (mut viewer, _) = Client::signed_in(&fx.d, &fx.d.viewer_token()).await;
    let page = viewer.get(&format!("/ui/people/entra/users/{id}")).await;
    assert!(
        !page.body.contains("Provision on demand"),
        "a viewer gets no button: {}",
        page.body
    );
    let a = viewer.post(&action, &[("csrf", &page.csrf())]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("viewer token"), "{}", a.body);
    assert!(fx.dms.lock().unwrap().users.is_empty());
    assert!(fx.operator_actions("provision.on_demand").await.is_empty());

    // The admin asks: the queued change goes now, through the engine.
    let a = c.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = &a.body;
    assert!(
        body.contains("Provision on demand: ada@firm.example → dms"),
        "{body}"
    );
    assert!(
        body.contains("Done: dms has ada@firm.example (create succeeded)."),
        "{body}"
    );
    assert!(body.contains("attempt 2 of this change"), "{body}");
    for step in [
        "<th scope=\"row\">asked</th><td>on demand</td>",
        "<th scope=\"row\">scope</th><td>in</td>",
        "<th scope=\"row\">match</th><td>none</td><td>no existing account matched</td>",
        "<th scope=\"row\">action</th><td>create</td>",
    ] {
        assert!(body.contains(step), "{step}: {body}");
    }
    // The HTTP calls: the search for an account to match, then the creation.
    assert!(body.contains("<td>GET</td>"), "{body}");
    assert!(body.contains("<td>POST</td>"), "{body}");
    assert!(body.contains(">201</td>"), "{body}");
    {
        let dms = fx.dms.lock().unwrap();
        assert!(dms.refused.is_empty(), "{:?}", dms.refused);
        assert_eq!(
            dms.users["ADA@FIRM.EXAMPLE"]["email"],
            "ada.mail@firm.example"
        );
    }
    let s = fx.d.delivery("dms").await;
    assert_eq!(
        (s["queued"].as_u64(), s["retrying"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );

    // Recorded: the engine's action with who asked, and the operator's.
    let log = fx.log().await;
    let created = log
        .iter()
        .find(|r| r["kind"] == "delivery.action" && r["outcome"] == "success")
        .expect("the delivery's record");
    assert_eq!(created["action"], "create");
    assert_eq!(created["steps"][0]["step"], "asked", "{created}");
    let asked = fx.operator_actions("provision.on_demand").await;
    assert_eq!(asked.len(), 1, "{log:#?}");
    let who = asked[0]["who"].as_str().unwrap();
    assert!(!who.is_empty());
    assert!(
        created["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with(who),
        "{created}"
    );
    assert_eq!(asked[0]["via"], "console");
    assert_eq!(asked[0]["resource"]["userName"], "ada@firm.example");
    assert!(
        asked[0]["detail"]
            .as_str()
            .unwrap()
            .contains("create (success)"),
        "{:?}",
        asked[0]
    );

    // Asked again with nothing queued: the whole person is sent again, linked.
    let a = c.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("Nothing was queued for ada@firm.example"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains("<th scope=\"row\">match</th><td>linked</td>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("(update succeeded)"), "{}", a.body);
    assert_eq!(fx.d.delivery("dms").await["queued"], 0);
}

/// Reads `s` into `got` until `text` is in it; fails after `within`.
async fn read_until(
    s: &mut tokio::net::TcpStream,
    got: &mut Vec<u8>,
    text: &str,
    within: Duration,
) {
    use tokio::io::AsyncReadExt;
    let deadline = Instant::now() + within;
    while !String::from_utf8_lossy(got).contains(text) {
        let mut buf = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, s.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {text:?} within {within:?}: {}",
                    String::from_utf8_lossy(got)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "closed before {text:?}: {}",
            String::from_utf8_lossy(got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// The page is streamed: over raw HTTP, each step's row arrives while the target
/// still holds its answer to the creation, and the outcome once it has answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_step_is_sent_as_it_happens_before_the_target_answers() {
    use tokio::io::AsyncWriteExt;
    let fx = start();
    let id = fx.stuck("ada@firm.example", "Ada Lovelace").await;
    let (mut c, _) = Client::signed_in(&fx.d, &fx.d.admin_token()).await;
    let csrf = c.get(&format!("/ui/people/entra/users/{id}")).await.csrf();
    // dms answers reads at once and holds every write until the gate opens.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    fx.dms.lock().unwrap().write_gate = Some(gate.clone());

    let base = reqwest::Url::parse(&fx.d.url("/")).unwrap();
    let addr = format!("{}:{}", base.host_str().unwrap(), base.port().unwrap());
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let cookie = c
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let form = format!(
        "csrf={}",
        percent_encoding::utf8_percent_encode(&csrf, percent_encoding::NON_ALPHANUMERIC)
    );
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        provision_path(&id, "dms"),
        form.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();

    // Up to the creation sent: asked, scope, the matching reads, match, action.
    let mut got = Vec::new();
    let sent = "<th scope=\"row\">action</th><td>create</td>";
    read_until(&mut s, &mut got, sent, Duration::from_secs(20)).await;
    let so_far = String::from_utf8_lossy(&got).into_owned();
    let head = so_far
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{so_far}");
    assert!(head.contains("transfer-encoding: chunked"), "{so_far}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{so_far}"
    );
    let order = [
        "<th scope=\"row\">asked</th><td>on demand</td>",
        "<th scope=\"row\">scope</th><td>in</td>",
        "<th scope=\"row\">call</th><td>GET ",
        "<th scope=\"row\">match</th><td>none</td>",
        sent,
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|t| so_far.find(t).unwrap_or_else(|| panic!("{t}: {so_far}")))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}: {so_far}");
    // The target has not answered the creation, and the page has no outcome yet.
    assert!(!so_far.contains("Done:"), "{so_far}");
    assert!(!so_far.contains("POST "), "{so_far}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fx.has("ADA@FIRM.EXAMPLE"));

    // The target answers: its call, then the outcome and the end of the page.
    gate.add_permits(1000);
    read_until(&mut s, &mut got, "</html>", Duration::from_secs(20)).await;
    let page = String::from_utf8_lossy(&got).into_owned();
    assert!(
        page.contains("Done: dms has ada@firm.example (create succeeded)."),
        "{page}"
    );
    let call = page
        .find("<th scope=\"row\">call</th><td>POST ")
        .expect(&page);
    assert!(call > page.find(sent).unwrap(), "{page}");
    assert!(page.contains("answered 201"), "{page}");
    // Shown once: the record's own action step repeats the row already sent.
    assert_eq!(
        page.matches("<th scope=\"row\">action</th>").count(),
        1,
        "{page}"
    );
    assert!(page.contains(">201</td>"), "{page}");
    assert!(fx.has("ADA@FIRM.EXAMPLE"));
    assert_eq!(fx.operator_actions("provision.on_demand").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_target_is_left_alone_and_a_guard_hold_stays_held() {
    let fx = start();
    let ada = fx.person("ada@firm.example", "Ada").await;
    let grace = fx.person("grace@firm.example", "Grace").await;
    fx.d.wait_drained("dms").await;
    let admin = fx.d.admin_token();
    let (mut c, _) = Client::signed_in(&fx.d, &admin).await;
    let page = c.get(&format!("/ui/people/entra/users/{ada}")).await;
    assert!(page.body.contains("badge warn\">paused"), "{}", page.body);
    let csrf = page.csrf();

    // Paused: said so, nothing sent.
    let a = c
        .post(&provision_path(&ada, "frozen"), &[("csrf", &csrf)])
        .await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("frozen is paused"), "{}", a.body);
    assert!(a.body.contains("was not provisioned"), "{}", a.body);
    {
        let frozen = fx.frozen.lock().unwrap();
        assert_eq!(frozen.requests, 0, "the paused target was called");
        assert!(frozen.users.is_empty());
    }
    let asked = fx.operator_actions("provision.on_demand").await;
    assert_eq!(asked.len(), 1);
    assert!(asked[0]["detail"].as_str().unwrap().contains("paused"));

    // The first deactivation goes through; the second trips the guard and is held.
    let off = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]
    });
    let (status, body) = fx.entra.patch(&format!("/Users/{ada}"), off.clone()).await;
    assert_eq!(status, 200, "{body}");
    fx.d.wait_drained("dms").await;
    let (status, body) = fx.entra.patch(&format!("/Users/{grace}"), off).await;
    assert_eq!(status, 200, "{body}");
    fx.until("tripped", |s| {
        s["guard"]["state"] == "tripped" && s["queued"] == 1
    })
    .await;
    let before = fx.dms.lock().unwrap().users["GRACE@FIRM.EXAMPLE"].clone();

    // On demand, the hold stays a hold.
    let a = c
        .post(&provision_path(&grace, "dms"), &[("csrf", &csrf)])
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains(
            "Held: the mass-deprovisioning guard of dms holds this change, and it stays held."
        ),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("<th scope=\"row\">guard</th><td>held</td>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("None: nothing was sent."), "{}", a.body);
    let s = fx.d.delivery("dms").await;
    assert_eq!(s["guard"]["state"], "tripped", "{s}");
    assert_eq!(s["queued"], 1, "{s}");
    assert_eq!(fx.dms.lock().unwrap().users["GRACE@FIRM.EXAMPLE"], before);
    let guard = c.get("/ui/guard").await;
    assert!(guard.body.contains("grace@firm.example"), "{}", guard.body);
    // The hold asked for on demand is recorded, with who asked.
    let held: Vec<Value> = fx
        .log()
        .await
        .into_iter()
        .filter(|r| r["kind"] == "delivery.action" && r["outcome"] == "held")
        .collect();
    assert!(
        held.iter().any(|r| r["steps"][0]["step"] == "asked"),
        "{held:#?}"
    );
}

/// ada's full name as the fake holds it.
fn full_name(dms: &fake_imanage::Shared, user: &str) -> Value {
    dms.lock().unwrap().users[user]["full_name"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_the_plan_by_name_and_apply_applies_exactly_it() {
    let fx = start();
    let ada = fx.person("ada@firm.example", "Ada").await;
    fx.person("grace@firm.example", "Grace").await;
    fx.d.wait_drained("dms").await;
    let delivered = full_name(&fx.dms, "ADA@FIRM.EXAMPLE");
    // Someone edits ada at the target: drift.
    fx.dms
        .lock()
        .unwrap()
        .users
        .get_mut("ADA@FIRM.EXAMPLE")
        .unwrap()["full_name"] = json!("Someone Else");

    // A viewer sees the page but cannot run one.
    let (mut viewer, page) = Client::signed_in(&fx.d, &fx.d.viewer_token()).await;
    let list = viewer.get("/ui/reconcile").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains("Sign in with an admin token"),
        "{}",
        list.body
    );
    let a = viewer
        .post("/ui/reconcile/dms/dry-run", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(a.status, 403, "{}", a.body);

    let (mut c, _) = Client::signed_in(&fx.d, &fx.d.admin_token()).await;
    let list = c.get("/ui/reconcile").await;
    assert!(
        list.body.contains("action=\"/ui/reconcile/dms/dry-run\""),
        "{}",
        list.body
    );
    let csrf = list.csrf();
    let a = c
        .post("/ui/reconcile/dms/dry-run", &[("csrf", "forged")])
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let plan = c
        .post("/ui/reconcile/dms/dry-run", &[("csrf", &csrf)])
        .await;
    assert_eq!(plan.status, 200, "{}", plan.body);
    assert!(
        plan.body.contains("Dry run: nothing was changed."),
        "{}",
        plan.body
    );
    assert!(
        plan.body.contains(&format!(
            "<td>update</td><th scope=\"row\"><a href=\"/ui/people/entra/users/{ada}\">ada@firm.example</a></th>"
        )),
        "{}",
        plan.body
    );
    assert!(plan.body.contains("Someone Else"), "{}", plan.body);
    assert!(plan.body.contains("1 update"), "{}", plan.body);
    assert_eq!(full_name(&fx.dms, "ADA@FIRM.EXAMPLE"), "Someone Else");
    let digest = field(&plan, "digest");
    assert_eq!(digest.len(), 64);

    // Without the confirmation, nothing.
    let a = c
        .post(
            "/ui/reconcile/dms/apply",
            &[("csrf", &csrf), ("digest", &digest)],
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    // The world changes: grace is edited at the target too. The plan read is not
    // the plan now, so apply refuses and shows the new one.
    fx.dms
        .lock()
        .unwrap()
        .users
        .get_mut("GRACE@FIRM.EXAMPLE")
        .unwrap()["full_name"] = json!("Not Grace");
    let stale = c
        .post(
            "/ui/reconcile/dms/apply",
            &[("csrf", &csrf), ("digest", &digest), ("confirm", "yes")],
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(
        stale.body.contains("the plan changed since your dry run"),
        "{}",
        stale.body
    );
    assert!(stale.body.contains("2 update"), "{}", stale.body);
    assert_eq!(full_name(&fx.dms, "ADA@FIRM.EXAMPLE"), "Someone Else");
    assert_eq!(fx.d.delivery("dms").await["queued"], 0);
    let fresh = field(&stale, "digest");
    assert_ne!(fresh, digest);

    // Confirmed with the plan now: applied, and delivered by the engine.
    let done = c
        .post(
            "/ui/reconcile/dms/apply",
            &[("csrf", &csrf), ("digest", &fresh), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Plan applied to dms"), "{}", done.body);
    assert!(
        done.body.contains("<dt>Queued for delivery</dt><dd>2 "),
        "{}",
        done.body
    );
    fx.d.wait_drained("dms").await;
    assert_eq!(full_name(&fx.dms, "ADA@FIRM.EXAMPLE"), delivered);
    assert_ne!(full_name(&fx.dms, "GRACE@FIRM.EXAMPLE"), "Not Grace");

    // Each step recorded with who did it.
    let dry = fx.operator_actions("reconcile.dry_run").await;
    assert_eq!(dry.len(), 1);
    let applies = fx.operator_actions("reconcile.apply").await;
    assert_eq!(applies.len(), 2, "{applies:#?}");
    // Newest first: the apply, then the refusal.
    assert!(applies[0]["detail"].as_str().unwrap().contains("2 queued"));
    assert!(applies[1]["detail"].as_str().unwrap().contains("refused"));
    for r in dry.iter().chain(&applies) {
        assert!(!r["who"].as_str().unwrap().is_empty(), "{r}");
        assert_eq!(r["target"], "dms");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_provisions_on_demand_and_runs_a_dry_run_in_chromium() {
    let Some((driver, chromium)) = webdriver::installed_or_skip() else {
        return;
    };
    let fx = start();
    fx.person("grace@firm.example", "Grace Hopper").await;
    fx.d.wait_drained("dms").await;
    let id = fx.stuck("ada@firm.example", "Ada Lovelace").await;
    let delivered = full_name(&fx.dms, "GRACE@FIRM.EXAMPLE");
    fx.dms
        .lock()
        .unwrap()
        .users
        .get_mut("GRACE@FIRM.EXAMPLE")
        .unwrap()["full_name"] = json!("Someone Else");
    let shots = screenshots();
    let b = Browser::start(&driver, &chromium).await;
    b.goto(&fx.d.url("/ui/signin")).await;
    b.type_into("#token", &fx.d.admin_token()).await;
    b.click("form.signin button[type=submit]").await;
    b.wait_text("Identity providers").await;

    // ada's page: her delivery to dms failed and waits; provision her now.
    b.goto(&fx.d.url(&format!("/ui/people/entra/users/{id}")))
        .await;
    b.wait_text("Provision on demand").await;
    b.screenshot(&shots.join("person-provision.png")).await;
    b.click(&format!(
        "form[action='{}'] button",
        provision_path(&id, "dms")
    ))
    .await;
    let text = b
        .wait_text("Done: dms has ada@firm.example (create succeeded).")
        .await;
    assert_eq!(
        b.title().await,
        "Provision on demand: ada@firm.example → dms — scim-bridge console"
    );
    assert!(text.contains("no existing account matched"), "{text}");
    assert!(text.contains("POST"), "{text}");
    b.screenshot(&shots.join("provision-on-demand.png")).await;
    assert!(fx.has("ADA@FIRM.EXAMPLE"));
    // Her page now names the version dms acknowledged, and nothing pending.
    b.goto(&fx.d.url(&format!("/ui/people/entra/users/{id}")))
        .await;
    let text = b.wait_text("Last delivered").await;
    assert!(text.contains("version 1, "), "{text}");
    assert!(text.contains("(create)"), "{text}");
    assert!(!text.contains("pending"), "{text}");
    b.screenshot(&shots.join("person-delivered.png")).await;

    // The dry run: grace was edited at the target.
    b.click("nav a[href='/ui/reconcile']").await;
    b.wait_text("Reconciliation").await;
    b.screenshot(&shots.join("reconcile.png")).await;
    b.click("form[action='/ui/reconcile/dms/dry-run'] button")
        .await;
    let text = b.wait_text("Dry run: nothing was changed.").await;
    assert!(text.contains("grace@firm.example"), "{text}");
    assert!(text.contains("Someone Else"), "{text}");
    b.screenshot(&shots.join("reconcile-plan.png")).await;
    // The apply form will not go without its confirmation box ticked.
    b.click("form.apply button").await;
    assert!(b.url().await.ends_with("/ui/reconcile/dms/dry-run"));
    assert_eq!(full_name(&fx.dms, "GRACE@FIRM.EXAMPLE"), "Someone Else");
    b.click("#confirm").await;
    b.click("form.apply button").await;
    b.wait_text("Plan applied to dms").await;
    b.screenshot(&shots.join("reconcile-applied.png")).await;
    fx.d.wait_drained("dms").await;
    assert_eq!(full_name(&fx.dms, "GRACE@FIRM.EXAMPLE"), delivered);
}

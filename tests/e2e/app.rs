//! The composition root itself: what `App::build` starts, by name, and that the
//! handle's shutdown ends all of it.

use std::sync::Arc;
use std::time::Duration;

use scim_bridge::app::{App, Deps, Listeners, TaskKind};
use scim_bridge::clock::SystemClock;
use scim_bridge::config::Environment;
use scim_bridge::entropy::OsEntropy;

use crate::common::{self, Site};

/// The daemon `site`'s config describes, with the real clock and randomness.
async fn build(site: &Site, env: &Environment) -> App {
    let cfg = scim_bridge::config::load(&site.config, env).unwrap().config;
    let deps = Deps {
        clock: Arc::new(SystemClock),
        entropy: Arc::new(OsEntropy),
        env: env.clone(),
    };
    App::build(cfg, deps).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_names_its_tasks_and_shuts_down_in_order() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // A SCIM app nobody listens for: nothing is queued, so nothing is sent there.
    let site = Site::new(
        port,
        "",
        "\n[[targets]]\nname = \"app\"\nkind = \"scim\"\nurl = \"http://127.0.0.1:9/scim/v2\"\nschedule = \"0 */6 * * *\"\n",
        "info",
        &[],
    );
    let app = build(&site, &Environment::new()).await;
    assert_eq!(
        app.state().settings.public_url,
        format!("http://127.0.0.1:{port}")
    );
    let handle = app.serve(Listeners {
        http: listener,
        https: None,
        console: None,
    });
    let mut tasks = handle.tasks();
    tasks.sort_by_key(|(name, _)| *name);
    assert_eq!(
        tasks,
        [
            ("audit chainer", TaskKind::Upkeep),
            ("engine app", TaskKind::Draining),
            ("pruner", TaskKind::Upkeep),
            ("schedule app", TaskKind::Draining),
            ("token-use flusher", TaskKind::Upkeep),
            ("watchdog", TaskKind::Upkeep),
        ]
    );
    assert!(handle.certificates().is_none());
    let ready = common::get(site.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    tokio::time::timeout(Duration::from_secs(15), handle.shutdown())
        .await
        .expect("shutdown ends every task within the grace period");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener is closed after shutdown"
    );
}

/// The daemon's time is the clock it was given, not the machine's: a token created to
/// expire in an hour works while the daemon's clock is inside that hour and is refused
/// as expired once the clock passes it, and the resources it writes carry the clock's
/// time. Nothing here waits for time to pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemons_own_clock_decides_expiry_and_meta_times() {
    use scim_bridge::clock::{Clock, ManualClock};
    // The CLI (another process) stamps the token's expiry from the machine's clock, so
    // the daemon's clock starts at the machine's time and only moves when told.
    let start = SystemClock.now();
    let clock = Arc::new(ManualClock::new(start));
    let d = common::InProcess::start_with_clock("", clock.clone());
    let out = d.cli(&["token", "create", "--provider", "entra", "--expires", "1h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let scim = common::Scim::new(d.base("entra"), token);

    clock.advance(chrono::Duration::minutes(30));
    let (status, user) = scim
        .post(
            "/Users",
            serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "clock@firm.example",
            }),
        )
        .await;
    assert_eq!(status, 201, "{user:#}");
    let created = chrono::DateTime::parse_from_rfc3339(user["meta"]["created"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let expected = start + chrono::Duration::minutes(30);
    assert!(
        (created - expected).num_milliseconds().abs() <= 1,
        "meta.created {created} is not the daemon's clock {expected}"
    );

    clock.advance(chrono::Duration::minutes(31));
    let (status, body) = scim.get("/Users").await;
    assert_eq!(status, 401, "{body:#}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{body:#}"
    );
}

/// A reload through the handle: a changed target's tasks are replaced (its schedule
/// gone), a new one's started, a removed one's stopped, and what requests see of
/// targets follows; a target that cannot be built refuses the whole reload and leaves
/// every task as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_replaces_the_tasks_of_changed_targets_only() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = |name: &str, more: &str| {
        format!(
            "\n[[targets]]\nname = \"{name}\"\nkind = \"scim\"\nurl = \"http://127.0.0.1:9/scim/v2\"\n{more}\n"
        )
    };
    let site = Site::new(
        port,
        "",
        &target("app", "schedule = \"0 */6 * * *\""),
        "info",
        &[],
    );
    let env = Environment::new();
    let load = |text: String| {
        std::fs::write(&site.config, text).unwrap();
        let mut cfg = scim_bridge::config::load(&site.config, &env)
            .unwrap()
            .config;
        cfg.server.listen = ([127, 0, 0, 1], port).into();
        cfg
    };
    let app = build(&site, &env).await;
    let mut handle = app.serve(Listeners {
        http: listener,
        https: None,
        console: None,
    });
    let data = site.dir.path().join("data");
    let text = |targets: &str| common::config_text(port, &data, targets);
    let names = |h: &scim_bridge::app::AppHandle| {
        let mut t: Vec<String> = h
            .tasks()
            .iter()
            .filter(|(n, _)| n.starts_with("engine ") || n.starts_with("schedule "))
            .map(|(n, _)| (*n).to_owned())
            .collect();
        t.sort();
        t
    };
    // What /readyz and /link see of targets.
    let shown = |h: &scim_bridge::app::AppHandle| {
        let t = h.state().targets.get();
        t.iter().map(|t| t.name.clone()).collect::<Vec<_>>()
    };

    let applied = handle
        .reload(load(text(&(target("app", "") + &target("crm", "")))), &env)
        .await
        .unwrap();
    assert_eq!(applied, ["targets added: crm", "targets rebuilt: app"]);
    assert_eq!(names(&handle), ["engine app", "engine crm"]);
    assert_eq!(shown(&handle), ["app", "crm"]);

    // A token in a vault that is not configured: refused, nothing stopped.
    let broken = target("crm", "")
        + "[targets.auth]\nmethod = \"bearer\"\ntoken = { vault = \"crm-token\" }\n";
    let refused = handle.reload(load(text(&broken)), &env).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(names(&handle), ["engine app", "engine crm"]);

    let applied = handle
        .reload(load(text(&target("crm", ""))), &env)
        .await
        .unwrap();
    assert_eq!(applied, ["targets removed: app"]);
    assert_eq!(names(&handle), ["engine crm"]);
    assert_eq!(shown(&handle), ["crm"]);
    tokio::time::timeout(Duration::from_secs(15), handle.shutdown())
        .await
        .expect("shutdown ends every task within the grace period");
}

//! `systemctl reload` (SIGHUP) re-reads the configuration, run against the real binary:
//! what can change live changes, what is bound at start is named for a restart and
//! keeps serving, and a broken configuration is refused with the old one still serving
//! and delivering (#22 item 3).

use crate::common;

use std::time::Duration;

use serde_json::{Value, json};

use common::fake_webhook::{self, SECRET};
use common::scim2::{scim2_server, start_peer};
use common::{Daemon, Scim, config_text_full, eventually, free_port};

/// Replaces the daemon's config file with the test config plus `extra`.
fn rewrite(d: &Daemon, port: u16, extra: &str, level: &str) {
    let text = config_text_full(port, &d.dir.path().join("data"), "", extra, level);
    std::fs::write(&d.config, text).unwrap();
}

/// Waits for the `n`th reload's outcome line in the log (applied or refused).
fn wait_reloaded(d: &Daemon, n: usize) -> String {
    let done = eventually(Duration::from_secs(20), || {
        let log = d.log_text();
        log.matches("configuration reloaded").count() + log.matches("reload refused").count() >= n
    });
    assert!(done, "no reload outcome logged:\n{}", d.log_text());
    d.log_text()
}

/// The last reload's summary line.
fn last_summary(log: &str) -> &str {
    log.lines()
        .rfind(|l| l.contains("configuration reloaded"))
        .unwrap_or_else(|| panic!("no reload summary:\n{log}"))
}

async fn status(url: String, token: Option<&str>) -> u16 {
    let http = scim_bridge::oauth::build_client(Duration::from_secs(10)).unwrap();
    let mut r = http.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.map_or(0, |r| r.status().as_u16())
}

async fn metrics(d: &Daemon) -> String {
    common::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A good reload: okta's new allow-list refuses loopback, the new log level shows in
/// stderr, and the changed listen address is named for a restart while the old port
/// keeps serving. One summary line says all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_allow_lists_and_the_log_level_and_names_what_needs_a_restart() {
    let d = Daemon::start_at("", "info");
    let okta = d.token("okta");
    let users = d.url("/scim/v2/okta/Users");
    assert_eq!(status(users.clone(), Some(&okta)).await, 200);
    assert_eq!(status(d.url("/healthz"), None).await, 200);
    // Reads are logged at debug: not at info.
    assert!(!d.log_text().contains("path=/healthz"), "{}", d.log_text());

    let other = free_port();
    // `extra` lands in the last [[providers]] table, okta's.
    rewrite(&d, other, "allow = [\"192.0.2.0/24\"]\n", "debug");
    d.hup();
    let log = wait_reloaded(&d, 1);
    let port = d.port;
    assert!(
        log.contains(&format!(
            "server.listen changed (127.0.0.1:{port} → 127.0.0.1:{other}): restart to apply"
        )),
        "{log}"
    );
    let summary = last_summary(&log);
    assert!(
        summary.contains("network policy")
            && summary.contains("logging.level (info → debug)")
            && summary.contains("needs a restart: server.listen"),
        "{summary}"
    );

    // The allow-list is in effect; the old port still serves, the new one is unbound.
    assert_eq!(status(users, Some(&okta)).await, 403);
    assert_eq!(status(d.url("/healthz"), None).await, 200);
    assert_eq!(
        status(format!("http://127.0.0.1:{other}/healthz"), None).await,
        0
    );
    // Debug lines now reach stderr.
    assert!(
        eventually(Duration::from_secs(5), || d
            .log_text()
            .contains("path=/healthz")),
        "{}",
        d.log_text()
    );
    let m = metrics(&d).await;
    assert!(
        m.contains("scim_bridge_config_reloads_total{outcome=\"applied\"} 1"),
        "{m}"
    );
    assert!(
        !m.contains("scim_bridge_config_last_reload_success_timestamp_seconds 0\n"),
        "{m}"
    );
}

fn hook_target(url: &str, more: &str) -> String {
    format!(
        r#"
[[targets]]
name = "hooks"
kind = "webhook"
url = "{url}"
providers = ["entra"]
signing_secret = {{ file = "hook.secret" }}
timeout = "2s"
{more}
"#
    )
}

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "active": true,
    })
}

/// A configuration with an error in a value, then one naming a secret file that does
/// not exist: both refused with the error logged (file, line and key as check-config
/// gives them), counted, and the old configuration keeps serving and delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_is_refused_and_the_old_one_keeps_serving_and_delivering() {
    let receiver = fake_webhook::new_receiver(0.0, 7);
    let url = fake_webhook::start_blocking(receiver.clone());
    let d = Daemon::start_with_secrets(&hook_target(&url, ""), &[("hook.secret", SECRET)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let okta = d.token("okta");

    // A value of the wrong kind, and an allow-list that would lock loopback out.
    rewrite(
        &d,
        d.port,
        &format!(
            "allow = [\"192.0.2.0/24\"]\n{}",
            hook_target(&url, "max_attempts = \"many\"")
        ),
        "info",
    );
    d.hup();
    let log = wait_reloaded(&d, 1);
    let line = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("max_attempts"))
        .unwrap_or_else(|| panic!("the error is not logged:\n{log}"));
    assert!(
        line.contains("scim-bridge.toml:") && line.contains("targets[0].max_attempts"),
        "{line}"
    );
    assert!(log.contains("configuration reload refused"), "{log}");
    assert!(!log.contains("configuration reloaded"), "{log}");

    // Valid TOML naming a secret file that is not there.
    rewrite(
        &d,
        d.port,
        &format!(
            "allow = [\"192.0.2.0/24\"]\n{}",
            hook_target(&url, "").replace("hook.secret", "gone.secret")
        ),
        "info",
    );
    d.hup();
    let log = wait_reloaded(&d, 2);
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("gone.secret")),
        "{log}"
    );

    // Still serving as before: okta answers loopback, changes reach the webhook.
    assert_eq!(status(d.url("/scim/v2/okta/Users"), Some(&okta)).await, 200);
    let (code, body) = scim.post("/Users", user("after@firm.example")).await;
    assert_eq!(code, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    d.wait_drained("hooks").await;
    assert!(
        receiver.lock().unwrap().accepted.contains_key(&id),
        "not delivered after a refused reload"
    );
    let m = metrics(&d).await;
    assert!(
        m.contains("scim_bridge_config_reloads_total{outcome=\"refused\"} 2")
            && m.contains("scim_bridge_config_reloads_total{outcome=\"applied\"} 0"),
        "{m}"
    );
    // Dated, so the shipped alert can tell the file on disk is not what runs.
    assert!(
        m.contains("scim_bridge_config_last_reload_failure_timestamp_seconds ")
            && !m.contains("scim_bridge_config_last_reload_failure_timestamp_seconds 0\n"),
        "{m}"
    );
}

async fn peer_user(base: &str, name: &str) -> Option<Value> {
    let http = scim_bridge::oauth::build_client(Duration::from_secs(10)).unwrap();
    let list: Value = http
        .get(format!("{base}/Users"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    list["Resources"]
        .as_array()?
        .iter()
        .find(|u| u["userName"] == name)
        .cloned()
}

fn scim_target(url: &str, title: &str, more: &str) -> String {
    format!(
        r#"
[[targets]]
name = "app"
kind = "scim"
url = "{url}"
providers = ["entra"]
timeout = "5s"
{more}
[targets.user_mapping]
title = "{title}"
"#
    )
}

/// A target's mapping and schedule changed by a reload: the target is rebuilt (its
/// old engine drained first), the next change reaches the app with the new mapping,
/// and the new schedule shows in /readyz. A webhook target left alone keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rebuilds_a_changed_target_which_sends_the_new_mapping() {
    let Some(bin) = scim2_server() else { return };
    let peer = start_peer(&bin);
    let receiver = fake_webhook::new_receiver(0.0, 9);
    let hook = fake_webhook::start_blocking(receiver.clone());
    let targets = |title: &str, more: &str| {
        format!(
            "{}{}",
            hook_target(&hook, ""),
            scim_target(&peer.base, title, more)
        )
    };
    let d = Daemon::start_with_secrets(&targets("Associate", ""), &[("hook.secret", SECRET)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (code, body) = scim.post("/Users", user("ada@firm.example")).await;
    assert_eq!(code, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    d.wait_drained("app").await;
    let at_app = peer_user(&peer.base, "ada@firm.example").await.unwrap();
    assert_eq!(at_app["title"], "Associate", "{at_app}");
    let ready: Value = d.readyz().await;
    assert!(ready["targets"]["app"]["reconcile"].is_null(), "{ready}");

    rewrite(
        &d,
        d.port,
        &targets("Partner", "schedule = \"0 0 1 1 *\""),
        "info",
    );
    d.hup();
    let log = wait_reloaded(&d, 1);
    let summary = last_summary(&log);
    assert!(summary.contains("targets rebuilt: app"), "{summary}");
    assert!(!summary.contains("hooks"), "{summary}");

    let ready: Value = d.readyz().await;
    assert!(
        ready["targets"]["app"]["reconcile"]["next"]
            .as_str()
            .is_some_and(|n| n.contains("-01-01T00:00:00")),
        "{ready}"
    );
    let (code, body) = scim
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Ada L."}],
            }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    d.wait_drained("app").await;
    let at_app = peer_user(&peer.base, "ada@firm.example").await.unwrap();
    assert_eq!(at_app["title"], "Partner", "{at_app}");
    assert_eq!(at_app["displayName"], "Ada L.", "{at_app}");
    // The webhook target kept running and got both changes.
    d.wait_drained("hooks").await;
    assert_eq!(receiver.lock().unwrap().accepted[&id].len(), 2);
}

/// A reload that changes nothing live rebuilds nothing; a rotated secret file (the
/// config unchanged) rebuilds the target that reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_file_rebuilds_its_target_and_nothing_else_does() {
    let receiver = fake_webhook::new_receiver(0.0, 11);
    let url = fake_webhook::start_blocking(receiver);
    let d = Daemon::start_with_secrets(&hook_target(&url, ""), &[("hook.secret", SECRET)]);
    d.hup();
    let log = wait_reloaded(&d, 1);
    assert!(
        log.contains("configuration reloaded: nothing changed that can change live"),
        "{log}"
    );
    std::fs::write(d.dir.path().join("hook.secret"), "whsec-rotated-3Qm8").unwrap();
    d.hup();
    let log = wait_reloaded(&d, 2);
    let last = last_summary(&log);
    assert!(last.contains("targets rebuilt: hooks"), "{last}");
    assert!(
        !log.contains("whsec-rotated"),
        "a secret reached the log:\n{log}"
    );
}

/// A target rebuilt while a delivery is in flight: the attempt finishes and is recorded
/// by the old engine, the new engine finds nothing left to send, and the receiver sees
/// the change exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_target_lets_the_delivery_in_flight_finish_and_sends_nothing_twice() {
    let receiver = fake_webhook::new_receiver(0.0, 13);
    {
        let mut r = receiver.lock().unwrap();
        r.stall = true;
        r.hang = Duration::from_millis(1500);
    }
    let url = fake_webhook::start_blocking(receiver.clone());
    let d = Daemon::start_with_secrets(&hook_target(&url, ""), &[("hook.secret", SECRET)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (code, body) = scim.post("/Users", user("grace@firm.example")).await;
    assert_eq!(code, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(eventually(Duration::from_secs(10), || receiver
        .lock()
        .unwrap()
        .requests
        >= 1));
    // In flight now (the receiver holds it for 1.5 s): change the target and reload.
    rewrite(
        &d,
        d.port,
        &hook_target(&url, "rate_limit_per_second = 50"),
        "info",
    );
    d.hup();
    let log = wait_reloaded(&d, 1);
    assert!(log.contains("targets rebuilt: hooks"), "{log}");
    receiver.lock().unwrap().stall = false;
    let delivery = d.wait_drained("hooks").await;
    let r = receiver.lock().unwrap();
    assert_eq!(r.accepted[&id].len(), 1, "{:?}", r.accepted);
    assert_eq!((r.requests, r.duplicates), (1, 0), "{delivery}");
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
}

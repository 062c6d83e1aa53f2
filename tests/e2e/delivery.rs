//! Delivery through the real binary to an unreliable webhook receiver on a real port:
//! failures of every kind, an outage, and SIGKILL mid-delivery. After recovery the
//! receiver holds every resource's final state, each resource's changes arrived in
//! order, nothing was dead-lettered and every request was correctly signed.

use crate::common;

use std::time::{Duration, Instant};

use common::fake_webhook::{self, SECRET, Shared};
use common::group_churn;
use common::{Daemon, Scim, config_text, free_port};
use serde_json::{Value, json};

fn daemon(hook_url: &str) -> Daemon {
    daemon_with(hook_url, "")
}

fn daemon_with(hook_url: &str, more: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let extra = format!(
        r#"
[[targets]]
name = "hooks"
kind = "webhook"
url = "{hook_url}"
providers = ["entra"]
signing_secret = {{ file = "hook.secret" }}
timeout = "1s"
max_attempts = 1000
concurrency = 8
{more}
"#
    );
    let config = dir.path().join("scim-bridge.toml");
    std::fs::write(&config, config_text(port, &dir.path().join("data"), &extra)).unwrap();
    let mut d = Daemon::unstarted(dir, config, port);
    d.spawn();
    d
}

fn user(name: &str, title: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "title": title, "active": true
    })
}

/// What the receiver must hold: every live user at title t{last}, deleted ones
/// deleted, each resource's deliveries in increasing sequence order.
fn check(receiver: &Shared, live: &[(String, String)], deleted: &[String]) {
    let r = receiver.lock().unwrap();
    assert!(
        r.rejected.is_empty(),
        "badly signed or shaped requests: {:?}",
        r.rejected
    );
    for (id, title) in live {
        let got = r
            .accepted
            .get(id)
            .unwrap_or_else(|| panic!("{id} never delivered"));
        let last = got.last().unwrap();
        assert_eq!(last.1, "com.scim-bridge.user.upserted", "{id}: {got:?}");
        assert_eq!(last.2.as_deref(), Some(title.as_str()), "{id}: {got:?}");
    }
    for id in deleted {
        let got = r
            .accepted
            .get(id)
            .unwrap_or_else(|| panic!("{id} never delivered"));
        assert_eq!(
            got.last().unwrap().1,
            "com.scim-bridge.user.deleted",
            "{id}: {got:?}"
        );
    }
    for (id, got) in &r.accepted {
        assert!(
            got.windows(2).all(|w| w[0].0 <= w[1].0),
            "{id} out of order: {got:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_target_and_an_outage_converge_in_order() {
    let receiver = fake_webhook::new_receiver(0.3, 42);
    receiver.lock().unwrap().down = true;
    let url = fake_webhook::start_blocking(receiver.clone());
    let d = daemon(&url);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut live = Vec::new();
    let mut deleted = Vec::new();
    for i in 0..30 {
        let (status, body) = scim
            .post("/Users", user(&format!("u{i}@firm.example"), "t0"))
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        for t in 1..=4 {
            let (status, body) = scim
                .put(
                    &format!("/Users/{id}"),
                    user(&format!("u{i}@firm.example"), &format!("t{t}")),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        if i < 5 {
            assert_eq!(scim.delete(&format!("/Users/{id}")).await, 204);
            deleted.push(id);
        } else {
            live.push((id, "t4".to_owned()));
        }
    }
    // Okta's users are not routed to this target.
    let okta = Scim::new(d.base("okta"), d.token("okta"));
    let (_, other) = okta
        .post("/Users", user("elsewhere@firm.example", "x"))
        .await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = d.delivery("hooks").await;
    assert_eq!(
        during["queued"], 30,
        "coalesced to one row per resource: {during}"
    );
    receiver.lock().unwrap().down = false;

    // Each attempt fails with probability 0.3 and the backoff doubles, so an unlucky
    // resource failing 6 times in a row after the outage needs about 100 s; 240 s
    // covers 7 in a row (0.3^7 for each of 30 resources: under 0.1% of runs).
    let after = d
        .wait_drained_within("hooks", Duration::from_secs(240))
        .await;
    assert_eq!(after["dead_letters"], 0, "{after}");
    check(&receiver, &live, &deleted);
    {
        let r = receiver.lock().unwrap();
        assert!(!r.accepted.contains_key(other["id"].as_str().unwrap()));
        assert!(
            r.failures > 10,
            "the receiver should have failed often: {}",
            r.failures
        );
        // Coalescing: far fewer accepted deliveries than the 150 changes made.
        let accepted: usize = r.accepted.values().map(Vec::len).sum();
        assert!(accepted < 100, "{accepted} deliveries for 30 resources");
    }
    // The provisioning log of one user, end to end, and of a deleted one by id.
    let out = d.cli(&["trace", "u5@firm.example"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("SCIM create") && text.contains("SCIM update"),
        "{text}"
    );
    assert!(
        text.contains("-> hooks") && text.contains("delivered"),
        "{text}"
    );
    let out = d.cli(&["trace", &deleted[0], "--json"]);
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = log[0]["log"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["op"] == "delete"), "{log}");
    assert_eq!(entries.last().unwrap()["outcome"], "delivered", "{log}");
    let metrics = common::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("scim_bridge_delivery_queue{target=\"hooks\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("scim_bridge_deliveries_total{target=\"hooks\",outcome=\"retried\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_delivery_loses_nothing() {
    let receiver = fake_webhook::new_receiver(0.25, 7);
    let url = fake_webhook::start_blocking(receiver.clone());
    let mut d = daemon(&url);
    let token = d.token("entra");
    let mut live: Vec<(String, String)> = Vec::new();
    for round in 0..4 {
        let scim = Scim::new(d.base("entra"), token.clone());
        for i in 0..15 {
            let name = format!("r{round}-u{i}@firm.example");
            let (status, body) = scim.post("/Users", user(&name, "a")).await;
            assert_eq!(status, 201, "{body}");
            let id = body["id"].as_str().unwrap().to_owned();
            let (status, _) = scim.put(&format!("/Users/{id}"), user(&name, "b")).await;
            assert_eq!(status, 200);
            live.push((id, "b".into()));
        }
        // Change some earlier users again, then kill while deliveries are in flight.
        for (id, title) in live.iter_mut().step_by(7) {
            *title = format!("k{round}");
            let (status, body) = scim
                .patch(
                    &format!("/Users/{id}"),
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                           "Operations": [{"op": "replace", "path": "title", "value": title.clone()}]}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        tokio::time::sleep(Duration::from_millis(150 + 100 * round)).await;
        d.kill9();
        d.spawn();
    }
    d.wait_drained("hooks").await;
    check(&receiver, &live, &[]);
}

/// A receiver that de-duplicates on the event id and replays `data.members` derives
/// every group's members as the bridge holds them, through random membership changes of
/// every shape, a receiver that processes some events and then answers 500, and SIGKILLs
/// with deliveries in flight. No change ever arrives under two event ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_webhook_events_give_each_groups_members_across_kills() {
    let receiver = fake_webhook::new_receiver(0.15, 23);
    receiver.lock().unwrap().accept_then_fail = 0.2;
    let url = fake_webhook::start_blocking(receiver.clone());
    let mut d = daemon(&url);
    let token = d.token("entra");
    let scim = Scim::new(d.base("entra"), token.clone());
    let (users, groups) = group_churn::people(&scim, "churn", 24, 6).await;
    for round in 0..4u64 {
        let bases = [d.base("entra")];
        group_churn::round("churn", &bases, &token, &groups, &users, round, 12).await;
        tokio::time::sleep(Duration::from_millis(100 + 150 * round)).await;
        d.kill9();
        d.spawn();
    }
    let after = d.wait_drained("hooks").await;
    assert_eq!(after["dead_letters"], 0, "{after}");
    let scim = Scim::new(d.base("entra"), token);
    group_churn::assert_receiver_matches(&receiver, &scim, &groups).await;
    let r = receiver.lock().unwrap();
    assert!(
        r.duplicates > 0,
        "no event was sent again after being processed: the case is not exercised"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_deprovisioning_guard_pauses_until_approved_and_protects_breakglass() {
    let receiver = fake_webhook::new_receiver(0.0, 1);
    let url = fake_webhook::start_blocking(receiver.clone());
    let d = daemon_with(
        &url,
        r#"[targets.guard]
max_deprovisions = 3
window = "1h"
# Listed as a look-alike (full width, a trailing space): compared as userNames are.
protected = ["ＢｒｅａｋＧｌａｓｓ@firm.example "]"#,
    );
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = Vec::new();
    for name in [
        "breakglass@firm.example",
        "a@firm.example",
        "b@firm.example",
        "c@firm.example",
        "d@firm.example",
        "e@firm.example",
        "f@firm.example",
    ] {
        let (status, body) = scim.post("/Users", user(name, "t")).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    d.wait_drained("hooks").await;
    for id in &ids {
        assert_eq!(scim.delete(&format!("/Users/{id}")).await, 204);
    }
    let deletes = |r: &Shared| {
        r.lock()
            .unwrap()
            .accepted
            .values()
            .filter(|v| {
                v.last()
                    .is_some_and(|e| e.1 == "com.scim-bridge.user.deleted")
            })
            .count()
    };
    // Three deletions go through, then the guard trips and the rest wait.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = d.delivery("hooks").await;
        if s["guard"]["state"] == "tripped" && s["queued"] == 3 && s["dead_letters"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "guard never tripped: {s}\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(deletes(&receiver), 3);
    let status = String::from_utf8_lossy(&d.cli(&["status"]).stdout).into_owned();
    assert!(
        status.contains("GUARD TRIPPED") && status.contains("more than 3 deactivations"),
        "{status}"
    );

    // The protected account was never sent, and says why in the DLQ.
    let out = d.cli(&["dlq", "list", "--json"]);
    let letters: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(letters[0]["resource_id"], ids[0]);
    assert!(
        letters[0]["error"]
            .as_str()
            .unwrap()
            .contains("protected account"),
        "{letters}"
    );

    // What the guard holds, by name (the users are deleted: names from their events).
    let out = d.cli(&["approve", "--target", "hooks", "--list"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{listed}");
    assert!(listed.contains("holds back 3 change(s)"), "{listed}");
    let named = ["a@", "b@", "c@", "d@", "e@", "f@"]
        .iter()
        .filter(|n| listed.contains(&format!("{n}firm.example (deleted)")))
        .count();
    assert_eq!(named, 3, "{listed}");
    assert_eq!(deletes(&receiver), 3, "--list changes nothing");

    let out = d.cli(&["approve", "--target", "hooks"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = d.wait_drained("hooks").await;
    assert_eq!(after["guard"]["state"], "armed", "{after}");
    assert_eq!(deletes(&receiver), 6);
    assert!(
        !receiver.lock().unwrap().accepted[&ids[0]]
            .iter()
            .any(|e| e.1.ends_with("deleted"))
    );
    // Approving again: nothing to approve.
    assert!(!d.cli(&["approve", "--target", "hooks"]).status.success());
}

/// Scope through nested groups: a webhook scoped to "Firm" with `nested = true` gets the
/// users of groups nested in Firm and Firm itself — not the nested group, not anyone
/// else — and a user joining the nested group enters the scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_scope_groups_bring_in_their_members() {
    let receiver = fake_webhook::new_receiver(0.0, 1);
    let url = fake_webhook::start_blocking(receiver.clone());
    let d = daemon_with(&url, "[targets.scope]\ngroups = [\"Firm\"]\nnested = true");
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = std::collections::BTreeMap::new();
    for name in ["a@firm.example", "b@firm.example", "c@firm.example"] {
        let (status, body) = scim.post("/Users", user(name, "t")).await;
        assert_eq!(status, 201, "{body}");
        ids.insert(name, body["id"].as_str().unwrap().to_owned());
    }
    let group = |name: &str, members: Vec<Value>| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name, "members": members})
    };
    let (_, london) = scim
        .post(
            "/Groups",
            group("London", vec![json!({"value": ids["a@firm.example"]})]),
        )
        .await;
    let london = london["id"].as_str().unwrap().to_owned();
    let (_, firm) = scim
        .post(
            "/Groups",
            group("Firm", vec![json!({"value": london, "type": "Group"})]),
        )
        .await;
    let firm = firm["id"].as_str().unwrap().to_owned();
    let (_, other) = scim
        .post(
            "/Groups",
            group("Other", vec![json!({"value": ids["c@firm.example"]})]),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_owned();
    d.wait_drained("hooks").await;
    let got = |id: &str| receiver.lock().unwrap().accepted.contains_key(id);
    assert!(got(&ids["a@firm.example"]), "a is in Firm through London");
    assert!(got(&firm), "Firm is a scope group");
    for (what, id) in [
        ("b", &ids["b@firm.example"]),
        ("c", &ids["c@firm.example"]),
        ("London", &london),
        ("Other", &other),
    ] {
        assert!(!got(id), "{what} is out of scope");
    }
    let join = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": ids["b@firm.example"]}]}]});
    let (status, _) = scim.patch(&format!("/Groups/{london}"), join).await;
    assert!(status == 200 || status == 204);
    d.wait_drained("hooks").await;
    assert!(got(&ids["b@firm.example"]), "b joined London, so Firm");
    assert!(!got(&ids["c@firm.example"]));
    // Leaving: the receiver is told, as a deletion.
    let leave = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{}\"]", ids["a@firm.example"])}]});
    let (status, _) = scim.patch(&format!("/Groups/{london}"), leave).await;
    assert!(status == 200 || status == 204);
    d.wait_drained("hooks").await;
    let last = receiver.lock().unwrap().accepted[&ids["a@firm.example"]]
        .last()
        .unwrap()
        .1
        .clone();
    assert_eq!(last, "com.scim-bridge.user.deleted");
}

/// `approve --reject`: what the guard holds goes to the dead-letter queue, named and
/// retryable, and the guard is armed again; nothing held is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejecting_what_the_guard_holds_dead_letters_it() {
    let receiver = fake_webhook::new_receiver(0.0, 3);
    let url = fake_webhook::start_blocking(receiver.clone());
    let d = daemon_with(
        &url,
        "[targets.guard]\nmax_deprovisions = 1\nwindow = \"1h\"",
    );
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = Vec::new();
    for name in ["x@firm.example", "y@firm.example", "z@firm.example"] {
        let (status, body) = scim.post("/Users", user(name, "t")).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    d.wait_drained("hooks").await;
    for id in &ids {
        assert_eq!(scim.delete(&format!("/Users/{id}")).await, 204);
    }
    // Queued is not yet held: the worker marks each destructive change held when it
    // reaches it, so wait for what the operator is shown (the held gauge), not the queue.
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let s = d.delivery("hooks").await;
        let m = d.metrics().await;
        let held = common::sample(&m, "scim_bridge_guard_held_changes{target=\"hooks\"}");
        if s["guard"]["state"] == "tripped" && s["queued"] == 2 && held == Some(2.0) {
            break m;
        }
        assert!(Instant::now() < deadline, "guard never held both: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // What the alert rules read: tripped, since when, and how much it holds.
    let series = |name: &str| common::sample(&m, &format!("{name}{{target=\"hooks\"}}"));
    assert_eq!(series("scim_bridge_guard_tripped"), Some(1.0), "{m}");
    assert_eq!(series("scim_bridge_guard_held_changes"), Some(2.0), "{m}");
    assert!(
        series("scim_bridge_guard_tripped_timestamp_seconds").is_some_and(|t| t > 1.6e9),
        "{m}"
    );
    let out = d.cli(&["approve", "--target", "hooks", "--reject"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("rejected: 2 held change(s)"), "{text}");
    let s = d.delivery("hooks").await;
    assert_eq!(s["guard"]["state"], "armed", "{s}");
    assert_eq!(s["queued"], 0, "{s}");
    let out = d.cli(&["dlq", "list", "--json"]);
    let letters: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rejected = letters
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| {
            l["error"]
                .as_str()
                .unwrap()
                .contains("rejected at the mass-deprovisioning guard")
        })
        .count();
    assert_eq!(rejected, 2, "{letters}");
    let m = d.metrics().await;
    let series = |name: &str| common::sample(&m, &format!("{name}{{target=\"hooks\"}}"));
    assert_eq!(series("scim_bridge_guard_tripped"), Some(0.0), "{m}");
    assert_eq!(series("scim_bridge_guard_held_changes"), Some(0.0), "{m}");
    assert_eq!(
        series("scim_bridge_guard_tripped_timestamp_seconds"),
        None,
        "{m}"
    );
    assert_eq!(series("scim_bridge_dead_letters"), Some(2.0), "{m}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deleted = receiver
        .lock()
        .unwrap()
        .accepted
        .values()
        .filter(|v| {
            v.last()
                .is_some_and(|e| e.1 == "com.scim-bridge.user.deleted")
        })
        .count();
    assert_eq!(
        deleted, 1,
        "only the one let through before the guard tripped"
    );
    // Nothing left to reject.
    assert!(
        !d.cli(&["approve", "--target", "hooks", "--reject"])
            .status
            .success()
    );
}

//! The provisioning log through the real binary: Entra-shaped traffic into the
//! bridge and out to the strict iManage fake, then `scim-bridge log` and the admin
//! API answer "what happened to this person" with names, old → new values, each
//! target action's steps and HTTP calls, and the target's answer when it refused —
//! and never a password.

use crate::common;

use common::fake_imanage::{self, TOKEN};
use common::{Daemon, Scim};
use serde_json::{Value, json};

const PASSWORD: &str = "Sup3r-secret-passw0rd";

fn person(user_name: &str, email: &str, title: &str) -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "userName": user_name, "active": true, "title": title,
        "displayName": "John Smith",
        "password": PASSWORD,
        "name": {"givenName": "John", "familyName": "Smith"},
        "emails": [{"value": email, "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Tax"}
    })
}

/// The records `log ARGS --json` prints, one per line.
fn log_json(d: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["log"];
    all.extend(args);
    all.push("--json");
    let out = d.cli(&all);
    assert!(
        out.status.success(),
        "log {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stdout(d: &Daemon, args: &[&str]) -> String {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_answers_what_happened_to_a_person() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms {
        // Every 4th write is refused as busy: the log shows the retry and why.
        busy_every: 4,
        ..Default::default()
    }));
    let host = fake_imanage::start_blocking(dms.clone());
    let extra = format!(
        r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "{host}"
providers = ["entra"]
timeout = "5s"
[targets.auth]
method = "bearer"
token = {{ file = "imanage.token" }}
"#
    );
    let d = Daemon::start_with_secrets(&extra, &[("imanage.token", TOKEN)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));

    let (status, body) = scim
        .post(
            "/Users",
            person(
                "jsmith@firm.example",
                "john.smith@firm.example",
                "Associate",
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    for n in 0..3 {
        let name = format!("colleague{n}@firm.example");
        let (status, body) = scim.post("/Users", person(&name, &name, "Clerk")).await;
        assert_eq!(status, 201, "{body}");
    }
    // iManage cannot take this userName: dead-lettered with the reason.
    let (status, body) = scim
        .post("/Users", person("John Smith", "js2@firm.example", "Clerk"))
        .await;
    assert_eq!(status, 201, "{body}");
    // Entra's PATCH, as it sends it (capitalised op, no schemas in the value).
    let (status, body) = scim
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Replace", "path": "title", "value": "Partner"},
                    {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Litigation"}
                ]
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let s = d.wait_drained("dms").await;
    assert_eq!(s["dead_letters"], 1, "{s}");

    // By e-mail, userName (in any case) or displayName: the same person.
    let by_email = log_json(&d, &["--person", "john.smith@firm.example"]);
    let by_name = log_json(&d, &["--person", "JSmith@Firm.Example"]);
    // The chainer links records in the background: a record's audit seq may appear
    // between the two reads, so they are compared without it.
    let unsequenced = |records: &[Value]| {
        records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let Some(o) = r.as_object_mut() {
                    o.remove("seq");
                }
                r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(unsequenced(&by_email), unsequenced(&by_name));
    assert!(
        by_email.iter().all(|r| r["resource"]["id"] == id.as_str()),
        "{by_email:#?}"
    );
    let changes: Vec<&Value> = by_email
        .iter()
        .filter(|r| r["kind"] == "scim.change")
        .collect();
    let actions: Vec<&Value> = by_email
        .iter()
        .filter(|r| r["kind"] == "delivery.action")
        .collect();
    assert_eq!(changes.len(), 2, "{by_email:#?}");
    // Newest first: the PATCH, with old → new, then the creation.
    let patch = changes[0];
    assert_eq!(patch["op"], "update");
    assert_eq!(patch["provider"], "entra");
    assert_eq!(patch["client"], "127.0.0.1");
    assert!(patch["token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(
        patch["changes"],
        // In the stored document's order.
        json!([
            {"path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "old": "Tax", "new": "Litigation"},
            {"path": "title", "old": "Associate", "new": "Partner"}
        ])
    );
    let created = changes[1];
    assert_eq!(created["status"], 201);
    // The bridge never keeps a password, so no record can show one (an attribute a
    // schema marks writeOnly would read `redacted`: see provlog's unit tests).
    assert!(
        created["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["path"] != "password"),
        "{created}"
    );
    assert!(
        created["changes"]
            .as_array()
            .unwrap()
            .contains(&json!({"path": "title", "old": null, "new": "Associate"})),
        "{created}"
    );
    // Each change reached iManage: a successful action with its steps and calls.
    let done: Vec<&&Value> = actions
        .iter()
        .filter(|a| a["outcome"] == "success")
        .collect();
    assert!(!done.is_empty(), "{actions:#?}");
    for a in &done {
        assert_eq!(a["target"], "dms");
        assert_eq!(a["resource"]["userName"], "jsmith@firm.example");
        let steps: Vec<&str> = a["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        assert!(steps.contains(&"scope") && steps.contains(&"action"), "{a}");
        assert!(
            a["calls"].as_array().unwrap().iter().any(|c| c["path"]
                .as_str()
                .unwrap()
                .contains("/api/v2/")
                && c["status"].as_u64().is_some_and(|s| s < 300)),
            "{a}"
        );
    }
    let first = done.last().unwrap();
    assert_eq!(first["action"], "create");
    assert!(first["resource"]["targetId"].as_str().is_some(), "{first}");

    // Every try that met a busy answer is a record with that answer and its next try.
    let retried = log_json(&d, &["--target", "dms", "--outcome", "retrying"]);
    if s["retried"].as_u64().unwrap_or(0) > 0 {
        assert!(!retried.is_empty());
    }
    for r in &retried {
        let error = r["error"].as_str().unwrap();
        assert!(error.contains("429") || error.contains("503"), "{r}");
        assert!(r["nextAt"].as_str().is_some(), "{r}");
        assert!(
            r["calls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["status"] == 429 || c["status"] == 503),
            "{r}"
        );
    }

    // The refused person: dead, with iManage's reason, found by the table's filter.
    let dead = log_json(&d, &["--outcome", "dead"]);
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!(dead[0]["resource"]["userName"], "John Smith");
    assert!(dead[0]["error"].as_str().is_some_and(|e| !e.is_empty()));

    // An operator's retry from the command line is in the trail, naming who and whom.
    let letters: Value = serde_json::from_str(&stdout(&d, &["dlq", "list", "--json"])).unwrap();
    let letter = letters[0]["id"].to_string();
    stdout(&d, &["dlq", "retry", &letter]);
    let trail = log_json(&d, &["--only", "operators"]);
    assert_eq!(trail.len(), 1, "{trail:#?}");
    assert_eq!(trail[0]["via"], "cli");
    assert_eq!(trail[0]["action"], "dlq.retry");
    assert_eq!(trail[0]["resource"]["userName"], "John Smith");
    assert!(trail[0]["who"].as_str().is_some_and(|w| !w.is_empty()));

    // The table speaks in names and old → new.
    let table = stdout(&d, &["log", "--person", "jsmith@firm.example"]);
    assert!(table.contains("title: Associate → Partner"), "{table}");
    assert!(table.contains("entra → dms"), "{table}");
    assert!(table.contains("jsmith@firm.example"), "{table}");
    assert!(!table.contains(&id), "names, not ids: {table}");

    // `log show` on the PATCH lists what it caused at iManage.
    let patch_id = patch["id"].to_string();
    let shown = stdout(&d, &["log", "show", &patch_id]);
    assert!(shown.contains("What it caused"), "{shown}");
    assert!(shown.contains("entra → dms"), "{shown}");
    assert!(shown.contains("title: Associate → Partner"), "{shown}");

    // CSV in Entra's columns, a line per record.
    let csv = stdout(&d, &["log", "--person", "jsmith@firm.example", "--csv"]);
    let mut lines = csv.lines();
    assert!(
        lines.next().unwrap().starts_with("Date (UTC),Identity,User name,Display name,Action,Source System,Target System,Status,Modified Properties"),
        "{csv}"
    );
    assert_eq!(lines.count(), by_email.len());

    // The admin API answers the same, JSON or CSV; a SCIM token is refused.
    let admin = d.admin_token();
    let http = scim_bridge::oauth::build_client(std::time::Duration::from_secs(30)).unwrap();
    let url = d.url("/api/v1/log?person=john.smith%40firm.example&limit=500");
    let api: Value = http
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        api["records"].as_array().unwrap().len(),
        by_email.len(),
        "{api}"
    );
    let csv_api = http
        .get(&url)
        .bearer_auth(&admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv_api.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(csv_api.text().await.unwrap().contains("Partner"));
    let refused = http
        .get(&url)
        .bearer_auth(d.token("entra"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let misspelt = http
        .get(d.url("/api/v1/log?persn=x"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(misspelt.status(), 400);
    let one: Value = http
        .get(d.url(&format!("/api/v1/log/{patch_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!one["linked"].as_array().unwrap().is_empty(), "{one}");

    // Deleted in Entra: still found by the name they had.
    assert_eq!(scim.delete(&format!("/Users/{id}")).await, 204);
    d.wait_drained("dms").await;
    let after = log_json(
        &d,
        &["--person", "jsmith@firm.example", "--only", "changes"],
    );
    assert_eq!(after[0]["op"], "delete", "{after:#?}");
    assert_eq!(after[0]["resource"]["userName"], "jsmith@firm.example");

    // No password anywhere the log reaches.
    let everything = stdout(&d, &["log", "--limit", "10000", "--json"]);
    assert!(!everything.contains(PASSWORD));
}

//! Entra-shaped SCIM traffic into the bridge, out to a strict fake iManage Work server:
//! users created, updated and disabled, an unmappable userName dead-lettered with a clear
//! reason, groups created with members, membership changed in batches, and a deleted
//! group emptied then disabled — through busy answers (429/503 with Retry-After). Also:
//! ids with a `/` in URL paths, member lists longer than a page, and the token endpoint
//! busy, refusing, or expiring tokens under the rate limit; and the first day with an
//! existing estate (adoption, ambiguity, unmanaged accounts, scope, a paused review).

use crate::common;

use common::fake_imanage::{self, TOKEN};
use common::{Daemon, InProcess, Scim};
use serde_json::{Value, json};

/// Runs the CLI on a pseudo-terminal (util-linux `script`), typing `answer`; returns
/// whether it succeeded and what the terminal showed.
fn on_terminal(d: &common::Site, args: &[&str], answer: &str) -> (bool, String) {
    use std::io::Write;
    let command = format!(
        "{} {} --config {}",
        common::BIN,
        args.join(" "),
        d.config.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux script");
    // Typed once the question is on the screen; a terminal buffers it until then.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn user(name: &str, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "active": active,
        "name": {"givenName": "Pat", "familyName": name},
        "emails": [{"value": name, "type": "work", "primary": true}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_traffic_reaches_imanage() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms {
        busy_every: 7,
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
    let d = InProcess::start_with_secrets(&extra, &[("imanage.token", TOKEN)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));

    let mut ids = Vec::new();
    for name in [
        "jsmith@firm.example",
        "akhan@firm.example",
        "lchen@firm.example",
    ] {
        let (status, body) = scim.post("/Users", user(name, true)).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, bad) = scim.post("/Users", user("John Smith", true)).await;
    assert_eq!(status, 201, "{bad}");
    let (status, group) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Litigation Team", "members": [{"value": ids[0]}, {"value": ids[1]}]}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    let s = d.wait_drained("dms").await;
    assert_eq!(s["dead_letters"], 1, "the unmappable userName: {s}");
    // The fake's busy answers (429/503 every 7th write) were met and retried.
    assert!(s["retried"].as_u64().unwrap_or(0) > 0, "{s}");
    {
        let dms = dms.lock().unwrap();
        assert!(
            dms.refused.is_empty(),
            "strict fake refused: {:?}",
            dms.refused
        );
        assert_eq!(dms.users.len(), 3);
        assert_eq!(
            dms.users["JSMITH@FIRM.EXAMPLE"]["email"],
            "jsmith@firm.example"
        );
        assert_eq!(
            dms.users["JSMITH@FIRM.EXAMPLE"]["full_name"],
            "Pat jsmith@firm.example"
        );
        let (g, members) = &dms.groups["LITIGATION_TEAM"];
        assert_eq!(g["full_name"], "Litigation Team");
        assert_eq!(
            members.iter().cloned().collect::<Vec<_>>(),
            ["AKHAN@FIRM.EXAMPLE", "JSMITH@FIRM.EXAMPLE"]
        );
    }
    let out = d.cli(&["dlq", "list", "--json"]);
    let letters: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        letters[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot be an iManage user id"),
        "{letters}"
    );

    // Entra: swap a member, disable a leaver, then delete the group.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": ids[2]}]},
        {"op": "Remove", "path": format!("members[value eq \"{}\"]", ids[1])}]});
    let status = scim.patch(&format!("/Groups/{gid}"), patch).await.0;
    assert!(status == 200 || status == 204);
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    assert_eq!(scim.patch(&format!("/Users/{}", ids[1]), off).await.0, 200);
    d.wait_drained("dms").await;
    {
        let dms = dms.lock().unwrap();
        assert_eq!(dms.users["AKHAN@FIRM.EXAMPLE"]["allow_logon"], false);
        let members: Vec<_> = dms.groups["LITIGATION_TEAM"].1.iter().cloned().collect();
        assert_eq!(members, ["JSMITH@FIRM.EXAMPLE", "LCHEN@FIRM.EXAMPLE"]);
    }
    assert_eq!(scim.delete(&format!("/Groups/{gid}")).await, 204);
    d.wait_drained("dms").await;
    let dms = dms.lock().unwrap();
    let (g, members) = &dms.groups["LITIGATION_TEAM"];
    assert!(members.is_empty(), "emptied before disabling: {members:?}");
    assert_eq!(g["enabled"], false);
    assert!(dms.refused.is_empty(), "{:?}", dms.refused);
    assert!(dms.requests > 10);
}

/// The service account's password grant against iManage's own token endpoint, tokens
/// expiring under the bridge, then drift made in iManage behind the bridge's back:
/// found by `sync --dry-run`, fixed by `sync`, and in sync afterwards — with the bridge's
/// own account and the disabled group left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imanage_reconciles_over_the_password_grant() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms {
        page_cap: 2,
        ..Default::default()
    }));
    let host = fake_imanage::start_blocking(dms.clone());
    let extra = format!(
        r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "{host}"
timeout = "5s"
[targets.auth]
method = "password"
token_url = "{host}/auth/oauth2/token"
client_id = "{client}"
client_secret = {{ file = "client.secret" }}
client_auth = "client_secret_post"
username = "{user}"
password = {{ file = "svc.password" }}
scopes = ["admin"]
[targets.guard]
protected = ["breakglass@firm.example"]
[targets.user_mapping]
full_name = "[user.name.familyName], [user.name.givenName]"
location = "[user.addresses[type eq \"work\"].locality | upper]"
"#,
        client = fake_imanage::CLIENT_ID,
        user = fake_imanage::SERVICE_USER,
    );
    let d = InProcess::start_with_secrets(
        &extra,
        &[
            ("client.secret", fake_imanage::CLIENT_SECRET),
            ("svc.password", fake_imanage::SERVICE_PASSWORD),
        ],
    );
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = Vec::new();
    for name in [
        "jsmith@firm.example",
        "akhan@firm.example",
        "lchen@firm.example",
    ] {
        let (status, body) = scim.post("/Users", user(name, true)).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, group) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Litigation Team", "members": [{"value": ids[0]}, {"value": ids[1]}]}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let (status, _) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Old Team"}),
        )
        .await;
    assert_eq!(status, 201);
    d.wait_drained("dms").await;
    assert_eq!(dms.lock().unwrap().grants, ["password"]);

    // iManage's inactivity timeout: every token dies; the next write gets 401, a new
    // token, and one retry.
    dms.lock().unwrap().expire_tokens();
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "name.familyName", "value": "Smith"}]});
    assert_eq!(
        scim.patch(&format!("/Users/{}", ids[0]), rename).await.0,
        200
    );
    let s = d.wait_drained("dms").await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    {
        let dms = dms.lock().unwrap();
        assert_eq!(dms.grants, ["password", "password"]);
        assert_eq!(dms.refused, ["expired token"]);
        assert_eq!(dms.users["JSMITH@FIRM.EXAMPLE"]["full_name"], "Smith, Pat");
        // No work address: the mapped field is left out rather than sent empty.
        assert!(dms.users["JSMITH@FIRM.EXAMPLE"].get("location").is_none());
    }

    // Drift behind the bridge's back.
    {
        let mut dms = dms.lock().unwrap();
        dms.refused.clear();
        dms.users.get_mut("AKHAN@FIRM.EXAMPLE").unwrap()["full_name"] = json!("Someone Else");
        dms.users.get_mut("LCHEN@FIRM.EXAMPLE").unwrap()["allow_logon"] = json!(false);
        dms.users.insert(
            "INTRUDER".into(),
            json!({"id": "INTRUDER", "full_name": "Not from Entra", "allow_logon": true}),
        );
        dms.users.insert(
            "BREAKGLASS@FIRM.EXAMPLE".into(),
            json!({"id": "BREAKGLASS@FIRM.EXAMPLE", "full_name": "Break glass", "allow_logon": true}),
        );
        let (_, members) = dms.groups.get_mut("LITIGATION_TEAM").unwrap();
        members.remove("AKHAN@FIRM.EXAMPLE");
        members.insert("INTRUDER".into());
        dms.groups.get_mut("OLD_TEAM").unwrap().0["enabled"] = json!(false);
    }
    let out = d.cli(&["sync", "--target", "dms", "--dry-run", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut items: Vec<(String, String, String)> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["action"].as_str().unwrap().to_owned(),
                i["name"].as_str().unwrap().to_owned(),
                i["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    items.sort();
    let actions: Vec<(&str, &str)> = items
        .iter()
        .map(|(a, n, _)| (a.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("members", "Litigation Team"),
            ("members", "Old Team"),
            ("unmanaged", "BREAKGLASS@FIRM.EXAMPLE"),
            ("unmanaged", "INTRUDER"),
            ("update", "akhan@firm.example"),
            ("update", "lchen@firm.example"),
        ],
        "{plan}"
    );
    assert!(
        items[4]
            .2
            .contains("displayName: \"Someone Else\" → \"akhan@firm.example, Pat\""),
        "{items:?}"
    );
    assert!(items[5].2.contains("active: false → true"), "{items:?}");
    assert!(
        items[0].2.contains("members: 1 to add, 1 to remove"),
        "{items:?}"
    );
    assert!(items[1].2.contains("active → true"), "{items:?}");

    // Without a terminal to ask on, sync applies only with --yes.
    let out = d.cli(&["sync", "--target", "dms"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--yes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        dms.lock().unwrap().users["LCHEN@FIRM.EXAMPLE"]["allow_logon"],
        false
    );
    // On a terminal sync shows the plan and asks; anything but yes changes nothing.
    let (ok, text) = on_terminal(&d, &["sync", "--target", "dms"], "n\n");
    assert!(
        ok && text.contains("[y/N]") && text.contains("not applied"),
        "{text}"
    );
    assert_eq!(
        dms.lock().unwrap().users["LCHEN@FIRM.EXAMPLE"]["allow_logon"],
        false
    );
    let (ok, text) = on_terminal(&d, &["sync", "--target", "dms"], "y\n");
    assert!(ok && text.contains("applied: 4 queued"), "{text}");
    d.wait_drained("dms").await;
    {
        let dms = dms.lock().unwrap();
        assert!(dms.refused.is_empty(), "{:?}", dms.refused);
        assert_eq!(
            dms.users["AKHAN@FIRM.EXAMPLE"]["full_name"],
            "akhan@firm.example, Pat"
        );
        assert_eq!(dms.users["LCHEN@FIRM.EXAMPLE"]["allow_logon"], true);
        // Not the bridge's: left enabled.
        assert_eq!(dms.users["INTRUDER"]["allow_logon"], true);
        assert_eq!(dms.users["BREAKGLASS@FIRM.EXAMPLE"]["allow_logon"], true);
        let members: Vec<_> = dms.groups["LITIGATION_TEAM"].1.iter().cloned().collect();
        assert_eq!(members, ["AKHAN@FIRM.EXAMPLE", "JSMITH@FIRM.EXAMPLE"]);
        assert_eq!(dms.groups["OLD_TEAM"].0["enabled"], true);
    }
    let out = d.cli(&["sync", "--target", "dms", "--dry-run", "--json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let left: Vec<&str> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        ["unmanaged", "unmanaged"],
        "converged but for the accounts the bridge does not manage: {plan}"
    );

    // explain: every field iManage gets for a user, and the line behind it.
    let out = d.cli(&["explain", "jsmith@firm.example", "--target", "dms"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("target id JSMITH@FIRM.EXAMPLE"), "{text}");
    for (field, value, from) in [
        (
            "id",
            "\"JSMITH@FIRM.EXAMPLE\"",
            "default: userName, upper-cased",
        ),
        (
            "full_name",
            "\"Smith, Pat\"",
            "[targets.user_mapping] full_name = \"[user.name.familyName], [user.name.givenName]\"",
        ),
        ("location", "(left out)", "no value, so left out"),
        (
            "email",
            "\"jsmith@firm.example\"",
            "default: the primary email",
        ),
        ("allow_logon", "true", "default: active"),
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(field))
            .unwrap_or_else(|| panic!("no {field} line in {text}"));
        assert!(line.contains(value) && line.contains(from), "{line}");
    }
    let out = d.cli(&["explain", "Litigation Team", "--target", "dms", "--json"]);
    let group: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(group["target_id"], "LITIGATION_TEAM");
    assert_eq!(group["fields"][0]["field"], "id");
    let out = d.cli(&["explain", "nobody@firm.example", "--target", "dms"]);
    assert_eq!(out.status.code(), Some(1));
}

/// SIGKILL mid-delivery against a busy, rate-limited iManage: after a restart every user
/// arrives (a create sent again meets 409 and becomes an update), nothing is
/// dead-lettered, and the pacer never let the fake refuse a request for rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imanage_delivery_survives_sigkill() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms {
        busy_every: 5,
        rate_limit: 25,
        ..Default::default()
    }));
    let host = fake_imanage::start_blocking(dms.clone());
    let extra = format!(
        r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "{host}"
rate_limit_per_second = 20
timeout = "5s"
[targets.auth]
method = "bearer"
token = {{ file = "imanage.token" }}
"#
    );
    let mut d = Daemon::start_with_secrets(&extra, &[("imanage.token", TOKEN)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    for i in 0..40 {
        let (status, body) = scim
            .post("/Users", user(&format!("u{i:02}@firm.example"), true))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let started = std::time::Instant::now();
    while dms.lock().unwrap().users.len() < 10 {
        assert!(started.elapsed().as_secs() < 30, "delivery did not start");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    d.kill9();
    let at_kill = dms.lock().unwrap().users.len();
    assert!(at_kill < 40, "killed mid-delivery ({at_kill} delivered)");
    d.spawn();
    let s = d.wait_drained("dms").await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    let dms = dms.lock().unwrap();
    assert_eq!(dms.users.len(), 40);
    assert!(dms.refused.is_empty(), "{:?}", dms.refused);
    assert_eq!(
        dms.rate_refusals, 0,
        "the pacer kept under the fake's limit"
    );
}

/// A pre-existing iManage estate meets the bridge on its first day: an account with
/// the person's email is adopted instead of duplicated, an exact login id is adopted,
/// two accounts sharing an email are reported (nothing created), accounts the bridge
/// did not create or adopt are listed and left alone by reconciliation, only the
/// members of the scope group reach iManage, a member leaving that group is disabled
/// and taken out of every group, coming back restores the same account, and a user
/// iManage can never hold is not queued again by every sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_one_adopts_the_estate_and_touches_only_what_is_ours() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms::default()));
    {
        let mut d = dms.lock().unwrap();
        for (id, name, email) in [
            ("JSMITH", "John Smith", "John.Smith@Example.com"),
            ("ARCHIVIST", "Records", ""),
            ("ADMIN", "Administrator", "admin@example.com"),
            ("ASMITH1", "Alex Smith", "a.smith@example.com"),
            ("ASMITH2", "Alice Smith", "a.smith@example.com"),
            ("KIM.LEE@EXAMPLE.COM", "Kim Lee", "kim@old.example.com"),
            // Shares part of an address with john: the email filter finds it, the
            // bridge must not.
            ("JSMITHSON", "Jo Smithson", "john.smith@example.com.au"),
        ] {
            d.users.insert(
                id.into(),
                json!({"id": id, "full_name": name, "email": email, "allow_logon": true}),
            );
        }
        d.groups.insert(
            "ALL_STAFF".into(),
            (
                json!({"id": "ALL_STAFF", "full_name": "All staff", "enabled": true, "group_nos": 2, "is_external": false}),
                ["JSMITH".to_owned(), "ARCHIVIST".to_owned()].into(),
            ),
        );
    }
    let host = fake_imanage::start_blocking(dms.clone());
    let extra = format!(
        r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "{host}"
timeout = "5s"
max_attempts = 3
[targets.auth]
method = "bearer"
token = {{ file = "dms.token" }}
header = "x-auth-token"
[targets.scope]
groups = ["DMS Users"]
"#
    );
    let d = InProcess::start_with_secrets(&extra, &[("dms.token", TOKEN)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = std::collections::BTreeMap::new();
    for name in [
        "john.smith@example.com",
        "a.smith@example.com",
        "kim.lee@example.com",
        "new.person@example.com",
        "outside@example.com",
        "bad name@example.com",
    ] {
        let (status, body) = scim.post("/Users", user(name, true)).await;
        assert_eq!(status, 201, "{body}");
        ids.insert(name, body["id"].as_str().unwrap().to_owned());
    }
    let members: Vec<Value> = [
        "john.smith@example.com",
        "a.smith@example.com",
        "kim.lee@example.com",
        "new.person@example.com",
        "bad name@example.com",
    ]
    .iter()
    .map(|n| json!({"value": ids[n]}))
    .collect();
    let (status, group) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "DMS Users", "members": members}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    let (status, _) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "DiliTrust Admins", "members": [{"value": ids["outside@example.com"]}]}),
        )
        .await;
    assert_eq!(status, 201);
    let s = d.wait_drained("dms").await;
    let out = d.cli(&["dlq", "list"]);
    assert_eq!(
        s["dead_letters"],
        2,
        "a.smith (ambiguous) and bad name: {s}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    {
        let dms = dms.lock().unwrap();
        let ids: Vec<&str> = dms.users.keys().map(String::as_str).collect();
        assert_eq!(
            ids,
            [
                "ADMIN",
                "ARCHIVIST",
                "ASMITH1",
                "ASMITH2",
                "JSMITH",
                "JSMITHSON",
                "KIM.LEE@EXAMPLE.COM",
                "NEW.PERSON@EXAMPLE.COM",
            ],
            "adopted, not duplicated; nothing for the ambiguous or out-of-scope users"
        );
        // Adopted accounts are updated with what the bridge manages.
        assert_eq!(
            dms.users["JSMITH"]["full_name"],
            "Pat john.smith@example.com"
        );
        assert_eq!(
            dms.users["KIM.LEE@EXAMPLE.COM"]["email"],
            "kim.lee@example.com"
        );
        // The hand-made accounts are untouched.
        assert_eq!(dms.users["JSMITHSON"]["full_name"], "Jo Smithson");
        assert_eq!(dms.users["ADMIN"]["allow_logon"], true);
        assert!(!dms.groups.contains_key("DILITRUST_ADMINS"), "out of scope");
        let members: Vec<&str> = dms.groups["DMS_USERS"]
            .1
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(
            members,
            ["JSMITH", "KIM.LEE@EXAMPLE.COM", "NEW.PERSON@EXAMPLE.COM"]
        );
    }
    let out = d.cli(&["dlq", "list", "--json"]);
    let letters: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<&str> = letters
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["error"].as_str().unwrap())
        .collect();
    assert!(
        errors.iter().any(
            |e| e.contains("2 accounts at dms match a.smith@example.com by email")
                && e.contains("ASMITH1")
                && e.contains("ASMITH2")
        ),
        "{errors:?}"
    );

    // explain says, per person, whether they are in scope and whose account they have.
    let out = d.cli(&["explain", "john.smith@example.com", "--target", "dms"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("scope: in — in targets[0].scope: member of \"DMS Users\""),
        "{text}"
    );
    assert!(text.contains("account: JSMITH, adopted by email"), "{text}");
    let out = d.cli(&[
        "explain",
        "outside@example.com",
        "--target",
        "dms",
        "--json",
    ]);
    let explained: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(explained["scope"]["in"], false, "{explained}");
    assert!(
        explained["scope"]["why"]
            .as_str()
            .unwrap()
            .contains("not a member of any group in targets[0].scope.groups (\"DMS Users\")"),
        "{explained}"
    );

    // The plan: nothing to deactivate, the estate listed as not managed, the two
    // blocked users reported, not queued.
    let (plan, actions) = d.dry_run("dms");
    let of = |a: &str| -> Vec<String> {
        actions
            .iter()
            .filter(|(x, _)| x == a)
            .map(|(_, n)| n.clone())
            .collect()
    };
    assert_eq!(of("deactivate"), Vec::<String>::new(), "{plan}");
    assert_eq!(
        of("unmanaged"),
        ["ADMIN", "ARCHIVIST", "ASMITH1", "ASMITH2", "JSMITHSON"],
        "{plan}"
    );
    assert_eq!(of("blocked").len(), 2, "{plan}");
    assert_eq!(
        of("update"),
        Vec::<String>::new(),
        "adopted ids are no drift: {plan}"
    );
    assert_eq!(
        plan["out_of_scope"], 2,
        "outside@ and DiliTrust Admins: {plan}"
    );
    let table = String::from_utf8_lossy(&d.cli(&["sync", "--target", "dms", "--dry-run"]).stdout)
        .into_owned();
    assert!(
        table.contains("not managed by the bridge, left alone (5)"),
        "{table}"
    );
    // The README's day-one example is this table.
    eprintln!("{table}");
    let out = d.cli(&["sync", "--target", "dms", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = d.wait_drained("dms").await;
    assert_eq!(
        s["dead_letters"], 2,
        "sync queued nothing undeliverable again: {s}"
    );
    assert_eq!(dms.lock().unwrap().users["ARCHIVIST"]["allow_logon"], true);

    // Leaving the scope group: disabled, and out of every group (hand-made ones too).
    dms.lock()
        .unwrap()
        .groups
        .get_mut("ALL_STAFF")
        .unwrap()
        .1
        .insert("NEW.PERSON@EXAMPLE.COM".into());
    let leave = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Remove", "path": format!("members[value eq \"{}\"]", ids["new.person@example.com"])}]});
    let (status, _) = scim.patch(&format!("/Groups/{gid}"), leave).await;
    assert!(status == 200 || status == 204);
    d.wait_drained("dms").await;
    {
        let dms = dms.lock().unwrap();
        assert_eq!(dms.users["NEW.PERSON@EXAMPLE.COM"]["allow_logon"], false);
        assert!(!dms.groups["DMS_USERS"].1.contains("NEW.PERSON@EXAMPLE.COM"));
        assert!(!dms.groups["ALL_STAFF"].1.contains("NEW.PERSON@EXAMPLE.COM"));
    }
    // Back in scope: the same account, enabled, in the group again.
    let back = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": ids["new.person@example.com"]}]}]});
    let (status, _) = scim.patch(&format!("/Groups/{gid}"), back).await;
    assert!(status == 200 || status == 204);
    d.wait_drained("dms").await;
    {
        let dms = dms.lock().unwrap();
        assert_eq!(dms.users["NEW.PERSON@EXAMPLE.COM"]["allow_logon"], true);
        assert!(dms.groups["DMS_USERS"].1.contains("NEW.PERSON@EXAMPLE.COM"));
    }

    // A leaver deleted in Entra leaves every group, the adopted account included.
    assert_eq!(
        scim.delete(&format!("/Users/{}", ids["john.smith@example.com"]))
            .await,
        204
    );
    d.wait_drained("dms").await;
    {
        let dms = dms.lock().unwrap();
        assert_eq!(dms.users["JSMITH"]["allow_logon"], false);
        assert!(
            !dms.groups["DMS_USERS"].1.contains("JSMITH"),
            "{:?}",
            dms.groups["DMS_USERS"]
        );
        assert!(!dms.groups["ALL_STAFF"].1.contains("JSMITH"));
        assert!(
            dms.groups["ALL_STAFF"].1.contains("ARCHIVIST"),
            "others stay"
        );
    }
    let (plan, actions) = d.dry_run("dms");
    assert!(
        actions
            .iter()
            .all(|(a, _)| a == "unmanaged" || a == "blocked"),
        "converged: {plan}"
    );
}

/// `paused = true`: the IdP provisions into the bridge, nothing reaches iManage, and
/// `sync --dry-run` shows the day-one plan — who will be adopted and by which rule, who
/// created, what needs the admin, and the accounts left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_target_shows_the_day_one_plan_before_anything_is_sent() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms::default()));
    {
        let mut d = dms.lock().unwrap();
        for (id, name, email) in [
            ("JSMITH", "John Smith", "john.smith@example.com"),
            ("ARCHIVIST", "Records", ""),
            ("ASMITH1", "Alex Smith", "a.smith@example.com"),
            ("ASMITH2", "Alice Smith", "a.smith@example.com"),
            ("KIM.LEE@EXAMPLE.COM", "Kim Lee", "kim@old.example.com"),
        ] {
            d.users.insert(
                id.into(),
                json!({"id": id, "full_name": name, "email": email, "allow_logon": true}),
            );
        }
    }
    let host = fake_imanage::start_blocking(dms.clone());
    let extra = format!(
        r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "{host}"
paused = true
[targets.auth]
method = "bearer"
token = {{ file = "dms.token" }}
header = "x-auth-token"
"#
    );
    let d = InProcess::start_with_secrets(&extra, &[("dms.token", TOKEN)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    for name in [
        "john.smith@example.com",
        "a.smith@example.com",
        "kim.lee@example.com",
        "new.person@example.com",
    ] {
        assert_eq!(scim.post("/Users", user(name, true)).await.0, 201);
    }
    let before = dms.lock().unwrap().users.clone();
    let out = d.cli(&["sync", "--target", "dms", "--dry-run"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{table}");
    // The README's paused day-one example is this table.
    eprintln!("{table}");
    let (plan, actions) = d.dry_run("dms");
    let mut actions: Vec<(&str, &str)> = actions
        .iter()
        .map(|(a, n)| (a.as_str(), n.as_str()))
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            ("adopt", "john.smith@example.com"),
            ("adopt", "kim.lee@example.com"),
            ("ambiguous", "a.smith@example.com"),
            ("create", "new.person@example.com"),
            ("unmanaged", "ARCHIVIST"),
            ("unmanaged", "ASMITH1"),
            ("unmanaged", "ASMITH2"),
            // What adopting changes, old → new, before it happens.
            ("update", "john.smith@example.com"),
            ("update", "kim.lee@example.com"),
        ],
        "{plan}"
    );
    let rules: Vec<&str> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["matched_by"].as_str())
        .collect();
    assert!(rules.contains(&"email") && rules.contains(&"id"), "{plan}");
    // Applying is refused while paused; nothing reached iManage.
    let out = d.cli(&["sync", "--target", "dms", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is paused"));
    let ready: Value = common::get(d.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["targets"]["dms"]["paused"], true, "{ready}");
    assert_eq!(ready["targets"]["dms"]["delivery"]["queued"], 4, "{ready}");
    let dms = dms.lock().unwrap();
    assert_eq!(dms.users, before, "nothing was sent");
    assert!(dms.groups.is_empty());
}

/// A target on the fake iManage at `host` with its fixed token; `more` adds settings.
fn bearer_target(host: &str, more: &str) -> String {
    format!(
        r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "{host}"
timeout = "5s"
{more}
[targets.auth]
method = "bearer"
token = {{ file = "imanage.token" }}
"#
    )
}

fn group(name: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name, "members": members})
}

/// Ids with a `/` (a group "IP/IT", a login "dept/jdoe") are one URL path segment each:
/// the group is created, gets its members, is found by reconciliation and takes a later
/// membership change; the user is updated and disabled in place. Unencoded, every call
/// naming them hits no route (404) and is retried until it dead-letters, or for a user's
/// PATCH is silently lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_a_slash_stay_one_path_segment() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms::default()));
    let host = fake_imanage::start_blocking(dms.clone());
    let d = InProcess::start_with_secrets(&bearer_target(&host, ""), &[("imanage.token", TOKEN)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = Vec::new();
    for name in [
        "jsmith@firm.example",
        "akhan@firm.example",
        "dept/jdoe@firm.example",
    ] {
        let (status, body) = scim.post("/Users", user(name, true)).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, g) = scim
        .post("/Groups", group("IP/IT", &[&ids[0], &ids[2]]))
        .await;
    assert_eq!(status, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let s = d
        .wait_drained_within("dms", std::time::Duration::from_secs(30))
        .await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    {
        let dms = dms.lock().unwrap();
        assert!(dms.unrouted.is_empty(), "split paths: {:?}", dms.unrouted);
        let members: Vec<_> = dms.groups["IP/IT"].1.iter().cloned().collect();
        assert_eq!(members, ["DEPT/JDOE@FIRM.EXAMPLE", "JSMITH@FIRM.EXAMPLE"]);
    }
    // Reconciliation reads the group's members under its encoded id: nothing to do.
    let (plan, items) = d.dry_run("dms");
    assert!(items.is_empty(), "{plan}");

    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": ids[1]}]},
        {"op": "Remove", "path": format!("members[value eq \"{}\"]", ids[0])}]});
    let status = scim.patch(&format!("/Groups/{gid}"), patch).await.0;
    assert!(status == 200 || status == 204, "{status}");
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "name.familyName", "value": "Doe"}]});
    assert_eq!(
        scim.patch(&format!("/Users/{}", ids[2]), rename).await.0,
        200
    );
    let s = d
        .wait_drained_within("dms", std::time::Duration::from_secs(30))
        .await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    {
        let dms = dms.lock().unwrap();
        let members: Vec<_> = dms.groups["IP/IT"].1.iter().cloned().collect();
        assert_eq!(members, ["AKHAN@FIRM.EXAMPLE", "DEPT/JDOE@FIRM.EXAMPLE"]);
        assert_eq!(dms.users["DEPT/JDOE@FIRM.EXAMPLE"]["full_name"], "Pat Doe");
    }
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": false}]});
    assert_eq!(scim.patch(&format!("/Users/{}", ids[2]), off).await.0, 200);
    assert_eq!(scim.delete(&format!("/Groups/{gid}")).await, 204);
    let s = d
        .wait_drained_within("dms", std::time::Duration::from_secs(30))
        .await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    let dms = dms.lock().unwrap();
    assert_eq!(dms.users["DEPT/JDOE@FIRM.EXAMPLE"]["allow_logon"], false);
    let (g, members) = &dms.groups["IP/IT"];
    assert!(members.is_empty(), "{members:?}");
    assert_eq!(g["enabled"], false);
    assert!(dms.unrouted.is_empty(), "split paths: {:?}", dms.unrouted);
    assert!(dms.refused.is_empty(), "{:?}", dms.refused);
}

/// A group with more members than one page of iManage's member list (`page_cap` 2, six
/// members over three pages): reconciliation reads every page, so a group in sync
/// plans nothing, and a foreign member on the last page is found and removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_are_read_past_the_first_page() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms {
        page_cap: 2,
        ..Default::default()
    }));
    let host = fake_imanage::start_blocking(dms.clone());
    let d = InProcess::start_with_secrets(&bearer_target(&host, ""), &[("imanage.token", TOKEN)]);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = Vec::new();
    for name in [
        "u1@firm.example",
        "u2@firm.example",
        "u3@firm.example",
        "u4@firm.example",
        "u5@firm.example",
        "zz-outsider@firm.example",
    ] {
        let (status, body) = scim.post("/Users", user(name, true)).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let team: Vec<&str> = ids[..5].iter().map(String::as_str).collect();
    let (status, g) = scim.post("/Groups", group("Big Team", &team)).await;
    assert_eq!(status, 201, "{g}");
    let s = d.wait_drained("dms").await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    assert_eq!(dms.lock().unwrap().groups["BIG_TEAM"].1.len(), 5);

    let (plan, items) = d.dry_run("dms");
    assert!(items.is_empty(), "in sync, nothing to do: {plan}");

    // Someone adds a member in iManage; it sorts last, onto the third page.
    dms.lock()
        .unwrap()
        .groups
        .get_mut("BIG_TEAM")
        .unwrap()
        .1
        .insert("ZZ-OUTSIDER@FIRM.EXAMPLE".into());
    let (plan, items) = d.dry_run("dms");
    assert_eq!(
        items,
        [("members".to_string(), "Big Team".to_string())],
        "{plan}"
    );
    assert!(
        plan["items"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("members: 0 to add, 1 to remove"),
        "{plan}"
    );
    let out = d.cli(&["sync", "--target", "dms", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = d.wait_drained("dms").await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    {
        let dms = dms.lock().unwrap();
        let members: Vec<_> = dms.groups["BIG_TEAM"].1.iter().cloned().collect();
        assert_eq!(
            members,
            [
                "U1@FIRM.EXAMPLE",
                "U2@FIRM.EXAMPLE",
                "U3@FIRM.EXAMPLE",
                "U4@FIRM.EXAMPLE",
                "U5@FIRM.EXAMPLE"
            ]
        );
        assert!(dms.refused.is_empty(), "{:?}", dms.refused);
    }
    let (plan, items) = d.dry_run("dms");
    assert!(items.is_empty(), "converged: {plan}");
}

/// A target on the fake iManage at `host` authenticated with the service account's
/// password grant at the fake's token endpoint; `more` adds settings.
fn password_target(host: &str, more: &str) -> String {
    format!(
        r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "{host}"
{more}
[targets.auth]
method = "password"
token_url = "{host}/auth/oauth2/token"
client_id = "{client}"
client_secret = {{ file = "client.secret" }}
client_auth = "client_secret_post"
username = "{user}"
password = {{ file = "svc.password" }}
scopes = ["admin"]
"#,
        client = fake_imanage::CLIENT_ID,
        user = fake_imanage::SERVICE_USER,
    )
}

fn start_password(host: &str, more: &str, client_secret: &str) -> Daemon {
    Daemon::start_with_secrets(
        &password_target(host, more),
        &[
            ("client.secret", client_secret),
            ("svc.password", fake_imanage::SERVICE_PASSWORD),
        ],
    )
}

/// The token endpoint answers 503, then 429, each with `Retry-After` and iManage's
/// error envelope: the log names each HTTP status and the wait (not "JSON that is not
/// a token response"), and the change is delivered once a token comes, never
/// dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_token_endpoint_is_named_by_its_status() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms {
        token_busy: [(503, "3".to_string()), (429, "2".to_string())].into(),
        ..Default::default()
    }));
    let host = fake_imanage::start_blocking(dms.clone());
    let d = start_password(&host, "", fake_imanage::CLIENT_SECRET);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (status, body) = scim.post("/Users", user("jsmith@firm.example", true)).await;
    assert_eq!(status, 201, "{body}");
    let s = d
        .wait_drained_within("dms", std::time::Duration::from_secs(60))
        .await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    let log = d.log_text();
    assert!(
        dms.lock()
            .unwrap()
            .users
            .contains_key("JSMITH@FIRM.EXAMPLE")
    );
    assert!(
        log.contains("token endpoint answered HTTP 503 Service Unavailable")
            && log.contains("HTTP 429 Too Many Requests"),
        "{log}"
    );
    assert!(log.contains("retry after 3 s"), "{log}");
    assert!(!log.contains("not a token response"), "{log}");
    assert!(
        !log.contains(fake_imanage::CLIENT_SECRET),
        "client secret in the log"
    );
    assert!(
        !log.contains(fake_imanage::SERVICE_PASSWORD),
        "password in the log"
    );
}

/// A token endpoint refusing the client (HTTP 401 invalid_client) will refuse every
/// retry: the change is dead-lettered at once, the dead letter names the status and
/// the OAuth error, and no secret shows in it or in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_dead_letters_naming_the_status() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms::default()));
    let host = fake_imanage::start_blocking(dms.clone());
    let wrong = "wrong-client-secret-Zr8";
    let d = start_password(&host, "", wrong);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (status, body) = scim.post("/Users", user("jsmith@firm.example", true)).await;
    assert_eq!(status, 201, "{body}");
    let s = d
        .wait_drained_within("dms", std::time::Duration::from_secs(20))
        .await;
    assert_eq!(s["dead_letters"], 1, "{s}");
    assert_eq!(s["retried"], 0, "retrying cannot help: {s}");
    let out = d.cli(&["dlq", "list", "--json"]);
    let letters: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = letters[0]["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 401 Unauthorized") && error.contains("invalid_client"),
        "{letters}"
    );
    let log = d.log_text();
    assert!(log.contains("HTTP 401 Unauthorized"), "{log}");
    for shown in [error, log.as_str()] {
        assert!(!shown.contains(wrong) && !shown.contains(fake_imanage::SERVICE_PASSWORD));
    }
}

/// After a 503 with `Retry-After: 3` and then a 429 with `Retry-After: 2`, the token
/// endpoint is not asked again before that time, by the delivery or by the background
/// refresh, and the change is delivered once a token comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_wait_for_the_retry_after() {
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms {
        token_busy: [(503, "3".to_string()), (429, "2".to_string())].into(),
        ..Default::default()
    }));
    let host = fake_imanage::start_blocking(dms.clone());
    let d = start_password(&host, "", fake_imanage::CLIENT_SECRET);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    for name in ["jsmith@firm.example", "akhan@firm.example"] {
        let (status, body) = scim.post("/Users", user(name, true)).await;
        assert_eq!(status, 201, "{body}");
    }
    let s = d
        .wait_drained_within("dms", std::time::Duration::from_secs(60))
        .await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    let log = d.log_text();
    let dms = dms.lock().unwrap();
    assert_eq!(dms.users.len(), 2);
    let t = &dms.token_times;
    assert_eq!(t.len(), 3, "one request per answer: {t:?}\n{log}");
    // A little under the Retry-After: the fake stamps arrival, not the send.
    let gap = |i: usize| t[i + 1].duration_since(t[i]).as_secs_f64();
    assert!(
        gap(0) >= 2.9,
        "asked again {:.2} s after a 503 with Retry-After: 3\n{log}",
        gap(0)
    );
    assert!(
        gap(1) >= 1.9,
        "asked again {:.2} s after a 429 with Retry-After: 2\n{log}",
        gap(1)
    );
}

/// Tokens expiring under a steady backlog at the rate limit: the call answered 401,
/// the token request and the retried call each wait for the pacer, so the fake (which
/// counts token requests against the same host's limit, one above the bridge's) never
/// sees more than its limit in a second. Expiries are 2.5 s apart, well past a
/// re-authentication's turn through the pacer's queue (2 deliveries at 5/s), as a real
/// token outlives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthentication_waits_for_the_pacer() {
    const RATE: usize = 5;
    const USERS: usize = 40;
    let dms = std::sync::Arc::new(std::sync::Mutex::new(fake_imanage::Dms {
        rate_limit: RATE + 1,
        ..Default::default()
    }));
    let host = fake_imanage::start_blocking(dms.clone());
    let d = start_password(
        &host,
        &format!("rate_limit_per_second = {RATE}\nconcurrency = 2"),
        fake_imanage::CLIENT_SECRET,
    );
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    for i in 0..USERS {
        let (status, body) = scim
            .post("/Users", user(&format!("u{i:02}@firm.example"), true))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // Every token dies now and then while the queue drains at the rate limit.
    let started = std::time::Instant::now();
    let mut expired_at: Option<std::time::Instant> = None;
    let mut expiries = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let mut dms = dms.lock().unwrap();
        if dms.users.len() >= USERS - 5 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "delivery stalled: {} users\n{}",
            dms.users.len(),
            d.log_text()
        );
        let due = expired_at.is_none_or(|t| t.elapsed().as_secs_f64() >= 2.5);
        if due && dms.users.len() >= 3 && !dms.live_tokens.is_empty() {
            dms.expire_tokens();
            expired_at = Some(std::time::Instant::now());
            expiries += 1;
        }
    }
    let s = d.wait_drained("dms").await;
    assert_eq!(s["dead_letters"], 0, "{s}\n{}", d.log_text());
    let dms = dms.lock().unwrap();
    assert_eq!(dms.users.len(), USERS);
    assert!(expiries >= 2, "{expiries} expiries");
    assert_eq!(dms.grants.len(), expiries + 1, "{:?}", dms.grants);
    assert!(dms.refused.iter().any(|r| r == "expired token"));
    assert_eq!(
        (dms.rate_refusals, dms.busiest_second <= RATE + 1),
        (0, true),
        "busiest second {} (limit {}): re-authentication went past the pacer",
        dms.busiest_second,
        RATE + 1
    );
}

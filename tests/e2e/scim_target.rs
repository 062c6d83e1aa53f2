//! The outbound SCIM target against `scim2-server` (PyPI), a real, independent SCIM
//! server: Entra-shaped traffic into the bridge comes out as the same users and groups,
//! memberships follow, a deleted user is deleted (or, by default, deactivated and given
//! back when assigned again), and a user that already exists at the target is adopted
//! instead of duplicated.

use crate::common;

use std::time::Duration;

use common::scim2::{list, scim2_server, start_peer, start_peer_with};
use common::{Daemon, InProcess, Scim, Site, config_text, free_port};
use serde_json::{Value, json};

/// Waits until the app target has nothing queued, and nothing was dead-lettered.
async fn wait_drained(d: &Site) {
    let s = d.wait_drained("app").await;
    assert_eq!(s["dead_letters"], 0, "{s}\n{}", d.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_into_scim2_server() {
    let Some(bin) = scim2_server() else { return };
    let peer = start_peer(&bin);
    // Already at the target before the bridge knows it: must be adopted, not duplicated.
    let http = scim_bridge::oauth::build_client(Duration::from_secs(10)).unwrap();
    let pre = http
        .post(format!("{}/Users", peer.base))
        .header("content-type", "application/scim+json")
        .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "carol@firm.example", "active": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 201);

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        r#"
[[targets]]
name = "app"
kind = "scim"
url = "{}"
providers = ["entra"]
timeout = "5s"
schedule = "0 0 1 1 *"
on_delete = "delete"
# This app must hold only people from the IdP: the bridge deactivates the others.
unmanaged = "deactivate"
[targets.guard]
max_deprovisions = 2
[targets.user_mapping]
title = "[user.title | default(\"Associate\")]"
"name.formatted" = "[user.name.givenName] [user.name.familyName | upper]"
"#,
        peer.base
    );
    let config = dir.path().join("scim-bridge.toml");
    std::fs::write(&config, config_text(port, &dir.path().join("data"), &extra)).unwrap();
    let mut d = Daemon::unstarted(dir, config, port);
    d.spawn();
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = Vec::new();
    for (name, ext) in [
        ("alice@firm.example", "e-1"),
        ("bob@firm.example", "e-2"),
        ("carol@firm.example", "e-3"),
    ] {
        let (status, body) = scim
            .post(
                "/Users",
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name, "externalId": ext, "active": true,
                    "name": {"givenName": "G", "familyName": name},
                    "emails": [{"value": name, "type": "work", "primary": true}],
                }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, group) = scim
        .post(
            "/Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Litigation", "members": [{"value": ids[0]}, {"value": ids[1]}],
            }),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    wait_drained(&d).await;

    let users = list(&peer.base, "Users").await;
    assert_eq!(users.len(), 3, "carol adopted, not duplicated: {users:?}");
    let ready: Value = common::get(d.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = ready["targets"]["app"]["reconcile"]["next"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        next.contains("-01-01T00:00:00"),
        "scheduled reconciliation: {ready}"
    );
    let by_name = |n: &str| users.iter().find(|u| u["userName"] == n).cloned().unwrap();
    assert_eq!(by_name("alice@firm.example")["externalId"], "e-1");
    assert_eq!(by_name("carol@firm.example")["externalId"], "e-3");
    // The target's user_mapping filled attributes the IdP did not send.
    assert_eq!(by_name("alice@firm.example")["title"], "Associate");
    assert_eq!(
        by_name("alice@firm.example")["name"]["formatted"],
        "G ALICE@FIRM.EXAMPLE"
    );
    let groups = list(&peer.base, "Groups").await;
    assert_eq!(groups.len(), 1);
    let members: Vec<&str> = groups[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    let alice = by_name("alice@firm.example")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = by_name("bob@firm.example")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let carol = by_name("carol@firm.example")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(members.len(), 2);
    assert!(members.contains(&alice.as_str()) && members.contains(&bob.as_str()));

    // Entra-style changes: deactivate bob, swap a member, delete alice.
    let (status, _) = scim
        .patch(
            &format!("/Users/{}", ids[1]),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        )
        .await;
    assert_eq!(status, 200);
    let status = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "Add", "path": "members", "value": [{"value": ids[2]}]},
                {"op": "Remove", "path": format!("members[value eq \"{}\"]", ids[1])}
            ]}),
        )
        .await
        .0;
    assert!(status == 200 || status == 204, "{status}");
    assert_eq!(scim.delete(&format!("/Users/{}", ids[0])).await, 204);
    wait_drained(&d).await;

    let users = list(&peer.base, "Users").await;
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(users.iter().all(|u| u["userName"] != "alice@firm.example"));
    let bob_now = users
        .iter()
        .find(|u| u["userName"] == "bob@firm.example")
        .unwrap();
    assert_eq!(bob_now["active"], false, "{bob_now}");
    let groups = list(&peer.base, "Groups").await;
    let members: Vec<&str> = groups[0]["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().unwrap()).collect())
        .unwrap_or_default();
    assert!(members.contains(&carol.as_str()), "{groups:?}");
    assert!(!members.contains(&bob.as_str()), "{groups:?}");

    // Drift made at the target behind the bridge's back: bob deleted there, carol's
    // name changed there, an unknown active account added there.
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let http = http.clone();
        async move {
            let mut r = http
                .request(method, path)
                .header("content-type", "application/scim+json");
            if let Some(b) = body {
                r = r.body(b.to_string());
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(
        send(
            reqwest::Method::DELETE,
            format!("{}/Users/{bob}", peer.base),
            None
        )
        .await,
        204
    );
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "name.familyName", "value": "Drifted"}]});
    let status = send(
        reqwest::Method::PATCH,
        format!("{}/Users/{carol}", peer.base),
        Some(patch),
    )
    .await;
    assert!(status == 200 || status == 204, "{status}");
    let mallory = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "mallory@elsewhere.example", "active": true});
    assert_eq!(
        send(
            reqwest::Method::POST,
            format!("{}/Users", peer.base),
            Some(mallory)
        )
        .await,
        201
    );

    let (plan, actions) = d.dry_run("app");
    let has = |a: &str, n: &str| actions.iter().any(|(x, y)| x == a && y == n);
    assert!(has("create", "bob@firm.example"), "{plan}");
    assert!(has("update", "carol@firm.example"), "{plan}");
    assert!(has("deactivate", "mallory@elsewhere.example"), "{plan}");
    // Deleting alice in the bridge dropped her from Litigation; scim2-server kept the
    // dangling member when its user was deleted: drift that the plan finds too.
    assert!(has("members", "Litigation"), "{plan}");
    assert_eq!(actions.len(), 4, "{plan}");
    // The table form names the same plan.
    let table = String::from_utf8_lossy(&d.cli(&["sync", "--target", "app", "--dry-run"]).stdout)
        .into_owned();
    assert!(
        table.contains("plan: 1 create, 1 update, 0 adopt, 1 membership, 1 deactivate"),
        "{table}"
    );
    assert_eq!(
        list(&peer.base, "Users").await.len(),
        2,
        "a dry run changed the target"
    );

    let out = d.cli(&["sync", "--target", "app", "--yes"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_drained(&d).await;
    let (plan, _) = d.dry_run("app");
    assert_eq!(plan["items"], json!([]), "not converged: {plan}");
    let users = list(&peer.base, "Users").await;
    let mallory = users
        .iter()
        .find(|u| u["userName"] == "mallory@elsewhere.example")
        .unwrap();
    assert_eq!(mallory["active"], false);
    let carol_now = users
        .iter()
        .find(|u| u["userName"] == "carol@firm.example")
        .unwrap();
    assert_eq!(carol_now["name"]["familyName"], "carol@firm.example");

    // Three unknown accounts appear at once: more deactivations than the guard allows.
    for n in ["eve", "trent", "oscar"] {
        let doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("{n}@elsewhere.example"), "active": true});
        assert_eq!(
            send(
                reqwest::Method::POST,
                format!("{}/Users", peer.base),
                Some(doc)
            )
            .await,
            201
        );
    }
    let out = d.cli(&["sync", "--target", "app", "--yes"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("held back: 3 deactivations"), "{text}");
    let ready: Value = common::get(d.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["targets"]["app"]["delivery"]["guard"]["state"], "tripped",
        "{ready}"
    );
    let active = |users: &[Value]| users.iter().filter(|u| u["active"] == true).count();
    assert_eq!(
        active(&list(&peer.base, "Users").await),
        4,
        "nothing deactivated while held"
    );
    assert!(d.cli(&["approve", "--target", "app"]).status.success());
    let out = d.cli(&["sync", "--target", "app", "--yes"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("3 deactivated"), "{text}");
    assert_eq!(
        active(&list(&peer.base, "Users").await),
        1,
        "only carol is active now"
    );
    d.kill9();
}

/// The default deprovisioning: a user deleted in the IdP is deactivated at the app with
/// its data kept, and assigned again (a new SCIM id from the IdP) gets the same account
/// back, active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_users_are_deactivated_and_come_back_to_the_same_account() {
    let Some(bin) = scim2_server() else { return };
    let peer = start_peer(&bin);
    let extra = format!(
        r#"
[[targets]]
name = "app"
kind = "scim"
url = "{}"
timeout = "5s"
"#,
        peer.base
    );
    let d = InProcess::start(&extra);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "dana@firm.example", "externalId": "e-9", "active": true,
        "name": {"givenName": "Dana", "familyName": "Lee"}});
    let (status, created) = scim.post("/Users", user.clone()).await;
    assert_eq!(status, 201, "{created}");
    wait_drained(&d).await;
    let at_app = list(&peer.base, "Users").await;
    assert_eq!(at_app.len(), 1);
    let app_id = at_app[0]["id"].as_str().unwrap().to_owned();

    let first = created["id"].as_str().unwrap();
    assert_eq!(scim.delete(&format!("/Users/{first}")).await, 204);
    wait_drained(&d).await;
    let at_app = list(&peer.base, "Users").await;
    assert_eq!(at_app.len(), 1, "kept, not deleted: {at_app:?}");
    assert_eq!(at_app[0]["active"], false);
    assert_eq!(at_app[0]["name"]["givenName"], "Dana", "data kept");

    let (status, again) = scim.post("/Users", user).await;
    assert_eq!(status, 201, "{again}");
    assert_ne!(again["id"], created["id"]);
    wait_drained(&d).await;
    let at_app = list(&peer.base, "Users").await;
    assert_eq!(at_app.len(), 1, "no duplicate: {at_app:?}");
    assert_eq!(at_app[0]["id"], app_id.as_str(), "the same account");
    assert_eq!(at_app[0]["active"], true);
}

/// A SCIM app (scim2-server) with accounts of its own meets the bridge: an account
/// with the person's email is adopted, two accounts sharing an email are reported and
/// nothing is created, the app's own accounts are listed and left alone, and only the
/// people in the app's scope (members of "Claras Users" who are employees) reach it —
/// a person leaving the scope is deactivated there, and coming back gets the same
/// account, active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_one_adopts_by_email_scopes_and_leaves_the_apps_own_accounts_alone() {
    let Some(bin) = scim2_server() else { return };
    let peer = start_peer(&bin);
    let http = scim_bridge::oauth::build_client(Duration::from_secs(10)).unwrap();
    let mut app_ids = std::collections::BTreeMap::new();
    for (name, email) in [
        ("jsmith", "john.smith@firm.example"),
        ("owner", "owner@firm.example"),
        ("alex1", "a.smith@firm.example"),
        ("alex2", "a.smith@firm.example"),
    ] {
        let r = http
            .post(format!("{}/Users", peer.base))
            .header("content-type", "application/scim+json")
            .body(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name, "active": true,
                "emails": [{"value": email, "primary": true}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        app_ids.insert(name, body["id"].as_str().unwrap().to_owned());
    }
    let extra = format!(
        r#"
[[targets]]
name = "claras"
kind = "scim"
url = "{}"
timeout = "5s"
max_attempts = 3
[targets.scope]
groups = ["Claras Users"]
users = 'userType eq "Employee"'
"#,
        peer.base
    );
    let d = InProcess::start(&extra);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = std::collections::BTreeMap::new();
    for (name, kind) in [
        ("john.smith@firm.example", "Employee"),
        ("a.smith@firm.example", "Employee"),
        ("new@firm.example", "Employee"),
        ("temp@firm.example", "Contractor"),
        ("elsewhere@firm.example", "Employee"),
    ] {
        let (status, body) = scim
            .post(
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name, "active": true, "userType": kind,
                    "emails": [{"value": name, "type": "work", "primary": true}]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.insert(name, body["id"].as_str().unwrap().to_owned());
    }
    let in_group: Vec<Value> = [
        "john.smith@firm.example",
        "a.smith@firm.example",
        "new@firm.example",
        "temp@firm.example",
    ]
    .iter()
    .map(|n| json!({"value": ids[n]}))
    .collect();
    let (status, group) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Claras Users", "members": in_group}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let (status, _) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "DiliTrust Admins", "members": [{"value": ids["elsewhere@firm.example"]}]}),
        )
        .await;
    assert_eq!(status, 201);
    let s = d.wait_drained("claras").await;
    assert_eq!(s["dead_letters"], 1, "the ambiguous a.smith: {s}");
    let users = list(&peer.base, "Users").await;
    let names: std::collections::BTreeSet<&str> = users
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "alex1",
            "alex2",
            "john.smith@firm.example",
            "new@firm.example",
            "owner"
        ]
        .into(),
        "jsmith adopted (renamed to the IdP's userName), new@ created, nobody out of scope: {users:?}"
    );
    let john = users
        .iter()
        .find(|u| u["userName"] == "john.smith@firm.example")
        .unwrap();
    assert_eq!(john["id"], app_ids["jsmith"].as_str(), "the same account");
    let groups = list(&peer.base, "Groups").await;
    let group_names: Vec<&str> = groups
        .iter()
        .map(|g| g["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(group_names, ["Claras Users"], "only the scope group");
    let members: std::collections::BTreeSet<&str> = groups[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        members.len(),
        2,
        "john and new@; not the contractor: {groups:?}"
    );
    assert!(members.contains(app_ids["jsmith"].as_str()));

    let out = d.cli(&["dlq", "list", "--json"]);
    let letters: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = letters[0]["error"].as_str().unwrap();
    assert!(
        error.contains("2 accounts at claras match a.smith@firm.example by email")
            && error.contains("alex1")
            && error.contains("alex2"),
        "{error}"
    );

    // The plan leaves the app's own accounts alone and says so.
    let (plan, actions) = d.dry_run("claras");
    let of = |a: &str| -> Vec<&str> {
        actions
            .iter()
            .filter(|(x, _)| x == a)
            .map(|(_, n)| n.as_str())
            .collect()
    };
    assert_eq!(of("unmanaged"), ["alex1", "alex2", "owner"], "{plan}");
    assert_eq!(of("deactivate"), Vec::<&str>::new(), "{plan}");
    assert_eq!(of("blocked"), ["a.smith@firm.example"], "{plan}");
    assert_eq!(
        plan["out_of_scope"], 3,
        "temp@, elsewhere@, DiliTrust Admins: {plan}"
    );

    // Leaving the scope by an attribute: deactivated at the app, kept.
    let to_contractor = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userType", "value": "Contractor"}]});
    let (status, _) = scim
        .patch(
            &format!("/Users/{}", ids["new@firm.example"]),
            to_contractor,
        )
        .await;
    assert_eq!(status, 200);
    d.wait_drained("claras").await;
    let at_app = |users: &[Value], n: &str| {
        users
            .iter()
            .find(|u| u["userName"] == n)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let new_user = at_app(&list(&peer.base, "Users").await, "new@firm.example");
    assert_eq!(new_user["active"], false, "{new_user}");
    let new_id = new_user["id"].clone();
    // Back in scope: the same account, active again.
    let to_employee = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userType", "value": "Employee"}]});
    let (status, _) = scim
        .patch(&format!("/Users/{}", ids["new@firm.example"]), to_employee)
        .await;
    assert_eq!(status, 200);
    d.wait_drained("claras").await;
    let new_user = at_app(&list(&peer.base, "Users").await, "new@firm.example");
    assert_eq!(new_user["active"], true, "{new_user}");
    assert_eq!(new_user["id"], new_id);

    // Entering the scope by group: elsewhere@ joins Claras Users and is provisioned.
    let join = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": ids["elsewhere@firm.example"]}]}]});
    let gid = group["id"].as_str().unwrap();
    let (status, _) = scim.patch(&format!("/Groups/{gid}"), join).await;
    assert!(status == 200 || status == 204);
    d.wait_drained("claras").await;
    let users = list(&peer.base, "Users").await;
    assert_eq!(
        at_app(&users, "elsewhere@firm.example")["active"],
        true,
        "{users:?}"
    );
    // explain without --target: every target, in or out and why, and the account.
    let out = d.cli(&["explain", "temp@firm.example", "--json"]);
    let placed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(placed["targets"][0]["target"], "claras", "{placed}");
    assert_eq!(placed["targets"][0]["in_scope"], false, "{placed}");
    assert!(
        placed["targets"][0]["why"]
            .as_str()
            .unwrap()
            .contains("does not match targets[0].scope.users"),
        "{placed}"
    );
    let out = d.cli(&["explain", "john.smith@firm.example"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains(&format!("{}, adopted by email", app_ids["jsmith"])),
        "{text}"
    );
    // The app's own accounts were never touched.
    assert_eq!(at_app(&users, "owner")["active"], true);
    assert_eq!(at_app(&users, "alex1")["active"], true);

    // A narrower scope in the file shows its effect in a dry run before any daemon
    // acts on it: the employees it drops would be deprovisioned, nobody else.
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace(
            r#"users = 'userType eq "Employee"'"#,
            r#"users = 'userName sw "new"'"#,
        ),
    )
    .unwrap();
    let (plan, actions) = d.dry_run("claras");
    let mut dropped: Vec<&str> = actions
        .iter()
        .filter(|(a, _)| a == "deprovision")
        .map(|(_, n)| n.as_str())
        .collect();
    dropped.sort();
    assert_eq!(
        dropped,
        ["elsewhere@firm.example", "john.smith@firm.example"],
        "{plan}"
    );
    assert!(
        plan["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["action"] == "deprovision"
                && i["detail"]
                    .as_str()
                    .unwrap()
                    .contains("left the scope: does not match")),
        "{plan}"
    );
    assert_eq!(
        at_app(&list(&peer.base, "Users").await, "john.smith@firm.example")["active"],
        true
    );
}

/// Clio Operate's guide into an app that takes only whole-resource PUTs: the `work`
/// email arrives as the app's `email` contact type while a work phone stays `work`
/// (renames per attribute), and a title outside the option set is ignored, i.e. the
/// app keeps the title it holds — even one set by hand there since the last delivery
/// — while a title in the set replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clio_operate_contact_types_and_ignored_titles_into_a_put_only_app() {
    let Some(bin) = scim2_server() else { return };
    let peer = common::scim2::start_put_only_peer(&bin);
    let extra = format!(
        r#"
[[targets]]
name = "app"
kind = "scim"
url = "{}"
timeout = "5s"
[targets.contact_types]
emails = {{ work = "email" }}
[targets.user_mapping]
"name.honorificPrefix" = '[user.name.honorificPrefix | oneof("Mr", "Mrs", "Ms", "Dr")]'
"#,
        peer.base
    );
    let d = InProcess::start(&extra);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let ada = |prefix: &str, display: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ada@firm.example", "externalId": "e-ada", "active": true,
            "displayName": display,
            "name": {"givenName": "Ada", "familyName": "Lovelace", "honorificPrefix": prefix},
            "emails": [{"value": "ada@firm.example", "type": "work", "primary": true}],
            "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "work"}],
        })
    };
    let (status, body) = scim.post("/Users", ada("dr", "Ada Lovelace")).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    wait_drained(&d).await;
    let at_app = || async {
        let users = list(&peer.base, "Users").await;
        assert_eq!(users.len(), 1, "{users:#?}");
        users[0].clone()
    };
    let user = at_app().await;
    assert_eq!(user["emails"][0]["type"], "email", "{user:#}");
    assert_eq!(user["phoneNumbers"][0]["type"], "work", "{user:#}");
    assert_eq!(user["name"]["honorificPrefix"], "Dr", "{user:#}");

    // Someone sets Ada's title in the app by hand (a PUT: this app has no PATCH).
    let app_id = user["id"].as_str().unwrap().to_owned();
    let mut by_hand = user.clone();
    by_hand["name"]["honorificPrefix"] = json!("Mrs");
    for key in ["id", "meta"] {
        by_hand.as_object_mut().unwrap().remove(key);
    }
    let http = scim_bridge::oauth::build_client(Duration::from_secs(10)).unwrap();
    let put = http
        .put(format!("{}/Users/{app_id}", peer.base))
        .header("content-type", "application/scim+json")
        .body(by_hand.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    // The IdP sends a title outside the option set with another change: the change
    // arrives, the app's title stays.
    let (status, body) = scim
        .put(&format!("/Users/{id}"), ada("Sir", "Ada King"))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_drained(&d).await;
    let user = at_app().await;
    assert_eq!(user["displayName"], "Ada King", "{user:#}");
    assert_eq!(
        user["name"]["honorificPrefix"], "Mrs",
        "ignored means the app keeps its title: {user:#}"
    );
    assert_eq!(user["emails"][0]["type"], "email", "{user:#}");
    // Reconciliation agrees: nothing to change.
    let (plan, _) = d.dry_run("app");
    assert_eq!(plan["items"], json!([]), "{plan:#}");

    // A title in the set replaces it.
    let (status, body) = scim
        .put(&format!("/Users/{id}"), ada("ms", "Ada King"))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_drained(&d).await;
    let user = at_app().await;
    assert_eq!(user["name"]["honorificPrefix"], "Ms", "{user:#}");
    let explain = d.cli(&["explain", "ada@firm.example", "--target", "app"]);
    let text = String::from_utf8_lossy(&explain.stdout).into_owned();
    assert!(
        text.contains("emails.type")
            && text.contains("[targets.contact_types] emails.work = \"email\""),
        "{text}"
    );
}

/// A group nested in another is delivered as one of its members (the target does
/// not flatten nested groups); reconciliation knows it as the bridge's own and does
/// not plan to remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_group_the_bridge_delivered_is_no_drift() {
    let Some(bin) = scim2_server() else { return };
    let peer = start_peer(&bin);
    let extra = format!(
        "[[targets]]\nname = \"app\"\nkind = \"scim\"\nurl = \"{}\"\ntimeout = \"5s\"\n",
        peer.base
    );
    let d = InProcess::start(&extra);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = Vec::new();
    for name in ["partner@firm.example", "associate@firm.example"] {
        let (status, body) = scim
            .post(
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": true}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let group = |name: &str, members: Value| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members});
    // The outer group first, so the nested group comes after it in the bridge's own
    // order; it joins the outer group afterwards, as Entra adds members.
    let (status, outer) = scim
        .post("/Groups", group("Litigation", json!([{"value": ids[0]}])))
        .await;
    assert_eq!(status, 201, "{outer}");
    let (status, london) = scim
        .post(
            "/Groups",
            group("Litigation-London", json!([{"value": ids[1]}])),
        )
        .await;
    assert_eq!(status, 201, "{london}");
    let london = london["id"].as_str().unwrap().to_owned();
    let (status, _) = scim
        .patch(
            &format!("/Groups/{}", outer["id"].as_str().unwrap()),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": london, "type": "Group"}]}]}),
        )
        .await;
    assert!(status == 200 || status == 204, "{status}");
    wait_drained(&d).await;

    let groups = list(&peer.base, "Groups").await;
    let by_name = |n: &str| {
        groups
            .iter()
            .find(|g| g["displayName"] == n)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let london_at_app = by_name("Litigation-London")["id"].clone();
    let members = by_name("Litigation")["members"].clone();
    assert!(
        members
            .as_array()
            .is_some_and(|m| m.len() == 2 && m.iter().any(|m| m["value"] == london_at_app)),
        "the nested group is a member at the app: {groups:#?}"
    );
    let (plan, _) = d.dry_run("app");
    assert_eq!(plan["items"], json!([]), "{plan:#}");
}

/// #18 item 7: DiliTrust CLM's guide, step 6.2, copied literally into Entra maps the
/// target attribute `urn:ietf:params:scim:schemas:core:2.0:User:roleId`. With the
/// README's configuration (roleId declared on the core User schema, the role rule
/// reading it) the role reaches the app from Entra's POST and both PATCH styles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dilitrust_guide_role_id_reaches_the_app() {
    const CORE_ROLE_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:User:roleId";
    const ADMIN: &str = "0b8e7f4c-3f2a-4d6e-9c1b-2a5d8e7f6a10";
    const EDITOR: &str = "6f1d2c3b-4a5e-4f70-8b9c-0d1e2f3a4b5c";
    let Some(bin) = scim2_server() else { return };
    // The app publishes roleId in its core User schema, as DiliTrust CLM does.
    let schemas = common::scim2::schemas_with_core_user_attribute(&bin, "roleId");
    let peer = start_peer_with(&bin, &["--schema", schemas.path().to_str().unwrap()], None);
    let extra = format!(
        r#"
[[providers]]
name = "clm"
dialect = "entra"
[[providers.schemas]]
id = "urn:ietf:params:scim:schemas:core:2.0:User"
[[providers.schemas.attributes]]
name = "roleId"

[[targets]]
name = "app"
kind = "scim"
url = "{}"
providers = ["clm"]
timeout = "5s"
[targets.roles]
field = "{CORE_ROLE_ID}"
attribute = "[user.{CORE_ROLE_ID}]"
precedence = ["attribute"]
order = ["Administrator", "Editor"]
values = {{ Administrator = "{ADMIN}", Editor = "{EDITOR}" }}
"#,
        peer.base
    );
    let d = InProcess::start(&extra);
    let scim = Scim::new(d.base("clm"), d.token("clm"));
    let role_at_app = || async {
        let users = list(&peer.base, "Users").await;
        assert_eq!(users.len(), 1, "{users:?}");
        users[0]["roleId"].clone()
    };
    // Entra's POST carries the mapped attribute under its full name; an expression
    // mapping (the guide's alternative) may send the role's name, which the role
    // rule, reading the attribute by that name, turns into the app's UUID.
    let (status, created) = scim
        .post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                   "userName": "dana@firm.example", "externalId": "e-1", "active": "True",
                   "name": {"givenName": "Dana", "familyName": "Lee"},
                   CORE_ROLE_ID: "Editor"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["roleId"], "Editor");
    wait_drained(&d).await;
    assert_eq!(role_at_app().await, EDITOR);

    // aadOptscim062020: one path-less replace keyed by the URN.
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let (status, _) = scim
        .patch(
            &path,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "value": {CORE_ROLE_ID: ADMIN}}]}),
        )
        .await;
    assert_eq!(status, 200);
    wait_drained(&d).await;
    assert_eq!(role_at_app().await, ADMIN);

    // Legacy Entra: the URN as the path.
    let (status, _) = scim
        .patch(
            &path,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "Replace", "path": CORE_ROLE_ID, "value": EDITOR}]}),
        )
        .await;
    assert_eq!(status, 200);
    wait_drained(&d).await;
    assert_eq!(role_at_app().await, EDITOR);
}

//! The organisation's identity rules through the real binary into `scim2-server`:
//! Claras-style roles from groups in privilege order with a protected Owner set by
//! hand at the app, the default role for new users, roles following group changes,
//! "no matching group keeps the current role", a manager linked once the manager
//! reaches the app, and deactivated users deleted after `delete_after` — except Owners.

use crate::common;

use std::time::{Duration, Instant};

use common::scim2::{list, scim2_server, start_peer};
use common::{InProcess, Scim, Site};
use serde_json::{Value, json};

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn role(u: &Value) -> Option<&str> {
    u["roles"]
        .as_array()?
        .iter()
        .find(|r| r["primary"] == true)
        .or_else(|| u["roles"].as_array()?.first())?["value"]
        .as_str()
}

/// Polls the app until `check` holds for its users (at most 60 s).
async fn until(d: &Site, base: &str, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let users = list(base, "Users").await;
        if check(&users) {
            return users;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never happened; users at the app: {users:#?}\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn find<'a>(users: &'a [Value], name: &str) -> &'a Value {
    users
        .iter()
        .find(|u| u["userName"] == name)
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claras_roles_manager_links_and_retention_against_scim2_server() {
    let Some(bin) = scim2_server() else { return };
    let peer = start_peer(&bin);
    let http = scim_bridge::oauth::build_client(Duration::from_secs(10)).unwrap();
    let app = |method: reqwest::Method, path: String, body: Value| {
        let http = http.clone();
        async move {
            let r = http
                .request(method, path)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Olivia was made Owner by hand in the app before SCIM was switched on.
    let (status, olivia_app) = app(
        reqwest::Method::POST,
        format!("{}/Users", peer.base),
        json!({"schemas": [CORE], "userName": "olivia@firm.example", "active": true,
               "roles": [{"value": "Owner", "primary": true}]}),
    )
    .await;
    assert_eq!(status, 201, "{olivia_app}");

    // `title = [user.emails]` cannot be a text: a user with emails is held in the
    // dead-letter queue, which keeps Grace (Ada's manager) away from the app at first.
    let extra = format!(
        r#"
[[targets]]
name = "app"
kind = "scim"
url = "{}"
timeout = "5s"
delete_after = "2s"
[targets.user_mapping]
title = "[user.emails]"
[targets.roles]
order = ["Owner", "Manager", "Adviser", "Assistant"]
default = "Adviser"
protected = ["Owner"]
[targets.roles.groups]
Owner = []
Manager = ["Claras-Managers"]
Assistant = ["Claras-Assistants"]
"#,
        peer.base
    );
    let d = InProcess::start(&extra);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let user = |name: &str, extra: Value| {
        let mut doc = json!({"schemas": [CORE, ENTERPRISE], "userName": name, "active": true,
            "name": {"givenName": name, "familyName": "Test"}});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            doc[k] = v;
        }
        doc
    };
    let mut ids = std::collections::HashMap::new();
    for (name, extra) in [
        (
            "grace@firm.example",
            json!({"emails": [{"value": "grace@firm.example", "type": "work"}]}),
        ),
        ("olivia@firm.example", json!({})),
        ("bob@firm.example", json!({})),
        ("carl@firm.example", json!({})),
    ] {
        let (status, body) = scim.post("/Users", user(name, extra)).await;
        assert_eq!(status, 201, "{body}");
        ids.insert(name, body["id"].as_str().unwrap().to_owned());
    }
    let grace = ids["grace@firm.example"].clone();
    let (status, body) = scim
        .post(
            "/Users",
            user(
                "ada@firm.example",
                json!({ ENTERPRISE: {"manager": {"value": grace}} }),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    ids.insert("ada@firm.example", body["id"].as_str().unwrap().to_owned());
    let group = |name: &str, members: &[&str]| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
            "members": members.iter().map(|m| json!({"value": ids[m]})).collect::<Vec<_>>()})
    };
    let (status, managers) = scim
        .post(
            "/Groups",
            group(
                "Claras-Managers",
                &["olivia@firm.example", "ada@firm.example"],
            ),
        )
        .await;
    assert_eq!(status, 201, "{managers}");
    let managers = managers["id"].as_str().unwrap().to_owned();
    let (status, assistants) = scim
        .post("/Groups", group("Claras-Assistants", &["bob@firm.example"]))
        .await;
    assert_eq!(status, 201, "{assistants}");
    let assistants = assistants["id"].as_str().unwrap().to_owned();

    let users = until(&d, &peer.base, "first roles", |u| {
        role(find(u, "ada@firm.example")) == Some("Manager")
            && role(find(u, "bob@firm.example")) == Some("Assistant")
            && role(find(u, "carl@firm.example")) == Some("Adviser")
    })
    .await;
    // Adopted, not duplicated, and the hand-made Owner is not lowered to Manager.
    assert_eq!(
        users
            .iter()
            .filter(|u| u["userName"] == "olivia@firm.example")
            .count(),
        1
    );
    assert_eq!(role(find(&users, "olivia@firm.example")), Some("Owner"));
    // Grace is held: Ada goes without a manager rather than with a dangling id.
    assert!(find(&users, "grace@firm.example").is_null());
    assert!(
        find(&users, "ada@firm.example")[ENTERPRISE]["manager"].is_null(),
        "{users:#?}"
    );

    // Grace's data is fixed in the IdP: she reaches the app, and Ada is delivered again
    // with her manager pointed at Grace's account there.
    let (status, body) = scim
        .patch(
            &format!("/Users/{grace}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": "emails"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let users = until(&d, &peer.base, "manager linked", |u| {
        let g = find(u, "grace@firm.example");
        !g.is_null() && find(u, "ada@firm.example")[ENTERPRISE]["manager"]["value"] == g["id"]
    })
    .await;
    assert_eq!(role(find(&users, "grace@firm.example")), Some("Adviser"));

    // Bob moves from Assistants to Managers: his role follows the groups. Ada leaves
    // Managers for no role group: she keeps Manager.
    let ops = |add: Option<&str>, remove: &str| {
        let mut o =
            vec![json!({"op": "remove", "path": format!("members[value eq \"{}\"]", ids[remove])})];
        if let Some(a) = add {
            o.push(json!({"op": "add", "path": "members", "value": [{"value": ids[a]}]}));
        }
        json!({"schemas": [PATCH], "Operations": o})
    };
    let (status, _) = scim
        .patch(
            &format!("/Groups/{assistants}"),
            ops(None, "bob@firm.example"),
        )
        .await;
    assert!(status == 200 || status == 204, "{status}");
    let (status, _) = scim
        .patch(
            &format!("/Groups/{managers}"),
            ops(Some("bob@firm.example"), "ada@firm.example"),
        )
        .await;
    assert!(status == 200 || status == 204, "{status}");
    let users = until(&d, &peer.base, "bob promoted", |u| {
        role(find(u, "bob@firm.example")) == Some("Manager")
    })
    .await;
    d.wait_drained("app").await;
    let users_after = list(&peer.base, "Users").await;
    assert_eq!(
        role(find(&users_after, "ada@firm.example")),
        Some("Manager")
    );
    assert_eq!(role(find(&users, "olivia@firm.example")), Some("Owner"));

    // Carl's role is changed by hand at the app; with no matching group he keeps it,
    // and reconciliation sees no drift in it.
    let carl_app = find(&users_after, "carl@firm.example")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app(
        reqwest::Method::PATCH,
        format!("{}/Users/{carl_app}", peer.base),
        json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "roles", "value": [{"value": "Assistant", "primary": true}]}]}),
    )
    .await;
    assert!(status == 200 || status == 204, "{status}");
    let explain = d.cli(&["explain", "ada@firm.example", "--target", "app"]);
    let text = String::from_utf8_lossy(&explain.stdout).into_owned();
    assert!(
        explain.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&explain.stderr)
    );
    assert!(
        text.contains("no rule matches") && text.contains("keeps it"),
        "{text}"
    );
    assert!(text.contains(&format!("manager {grace}")), "{text}");

    // Bob and Olivia leave the firm: both deactivated at once; after delete_after,
    // reconciliation deletes Bob's account but never the Owner's.
    for who in ["bob@firm.example", "olivia@firm.example"] {
        assert_eq!(scim.delete(&format!("/Users/{}", ids[who])).await, 204);
    }
    until(&d, &peer.base, "deactivated", |u| {
        find(u, "bob@firm.example")["active"] == false
            && find(u, "olivia@firm.example")["active"] == false
    })
    .await;
    d.wait_drained("app").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (plan, items) = d.dry_run("app");
    assert!(
        items.contains(&("delete".into(), "bob@firm.example".into())),
        "{plan:#}"
    );
    assert!(
        items.contains(&("protected".into(), "olivia@firm.example".into())),
        "{plan:#}"
    );
    assert!(
        !items.iter().any(|(_, n)| n == "carl@firm.example"),
        "carl kept his role: {plan:#}"
    );
    let out = d.cli(&["sync", "--target", "app", "--yes"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("1 deleted"), "{text}");
    let users = list(&peer.base, "Users").await;
    assert!(find(&users, "bob@firm.example").is_null(), "{users:#?}");
    assert_eq!(role(find(&users, "olivia@firm.example")), Some("Owner"));
    assert_eq!(role(find(&users, "carl@firm.example")), Some("Assistant"));
}

/// With `expand_nested`, a group at the app holds the users of the groups nested in
/// it, and a change inside a nested group reaches every group that contains it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_groups_are_flattened_when_the_target_asks() {
    let Some(bin) = scim2_server() else { return };
    let peer = start_peer(&bin);
    let extra = format!(
        "[[targets]]\nname = \"app\"\nkind = \"scim\"\nurl = \"{}\"\ntimeout = \"5s\"\nexpand_nested = true\n",
        peer.base
    );
    let d = InProcess::start(&extra);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = std::collections::HashMap::new();
    for name in ["partner", "associate", "trainee"] {
        let (status, body) = scim
            .post(
                "/Users",
                json!({"schemas": [CORE], "userName": format!("{name}@firm.example"), "active": true}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.insert(name, body["id"].as_str().unwrap().to_owned());
    }
    let group = |name: &str, members: Vec<Value>| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members});
    let (status, london) = scim
        .post(
            "/Groups",
            group(
                "Litigation-London",
                vec![json!({"value": ids["associate"]})],
            ),
        )
        .await;
    assert_eq!(status, 201, "{london}");
    let london = london["id"].as_str().unwrap().to_owned();
    let (status, lit) = scim
        .post(
            "/Groups",
            group(
                "Litigation",
                vec![
                    json!({"value": ids["partner"]}),
                    json!({"value": london, "type": "Group"}),
                ],
            ),
        )
        .await;
    assert_eq!(status, 201, "{lit}");
    d.wait_drained("app").await;

    let app_members = |groups: &[Value], users: &[Value], name: &str| -> Vec<String> {
        let g = groups
            .iter()
            .find(|g| g["displayName"] == name)
            .cloned()
            .unwrap_or(Value::Null);
        let mut out: Vec<String> = g["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let id = m["value"].as_str()?;
                let u = users.iter().find(|u| u["id"] == id)?;
                Some(u["userName"].as_str()?.split('@').next()?.to_owned())
            })
            .collect();
        out.sort();
        out
    };
    let (users, groups) = (
        list(&peer.base, "Users").await,
        list(&peer.base, "Groups").await,
    );
    assert_eq!(
        app_members(&groups, &users, "Litigation"),
        ["associate", "partner"],
        "{groups:#?}"
    );
    assert_eq!(
        app_members(&groups, &users, "Litigation-London"),
        ["associate"]
    );

    // A trainee joins the nested group: the outer group at the app gets them too.
    let (status, _) = scim
        .patch(
            &format!("/Groups/{london}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": ids["trainee"]}]}]}),
        )
        .await;
    assert!(status == 200 || status == 204, "{status}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (users, groups) = (
            list(&peer.base, "Users").await,
            list(&peer.base, "Groups").await,
        );
        if app_members(&groups, &users, "Litigation") == ["associate", "partner", "trainee"] {
            assert_eq!(
                app_members(&groups, &users, "Litigation-London"),
                ["associate", "trainee"]
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "outer group never got the trainee: {groups:#?}\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.wait_drained("app").await;
    let (plan, _) = d.dry_run("app");
    assert_eq!(
        plan["items"],
        json!([]),
        "reconciliation compares flattened members: {plan:#}"
    );
}

/// Clumio: "all users are evaluated per the rules you created". With
/// `unmatched = "reset"` a user who leaves the group a rule turns into a role loses
/// that role at the app, instead of keeping it as the other targets do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clumio_roles_come_only_from_the_rules() {
    let Some(bin) = scim2_server() else { return };
    let peer = start_peer(&bin);
    let extra = format!(
        r#"
[[targets]]
name = "app"
kind = "scim"
url = "{}"
timeout = "5s"
[targets.roles]
order = ["Super Admin", "Organizational Unit Admin", "Backup Admin"]
unmatched = "reset"
[[targets.roles.rules]]
role = "Super Admin"
member_of = ["Clumio-Admins"]
"#,
        peer.base
    );
    let d = InProcess::start(&extra);
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = std::collections::HashMap::new();
    for name in ["ann@firm.example", "ben@firm.example"] {
        let (status, body) = scim
            .post(
                "/Users",
                json!({"schemas": [CORE], "userName": name, "active": true}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.insert(name, body["id"].as_str().unwrap().to_owned());
    }
    let (status, admins) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Clumio-Admins",
                "members": [{"value": ids["ann@firm.example"]}, {"value": ids["ben@firm.example"]}]}),
        )
        .await;
    assert_eq!(status, 201, "{admins}");
    until(&d, &peer.base, "both Super Admins", |u| {
        role(find(u, "ann@firm.example")) == Some("Super Admin")
            && role(find(u, "ben@firm.example")) == Some("Super Admin")
    })
    .await;

    // Ann leaves Clumio-Admins: no rule gives her a role any more, so she has none.
    let (status, _) = scim
        .patch(
            &format!("/Groups/{}", admins["id"].as_str().unwrap()),
            json!({"schemas": [PATCH], "Operations": [{"op": "remove",
                "path": format!("members[value eq \"{}\"]", ids["ann@firm.example"])}]}),
        )
        .await;
    assert!(status == 200 || status == 204, "{status}");
    let users = until(&d, &peer.base, "ann's role removed", |u| {
        let ann = find(u, "ann@firm.example");
        !ann.is_null() && role(ann).is_none()
    })
    .await;
    assert_eq!(role(find(&users, "ben@firm.example")), Some("Super Admin"));
    d.wait_drained("app").await;
    let (plan, _) = d.dry_run("app");
    assert_eq!(plan["items"], json!([]), "{plan:#}");

    // A role given back by hand at the app is drift: the rules give Ann none.
    let ann_app = find(&users, "ann@firm.example")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = scim_bridge::oauth::build_client(Duration::from_secs(10)).unwrap();
    let r = http
        .patch(format!("{}/Users/{ann_app}", peer.base))
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "roles",
            "value": [{"value": "Super Admin", "primary": true}]}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (plan, items) = d.dry_run("app");
    assert_eq!(
        items,
        [("update".to_owned(), "ann@firm.example".to_owned())],
        "{plan:#}"
    );
    assert!(
        plan["items"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("roles: \"Super Admin\" → -"),
        "{plan:#}"
    );
    let explain = d.cli(&["explain", "ann@firm.example", "--target", "app"]);
    let text = String::from_utf8_lossy(&explain.stdout).into_owned();
    assert!(
        text.contains("roles come only from the rules")
            && text.contains("targets[0].roles.unmatched = \"reset\""),
        "{text}"
    );
}

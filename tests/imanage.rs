//! Entra-shaped SCIM traffic into the bridge, out to a strict fake iManage Work server:
//! users created, updated and disabled, an unmappable userName dead-lettered with a clear
//! reason, groups created with members, membership changed in batches, and a deleted
//! group emptied then disabled — through busy answers (429/503 with Retry-After).

mod common;

use common::fake_imanage::{self, TOKEN};
use common::{Daemon, Scim, config_text, free_port};
use serde_json::{Value, json};

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
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("imanage.token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let port = free_port();
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
    let config = dir.path().join("scim-bridge.toml");
    std::fs::write(&config, config_text(port, &dir.path().join("data"), &extra)).unwrap();
    let mut d = Daemon {
        log: dir.path().join("daemon.log"),
        dir,
        config,
        port,
        child: None,
    };
    d.spawn();
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

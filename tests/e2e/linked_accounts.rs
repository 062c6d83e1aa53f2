//! Linked accounts in use, through the real binary against the strict fake iManage
//! acting as its own authorization server (PKCE, single-use codes, rotated refresh
//! tokens, RFC 7009 revocation, per-user tokens whose calls act as that user, and
//! workspaces behind an ethical wall): a person resolves with their own rights, an
//! expired token is refreshed once under concurrent requests, a link approved by
//! someone else is refused and revoked, a person without a link is told where to link,
//! revocation reaches iManage, a deprovisioned person's link ends, and a restart keeps
//! working links.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_imanage::{self, Dms};
use common::{Daemon, Scim, config_text, free_port};
use serde_json::{Value, json};

fn ws(id: &str, name: &str, fields: Value) -> Value {
    let mut w = json!({"id": id, "name": name, "database": "ACTIVE", "wstype": "workspace"});
    for (k, v) in fields.as_object().unwrap() {
        w[k] = v.clone();
    }
    w
}

/// The daemon's config: an iManage target whose service account uses client
/// credentials at the fake, with account linking and revocation there, a vault for
/// the people's tokens, and a repository of matters.
fn daemon(host: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    for (name, value) in [
        ("vault.pass", "v".repeat(120)),
        ("client.secret", fake_imanage::CLIENT_SECRET.to_owned()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    let extra = format!(
        r#"
[vault]
passphrase = {{ file = "vault.pass" }}
memory_kib = 8192
iterations = 1

[[targets]]
name = "dms"
kind = "imanage"
url = "{host}"
timeout = "5s"
[targets.auth]
method = "client_credentials"
token_url = "{host}/auth/oauth2/token"
authorize_url = "{host}/auth/oauth2/authorize"
revoke_url = "{host}/auth/oauth2/revoke-token"
client_id = "{client}"
client_secret = {{ file = "client.secret" }}
client_auth = "client_secret_post"
scopes = ["user"]

[[repositories]]
name = "matters"
target = "dms"
workspace = "custom1=[workitem.client], custom2=[workitem.matter]"
"#,
        client = fake_imanage::CLIENT_ID
    );
    let config = dir.path().join("scim-bridge.toml");
    std::fs::write(&config, config_text(port, &dir.path().join("data"), &extra)).unwrap();
    let mut d = Daemon::unstarted(dir, config, port);
    let out = d.cli(&["vault", "init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.spawn();
    d
}

struct Rig {
    d: Daemon,
    dms: Arc<Mutex<Dms>>,
    admin: String,
    http: reqwest::Client,
}

impl Rig {
    /// Starts a link for `user` and has `approver` sign in at iManage's consent page;
    /// returns the callback's status and page.
    async fn link(&self, user: &str, approver: &str) -> (u16, String) {
        let start = format!(
            "{}?user={}",
            self.d.url("/link/dms"),
            url::form_urlencoded::byte_serialize(user.as_bytes()).collect::<String>()
        );
        let r = self
            .http
            .get(&start)
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let (state, challenge, redirect) = fake_imanage::authorize_params(&location);
        let code = fake_imanage::approve(&self.dms, approver, &challenge, &redirect);
        let r = self
            .http
            .get(format!("{redirect}?code={code}&state={state}"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn resolve(&self, user: Option<&str>, client: &str, matter: &str) -> (u16, Value) {
        let mut body = json!({"repository": "matters", "cache": false,
            "workitem": {"client": client, "matter": matter}});
        if let Some(u) = user {
            body["user"] = json!(u);
        }
        let r = self
            .http
            .post(self.d.url("/api/v1/workspaces/resolve"))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    fn revocations(&self, user: &str) -> usize {
        self.dms
            .lock()
            .unwrap()
            .revocations
            .iter()
            .filter(|(u, _)| u == user)
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_act_with_their_own_rights_through_their_linked_accounts() {
    let dms = Arc::new(Mutex::new(Dms {
        workspaces: vec![
            // Alice's matter, behind an ethical wall Bob is outside of.
            ws(
                "ACTIVE!10",
                "Smith v Jones",
                json!({"custom1": "12345", "custom2": "00001", "acl": ["ALICE@FIRM.EXAMPLE"]}),
            ),
            ws(
                "ACTIVE!11",
                "Firm precedents",
                json!({"custom1": "00000", "custom2": "00001"}),
            ),
        ],
        ..Default::default()
    }));
    dms.lock().unwrap().children.insert(
        "ACTIVE!10".into(),
        vec![
            json!({"id": "ACTIVE!F1", "name": "Correspondence", "wstype": "folder"}),
            json!({"id": "ACTIVE!501.1", "name": "Letter of claim", "wstype": "document",
                "document_number": "501", "version": "1", "extension": "docx"}),
        ],
    );
    let host = fake_imanage::start_blocking(dms.clone());
    let d = daemon(&host);
    let admin = d.admin_token();
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = std::collections::BTreeMap::new();
    for name in [
        "alice@firm.example",
        "bob@firm.example",
        "cross-check@firm.example",
    ] {
        let (status, body) = scim
            .post(
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name, "active": true,
                    "emails": [{"value": name, "primary": true}]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.insert(name, body["id"].as_str().unwrap().to_owned());
    }
    d.wait_drained("dms").await;
    let rig = Rig {
        http: scim_bridge::oauth::build_client(Duration::from_secs(30)).unwrap(),
        d,
        dms: dms.clone(),
        admin,
    };

    // Each person approves their own link.
    for user in ["alice@firm.example", "bob@firm.example"] {
        let (status, page) = rig.link(user, user).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(&format!("Linked {user} to dms")), "{page}");
    }
    // A link started for cross-check but approved at iManage by ADMIN is refused,
    // nothing is kept, and ADMIN's tokens are revoked there.
    let (status, page) = rig.link("cross-check@firm.example", "admin").await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("started for cross-check@firm.example")
            && page.contains("approved by ADMIN")
            && page.contains("revoked at the provider"),
        "{page}"
    );
    assert_eq!(rig.revocations("ADMIN"), 2, "refresh and access token");
    let out = rig.d.cli(&["link", "list", "--json"]);
    let links: Value = serde_json::from_slice(&out.stdout).unwrap();
    let linked: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["user"].as_str().unwrap())
        .collect();
    assert_eq!(linked.len(), 2, "{links}");
    assert!(!linked.contains(&"cross-check@firm.example"));

    // Alice sees her matter with her own rights; Bob, outside the wall, does not —
    // and is not served Alice's cached answer.
    let (status, body) = rig
        .resolve(Some("alice@firm.example"), "12345", "00001")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workspace_id"], "ACTIVE!10");
    assert_eq!(body["acted_as"], "alice@firm.example");
    let body_cached = json!({"repository": "matters",
        "workitem": {"client": "12345", "matter": "00001"}, "user": "bob@firm.example"});
    let r = rig
        .http
        .post(rig.d.url("/api/v1/workspaces/resolve"))
        .bearer_auth(&rig.admin)
        .json(&body_cached)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "Bob is outside the wall");
    let (status, _) = rig
        .resolve(Some("bob@firm.example"), "00000", "00001")
        .await;
    assert_eq!(status, 200, "the firm's precedents are open to all");
    {
        let acted: Vec<String> = std::mem::take(&mut rig.dms.lock().unwrap().acted_as);
        assert!(
            acted.contains(&"ALICE@FIRM.EXAMPLE".to_owned()),
            "{acted:?}"
        );
        assert!(acted.contains(&"BOB@FIRM.EXAMPLE".to_owned()), "{acted:?}");
    }

    // Folders and documents of the matter, as each person may see them.
    let get = |path: &str| rig.http.get(rig.d.url(path)).bearer_auth(&rig.admin).send();
    let r = get("/api/v1/workspaces/ACTIVE!10/documents?user=alice%40firm.example")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.unwrap();
    assert_eq!(
        listed["documents"],
        json!([{"id": "ACTIVE!501.1", "name": "Letter of claim", "document_number": "501",
            "version": "1", "extension": "docx"}])
    );
    let r = get("/api/v1/workspaces/ACTIVE!10/folders?user=alice%40firm.example")
        .await
        .unwrap();
    let listed: Value = r.json().await.unwrap();
    assert_eq!(
        listed["folders"],
        json!([{"id": "ACTIVE!F1", "name": "Correspondence"}])
    );
    for what in ["documents", "folders"] {
        let r = get(&format!(
            "/api/v1/workspaces/ACTIVE!10/{what}?user=bob%40firm.example"
        ))
        .await
        .unwrap();
        assert_eq!(
            r.status(),
            404,
            "{what}: iManage answers Bob as if it did not exist"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "no_container", "{body}");
        assert_eq!(
            body["message"],
            "iManage has no workspace or folder ACTIVE!10 that bob@firm.example may see"
        );
    }

    // Nobody named: the service account, as before.
    let (status, body) = rig.resolve(None, "12345", "00001").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["acted_as"], Value::Null);
    // A person with no link is told where to link, and nothing is searched for them.
    let (status, body) = rig
        .resolve(Some("carol@firm.example"), "12345", "00001")
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "not_linked");
    assert!(
        body["link_url"]
            .as_str()
            .unwrap()
            .ends_with("/link/dms?user=carol%40firm.example"),
        "{body}"
    );

    // iManage ends Alice's token for inactivity: eight requests at once share one
    // refresh, and the rotated refresh token is the one kept.
    let before = rig.dms.lock().unwrap().refresh_grants;
    rig.dms
        .lock()
        .unwrap()
        .expire_user_tokens("alice@firm.example");
    let results = futures_join(&rig, 8).await;
    assert!(results.iter().all(|s| *s == 200), "{results:?}");
    assert_eq!(rig.dms.lock().unwrap().refresh_grants - before, 1);
    let out = rig.d.cli(&["link", "status", "alice@firm.example"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("alice@firm.example at dms: linked")
            && !text.contains("last refreshed never"),
        "{text}"
    );

    // The command acts as the person too.
    let workitem = rig.d.dir.path().join("matter.json");
    std::fs::write(&workitem, r#"{"client": "12345", "matter": "00001"}"#).unwrap();
    let w = workitem.to_str().unwrap();
    let out = rig.d.cli(&[
        "resolve",
        "--repository",
        "matters",
        "--workitem",
        w,
        "--as",
        "alice@firm.example",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ACTIVE!10") && text.contains("as:        alice@firm.example"),
        "{text}"
    );
    let out = rig.d.cli(&[
        "resolve",
        "--repository",
        "matters",
        "--workitem",
        w,
        "--as",
        "bob@firm.example",
    ]);
    assert_eq!(out.status.code(), Some(1), "nothing visible to Bob");

    // A restart keeps working links.
    let mut rig = rig;
    rig.d.kill9();
    rig.d.spawn();
    let (status, body) = rig
        .resolve(Some("alice@firm.example"), "12345", "00001")
        .await;
    assert_eq!(status, 200, "{body}");

    // Revoking reaches iManage, and the person must link again.
    let out = rig.d.cli(&[
        "link",
        "revoke",
        "--target",
        "dms",
        "--user",
        "alice@firm.example",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("revoked at the provider"), "{text}");
    assert!(rig.revocations("ALICE@FIRM.EXAMPLE") >= 1);
    let (status, body) = rig
        .resolve(Some("alice@firm.example"), "12345", "00001")
        .await;
    assert_eq!(status, 403, "{body}");

    // Bob is deleted in the IdP: his iManage account is disabled and his link ends.
    let scim = Scim::new(rig.d.base("entra"), rig.d.token("entra"));
    assert_eq!(
        scim.delete(&format!("/Users/{}", ids["bob@firm.example"]))
            .await,
        204
    );
    rig.d.wait_drained("dms").await;
    assert!(rig.revocations("BOB@FIRM.EXAMPLE") >= 1);
    let out = rig.d.cli(&["link", "list", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!([]),
        "no links left"
    );
    assert_eq!(
        rig.dms.lock().unwrap().users["BOB@FIRM.EXAMPLE"]["allow_logon"],
        false
    );
    // No token ever reached the log.
    let log = rig.d.log_text();
    for t in rig.dms.lock().unwrap().user_refresh.keys() {
        assert!(!log.contains(t.as_str()), "a refresh token in the log");
    }
}

/// `n` resolutions as Alice at once, fresh from iManage; their statuses.
async fn futures_join(rig: &Rig, n: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let http = rig.http.clone();
        let url = rig.d.url("/api/v1/workspaces/resolve");
        let admin = rig.admin.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(admin)
                .json(
                    &json!({"repository": "matters", "cache": false, "user": "alice@firm.example",
                    "workitem": {"client": "12345", "matter": "00001"}}),
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

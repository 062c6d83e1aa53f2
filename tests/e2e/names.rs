//! Names people read, through the real binary: log lines name the user or group
//! beside its id, a successful delivery is one line at info, the ordinary wait for a
//! group's members is not logged as a failure, and an attribute no schema declares is
//! warned about once with the fix, listed by `status` and counted by name in
//! `/metrics`.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use common::fake_webhook::{self, SECRET};
use common::{Daemon, Scim, config_text, free_port};
use serde_json::{Value, json};

/// A daemon with `targets` (TOML) and the webhook signing secret beside its config.
fn daemon(targets: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = dir.path().join("scim-bridge.toml");
    std::fs::write(
        &config,
        config_text(port, &dir.path().join("data"), targets),
    )
    .unwrap();
    let mut d = Daemon::unstarted(dir, config, port);
    d.spawn();
    d
}

fn webhook(url: &str) -> String {
    format!(
        r#"
[[targets]]
name = "hooks"
kind = "webhook"
url = "{url}"
providers = ["entra"]
signing_secret = {{ file = "hook.secret" }}
timeout = "2s"
"#
    )
}

/// A SCIM target "app" at `url`.
fn scim_target(url: &str) -> String {
    format!(
        r#"
[[targets]]
name = "app"
kind = "scim"
url = "{url}"
providers = ["entra"]
timeout = "2s"
"#
    )
}

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "active": true
    })
}

/// The log's lines that contain every one of `parts`.
fn lines_with(log: &str, parts: &[&str]) -> Vec<String> {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_delivery_is_one_info_line_naming_the_user() {
    let receiver = fake_webhook::new_receiver(0.0, 1);
    let url = fake_webhook::start_blocking(receiver.clone());
    let d = daemon(&webhook(&url));
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (status, body) = scim.post("/Users", user("alice@firm.example")).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    d.wait_drained("hooks").await;
    let log = d.log_text();
    let lines = lines_with(&log, &["INFO", "delivered", "alice@firm.example"]);
    assert_eq!(lines.len(), 1, "{log}");
    for part in [
        "target_name=hooks",
        &format!("resource={id}"),
        "action=\"create\"",
        "duration_ms=",
    ] {
        assert!(lines[0].contains(part), "{part} missing: {}", lines[0]);
    }
}

/// A SCIM target that refuses the first `refuse_users` user creations with 503 and
/// takes everything else: a group sent meanwhile must wait for its member.
#[derive(Default)]
struct Fake {
    refuse_users: u32,
    /// Refuse every group with 400 (dead-lettered).
    refuse_groups: bool,
    next: u32,
}

async fn fake(
    State(f): State<Arc<Mutex<Fake>>>,
    method: Method,
    uri: Uri,
    body: String,
) -> impl IntoResponse {
    let mut f = f.lock().unwrap();
    let path = uri.path().to_owned();
    if method == Method::GET {
        let list = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []});
        return (StatusCode::OK, list.to_string());
    }
    if method == Method::POST && path.ends_with("/Users") && f.refuse_users > 0 {
        f.refuse_users -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    }
    if method == Method::POST && path.ends_with("/Groups") && f.refuse_groups {
        let err = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "detail": "groups are managed here"});
        return (StatusCode::BAD_REQUEST, err.to_string());
    }
    if method == Method::DELETE {
        return (StatusCode::NO_CONTENT, String::new());
    }
    let mut doc: Value = serde_json::from_str(&body).unwrap_or_else(|_| json!({}));
    f.next += 1;
    if method == Method::POST {
        doc["id"] = json!(format!("t{}", f.next));
    } else if let Some(id) = path.rsplit('/').next() {
        doc["id"] = json!(id);
    }
    let status = if method == Method::POST {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, doc.to_string())
}

fn start_fake(f: Arc<Mutex<Fake>>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new().fallback(fake).with_state(f);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/scim/v2", rx.recv().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_groups_members_is_not_logged_as_a_failure() {
    let f = Arc::new(Mutex::new(Fake {
        refuse_users: 2,
        ..Fake::default()
    }));
    let url = start_fake(f.clone());
    let d = daemon(&scim_target(&url));
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (status, body) = scim.post("/Users", user("bob@firm.example")).await;
    assert_eq!(status, 201, "{body}");
    let member = body["id"].as_str().unwrap().to_owned();
    let (status, body) = scim
        .post(
            "/Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Smith matter", "members": [{"value": member}]
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let s = d.wait_drained("app").await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    let log = d.log_text();
    // The user's refusals are failures; the group's wait is not.
    assert!(
        !lines_with(&log, &["delivery failed", "bob@firm.example"]).is_empty(),
        "{log}"
    );
    assert!(
        lines_with(&log, &["delivery failed", "Smith matter"]).is_empty(),
        "{log}"
    );
    let waits = lines_with(&log, &["INFO", "waits for its members", "Smith matter"]);
    assert!(!waits.is_empty(), "{log}");
    assert_eq!(
        lines_with(&log, &["INFO", "delivered", "Smith matter"]).len(),
        1,
        "{log}"
    );

    // `trace` says what each change did, with names, and why a delivery was repeated.
    let out = d.cli(&["trace", "Smith matter"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains(&format!("members added: bob@firm.example ({member})")),
        "{text}"
    );
    assert!(
        !lines_with(
            &text,
            &["sent again after:", "waiting for its own delivery"]
        )
        .is_empty(),
        "{text}"
    );
    let out = d.cli(&["trace", "bob@firm.example"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !lines_with(&text, &["sent again after:", "503"]).is_empty(),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_name_the_group() {
    let f = Arc::new(Mutex::new(Fake {
        refuse_groups: true,
        ..Fake::default()
    }));
    let url = start_fake(f.clone());
    let d = daemon(&scim_target(&url));
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (status, body) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Jones matter"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let s = d.wait_drained("app").await;
    assert_eq!(s["dead_letters"], 1, "{s}");
    let labelled = format!("Jones matter ({id})");
    let list = String::from_utf8_lossy(&d.cli(&["dlq", "list"]).stdout).into_owned();
    assert!(list.contains(&labelled), "{list}");
    let json: Value = serde_json::from_slice(&d.cli(&["dlq", "list", "--json"]).stdout).unwrap();
    assert_eq!(json[0]["name"], "Jones matter", "{json}");
    let letter = json[0]["id"].to_string();
    let show = String::from_utf8_lossy(&d.cli(&["dlq", "show", &letter]).stdout).into_owned();
    assert!(show.contains(&labelled), "{show}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_attribute_is_warned_once_with_the_fix_and_listed_by_name() {
    let d = Daemon::start("");
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    for i in 0..3 {
        let mut u = user(&format!("u{i}@firm.example"));
        u["favouriteColour"] = json!("7");
        u["dispayName"] = json!("Bob");
        let (status, body) = scim.post("/Users", u).await;
        assert_eq!(status, 201, "{body}");
    }
    let log = d.log_text();
    let warned = lines_with(&log, &["WARN", "no schema declares", "favouriteColour"]);
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        log.contains("[[providers.schemas.attributes]]\nname = \"favouriteColour\""),
        "{log}"
    );
    let typo = lines_with(&log, &["WARN", "no schema declares", "dispayName"]);
    assert_eq!(typo.len(), 1, "{log}");
    assert!(
        typo[0].contains("probably meant the declared attribute \"displayName\""),
        "{}",
        typo[0]
    );

    let out = d.cli(&["status"]);
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    let listed = lines_with(
        &status,
        &["dropped", "entra", "\"favouriteColour\"", "3 time(s)"],
    );
    assert_eq!(listed.len(), 1, "{status}");

    let metrics = common::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "scim_bridge_dropped_attributes_total{provider=\"entra\",attribute=\"favouriteColour\"} 3\n"
        ),
        "{metrics}"
    );
}

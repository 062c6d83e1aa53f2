//! Workspace resolution through the real binary against a strict fake iManage seeded
//! with duplicate titles across libraries, titles that share words, and matters by
//! client and matter number: `POST /api/v1/workspaces/resolve`, the folders listing,
//! the cache, bad input, iManage failures and the `resolve` command.

use crate::common;

use std::sync::{Arc, Mutex};

use common::InProcess;
use common::fake_imanage::{self, Dms, TOKEN};
use serde_json::{Value, json};

fn ws(id: &str, name: &str, fields: Value) -> Value {
    let mut w = json!({"id": id, "name": name, "database": id.split('!').next().unwrap(), "wstype": "workspace"});
    for (k, v) in fields.as_object().unwrap() {
        w[k] = v.clone();
    }
    w
}

fn folder(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "wstype": "folder"})
}

fn seeded() -> Dms {
    let mut d = Dms {
        workspaces: vec![
            // Shares every word of the wanted title: iManage's name search returns it first.
            ws(
                "ACTIVE!1",
                "Clio Operate Document Templates (old)",
                json!({}),
            ),
            ws("ACTIVE!2", "Clio Operate Document Templates", json!({})),
            // The same title in a library searched later.
            ws("ARCHIVE!3", "Clio Operate Document Templates", json!({})),
            ws(
                "ACTIVE!10",
                "Smith v Jones",
                json!({"custom1": "12345", "custom2": "12345.00001"}),
            ),
            ws(
                "ACTIVE!11",
                "Smith v Jones (costs)",
                json!({"custom1": "12345", "custom2": "12345.00002"}),
            ),
            ws(
                "ARCHIVE!20",
                "Old matter",
                json!({"custom1": "99999", "custom2": "99999.00001"}),
            ),
            ws("ACTIVE!30", "CASE101: John Smith vs. Jane Doe", json!({})),
        ],
        ..Default::default()
    };
    d.children.insert(
        "ACTIVE!2".into(),
        vec![
            folder("ACTIVE!F2", "Document Templates"),
            folder("ACTIVE!F3", "Email Templates"),
        ],
    );
    d.children.insert(
        "ACTIVE!10".into(),
        vec![folder("ACTIVE!F10", "Correspondence")],
    );
    d.children.insert(
        "ACTIVE!F10".into(),
        vec![
            folder("ACTIVE!F11", "Inbound"),
            folder("ACTIVE!F12", "Outbound"),
        ],
    );
    d.children
        .insert("ACTIVE!30".into(), vec![folder("ACTIVE!F30", "Documents")]);
    d.children.insert(
        "ARCHIVE!20".into(),
        vec![folder("ARCHIVE!F20", "Correspondence")],
    );
    d.children
        .insert("ARCHIVE!F20".into(), vec![folder("ARCHIVE!F21", "Inbound")]);
    d
}

struct Rig {
    d: InProcess,
    dms: Arc<Mutex<Dms>>,
    admin: String,
    http: reqwest::Client,
}

fn rig() -> Rig {
    let dms = Arc::new(Mutex::new(seeded()));
    let host = fake_imanage::start_blocking(dms.clone());
    let extra = format!(
        r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "{host}"
[targets.auth]
method = "bearer"
token = {{ file = "imanage.token" }}

[[repositories]]
name = "document-templates"
target = "dms"
workspace = "Clio Operate Document Templates"
folder = "Document Templates"

[[repositories]]
name = "matters"
target = "dms"
workspace = "custom1=[workitem.client.reference], custom2=[workitem.reference]"
folder = "Correspondence/Inbound"
libraries = ["ACTIVE", "ARCHIVE"]
[[repositories.work_types]]
name = "Instructions"
workspace = "[workitem.title | trim]"
search = "title"
folder = "Documents"
libraries = ["ACTIVE"]

[[repositories]]
name = "cases"
target = "dms"
workspace = "[workitem.title]"
"#
    );
    let d = InProcess::start_with_secrets(&extra, &[("imanage.token", TOKEN)]);
    let admin = d.admin_token();
    Rig {
        d,
        dms,
        admin,
        http: scim_bridge::oauth::build_client(std::time::Duration::from_secs(30)).unwrap(),
    }
}

impl Rig {
    async fn resolve(&self, body: Value) -> (u16, Value) {
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

    fn searches(&self) -> Vec<String> {
        std::mem::take(&mut self.dms.lock().unwrap().searches)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_resolve_by_title_and_by_fields_with_folders_and_a_cache() {
    let r = rig();

    // Default search: the exact title wins over one that shares its words, and the
    // first library with a match ends the search.
    let (status, body) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workspace_id"], "ACTIVE!2");
    assert_eq!(body["library"], "ACTIVE");
    assert_eq!(body["folder_id"], "ACTIVE!F2");
    assert_eq!(body["folder_path"], "Document Templates");
    assert_eq!(body["matched_by"], "title");
    assert_eq!(body["cached"], false);
    let searches = r.searches();
    assert_eq!(
        searches,
        [
            "ACTIVE?name=Clio Operate Document Templates&limit=500",
            "ACTIVE/ACTIVE!2/children"
        ]
    );

    // Cached: no request reaches iManage.
    let (status, again) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["cached"], true);
    assert_eq!(again["workspace_id"], "ACTIVE!2");
    assert!(r.searches().is_empty());
    // Bypassed on request: one search again.
    let (_, fresh) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}, "cache": false}))
        .await;
    assert_eq!(fresh["cached"], false);
    assert_eq!(
        r.searches().len(),
        1,
        "the folder listing is cached separately"
    );

    // Advanced search by client and matter number, nested folder.
    let matter = json!({"repository": "matters", "workitem": {"client": {"reference": 12345}, "reference": "12345.00001"}, "explain": true});
    let (status, body) = r.resolve(matter).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workspace_id"], "ACTIVE!10");
    assert_eq!(body["folder_id"], "ACTIVE!F11");
    assert_eq!(body["folder_path"], "Correspondence/Inbound");
    assert_eq!(body["matched_by"], "fields");
    assert_eq!(body["query"], "custom1=\"12345\", custom2=\"12345.00001\"");
    assert_eq!(body["requests"].as_array().unwrap().len(), 3, "{body}");
    let searches = r.searches();
    assert_eq!(
        searches[0],
        "ACTIVE?custom1=12345&custom2=12345.00001&limit=500"
    );
    assert_eq!(searches.len(), 3);

    // Only in the second library: exactly one search per library until it matches.
    let (status, body) = r
        .resolve(json!({"repository": "matters", "workitem": {"client": {"reference": "99999"}, "reference": "99999.00001"}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workspace_id"], "ARCHIVE!20");
    assert_eq!(body["folder_id"], "ARCHIVE!F21");
    let searches: Vec<String> = r
        .searches()
        .into_iter()
        .filter(|s| s.contains('?'))
        .collect();
    assert_eq!(
        searches,
        [
            "ACTIVE?custom1=99999&custom2=99999.00001&limit=500",
            "ARCHIVE?custom1=99999&custom2=99999.00001&limit=500"
        ]
    );

    // A work type's own search: the title from the workitem, trimmed.
    let (status, body) = r
        .resolve(json!({"repository": "MATTERS", "work_type": "instructions",
            "workitem": {"title": "  CASE101: John Smith vs. Jane Doe "}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workspace_id"], "ACTIVE!30");
    assert_eq!(body["folder_id"], "ACTIVE!F30");

    // A matching workspace without the configured folder: 404 naming what is there.
    let (status, body) = r
        .resolve(json!({"repository": "matters", "workitem": {"client": {"reference": "12345"}, "reference": "12345.00002"}}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "no_folder");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("ACTIVE!11 has no folder \"Correspondence\""),
        "{body}"
    );

    // Folders of a workspace, and of a folder by path.
    let list = |path: &str| r.http.get(r.d.url(path)).bearer_auth(&r.admin).send();
    let top: Value = list("/api/v1/workspaces/ACTIVE!10/folders")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        top["folders"],
        json!([{"id": "ACTIVE!F10", "name": "Correspondence"}])
    );
    let inner: Value = list("/api/v1/workspaces/ACTIVE!10/folders?path=correspondence")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inner["folders"][1]["name"], "Outbound");
    let bad = list("/api/v1/workspaces/1002/folders").await.unwrap();
    assert_eq!(bad.status(), 422);

    // /metrics counts resolutions by configured repository and outcome.
    let metrics = common::get(r.d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "scim_bridge_workspace_resolutions_total{repository=\"document-templates\",outcome=\"cached\"} 1",
        "scim_bridge_workspace_resolutions_total{repository=\"document-templates\",outcome=\"searched\"} 2",
        "scim_bridge_workspace_resolutions_total{repository=\"matters\",outcome=\"no_folder\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_search() {
    let r = rig();
    r.searches();

    // A missing value names the path; nothing is searched with an empty value.
    for workitem in [
        json!({"reference": "12345.00001"}),
        json!({"client": {"reference": "  "}, "reference": "12345.00001"}),
        json!({"client": {"reference": null}, "reference": "12345.00001"}),
    ] {
        let (status, body) = r
            .resolve(json!({"repository": "matters", "workitem": workitem}))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"], "missing_value");
        assert_eq!(body["path"], "workitem.client.reference");
    }
    let (status, body) = r
        .resolve(json!({"repository": "matters", "workitem": {"client": {"reference": {"a": 1}}, "reference": "1"}}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("not_a_value")),
        "{body}"
    );
    let (status, body) = r
        .resolve(json!({"repository": "matters", "workitem": "12345"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("bad_workitem")),
        "{body}"
    );
    assert!(r.searches().is_empty());

    // Injection attempts stay one value each and so match nothing.
    for evil in [
        "12345&custom2=12345.00001",
        "12345]",
        "12345\ncustom2=x",
        "12345%26custom2%3D1",
    ] {
        let (status, body) = r
            .resolve(json!({"repository": "matters", "workitem": {"client": {"reference": evil}, "reference": "12345.00001"}}))
            .await;
        assert_eq!(status, 404, "{evil}: {body}");
        assert_eq!(body["error"], "no_workspace");
        assert_eq!(body["libraries"], json!(["ACTIVE", "ARCHIVE"]));
        let searches = r.searches();
        assert_eq!(searches.len(), 2, "{searches:?}");
        assert!(
            searches[0].starts_with(&format!("ACTIVE?custom1={evil}&custom2=12345.00001&")),
            "{searches:?}"
        );
    }

    // A title search that matches by words only is still not a match.
    let (status, body) = r
        .resolve(json!({"repository": "cases", "workitem": {"title": "John Smith"}}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("title \"John Smith\""),
        "{body}"
    );

    // Unknown repository: 404 naming the known ones.
    let (status, body) = r
        .resolve(json!({"repository": "nope", "workitem": {}}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["known"],
        json!(["document-templates", "matters", "cases"])
    );
    let metrics = common::get(r.d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "scim_bridge_workspace_resolutions_total{repository=\"(unknown)\",outcome=\"unknown_repository\"} 1",
        "scim_bridge_workspace_resolutions_total{repository=\"matters\",outcome=\"missing_value\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    // Not JSON, no repository.
    let resp = r
        .http
        .post(r.d.url("/api/v1/workspaces/resolve"))
        .bearer_auth(&r.admin)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (status, _) = r.resolve(json!({"workitem": {}})).await;
    assert_eq!(status, 400);

    // SCIM tokens and no token do not open the admin API.
    let scim = r.d.token("entra");
    for auth in [Some(scim.as_str()), None] {
        let mut req = r
            .http
            .post(r.d.url("/api/v1/workspaces/resolve"))
            .json(&json!({"repository": "cases", "workitem": {"title": "x"}}));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imanage_failures_paging_and_the_command() {
    let r = rig();

    // iManage failing: 502 with its error, and nothing stale is cached afterwards.
    r.dms.lock().unwrap().fail_searches = Some(503);
    let (status, body) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}}))
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("NRC_INTERNAL: search index unavailable"),
        "{body}"
    );
    r.dms.lock().unwrap().fail_searches = None;
    let (status, body) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}}))
        .await;
    assert_eq!(
        (status, body["cached"].as_bool()),
        (200, Some(false)),
        "{body}"
    );

    // Pages of one: the word match comes first and is skipped; the cursor finds the
    // exact title on the next page.
    r.dms.lock().unwrap().page_cap = 1;
    r.searches();
    let (status, body) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}, "cache": false}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workspace_id"], "ACTIVE!2");
    let searches = r.searches();
    assert_eq!(searches.len(), 2, "{searches:?}");
    assert!(searches[1].ends_with("&cursor=c1"), "{searches:?}");
    // Without cursors, full pages are followed by offset.
    r.dms.lock().unwrap().no_cursor = true;
    r.dms.lock().unwrap().page_cap = 500;
    let mut many = seeded();
    for i in 0..600 {
        many.workspaces.insert(
            0,
            ws(
                &format!("ACTIVE!{}", 5000 + i),
                "Clio Operate Document Templates draft",
                json!({}),
            ),
        );
    }
    r.dms.lock().unwrap().workspaces = many.workspaces;
    let (status, body) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}, "cache": false}))
        .await;
    assert_eq!(
        (status, body["workspace_id"].as_str()),
        (200, Some("ACTIVE!2")),
        "{body}"
    );
    let searches: Vec<String> = r
        .searches()
        .into_iter()
        .filter(|s| s.contains('?'))
        .collect();
    assert_eq!(searches.len(), 2, "{searches:?}");
    assert!(searches[1].ends_with("&offset=500"), "{searches:?}");
    r.dms.lock().unwrap().page_cap = 0;

    // A failed fresh resolution drops the cached answer: the next one searches again.
    let (_, cached) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}}))
        .await;
    assert_eq!(cached["cached"], true);
    r.dms.lock().unwrap().fail_searches = Some(500);
    let (status, _) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}, "cache": false}))
        .await;
    assert_eq!(status, 502);
    r.dms.lock().unwrap().fail_searches = None;
    let (_, after) = r
        .resolve(json!({"repository": "document-templates", "workitem": {}}))
        .await;
    assert_eq!(after["cached"], false, "{after}");

    // The command: the search, the requests and the answer.
    let wi = r.d.dir.path().join("workitem.json");
    std::fs::write(
        &wi,
        r#"{"client": {"reference": "12345"}, "reference": "12345.00001"}"#,
    )
    .unwrap();
    let out = r.d.cli(&[
        "resolve",
        "--repository",
        "matters",
        "--workitem",
        wi.to_str().unwrap(),
        "--explain",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("search:    custom1=\"12345\", custom2=\"12345.00001\" (fields search)"),
        "{stdout}"
    );
    assert!(stdout.contains("request:   GET http://"), "{stdout}");
    assert!(
        stdout.contains("workspace: ACTIVE!10 \"Smith v Jones\" in ACTIVE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("folder:    ACTIVE!F11 \"Correspondence/Inbound\""),
        "{stdout}"
    );
    std::fs::write(&wi, r#"{"reference": "1"}"#).unwrap();
    let out = r.d.cli(&[
        "resolve",
        "--repository",
        "matters",
        "--workitem",
        wi.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("workitem.client.reference"));
}

//! RFC 7644 behaviour over HTTP that the IdP replays do not cover: custom schemas,
//! bulk, ETags, sorting, errors and limits.

use crate::common;

use common::{Daemon, InProcess, Scim};
use serde_json::{Value, json};

const DILITRUST: &str = "urn:ietf:params:scim:schemas:extension:dilitrust:2.0:User";
const ROLE_A: &str = "0b8e7f4c-3f2a-4d6e-9c1b-2a5d8e7f6a10";

fn dilitrust_provider() -> String {
    format!(
        r#"
[[providers]]
name = "dilitrust"
dialect = "strict"

[[providers.schemas]]
id = "{DILITRUST}"
name = "DiliTrust User"
[[providers.schemas.attributes]]
name = "roleId"
case_exact = true
description = "DiliTrust role identifier"
canonical_values = ["{ROLE_A}", "6f1d2c3b-4a5e-4f70-8b9c-0d1e2f3a4b5c"]
"#
    )
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
}

#[tokio::test]
async fn custom_schema_is_published_validated_and_stored() {
    let d = InProcess::start(&dilitrust_provider());
    let scim = Scim::new(d.base("dilitrust"), d.token("dilitrust"));
    let (s, schema) = scim.get(&format!("/Schemas/{DILITRUST}")).await;
    assert_eq!(s, 200, "{schema}");
    assert_eq!(schema["attributes"][0]["name"], "roleId");
    assert_eq!(schema["attributes"][0]["canonicalValues"][0], ROLE_A);
    let (_, rt) = scim.get("/ResourceTypes/User").await;
    assert!(rt.to_string().contains(DILITRUST), "{rt}");

    let mut u = user("dana@firm.example");
    u["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", DILITRUST]);
    u[DILITRUST] = json!({"roleId": ROLE_A});
    let (s, created) = scim.post("/Users", u.clone()).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created[DILITRUST]["roleId"], ROLE_A);
    let filter = format!("/Users?filter={DILITRUST}:roleId%20eq%20%22{ROLE_A}%22");
    assert_eq!(scim.get(&filter).await.1["totalResults"], 1);

    u["userName"] = json!("erin@firm.example");
    u[DILITRUST] = json!({"roleId": "not-a-role"});
    let (s, err) = scim.post("/Users", u).await;
    assert_eq!(s, 400, "a value outside canonicalValues is refused: {err}");

    // Other providers do not see the extension.
    let entra = Scim::new(d.base("entra"), d.token("entra"));
    assert_eq!(entra.get(&format!("/Schemas/{DILITRUST}")).await.0, 404);
}

#[tokio::test]
async fn bulk_with_bulk_id_references_and_fail_on_errors() {
    let d = InProcess::start("");
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (_, spc) = scim.get("/ServiceProviderConfig").await;
    assert_eq!(spc["bulk"]["supported"], true);
    assert_eq!(spc["bulk"]["maxOperations"], 1000);
    // The group refers to a user created later in the same request.
    let (s, out) = scim
        .post(
            "/Bulk",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Groups", "bulkId": "g1",
                     "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Bulk", "members": [{"value": "bulkId:u1", "type": "User"}]}},
                    {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("bulk@firm.example")},
                    {"method": "POST", "path": "/Users", "bulkId": "u2", "data": user("BULK@firm.example")},
                    {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]}}
                ]
            }),
        )
        .await;
    assert_eq!(s, 200, "{out}");
    let ops = out["Operations"].as_array().unwrap();
    let statuses: Vec<_> = ops
        .iter()
        .map(|o| o["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, vec!["201", "201", "409", "200"], "{out}");
    let gid = ops[0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let uid = ops[1]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (_, g) = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(g["members"][0]["value"], json!(uid));
    assert_eq!(ops[2]["response"]["scimType"], "uniqueness");

    // failOnErrors stops after the first failure.
    let (_, out) = scim
        .post(
            "/Bulk",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "failOnErrors": 1,
                "Operations": [
                    {"method": "DELETE", "path": "/Users/does-not-exist"},
                    {"method": "POST", "path": "/Users", "bulkId": "x", "data": user("never@firm.example")}
                ]
            }),
        )
        .await;
    assert_eq!(out["Operations"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(
        scim.get("/Users?filter=userName+eq+%22never@firm.example%22")
            .await
            .1["totalResults"],
        0
    );
}

/// A few /Bulk requests are processed at a time and the rest wait their turn
/// (memory: each holds its parsed operations); waiting ones are answered in full,
/// none refused or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bulk_requests_queue_and_all_complete() {
    let d = InProcess::start("");
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let requests = (0..24).map(|r| {
        let ops: Vec<Value> = (0..20)
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                       "data": user(&format!("bulk{r}-{i}@firm.example"))})
            })
            .collect();
        let scim = &scim;
        async move {
            scim.post(
                "/Bulk",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                       "Operations": ops}),
            )
            .await
        }
    });
    for (s, out) in futures_util::future::join_all(requests).await {
        assert_eq!(s, 200, "{out}");
        let ops = out["Operations"].as_array().unwrap();
        assert_eq!(ops.len(), 20, "{out}");
        assert!(ops.iter().all(|o| o["status"] == "201"), "{out}");
    }
    assert_eq!(scim.get("/Users?count=0").await.1["totalResults"], 480);
}

#[tokio::test]
async fn etags_sorting_projection_and_errors() {
    let d = InProcess::start("");
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (s, headers, created) = scim
        .req(reqwest::Method::POST, "/Users", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "zed", "name": {"familyName": "Zed"}})))
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        headers["etag"],
        created["meta"]["version"].as_str().unwrap()
    );
    assert_eq!(
        headers["location"],
        created["meta"]["location"].as_str().unwrap()
    );
    assert_eq!(headers["content-type"], "application/scim+json");
    let id = created["id"].as_str().unwrap();
    for n in ["amy", "Bob", "carl"] {
        scim.post("/Users", user(n)).await;
    }

    // If-Match: stale → 412, current → 200.
    let stale = scim
        .http
        .put(format!("{}/Users/{id}", scim.base))
        .bearer_auth(&scim.token)
        .header("if-match", "W/\"999\"")
        .header("content-type", "application/json")
        .body(user("zed").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let ok = scim
        .http
        .put(format!("{}/Users/{id}", scim.base))
        .bearer_auth(&scim.token)
        .header("if-match", created["meta"]["version"].as_str().unwrap())
        .header("content-type", "application/json")
        .body(user("zed").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let (_, sorted) = scim
        .get("/Users?sortBy=userName&sortOrder=descending&attributes=userName")
        .await;
    let names: Vec<_> = sorted["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        vec!["zed", "carl", "Bob", "amy"],
        "case-insensitive sort"
    );
    assert!(sorted["Resources"][0].get("meta").is_none());
    let (_, ex) = scim
        .get(&format!("/Users/{id}?excludedAttributes=meta,name"))
        .await;
    assert!(ex.get("meta").is_none() && ex.get("name").is_none() && ex["userName"] == "zed");

    // Errors: bad JSON, wrong method, deep filter, bad filter, oversized body, wrong media type.
    let raw = |method: reqwest::Method, path: &str, body: &str, ct: &str| {
        scim.http
            .request(method, format!("{}{path}", scim.base))
            .bearer_auth(&scim.token)
            .header("content-type", ct.to_owned())
            .body(body.to_owned())
            .send()
    };
    let r = raw(
        reqwest::Method::POST,
        "/Users",
        "{\"userName\": ",
        "application/scim+json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["scimType"], "invalidSyntax");
    assert_eq!(e["status"], "400");
    let r = raw(reqwest::Method::DELETE, "/Users", "", "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let deep = format!(
        "{}userName eq \"a\"{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let (s, e) = scim
        .post("/Users/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": deep}))
        .await;
    assert_eq!(s, 400, "{e}");
    let nested = format!("{}userName eq \"a\"{}", "(".repeat(200), ")".repeat(200));
    let (s, e) = scim
        .post("/Users/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": nested}))
        .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["scimType"], "invalidFilter");
    let (s, e) = scim.get("/Users?filter=userName%20zz%20%22a%22").await;
    assert_eq!((s, e["scimType"].as_str()), (400, Some("invalidFilter")));
    let big = format!("{{\"userName\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let r = raw(
        reqwest::Method::POST,
        "/Users",
        &big,
        "application/scim+json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["status"], "413");
    let r = raw(
        reqwest::Method::POST,
        "/Users",
        "userName=x",
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 415);

    // The path's parameters: an unknown resource type, an id that is not UTF-8 once
    // decoded, and a percent-encoded id that is one (found by its decoded form).
    let (s, e) = scim.get("/Widgets").await;
    assert_eq!(s, 404, "{e}");
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("use /Users or /Groups"),
        "{e}"
    );
    let (s, headers, e) = scim.req(reqwest::Method::GET, "/Users/%FF%FE", None).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(headers["content-type"], "application/scim+json");
    assert_eq!(e["status"], "400");
    assert!(e["detail"].as_str().unwrap().contains("not UTF-8"), "{e}");
    let encoded = id.replace('-', "%2D");
    let (s, found) = scim.get(&format!("/Users/{encoded}")).await;
    assert_eq!((s, found["id"].as_str()), (200, Some(id)), "{found}");

    // Health and readiness.
    let ready: Value = common::get(d.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"]["migrations_current"], true);
    assert!(ready["database"]["change_events"].as_i64().unwrap() >= 5);
    assert_eq!(common::get(d.url("/healthz")).await.unwrap().status(), 200);
}

/// A daemon, stopped after an okta group "Everyone" (with the attributes of `extra`)
/// was created through it, for a test to write members into its database; its client
/// and the group's id.
async fn stopped_with_group(extra: Value) -> (Daemon, Scim, String) {
    let mut d = Daemon::start("");
    let scim = Scim::new(d.base("okta"), d.token("okta"));
    let mut body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Everyone"});
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let (s, g) = scim.post("/Groups", body).await;
    assert_eq!(s, 201);
    let gid = g["id"].as_str().unwrap().to_owned();
    d.terminate();
    (d, scim, gid)
}

/// SQL inserting `n` users of provider okta, user `i` with the id SQL expression `id`
/// and userName `m{i}`: tests of large groups write them straight into the database.
fn okta_users_sql(n: usize, id: &str) -> String {
    format!(
        r#"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
           INSERT INTO resources (provider, kind, id, version, created, last_modified, user_name_ci, doc)
           SELECT 'okta', 'User', {id}, 1,
                  '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'm' || i,
                  '{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"m' || i || '"}}'
           FROM n;"#,
        last = n - 1
    )
}

#[tokio::test]
async fn a_group_with_100k_members_is_read_and_patched() {
    // Members must be users of the provider. 100,000 of them are written straight into
    // the database file: through the API they would take minutes in a debug build.
    let (mut d, scim, gid) = stopped_with_group(json!({})).await;
    rusqlite::Connection::open(d.dir.path().join("data/scim-bridge.db"))
        .unwrap()
        .execute_batch(&okta_users_sql(
            100_000,
            "'m-' || (i / 1000) || '-' || (i % 1000)",
        ))
        .unwrap();
    d.spawn();
    // A new client: the old one's keep-alive connection went with the old daemon.
    let scim = Scim::new(d.base("okta"), scim.token.clone());
    for chunk in 0..100 {
        let members: Vec<Value> = (0..1000)
            .map(|i| json!({"value": format!("m-{chunk}-{i}")}))
            .collect();
        let (s, _) = scim
            .patch(&format!("/Groups/{gid}"), json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": members}]}))
            .await;
        assert_eq!(s, 204);
    }
    let (s, lean) = scim
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    assert_eq!(s, 200);
    assert!(lean.get("members").is_none());
    let (s, full) = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(s, 200);
    assert_eq!(full["members"].as_array().unwrap().len(), 100_000);
    let (s, _) = scim
        .patch(&format!("/Groups/{gid}"), json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove", "path": "members[value eq \"m-5-5\"]"}]}))
        .await;
    assert_eq!(s, 204);
    let (_, full) = scim.get(&format!("/Groups/{gid}?attributes=members")).await;
    assert_eq!(full["members"].as_array().unwrap().len(), 99_999);
}

/// A large group's members are sent as they are read from the store (#23): the answer
/// is chunked, its first chunk is the text before the members (so the body was not
/// built whole first), and the bytes are what serde_json writes for the whole
/// document, with projections, in lists, and with the ETag and Location headers.
#[tokio::test]
async fn a_large_group_is_streamed_byte_for_byte() {
    const N: usize = 50_000;
    // Written straight into the database file, as in the 100k test above.
    let (mut d, scim, gid) = stopped_with_group(json!({"externalId": "all"})).await;
    rusqlite::Connection::open(d.dir.path().join("data/scim-bridge.db"))
        .unwrap()
        .execute_batch(&format!(
            r#"{users}
               WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
               INSERT INTO group_members (group_seq, member_id, member_type, display, pos)
               SELECT (SELECT seq FROM resources WHERE id = '{gid}'), 'm-' || i, 'User',
                      CASE WHEN i % 2 = 0 THEN 'Member "' || i || '"' END, i
               FROM n;"#,
            users = okta_users_sql(N, "'m-' || i"),
            last = N - 1
        ))
        .unwrap();
    d.spawn();
    let scim = Scim::new(d.base("okta"), scim.token.clone());
    let (s, headers, lean) = scim
        .req(
            reqwest::Method::GET,
            &format!("/Groups/{gid}?excludedAttributes=members"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let member = |i: usize| {
        let mut m = json!({
            "value": format!("m-{i}"),
            "$ref": format!("{}/Users/m-{i}", scim.base),
            "type": "User",
        });
        if i.is_multiple_of(2) {
            m["display"] = json!(format!("Member \"{i}\""));
        }
        m
    };
    let members: Vec<Value> = (0..N).map(member).collect();
    let mut whole = serde_json::Map::new();
    for (k, v) in lean.as_object().unwrap() {
        if k == "meta" {
            whole.insert("members".into(), Value::Array(members.clone()));
        }
        whole.insert(k.clone(), v.clone());
    }
    let whole = Value::Object(whole);
    let only = |keys: &[&str]| -> Value {
        let mut o = serde_json::Map::new();
        for (k, v) in whole.as_object().unwrap() {
            if keys.contains(&k.as_str()) {
                o.insert(k.clone(), v.clone());
            }
        }
        Value::Object(o)
    };
    let values_only = {
        let mut g = only(&["schemas", "id"]);
        g["members"] = Value::Array((0..N).map(|i| json!({"value": format!("m-{i}")})).collect());
        g
    };
    let list = |g: &Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1, "Resources": [g]});
    let filter = "filter=displayName%20eq%20%22Everyone%22";
    let cases = [
        (format!("/Groups/{gid}"), whole.clone()),
        (
            format!("/Groups/{gid}?attributes=members.value"),
            values_only.clone(),
        ),
        (
            format!("/Groups/{gid}?attributes=displayName,members"),
            only(&["schemas", "id", "displayName", "members"]),
        ),
        (
            format!("/Groups/{gid}?excludedAttributes=meta,externalId"),
            {
                let mut g = whole.clone();
                g.as_object_mut()
                    .unwrap()
                    .retain(|k, _| k != "meta" && k != "externalId");
                g
            },
        ),
        (format!("/Groups?{filter}"), list(&whole)),
        (
            format!("/Groups?{filter}&attributes=members.value"),
            list(&values_only),
        ),
        ("/Groups".to_owned(), list(&whole)),
    ];
    for (path, want) in cases {
        let resp = scim
            .http
            .get(format!("{}{path}", scim.base))
            .bearer_auth(&scim.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.content_length().is_none(), "{path}: not sent whole");
        assert_eq!(
            resp.headers()["content-type"],
            "application/scim+json",
            "{path}"
        );
        if path.starts_with("/Groups/") {
            assert_eq!(resp.headers().get("etag"), headers.get("etag"), "{path}");
            let location = want.get("meta").and(headers.get("location"));
            assert_eq!(resp.headers().get("location"), location, "{path}");
        }
        let mut resp = resp;
        let mut body = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = resp.chunk().await.unwrap() {
            if chunks == 0 {
                assert!(
                    chunk.len() < 4096,
                    "{path}: the first chunk is the text before the members, {} bytes",
                    chunk.len()
                );
            }
            chunks += 1;
            body.extend_from_slice(&chunk);
        }
        assert!(chunks >= N / 1000, "{path}: {chunks} chunks");
        let got: Value = serde_json::from_slice(&body).unwrap();
        assert!(got == want, "{path}: not the document rendered whole");
        assert!(
            body == want.to_string().as_bytes(),
            "{path}: not the bytes serde_json writes for it"
        );
    }
}

/// A tenant URL pasted with a trailing slash makes clients send `…/entra//Users`; others
/// add a trailing slash. Both reach the endpoint they obviously mean (#18 item 14).
#[tokio::test]
async fn trailing_and_repeated_slashes_reach_the_same_endpoint() {
    let d = InProcess::start("");
    let token = d.token("entra");
    let scim = Scim::new(d.base("entra"), token.clone());
    let (s, u) = scim.post("/Users/", user("slash.user")).await;
    assert_eq!(s, 201, "{u}");
    let id = u["id"].as_str().unwrap().to_owned();
    // meta.location stays canonical whatever the request looked like.
    assert_eq!(
        u["meta"]["location"],
        format!("{}/Users/{id}", d.base("entra"))
    );
    for path in [
        "/Users/".to_owned(),
        "//Users".to_owned(),
        "/Users//".to_owned(),
        format!("/Users/{id}/"),
        format!("//Users//{id}"),
    ] {
        let (s, body) = scim.get(&path).await;
        assert_eq!(s, 200, "GET {path}: {body}");
    }
    let (s, list) = scim
        .get("/Users/?filter=userName%20eq%20%22slash.user%22")
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["totalResults"], 1, "{list}");
    // The tenant URL itself pasted with a trailing slash.
    let pasted = Scim::new(format!("{}/", d.base("entra")), token);
    let (s, body) = pasted.get("/Users").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        pasted
            .patch(
                &format!("/Users/{id}/"),
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]
                })
            )
            .await
            .0,
        200
    );
    assert_eq!(pasted.delete(&format!("/Users/{id}/")).await, 204);
}

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn patch_ops(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// #18 item 5: look-alike userNames (case folding, NFC/NFD, full width, surrounding
/// spaces) are one name, in every dialect; control and format characters, blank and
/// overlong names are refused with invalidValue naming the code point, whatever the
/// request form (POST, PUT, PATCH with and without path, Bulk).
#[tokio::test]
async fn look_alike_user_names_are_one_user_and_invisible_characters_are_refused() {
    let d = InProcess::start("[[providers]]\nname = \"plain\"\ndialect = \"strict\"\n");
    for provider in ["entra", "okta", "plain"] {
        let scim = Scim::new(d.base(provider), d.token(provider));
        let (s, strasse) = scim.post("/Users", user("straße@firm.example")).await;
        assert_eq!(s, 201, "{provider}: {strasse}");
        let (s, alice) = scim.post("/Users", user("alice@firm.example ")).await;
        assert_eq!(s, 201, "{provider}: {alice}");
        assert_eq!(alice["userName"], "alice@firm.example ", "stored as sent");
        let (s, _) = scim.post("/Users", user("\u{e9}lodie@firm.example")).await;
        assert_eq!(s, 201);
        for same in [
            "STRASSE@firm.example",
            "Strasse@Firm.Example",
            "ＳＴＲＡＳＳＥ@firm.example",
            "straße@firm.example\u{3000}",
            "alice@firm.example",
            " ALICE@FIRM.EXAMPLE",
            "e\u{301}lodie@firm.example",
            "\u{c9}LODIE@firm.example",
        ] {
            let (s, e) = scim.post("/Users", user(same)).await;
            assert_eq!(s, 409, "{provider}: {same:?} is a look-alike: {e}");
            assert_eq!(e["scimType"], "uniqueness");
        }
        // Lookups find the one user by any spelling, as uniqueness sees it.
        let (_, found) = scim
            .get("/Users?filter=userName%20eq%20%22STRASSE@FIRM.EXAMPLE%22")
            .await;
        assert_eq!(found["totalResults"], 1, "{found}");
        assert_eq!(found["Resources"][0]["id"], strasse["id"]);
        // A rename onto a look-alike is a conflict too.
        let path = format!("/Users/{}", alice["id"].as_str().unwrap());
        let (s, _) = scim
            .patch(
                &path,
                patch_ops(
                    json!([{"op": "replace", "path": "userName", "value": "Straße@firm.example"}]),
                ),
            )
            .await;
        assert_eq!(s, 409, "{provider}");

        let long = "a".repeat(100_000);
        for (bad, says) in [
            ("al\u{0}ice@firm.example", "U+0000"),
            ("ali\u{200d}ce@firm.example", "U+200D"),
            ("\u{feff}alice@firm.example", "U+FEFF"),
            ("alice@firm.example\u{202e}", "U+202E"),
            ("al\u{200b}ice@firm.example", "U+200B"),
            ("   ", "empty or only white space"),
            (long.as_str(), "100000 characters long"),
        ] {
            let (s, e) = scim.post("/Users", user(bad)).await;
            assert_eq!(s, 400, "{provider}: {says}: {e}");
            assert_eq!(e["scimType"], "invalidValue");
            assert!(e["detail"].as_str().unwrap().contains(says), "{e}");
        }
        let refused = |(s, e): (u16, Value)| {
            assert_eq!(s, 400, "{provider}: {e}");
            assert!(e["detail"].as_str().unwrap().contains("U+200B"), "{e}");
        };
        let mut put = user("alice\u{200b}@firm.example");
        put["id"] = alice["id"].clone();
        refused(scim.put(&path, put).await);
        refused(
            scim.patch(
                &path,
                patch_ops(json!([{"op": "replace", "path": "userName", "value": "a\u{200b}"}])),
            )
            .await,
        );
        refused(
            scim.patch(
                &path,
                patch_ops(json!([{"op": "replace", "value": {"userName": "a\u{200b}"}}])),
            )
            .await,
        );
        let (s, bulk) = scim
            .post(
                "/Bulk",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                       "Operations": [{"method": "POST", "path": "/Users", "bulkId": "b",
                                       "data": user("bo\u{200b}b@firm.example")}]}),
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(bulk["Operations"][0]["status"], "400", "{bulk}");
        assert!(
            bulk["Operations"][0]["response"]["detail"]
                .as_str()
                .unwrap()
                .contains("U+200B")
        );
    }
}

fn group(name: &str, members: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})
}

/// #18 item 6: every member a group gets must name a User or Group of the same
/// provider (of the type it says, never the group itself); removing one that is not
/// there stays harmless, and Bulk may refer to what it creates by bulkId.
#[tokio::test]
async fn members_must_name_users_and_groups_of_the_provider() {
    let d = InProcess::start("");
    let entra = Scim::new(d.base("entra"), d.token("entra"));
    let okta = Scim::new(d.base("okta"), d.token("okta"));
    let (_, ann) = entra.post("/Users", user("ann@firm.example")).await;
    let ann = ann["id"].as_str().unwrap().to_owned();
    let (_, olaf) = okta.post("/Users", user("olaf@firm.example")).await;
    let olaf = olaf["id"].as_str().unwrap().to_owned();
    let (s, g) = entra
        .post("/Groups", group("Litigation", json!([{"value": ann}])))
        .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{gid}");
    let members = || async {
        let (_, g) = entra.get(&path).await;
        g["members"]
            .as_array()
            .map(|m| m.iter().map(|m| m["value"].clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let refused = |(s, e): (u16, Value), says: &str| {
        assert_eq!(s, 400, "{says}: {e}");
        assert_eq!(e["scimType"], "invalidValue", "{e}");
        let detail = e["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{detail} should say {says}");
    };

    let ghosts: Vec<Value> = (0..15_000)
        .map(|i| json!({"value": format!("ghost-{i}")}))
        .collect();
    refused(
        entra
            .patch(
                &path,
                patch_ops(json!([{"op": "add", "path": "members", "value": ghosts}])),
            )
            .await,
        "group \"Litigation\": 15000 member values name no User or Group of this provider: \"ghost-0\", \"ghost-1\", \"ghost-2\", \"ghost-3\", \"ghost-4\" and 14995 more",
    );
    refused(
        entra
            .patch(
                &path,
                patch_ops(json!([{"op": "Add", "path": "members", "value": [{"value": olaf}]}])),
            )
            .await,
        &format!("member \"{olaf}\" names no User or Group of this provider"),
    );
    refused(
        entra
            .patch(
                &path,
                patch_ops(json!([{"op": "add", "path": "members", "value": [ann]}])),
            )
            .await,
        "is a bare string",
    );
    refused(
        entra
            .patch(&path, patch_ops(json!([{"op": "add", "path": "members", "value": [{"value": ann, "type": "Group"}]}])))
            .await,
        "is a User, but its type says \"Group\"",
    );
    refused(
        entra
            .patch(
                &path,
                patch_ops(json!([{"op": "add", "path": "members", "value": [{"value": gid}]}])),
            )
            .await,
        "a group cannot be its own member",
    );
    refused(
        entra
            .put(
                &path,
                group("Litigation", json!([{"value": ann}, {"value": "nobody"}])),
            )
            .await,
        "member \"nobody\" names no User or Group",
    );
    refused(
        entra
            .post("/Groups", group("Okta's", json!([{"value": olaf}])))
            .await,
        "group \"Okta's\"",
    );
    assert_eq!(members().await, vec![json!(ann)], "nothing was stored");

    // Removing a member that is not there is still a no-op; nested groups are fine.
    let (s, _) = entra
        .patch(
            &path,
            patch_ops(json!([{"op": "remove", "path": "members[value eq \"ghost-1\"]"}])),
        )
        .await;
    assert_eq!(s, 204);
    let (_, sub) = entra.post("/Groups", group("Sub", json!([]))).await;
    let (s, _) = entra
        .patch(&path, patch_ops(json!([{"op": "add", "path": "members", "value": [{"value": sub["id"], "type": "Group"}]}])))
        .await;
    assert_eq!(s, 204);
    assert_eq!(members().await, vec![json!(ann), sub["id"].clone()]);

    // Bulk: a member created earlier in the same request by bulkId is found; an
    // unknown one fails that operation alone.
    let (s, out) = entra
        .post(
            "/Bulk",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "u", "data": user("bea@firm.example")},
                    {"method": "POST", "path": "/Groups", "bulkId": "g", "data": group("Bulk", json!([{"value": "bulkId:u", "type": "User"}]))},
                    {"method": "POST", "path": "/Groups", "bulkId": "h", "data": group("Ghosts", json!([{"value": "ghost"}]))}
                ]
            }),
        )
        .await;
    assert_eq!(s, 200);
    let statuses: Vec<_> = out["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["201", "201", "400"], "{out}");
}

const CORE_ROLE_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:User:roleId";

/// #18 item 7: DiliTrust's guide maps the target attribute
/// `urn:ietf:params:scim:schemas:core:2.0:User:roleId`. Undeclared, it is refused in
/// every dialect with the lines that declare it (logged once); declared on the core
/// User schema, every wire form Entra may use reaches the stored user.
#[tokio::test]
async fn core_schema_attributes_are_kept_when_declared_and_refused_with_the_fix_when_not() {
    const ROLE: &str = "6f1d2c3b-4a5e-4f70-8b9c-0d1e2f3a4b5c";
    let d = Daemon::start(
        r#"
[[providers]]
name = "dilitrust"
dialect = "entra"
[[providers.schemas]]
id = "urn:ietf:params:scim:schemas:core:2.0:User"
[[providers.schemas.attributes]]
name = "roleId"
case_exact = true
"#,
    );
    let entra = Scim::new(d.base("entra"), d.token("entra"));
    let mut body = user("dana@firm.example");
    body[CORE_ROLE_ID] = json!(ROLE);
    for _ in 0..2 {
        let (s, e) = entra.post("/Users", body.clone()).await;
        assert_eq!(s, 400, "{e}");
        assert_eq!(e["scimType"], "invalidValue");
        let detail = e["detail"].as_str().unwrap();
        assert!(
            detail.contains(
                "[[providers.schemas]]\nid = \"urn:ietf:params:scim:schemas:core:2.0:User\"\n[[providers.schemas.attributes]]\nname = \"roleId\""
            ) && detail.contains("provider \"entra\""),
            "{detail}"
        );
    }
    // The Entra path-less PATCH form too; an unqualified unknown attribute is still
    // dropped (and counted) as Entra's default mappings need.
    let (s, dana) = entra
        .post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dana@firm.example", "roleId": ROLE}))
        .await;
    assert_eq!(s, 201, "{dana}");
    assert!(dana.get("roleId").is_none(), "{dana}");
    let dana_path = format!("/Users/{}", dana["id"].as_str().unwrap());
    let (s, e) = entra
        .patch(
            &dana_path,
            patch_ops(json!([{"op": "replace", "value": {CORE_ROLE_ID: ROLE}}])),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    let warnings = d
        .log_text()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(CORE_ROLE_ID))
        .count();
    assert_eq!(warnings, 1, "logged once:\n{}", d.log_text());

    // Declared: published under the core schema, and every form is kept.
    let dili = Scim::new(d.base("dilitrust"), d.token("dilitrust"));
    let (_, core) = dili
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    assert!(
        core["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "roleId"),
        "{core}"
    );
    let (s, a) = dili.post("/Users", body.clone()).await;
    assert_eq!((s, &a["roleId"]), (201, &json!(ROLE)), "{a}");
    let mut nested = user("nell@firm.example");
    nested["urn:ietf:params:scim:schemas:core:2.0:User"] = json!({"roleId": "nested"});
    let (s, b) = dili.post("/Users", nested).await;
    assert_eq!((s, &b["roleId"]), (201, &json!("nested")), "{b}");
    let mut plain = user("paul@firm.example");
    plain["roleId"] = json!("plain");
    let (s, c) = dili.post("/Users", plain).await;
    assert_eq!((s, &c["roleId"]), (201, &json!("plain")), "{c}");
    let path = format!("/Users/{}", c["id"].as_str().unwrap());
    let (s, c) = dili
        .patch(
            &path,
            patch_ops(json!([{"op": "Replace", "path": CORE_ROLE_ID, "value": "by-path"}])),
        )
        .await;
    assert_eq!((s, &c["roleId"]), (200, &json!("by-path")), "{c}");
    let (s, c) = dili
        .patch(
            &path,
            patch_ops(json!([{"op": "replace", "value": {CORE_ROLE_ID: "path-less"}}])),
        )
        .await;
    assert_eq!((s, &c["roleId"]), (200, &json!("path-less")), "{c}");
    let (_, found) = dili
        .get(&format!(
            "/Users?filter={CORE_ROLE_ID}%20eq%20%22path-less%22"
        ))
        .await;
    assert_eq!(found["totalResults"], 1, "{found}");
}

/// The body of GET `path` with `query`, as sent.
async fn raw_get(scim: &Scim, path: &str, query: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params(&format!("{}{path}", scim.base), query).unwrap();
    let resp = scim
        .http
        .get(url)
        .bearer_auth(&scim.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.unwrap()
}

#[tokio::test]
async fn user_name_lookups_are_answered_byte_for_byte_as_any_other_filter() {
    // `userName eq` alone is written from the stored text (directory/text.rs); the
    // same filter with `and userName pr` goes the general way (parse, render,
    // project, serialise). Both must send the same bytes.
    let d = InProcess::start(&dilitrust_provider());
    let scim = Scim::new(d.base("dilitrust"), d.token("dilitrust"));
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let core = "urn:ietf:params:scim:schemas:core:2.0:User";
    let users = [
        json!({"schemas": [core], "userName": "plain@firm.example"}),
        json!({
            "schemas": [core, ent, DILITRUST],
            "userName": "Zoë.Ångström@firm.example",
            "externalId": "e-1",
            "name": {"givenName": "Zoë", "familyName": "Ångström", "formatted": "Zoë \"Z\" Ångström\t"},
            "displayName": "Zoë Ångström",
            "emails": [{"value": "zoe@firm.example", "type": "work", "primary": true}],
            "password": "Secr3t!Secr3t!",
            "active": true,
            ent: {"department": "Litigation", "employeeNumber": "42"},
            DILITRUST: {"roleId": ROLE_A},
        }),
        // A userName with an escape is answered by the general path for both.
        json!({"schemas": [core], "userName": "o\"brien@firm.example"}),
    ];
    for u in users {
        let (s, created) = scim.post("/Users", u.clone()).await;
        assert_eq!(s, 201, "{created}");
        let name = u["userName"].as_str().unwrap();
        for asked in [name.to_string(), name.to_uppercase()] {
            let quoted = serde_json::to_string(&asked).unwrap();
            let fast = format!("userName eq {quoted}");
            let general = format!("userName eq {quoted} and userName pr");
            for paging in [vec![], vec![("startIndex", "2")], vec![("count", "0")]] {
                let mut q = vec![("filter", fast.as_str())];
                q.extend(paging.iter().copied());
                let a = raw_get(&scim, "/Users", &q).await;
                q[0].1 = general.as_str();
                let b = raw_get(&scim, "/Users", &q).await;
                assert_eq!(a, b, "{fast} {paging:?}");
                let v: Value = serde_json::from_str(&a).unwrap();
                assert_eq!(v["totalResults"], 1, "{a}");
            }
            let page: Value =
                serde_json::from_str(&raw_get(&scim, "/Users", &[("filter", fast.as_str())]).await)
                    .unwrap();
            assert_eq!(page["Resources"][0]["id"], created["id"]);
            assert!(page["Resources"][0].get("password").is_none(), "{page}");
        }
    }
    let none = raw_get(
        &scim,
        "/Users",
        &[("filter", "userName eq \"nobody@firm.example\"")],
    )
    .await;
    assert_eq!(
        none,
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0,"Resources":[]}"#
    );
}

//! RFC 7644 behaviour over HTTP that the IdP replays do not cover: custom schemas,
//! bulk, ETags, sorting, errors and limits.

mod common;

use common::{Daemon, Scim};
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
    let d = Daemon::start(&dilitrust_provider());
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
    let d = Daemon::start("");
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

#[tokio::test]
async fn etags_sorting_projection_and_errors() {
    let d = Daemon::start("");
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

#[tokio::test]
async fn a_group_with_100k_members_is_read_and_patched() {
    let d = Daemon::start("");
    let scim = Scim::new(d.base("okta"), d.token("okta"));
    let (s, g) = scim
        .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Everyone"}))
        .await;
    assert_eq!(s, 201);
    let gid = g["id"].as_str().unwrap().to_owned();
    // Member ids need not exist (IdPs may add members before pushing them).
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

/// A tenant URL pasted with a trailing slash makes clients send `…/entra//Users`; others
/// add a trailing slash. Both reach the endpoint they obviously mean (#18 item 14).
#[tokio::test]
async fn trailing_and_repeated_slashes_reach_the_same_endpoint() {
    let d = Daemon::start("");
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

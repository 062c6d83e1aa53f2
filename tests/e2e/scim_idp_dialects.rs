//! The request shapes of ../shared/reference/idp-dialects.md, replayed end to end
//! over HTTP against the real binary.

use crate::common;

use common::{InProcess, Scim};
use serde_json::{Value, json};

fn enterprise() -> &'static str {
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
}

fn entra_user(user_name: &str, external_id: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise()],
        "externalId": external_id,
        "userName": user_name,
        "active": true,
        "displayName": "Ada Lovelace",
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada"},
        "phoneNumbers": [{"type": "work", "value": "+44 (20) 7946-0000"}],
        "title": null,
        enterprise(): {"department": "Litigation", "employeeNumber": "E-1"}
    })
}

async fn list_total(scim: &Scim, query: &str) -> (u64, Value) {
    let (s, body) = scim.get(&format!("/Users?{query}")).await;
    assert_eq!(s, 200, "{query}: {body}");
    (body["totalResults"].as_u64().unwrap_or(999), body)
}

#[tokio::test]
async fn entra_lifecycle_legacy_and_flagged() {
    let d = InProcess::start("");
    let scim = Scim::new(d.base("entra"), d.token("entra"));

    // Test Connection: a random lookup answers 200 with an empty ListResponse.
    for res in ["Users", "Groups"] {
        let attr = if res == "Users" {
            "userName"
        } else {
            "displayName"
        };
        let (s, body) = scim
            .get(&format!("/{res}?filter={attr}+eq+%22a3f0c7d2-unknown%22"))
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["totalResults"], 0);
        assert_eq!(body["Resources"], json!([]));
    }

    // Create, as Entra sends it (with a null attribute and a formatted phone number).
    let (s, user) = scim
        .post("/Users", entra_user("Ada@Firm.example", "ext-ada"))
        .await;
    assert_eq!(s, 201, "{user}");
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(user["phoneNumbers"][0]["value"], "+44 (20) 7946-0000");
    assert!(user.get("title").is_none() || user["title"].is_null());
    assert_eq!(user[enterprise()]["department"], "Litigation");

    // Matching: userName case-insensitively (with '+' for spaces), externalId exactly,
    // work email through a value path.
    assert_eq!(
        list_total(&scim, "filter=userName+eq+%22ada@firm.EXAMPLE%22")
            .await
            .0,
        1
    );
    assert_eq!(
        list_total(&scim, "filter=USERNAME+EQ+%22ada@firm.example%22")
            .await
            .0,
        1
    );
    assert_eq!(
        list_total(&scim, "filter=externalId%20eq%20%22ext-ada%22")
            .await
            .0,
        1
    );
    assert_eq!(
        list_total(&scim, "filter=externalId%20eq%20%22EXT-ADA%22")
            .await
            .0,
        0
    );
    assert_eq!(
        list_total(
            &scim,
            "filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22ada@firm.example%22"
        )
        .await
        .0,
        1
    );

    // A second create with the same userName in another case is a 409 uniqueness.
    let (s, err) = scim
        .post("/Users", entra_user("ADA@firm.example", "ext-2"))
        .await;
    assert_eq!(s, 409, "{err}");
    assert_eq!(err["scimType"], "uniqueness");
    assert_eq!(err["status"], "409");

    // Legacy PATCH: capitalised ops, "False" strings, filtered paths, add creating an element.
    let (s, body) = scim
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "Replace", "path": "name.givenName", "value": "Augusta"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "augusta@firm.example"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+44 7700 900000"},
                {"op": "Replace", "path": "active", "value": "False"}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["active"], false, "\"False\" must become a boolean");
    assert_eq!(body["name"]["givenName"], "Augusta");
    assert_eq!(body["emails"][0]["value"], "augusta@firm.example");
    let mobile: Vec<_> = body["phoneNumbers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "mobile")
        .collect();
    assert_eq!(mobile.len(), 1, "{body}");
    assert_eq!(mobile[0]["value"], "+44 7700 900000");
    // Disabled users stay matchable, and the email index followed the change.
    assert_eq!(
        list_total(&scim, "filter=userName+eq+%22ada@firm.example%22")
            .await
            .0,
        1
    );
    assert_eq!(
        list_total(&scim, "filter=emails.value+eq+%22augusta@firm.example%22")
            .await
            .0,
        1
    );
    assert_eq!(
        list_total(&scim, "filter=emails.value+eq+%22ada@firm.example%22")
            .await
            .0,
        0
    );

    // aadOptscim062020: one path-less replace with dotted and URN keys, manager as a bare id.
    let (s, mgr) = scim
        .post("/Users", entra_user("boss@firm.example", "ext-boss"))
        .await;
    assert_eq!(s, 201);
    let mgr_id = mgr["id"].as_str().unwrap();
    let (s, body) = scim
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "replace", "value": {
                    "active": true,
                    "name.familyName": "King",
                    (format!("{}:manager", enterprise())): mgr_id,
                    (format!("{}:department", enterprise())): "Corporate"
                }}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["name"]["familyName"], "King");
    assert_eq!(body[enterprise()]["department"], "Corporate");
    assert_eq!(body[enterprise()]["manager"]["value"], mgr_id, "{body}");

    // Groups: lookup by displayName without members, member add, legacy remove by value
    // list that must remove only the listed member, filter-path remove.
    let (s, g) = scim
        .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Partners", "externalId": "g-ext"}))
        .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let (s, found) = scim
        .get("/Groups?excludedAttributes=members&filter=displayName+eq+%22Partners%22")
        .await;
    assert_eq!(s, 200);
    assert_eq!(found["totalResults"], 1);
    assert!(found["Resources"][0].get("members").is_none());
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let (s, _) = scim
        .patch(&format!("/Groups/{gid}"), patch(json!([{"op": "Add", "path": "members", "value": [{"value": id, "$ref": null}, {"value": mgr_id}]}])))
        .await;
    assert_eq!(s, 204);
    let (s, _) = scim
        .patch(
            &format!("/Groups/{gid}"),
            patch(json!([{"op": "Remove", "path": "members", "value": [{"value": mgr_id}]}])),
        )
        .await;
    assert_eq!(s, 204);
    let (_, g) = scim.get(&format!("/Groups/{gid}")).await;
    let members: Vec<_> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].clone())
        .collect();
    assert_eq!(
        members,
        vec![json!(id)],
        "legacy remove must remove only the listed member"
    );
    let (s, _) = scim
        .patch(
            &format!("/Groups/{gid}"),
            patch(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])),
        )
        .await;
    assert_eq!(s, 204);
    let (_, g) = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(g["members"], json!([]));

    // PATCH to an unknown group is a 404 with a SCIM body, not a 500.
    let (s, err) = scim
        .patch(
            "/Groups/00000000-0000-4000-8000-000000000000",
            patch(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
        )
        .await;
    assert_eq!(s, 404, "{err}");
    assert_eq!(
        err["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );

    // Hard delete.
    assert_eq!(scim.delete(&format!("/Users/{id}")).await, 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.0, 404);

    // Tolerated quirks are counted.
    let metrics = common::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("quirk=\"capitalised_op\""), "{metrics}");
    assert!(metrics.contains("quirk=\"boolean_as_string\""), "{metrics}");
}

#[tokio::test]
async fn okta_lifecycle() {
    let d = InProcess::start("");
    let scim = Scim::new(d.base("okta"), d.token("okta"));
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "carol@firm.example",
        "name": {"givenName": "Carol", "familyName": "Danvers"},
        "emails": [{"primary": true, "value": "carol@firm.example", "type": "work"}],
        "displayName": "Carol Danvers",
        "locale": "en-US",
        "externalId": "00u1",
        "groups": [],
        "password": "t1meMa$heen",
        "active": true
    });
    let (s, created) = scim.post("/Users", user.clone()).await;
    assert_eq!(s, 201, "{created}");
    assert!(
        created.get("password").is_none(),
        "a password is never returned"
    );
    let id = created["id"].as_str().unwrap().to_owned();

    let (s, page) = scim
        .get("/Users?filter=userName%20eq%20%22carol@firm.example%22&startIndex=1&count=100")
        .await;
    assert_eq!(s, 200);
    assert!(page["totalResults"].is_u64());
    assert_eq!(page["Resources"][0]["id"], json!(id));

    // Profile update by PUT (full replace).
    let mut replaced = user.clone();
    replaced["name"]["familyName"] = json!("Marvel");
    replaced["id"] = json!(id);
    let (s, body) = scim.put(&format!("/Users/{id}"), replaced).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["name"]["familyName"], "Marvel");
    assert!(body.get("password").is_none());

    // Deactivate with a path-less replace.
    let (s, body) = scim
        .patch(&format!("/Users/{id}"), json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": false}}]}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["active"], false);

    // Import paging.
    for i in 0..5 {
        let mut u = user.clone();
        u["userName"] = json!(format!("u{i}@firm.example"));
        u["externalId"] = json!(format!("00u-{i}"));
        assert_eq!(scim.post("/Users", u).await.0, 201);
    }
    let (_, p1) = scim.get("/Users?startIndex=1&count=4").await;
    let (_, p2) = scim.get("/Users?startIndex=5&count=4").await;
    assert_eq!(p1["totalResults"], 6);
    assert_eq!(p1["Resources"].as_array().unwrap().len(), 4);
    assert_eq!(p2["Resources"].as_array().unwrap().len(), 2);
    assert_eq!(p2["startIndex"], 5);
    let (_, p0) = scim.get("/Users?count=0").await;
    assert_eq!(p0["Resources"], json!([]));
    assert_eq!(p0["totalResults"], 6);

    // Group push: create, rename with id in the value, remove+add in one PATCH, replace.
    let (s, g) = scim
        .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "members": [{"value": id, "display": "Carol"}]}))
        .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let other = p1["Resources"][1]["id"].as_str().unwrap().to_owned();
    let (s, _) = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "replace", "value": {"id": gid, "displayName": "Engineering EMEA"}},
                {"op": "remove", "path": format!("members[value eq \"{id}\"]")},
                {"op": "add", "path": "members", "value": [{"value": other}]}
            ]}),
        )
        .await;
    assert_eq!(s, 204);
    let (_, g) = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(g["displayName"], "Engineering EMEA");
    assert_eq!(g["members"].as_array().unwrap().len(), 1);
    assert_eq!(g["members"][0]["value"], json!(other));
    let (s, _) = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "replace", "path": "members", "value": [{"value": id}]}
            ]}),
        )
        .await;
    assert_eq!(s, 204);
    let (_, g) = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(g["members"][0]["value"], json!(id));

    // 401 and 404 carry SCIM bodies with detail.
    let bad = Scim::new(d.base("okta"), "sb_0000000000000000_nope".into());
    let (s, err) = bad.get("/Users").await;
    assert_eq!(s, 401);
    assert_eq!(err["status"], "401");
    assert!(err["detail"].is_string());
    let (s, err) = scim.get("/Users/not-there").await;
    assert_eq!(s, 404);
    assert!(err["detail"].is_string());
}

#[tokio::test]
async fn tokens_are_scoped_per_provider_and_revocation_is_immediate() {
    let d = InProcess::start("");
    let entra_token = d.token("entra");
    let entra = Scim::new(d.base("entra"), entra_token.clone());
    assert_eq!(entra.get("/Users").await.0, 200);
    // The entra token is refused by okta's base.
    let cross = Scim::new(d.base("okta"), entra_token.clone());
    assert_eq!(cross.get("/Users").await.0, 401);
    // No token.
    let resp = common::get(d.base("entra") + "/Users").await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/scim+json");

    let list = d.cli(&["token", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    let id = entra_token.split('_').nth(1).unwrap();
    assert!(text.contains(id), "{text}");
    assert!(
        !text.contains(entra_token.splitn(3, '_').nth(2).unwrap()),
        "secrets are never listed"
    );
    let out = d.cli(&["token", "revoke", id]);
    assert!(out.status.success());
    let (s, err) = entra.get("/Users").await;
    assert_eq!(s, 401, "revocation must take effect at once");
    assert!(err["detail"].as_str().unwrap().contains("revoked"));

    // A provider's resources are invisible to another provider.
    let okta = Scim::new(d.base("okta"), d.token("okta"));
    let (s, u) = okta
        .post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x@y"}),
        )
        .await;
    assert_eq!(s, 201);
    let entra2 = Scim::new(d.base("entra"), d.token("entra"));
    assert_eq!(
        entra2
            .get(&format!("/Users/{}", u["id"].as_str().unwrap()))
            .await
            .0,
        404
    );
    assert_eq!(entra2.get("/Users").await.1["totalResults"], 0);
}

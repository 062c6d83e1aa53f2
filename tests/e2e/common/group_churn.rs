//! Membership churn for crash tests: random group changes of every shape IdPs send
//! (PATCH add, remove by filter, Entra's legacy remove with a value list, a remove and
//! re-add in one PATCH, a replaced list, a PUT), and the check that a webhook receiver
//! replaying the events derives each group's members exactly as the bridge holds them.
#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::Scim;
use super::fake_webhook::Shared;

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Creates `users` users and `groups` empty groups; returns their ids.
pub async fn people(
    scim: &Scim,
    prefix: &str,
    users: usize,
    groups: usize,
) -> (Vec<String>, Vec<String>) {
    let mut user_ids = Vec::new();
    for i in 0..users {
        let (status, body) = scim
            .post(
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "userName": format!("{prefix}-u{i}@firm.example"), "active": true}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        user_ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let mut group_ids = Vec::new();
    for i in 0..groups {
        let (status, body) = scim
            .post(
                "/Groups",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                       "displayName": format!("{prefix} group {i}")}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        group_ids.push(body["id"].as_str().unwrap().to_owned());
    }
    (user_ids, group_ids)
}

/// A deterministic pseudo-random sequence (xorshift64*), no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize) % n.max(1)
    }

    fn pick<'a>(&mut self, from: &'a [String]) -> &'a str {
        &from[self.below(from.len())]
    }

    fn some(&mut self, from: &[String], most: usize) -> Vec<Value> {
        let n = self.below(most + 1);
        let set: BTreeSet<&str> = (0..n).map(|_| self.pick(from)).collect();
        set.into_iter().map(|id| json!({ "value": id })).collect()
    }
}

/// `ops` random changes to `group`'s members, one after another.
pub async fn churn(
    scim: &Scim,
    group: &str,
    name: &str,
    users: &[String],
    rng: &mut Rng,
    ops: usize,
) {
    for _ in 0..ops {
        let path = format!("/Groups/{group}");
        let (a, b) = (rng.pick(users).to_owned(), rng.pick(users).to_owned());
        let (status, body) = match rng.below(6) {
            0 => {
                let add = rng.some(users, 3);
                scim.patch(
                    &path,
                    json!({"schemas": [PATCH], "Operations": [
                    {"op": "add", "path": "members", "value": add}]}),
                )
                .await
            }
            1 => {
                scim.patch(
                    &path,
                    json!({"schemas": [PATCH], "Operations": [
                    {"op": "remove", "path": format!("members[value eq \"{a}\"]")}]}),
                )
                .await
            }
            2 => {
                // Entra's legacy form: removes only the listed members.
                scim.patch(
                    &path,
                    json!({"schemas": [PATCH], "Operations": [
                    {"op": "Remove", "path": "members", "value": [{"value": a}]}]}),
                )
                .await
            }
            3 => {
                // The case: add B, remove A, add A again, in one request.
                scim.patch(
                    &path,
                    json!({"schemas": [PATCH], "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": b}]},
                    {"op": "remove", "path": format!("members[value eq \"{a}\"]")},
                    {"op": "add", "path": "members", "value": [{"value": a}]}]}),
                )
                .await
            }
            4 => {
                let all = rng.some(users, 5);
                scim.patch(
                    &path,
                    json!({"schemas": [PATCH], "Operations": [
                    {"op": "replace", "path": "members", "value": all}]}),
                )
                .await
            }
            _ => {
                let all = rng.some(users, 5);
                scim.put(
                    &path,
                    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name, "members": all}),
                )
                .await
            }
        };
        assert!(status == 200 || status == 204, "{status} {body}");
    }
}

/// One round of churn: every group made by [`people`] with `prefix` changed `ops`
/// times at once, group `n` through `bases[n % bases.len()]` (instances share the work).
pub async fn round(
    prefix: &str,
    bases: &[String],
    token: &str,
    groups: &[String],
    users: &[String],
    round: u64,
    ops: usize,
) {
    let mut writers = tokio::task::JoinSet::new();
    for (n, group) in groups.iter().enumerate() {
        let scim = Scim::new(bases[n % bases.len()].clone(), token.to_owned());
        let (group, users, prefix) = (group.clone(), users.to_vec(), prefix.to_owned());
        writers.spawn(async move {
            let mut rng = Rng::new(round * 100 + n as u64);
            let name = format!("{prefix} group {n}");
            churn(&scim, &group, &name, &users, &mut rng, ops).await;
        });
    }
    writers.join_all().await;
}

/// Every group's members as the receiver derived them equal the bridge's; no change
/// arrived under two event ids.
pub async fn assert_receiver_matches(receiver: &Shared, scim: &Scim, groups: &[String]) {
    let derived: Vec<BTreeSet<String>> = {
        let r = receiver.lock().unwrap();
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        assert!(
            r.id_conflicts.is_empty(),
            "{:?}",
            &r.id_conflicts[..r.id_conflicts.len().min(5)]
        );
        groups
            .iter()
            .map(|g| r.groups.get(g).cloned().unwrap_or_default())
            .collect()
    };
    for (group, derived) in groups.iter().zip(derived) {
        let (status, body) = scim.get(&format!("/Groups/{group}")).await;
        assert_eq!(status, 200, "{body}");
        let held: BTreeSet<String> = body["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["value"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(derived, held, "group {} ({group})", body["displayName"]);
    }
}

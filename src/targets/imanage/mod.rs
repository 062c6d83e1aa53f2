//! iManage Work over its REST API v2 (facts in `shared/reference/imanage-api.md`).
//!
//! Users: created and updated under `customers/{cid}/users`, disabled with
//! `allow_logon = false` (iManage users are never deleted). Groups: created in the
//! configured library, members added and removed in batches; iManage cannot delete a
//! group, so a deleted group is emptied, then disabled.

mod approver;
mod client;
mod ids;
mod mapping;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::config::MatchRules;
use crate::delivery::matching::{Candidate, MatchField, MatchKey};
use crate::delivery::{Change, Progress, Snapshot, State, Target, TargetError};
use crate::scim::ResourceKind;

pub use approver::ImanageApprover;
pub use client::{Answer, Discovery, ImanageClient, Page, PageStart, describe_error};
pub use ids::{group_id, segment, user_id};
pub use mapping::Mapped;

use super::mapping::Mapping;

/// Members per `PUT …/members` request.
const MEMBER_BATCH: usize = 500;
/// Users or groups per page when reading iManage.
const READ_PAGE: usize = 500;

pub struct ImanageTarget {
    name: String,
    client: Arc<ImanageClient>,
    mapping: Mapping,
    /// How existing users and groups are found before one is created.
    matching: MatchRules,
    /// People's linked accounts: a deprovisioned person's link ends with their account.
    linker: Option<Arc<crate::oauth::Linker>>,
}

impl std::fmt::Debug for ImanageTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImanageTarget")
            .field("name", &self.name)
            .field("client", &self.client)
            .finish()
    }
}

impl ImanageTarget {
    pub fn new(
        name: String,
        client: Arc<ImanageClient>,
        mapping: Mapping,
        matching: MatchRules,
    ) -> Self {
        Self {
            name,
            client,
            mapping,
            matching,
            linker: None,
        }
    }

    /// The same target ending people's linked accounts when they are deprovisioned.
    pub fn with_linker(mut self, linker: Option<Arc<crate::oauth::Linker>>) -> Self {
        self.linker = linker;
        self
    }

    /// An iManage user as the snapshot and candidates show it, SCIM-shaped; `None`
    /// for the bridge's own service account, which is never the IdP's to manage.
    async fn user_doc(&self, u: &Value) -> Result<Option<Value>, TargetError> {
        let Some(id) = u["id"].as_str().map(str::to_uppercase) else {
            return Ok(None);
        };
        let discovery = self.client.discover().await?;
        if discovery
            .account
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(&id))
        {
            return Ok(None);
        }
        let mut doc =
            json!({"id": id, "userName": id, "active": u["allow_logon"].as_bool().unwrap_or(true)});
        if let Some(n) = u["full_name"].as_str() {
            doc["displayName"] = n.into();
        }
        if let Some(e) = u["email"].as_str().filter(|e| !e.is_empty()) {
            doc["emails"] = json!([{"value": e, "primary": true}]);
        }
        Ok(Some(doc))
    }

    /// An iManage group as the snapshot and candidates show it (without members).
    fn group_doc(g: &Value) -> Option<Value> {
        let gid = g["id"].as_str()?;
        Some(json!({
            "id": gid,
            "displayName": g["full_name"].as_str().unwrap_or(gid),
            "active": g["enabled"].as_bool().unwrap_or(true),
        }))
    }

    /// Takes a deprovisioned user out of every group iManage lists it in: a leaver must
    /// not keep access through a group. Disabled groups cannot change and are skipped.
    async fn leave_groups(&self, base: &str, lib: &str, id: &str) -> Result<(), TargetError> {
        let url = format!("{base}/users/{}/groups", segment(id));
        let answer = self
            .client
            .call(reqwest::Method::GET, &url, &[], None)
            .await?;
        if answer.status == 404 {
            return Ok(());
        }
        for g in Page::from_body(&answer.body).items {
            let Some(gid) = g["id"].as_str() else {
                continue;
            };
            if g["enabled"] == false {
                continue;
            }
            let library = g["database"].as_str().unwrap_or(lib);
            self.members(base, library, gid, &[id.to_owned()], "delete")
                .await?;
        }
        Ok(())
    }

    /// A request with no query; see [`ImanageClient::call`].
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<u16, TargetError> {
        Ok(self.client.call(method, url, &[], body).await?.status)
    }

    async fn apply_user(&self, change: &Change) -> Result<Option<String>, TargetError> {
        let (base, _) = self.client.base().await?;
        let doc = match &change.state {
            State::Deleted => {
                if let Some(id) = &change.target_id {
                    let (_, lib) = self.client.base().await?;
                    self.leave_groups(&base, &lib, id).await?;
                    let body = json!({"allow_logon": false});
                    self.call(
                        reqwest::Method::PATCH,
                        &format!("{base}/users/{}", segment(id)),
                        Some(&body),
                    )
                    .await?;
                }
                // A leaver's linked account must not outlive their access: revoked at
                // iManage, then forgotten (links are named by userName).
                if let Some(linker) = &self.linker {
                    match linker.revoke(&change.name).await {
                        Ok(crate::oauth::Revoked::NoLink) => {}
                        Ok(how) => {
                            tracing::info!(target_name = %self.name, user = %change.name, ?how, "deprovisioned user's linked account ended")
                        }
                        Err(e) => {
                            return Err(TargetError::Transient {
                                message: format!(
                                    "{} was disabled, but revoking their linked account failed: {e}",
                                    change.name
                                ),
                                retry_after: e.retry_after(),
                            });
                        }
                    }
                }
                // The iManage user stays (disabled): keep the id for a later re-create.
                return Ok(change.target_id.clone());
            }
            State::Present(doc) => doc,
        };
        let mapped = self.mapping.imanage_user(doc)?;
        // Once created, a user keeps its id even if the mapping would now give another.
        let id = change.target_id.clone().unwrap_or(mapped.id);
        let fields = Value::Object(mapped.fields);
        let url = format!("{base}/users/{}", segment(&id));
        if change.target_id.is_some() {
            let status = self
                .call(reqwest::Method::PATCH, &url, Some(&fields))
                .await?;
            if status != 404 {
                return Ok(Some(id));
            }
        }
        let mut create = fields.clone();
        create["id"] = id.clone().into();
        let status = self
            .call(
                reqwest::Method::POST,
                &format!("{base}/users"),
                Some(&create),
            )
            .await?;
        if status == 409 {
            // Matching runs before every create, so an account the rules did not pick
            // is not the bridge's to take over.
            return Err(TargetError::Permanent {
                message: format!(
                    "iManage already has a user {id} that the matching rules ({}) did not pick, so it was left alone; add \"id\" to [targets.matching] users to adopt it, or map {} to another id",
                    self.matching.users.join(", "),
                    change.name
                ),
            });
        }
        Ok(Some(id))
    }

    async fn members(
        &self,
        base: &str,
        lib: &str,
        gid: &str,
        ids: &[String],
        action: &str,
    ) -> Result<(), TargetError> {
        for batch in ids.chunks(MEMBER_BATCH) {
            let body =
                json!({"database": lib, "data_type": "users", "data": batch, "action": action});
            let url = format!(
                "{base}/libraries/{}/groups/{}/members",
                segment(lib),
                segment(gid)
            );
            let status = self.call(reqwest::Method::PUT, &url, Some(&body)).await?;
            if status == 404 {
                return Err(TargetError::Transient {
                    message: format!("group {gid} not found in {lib}"),
                    retry_after: None,
                });
            }
        }
        Ok(())
    }

    /// A group's member ids as iManage lists them; none for a group it does not have.
    async fn group_members(
        &self,
        base: &str,
        lib: &str,
        gid: &str,
    ) -> Result<Vec<String>, TargetError> {
        let url = format!(
            "{base}/libraries/{}/groups/{}/members",
            segment(lib),
            segment(gid)
        );
        // Every page: a group can have more members than iManage sends at once.
        let Some(members) = self
            .client
            .list_all_if_found(&url, &[], READ_PAGE, false)
            .await?
        else {
            return Ok(Vec::new());
        };
        Ok(members
            .iter()
            .filter_map(|m| m["id"].as_str().or_else(|| m.as_str()))
            .map(str::to_uppercase)
            .collect())
    }

    fn mapped(change: &Change, ids: &[String]) -> Result<Vec<String>, TargetError> {
        ids.iter()
            .map(|id| {
                change
                    .member_ids
                    .get(id)
                    .cloned()
                    .ok_or_else(|| TargetError::MemberPending {
                        message: format!(
                            "member {id} is not in iManage yet; waiting for its own delivery"
                        ),
                    })
            })
            .collect()
    }

    async fn apply_group(&self, change: &Change) -> Result<Option<String>, TargetError> {
        let (base, lib) = self.client.base().await?;
        let (added, removed) = change.member_deltas();
        // Members never delivered are not in iManage to remove.
        let removed: Vec<String> = removed
            .iter()
            .filter_map(|r| change.member_ids.get(r).cloned())
            .collect();
        let doc = match &change.state {
            State::Deleted => {
                let Some(gid) = &change.target_id else {
                    return Ok(None);
                };
                // Empty first: a disabled group's membership cannot change.
                self.members(&base, &lib, gid, &removed, "delete").await?;
                let body = json!({"enabled": false});
                self.call(
                    reqwest::Method::PATCH,
                    &format!("{base}/groups/{}", segment(gid)),
                    Some(&body),
                )
                .await?;
                return Ok(None);
            }
            State::Present(doc) => doc,
        };
        let mapped = self.mapping.imanage_group(doc)?;
        let gid = change.target_id.clone().unwrap_or(mapped.id);
        let mut update = Value::Object(mapped.fields);
        update["enabled"] = json!(true);
        let patched = change.target_id.is_some()
            && self
                .call(
                    reqwest::Method::PATCH,
                    &format!("{base}/groups/{}", segment(&gid)),
                    Some(&update),
                )
                .await?
                != 404;
        if !patched {
            let mut create = update.clone();
            create["id"] = json!(gid);
            create["group_nos"] = json!(2);
            create["is_external"] = json!(false);
            let status = self
                .call(
                    reqwest::Method::POST,
                    &format!("{base}/libraries/{}/groups", segment(&lib)),
                    Some(&create),
                )
                .await?;
            if status == 409 {
                return Err(TargetError::Permanent {
                    message: format!(
                        "iManage already has a group {gid} that the matching rules ({}) did not pick, so it was left alone; add \"id\" to [targets.matching] groups to adopt it",
                        self.matching.groups.join(", ")
                    ),
                });
            }
        }
        let (add, remove) = match &change.members {
            // A whole list (first delivery, replaced list, reconciliation): make iManage's
            // membership exactly this, removing whoever else is there.
            Some(all) => {
                let want = Self::mapped(
                    change,
                    &all.iter().map(|m| m.value.clone()).collect::<Vec<_>>(),
                )?;
                let have = self.group_members(&base, &lib, &gid).await?;
                let want_set: std::collections::HashSet<String> =
                    want.iter().map(|w| w.to_uppercase()).collect();
                let extra: Vec<String> = have
                    .into_iter()
                    .filter(|h| !want_set.contains(&h.to_uppercase()))
                    .collect();
                (want, extra)
            }
            None => (Self::mapped(change, &added)?, removed),
        };
        self.members(&base, &lib, &gid, &add, "add").await?;
        self.members(&base, &lib, &gid, &remove, "delete").await?;
        Ok(Some(gid))
    }
}

#[async_trait::async_trait]
impl Target for ImanageTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn desired(
        &self,
        _provider: &str,
        kind: ResourceKind,
        doc: &Value,
        _relations: &crate::identity::Relations,
        have: Option<&Value>,
    ) -> Value {
        // What reconciliation compares: the mapped fields, SCIM-shaped like the snapshot.
        // A document the mapping refuses compares as-is; its delivery dead-letters.
        match kind {
            ResourceKind::User => match self.mapping.imanage_user(doc) {
                Ok(m) => {
                    // An iManage user keeps its id for good (a renamed or adopted user
                    // keeps the login it has), so the id is never a difference.
                    let id = have
                        .and_then(|h| h.get("userName"))
                        .cloned()
                        .filter(|h| !h.is_null())
                        .unwrap_or_else(|| m.id.clone().into());
                    let mut out = json!({"userName": id, "active": m.fields["allow_logon"]});
                    if let Some(n) = m.fields.get("full_name") {
                        out["displayName"] = n.clone();
                    }
                    if let Some(e) = m.fields.get("email") {
                        out["emails"] = json!([{"value": e, "primary": true}]);
                    }
                    out
                }
                Err(_) => doc.clone(),
            },
            ResourceKind::Group => match self.mapping.imanage_group(doc) {
                Ok(m) => json!({
                    "displayName": m.fields.get("full_name").cloned().unwrap_or(Value::Null),
                    "active": true,
                }),
                Err(_) => doc.clone(),
            },
        }
    }

    async fn snapshot(&self, progress: &Progress<'_>) -> Result<Option<Snapshot>, TargetError> {
        let (base, lib) = self.client.base().await?;
        let mut snap = Snapshot::default();
        for u in self
            .client
            .list_all(&format!("{base}/users"), &[], READ_PAGE, false)
            .await?
        {
            let Some(doc) = self.user_doc(&u).await? else {
                continue;
            };
            snap.users.push(doc);
            if snap.users.len() % READ_PAGE == 0 {
                progress("Users", snap.users.len());
            }
        }
        progress("Users", snap.users.len());
        let groups = self
            .client
            .list_all(&format!("{base}/groups"), &[], READ_PAGE, false)
            .await?;
        for g in groups {
            let (Some(gid), Some(mut doc)) = (g["id"].as_str(), Self::group_doc(&g)) else {
                continue;
            };
            let members: Vec<Value> = self
                .group_members(&base, &lib, gid)
                .await?
                .into_iter()
                .map(|m| json!({"value": m}))
                .collect();
            doc["members"] = Value::Array(members);
            snap.groups.push(doc);
            progress("Groups", snap.groups.len());
        }
        Ok(Some(snap))
    }

    fn match_keys(&self, _provider: &str, kind: ResourceKind, doc: &Value) -> Vec<MatchKey> {
        let (mapped, rules) = match kind {
            ResourceKind::User => (self.mapping.imanage_user(doc), &self.matching.users),
            ResourceKind::Group => (self.mapping.imanage_group(doc), &self.matching.groups),
        };
        let Ok(mapped) = mapped else {
            return Vec::new();
        };
        rules
            .iter()
            .filter_map(|rule| {
                let (field, value) = match rule.as_str() {
                    "id" => (MatchField::Id, mapped.id.as_str()),
                    "email" => (MatchField::Email, mapped.fields.get("email")?.as_str()?),
                    "displayName" => (
                        MatchField::DisplayName,
                        mapped.fields.get("full_name")?.as_str()?,
                    ),
                    _ => return None,
                };
                MatchKey::new(rule, field, value)
            })
            .collect()
    }

    async fn find(
        &self,
        kind: ResourceKind,
        key: &MatchKey,
    ) -> Result<Vec<Candidate>, TargetError> {
        let (base, _) = self.client.base().await?;
        let mut docs: Vec<Value> = Vec::new();
        match (kind, key.field) {
            (ResourceKind::User, MatchField::Id) => {
                let answer = self
                    .client
                    .call(
                        reqwest::Method::GET,
                        &format!("{base}/users/{}", segment(&key.value)),
                        &[],
                        None,
                    )
                    .await?;
                if answer.status != 404
                    && let Some(doc) = self
                        .user_doc(answer.body.get("data").unwrap_or(&answer.body))
                        .await?
                {
                    docs.push(doc);
                }
            }
            (ResourceKind::User, _) => {
                // iManage's `email` filter is not documented as exact: compare here.
                for u in self
                    .client
                    .list_all(
                        &format!("{base}/users"),
                        &[("email", key.value.clone())],
                        READ_PAGE,
                        false,
                    )
                    .await?
                {
                    if let Some(doc) = self.user_doc(&u).await? {
                        docs.push(doc);
                    }
                }
            }
            (ResourceKind::Group, MatchField::Id) => {
                let answer = self
                    .client
                    .call(
                        reqwest::Method::GET,
                        &format!("{base}/groups/{}", segment(&key.value)),
                        &[],
                        None,
                    )
                    .await?;
                if answer.status != 404
                    && let Some(doc) =
                        Self::group_doc(answer.body.get("data").unwrap_or(&answer.body))
                {
                    docs.push(doc);
                }
            }
            (ResourceKind::Group, _) => {
                for g in self
                    .client
                    .list_all(
                        &format!("{base}/groups"),
                        &[("query", key.value.clone())],
                        READ_PAGE,
                        false,
                    )
                    .await?
                {
                    if let Some(doc) = Self::group_doc(&g) {
                        docs.push(doc);
                    }
                }
            }
        }
        Ok(key.candidates(&docs))
    }

    fn refuses(&self, _provider: &str, kind: ResourceKind, doc: &Value) -> Option<String> {
        let mapped = match kind {
            ResourceKind::User => self.mapping.imanage_user(doc),
            ResourceKind::Group => self.mapping.imanage_group(doc),
        };
        mapped.err().map(|e| e.to_string())
    }

    async fn deactivate(&self, target_id: &str) -> Result<(), TargetError> {
        let (base, _) = self.client.base().await?;
        let body = json!({"allow_logon": false});
        self.call(
            reqwest::Method::PATCH,
            &format!("{base}/users/{}", segment(target_id)),
            Some(&body),
        )
        .await?;
        Ok(())
    }

    async fn apply(&self, change: &Change) -> Result<Option<String>, TargetError> {
        match change.kind {
            ResourceKind::User => self.apply_user(change).await,
            ResourceKind::Group => self.apply_group(change).await,
        }
    }
}

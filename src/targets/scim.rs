//! Outbound SCIM 2.0: pushes users and groups to any SCIM service provider (Clio
//! Operate, DiliTrust CLM, Clumio, Claras, …). Reads the target's
//! `/ServiceProviderConfig` once and uses PATCH for group membership when it is
//! supported, PUT with the whole list otherwise. Before anything is created, delivery
//! looks for an existing resource by the target's matching rules (externalId, then
//! userName, then email by default; see `delivery::matching`), so an account that
//! exists is adopted, never duplicated.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::http::{Reply, Shown, body_prefix, classify, send};
use super::mapping::{Mapping, remove_attr, set_attr};
use crate::clock::Clock;
use crate::config::{MatchRules, OnDelete, TargetKind};
use crate::delivery::matching::{Candidate, MatchField, MatchKey};
use crate::delivery::{
    Change, MemberNeeds, Pacer, Progress, RelationNeeds, Snapshot, State, Target, TargetError,
};
use crate::identity::{
    ContactTypes, Decision, Outcome, Relations, RoleRules, link_manager, retype_contacts, role_at,
    role_cleared, role_json,
};
use crate::oauth::Credentials;
use crate::scim::ResourceKind;

mod configured;
mod explain;

const SCIM_JSON: &str = "application/scim+json";
/// Resources per page when reading the whole target.
const PAGE: u64 = 200;
const SCIM_ERROR: &str = crate::scim::error::ERROR_SCHEMA;
const PATCH_OP: &str = crate::scim::schema::PATCH_OP_SCHEMA;

/// One SCIM service provider.
pub struct ScimTarget {
    name: String,
    /// Base URL without a trailing slash, e.g. `https://app.example.com/scim/v2`.
    base: String,
    http: reqwest::Client,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
    patch: OnceCell<bool>,
    mapping: Mapping,
    /// The target's request-rate ceiling, shared by every request it sends.
    pacer: Arc<Pacer>,
    on_delete: OnDelete,
    /// Role rules, per group of providers.
    roles: Vec<RoleRules>,
    /// Contact types renamed on the way out.
    contact_types: ContactTypes,
    /// How long deactivated users are kept before reconciliation deletes them.
    delete_after: Option<std::time::Duration>,
    /// Groups carry the users of their nested groups.
    expand_nested: bool,
    /// How existing users and groups are found before one is created.
    matching: MatchRules,
}

impl std::fmt::Debug for ScimTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimTarget")
            .field("name", &self.name)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn endpoint(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "Users",
        ResourceKind::Group => "Groups",
    }
}

/// The document as the target should get it: no server-owned attributes.
fn outbound(mut out: Value, kind: ResourceKind) -> Value {
    if let Some(o) = out.as_object_mut() {
        for key in ["id", "meta", "groups", "members"] {
            o.remove(key);
        }
        if !o.contains_key("schemas") {
            let schema = kind.core_schema();
            o.insert("schemas".into(), json!([schema]));
        }
    }
    out
}

fn quote(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

enum Sent {
    Ok(Value),
    NotFound,
    Conflict,
}

impl ScimTarget {
    pub fn new(
        name: String,
        base: String,
        http: reqwest::Client,
        credentials: Credentials,
        clock: Arc<dyn Clock>,
        pacer: Arc<Pacer>,
    ) -> Self {
        Self {
            name,
            base,
            http,
            credentials,
            clock,
            patch: OnceCell::new(),
            mapping: Mapping::default(),
            pacer,
            on_delete: OnDelete::default(),
            roles: Vec::new(),
            contact_types: ContactTypes::default(),
            delete_after: None,
            expand_nested: false,
            matching: MatchRules::default_for(TargetKind::Scim),
        }
    }

    /// The same target finding existing accounts by these rules.
    pub fn with_matching(mut self, matching: MatchRules) -> Self {
        self.matching = matching;
        self
    }

    /// The same target giving each group the users of its nested groups too.
    pub fn with_nested(mut self, expand: bool) -> Self {
        self.expand_nested = expand;
        self
    }

    /// The same target deleting deactivated users once `after` has passed since
    /// their deletion in the IdP (only with `on_delete = deactivate`).
    pub fn with_retention(mut self, after: Option<std::time::Duration>) -> Self {
        self.delete_after = after;
        self
    }

    /// The same target with the organisation's identity rules.
    pub fn with_identity(mut self, roles: Vec<RoleRules>, contact_types: ContactTypes) -> Self {
        self.roles = roles;
        self.contact_types = contact_types;
        self
    }

    /// The role rules for `provider`'s users, if any.
    pub fn rules(&self, provider: &str) -> Option<&RoleRules> {
        self.roles.iter().find(|r| r.applies_to(provider))
    }

    /// The user as this app should hold it, before its role: mapped (an attribute the
    /// mapping leaves without a value keeps what the app holds in `have`), contact
    /// types renamed, and the manager pointed at the manager's account here.
    fn user_document(
        &self,
        doc: &Value,
        relations: &Relations,
        have: Option<&Value>,
    ) -> Result<Value, TargetError> {
        let mut out = self
            .mapping
            .scim_document_over(ResourceKind::User, doc, have)?;
        retype_contacts(&mut out, &self.contact_types);
        link_manager(&mut out, relations.manager.as_ref());
        Ok(out)
    }

    /// Decides the role and writes it into `body`; `current` is the app's role value.
    fn set_role(
        &self,
        provider: &str,
        body: &mut Value,
        doc: &Value,
        relations: &Relations,
        current: Option<&str>,
    ) -> Option<Decision> {
        let rules = self.rules(provider)?;
        let decision = rules.resolve(doc, &relations.groups, current);
        match &decision.outcome {
            Outcome::Set { value, .. } | Outcome::Keep { value } => set_attr(
                body,
                ResourceKind::User,
                &rules.field,
                role_json(&rules.field, value),
            ),
            // The IdP's own value in that attribute is not a decision: the rules own it.
            Outcome::Leave => remove_attr(body, &rules.field),
            Outcome::Clear => set_attr(
                body,
                ResourceKind::User,
                &rules.field,
                role_cleared(&rules.field),
            ),
        }
        Some(decision)
    }

    /// The user document and the role decision, as delivery sends them and `explain`
    /// shows them; `have` is the app's current copy, when known.
    pub fn explain_user(
        &self,
        provider: &str,
        doc: &Value,
        relations: &Relations,
        have: Option<&Value>,
    ) -> Result<(Value, Option<(String, Decision)>), TargetError> {
        let mut out = self.user_document(doc, relations, have)?;
        let current = self
            .rules(provider)
            .and_then(|r| have.and_then(|h| role_at(h, &r.field)));
        let decision = self.set_role(provider, &mut out, doc, relations, current.as_deref());
        let field = self.rules(provider).map(|r| r.field.clone());
        Ok((outbound(out, ResourceKind::User), field.zip(decision)))
    }

    /// The app's current copy of resource `id`; `None` when it is gone.
    async fn app_copy(&self, kind: ResourceKind, id: &str) -> Result<Option<Value>, TargetError> {
        match self
            .send(
                reqwest::Method::GET,
                &format!("{}/{id}", endpoint(kind)),
                None,
            )
            .await?
        {
            Sent::Ok(doc) => Ok(Some(doc)),
            Sent::NotFound | Sent::Conflict => Ok(None),
        }
    }

    /// The app's copy of `id` when an update must carry some of it: an attribute the
    /// mapping leaves without a value (ignored, so the app keeps it; a PUT without it
    /// may clear it), or, for users, a role the rules may keep. Read just before the
    /// update rather than remembered from the last delivery, so a value someone set in
    /// the app since then is the one kept.
    async fn copy_if_needed(
        &self,
        change: &Change,
        doc: &Value,
    ) -> Result<Option<Value>, TargetError> {
        let Some(id) = &change.target_id else {
            return Ok(None);
        };
        let role_needs = change.kind == ResourceKind::User
            && self
                .rules(&change.provider)
                .is_some_and(|r| r.needs_current(doc, &change.relations.groups));
        if role_needs || !self.mapping.left_out(change.kind, doc).is_empty() {
            self.app_copy(change.kind, id).await
        } else {
            Ok(None)
        }
    }

    async fn apply_user(
        &self,
        change: &Change,
        doc: &Value,
    ) -> Result<Option<String>, TargetError> {
        // An account already at the app (recorded, or just adopted by the matching
        // rules) may hold a role set by hand that the rules must keep, and values for
        // the attributes the mapping ignores.
        let have = self.copy_if_needed(change, doc).await?;
        let (body, _) =
            self.explain_user(&change.provider, doc, &change.relations, have.as_ref())?;
        let id = match &change.target_id {
            Some(id) if self.replace(ResourceKind::User, id, &body).await? => id.clone(),
            _ => self.post(ResourceKind::User, &body, &change.name).await?,
        };
        Ok(Some(id))
    }

    /// The same target with attribute mappings.
    pub fn with_mapping(mut self, mapping: Mapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// The same target with a deprovisioning policy.
    pub fn with_on_delete(mut self, on_delete: OnDelete) -> Self {
        self.on_delete = on_delete;
        self
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Sent, TargetError> {
        let url = format!("{}/{path}", self.base);
        let body = body.map(|b| b.to_string());
        let Reply {
            status,
            retry_after,
            response,
        } = send(
            &self.pacer,
            &self.credentials,
            Shown {
                method: &method,
                path: &url,
            },
            || {
                let mut r = self
                    .http
                    .request(method.clone(), &url)
                    .header(reqwest::header::ACCEPT, SCIM_JSON);
                if let Some(b) = &body {
                    r = r
                        .header(reqwest::header::CONTENT_TYPE, SCIM_JSON)
                        .body(b.clone());
                }
                r
            },
        )
        .await?;
        if status == reqwest::StatusCode::NOT_FOUND && method != reqwest::Method::POST {
            return Ok(Sent::NotFound);
        }
        if status == reqwest::StatusCode::CONFLICT {
            return Ok(Sent::Conflict);
        }
        let text = body_prefix(response, 4 * 1024 * 1024).await;
        classify(status, retry_after.as_deref(), &text, self.clock.now())?;
        if text.trim().is_empty() {
            return Ok(Sent::Ok(Value::Null));
        }
        let body: Value = serde_json::from_str(&text).map_err(|_| TargetError::Transient {
            message: format!("HTTP {status} with a body that is not JSON"),
            retry_after: None,
        })?;
        // Some apps answer 200 with a SCIM error body: believe the body.
        let is_error = body["schemas"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == SCIM_ERROR));
        if is_error {
            let code = body["status"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| body["status"].as_u64().and_then(|n| u16::try_from(n).ok()))
                .and_then(|n| reqwest::StatusCode::from_u16(n).ok())
                .filter(|c| !c.is_success())
                .unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
            classify(
                code,
                None,
                &format!("(sent with HTTP {status}) {text}"),
                self.clock.now(),
            )?;
        }
        Ok(Sent::Ok(body))
    }

    async fn patch_supported(&self) -> bool {
        *self
            .patch
            .get_or_init(|| async {
                match self
                    .send(reqwest::Method::GET, "ServiceProviderConfig", None)
                    .await
                {
                    Ok(Sent::Ok(v)) => v["patch"]["supported"].as_bool().unwrap_or(false),
                    // Unknown: PUT with the whole list works everywhere.
                    _ => false,
                }
            })
            .await
    }

    /// Creates the resource. Matching ran before (in the engine), so a 409 means the
    /// app holds an account the rules did not pick: not the bridge's to take over.
    async fn post(
        &self,
        kind: ResourceKind,
        body: &Value,
        name: &str,
    ) -> Result<String, TargetError> {
        match self
            .send(reqwest::Method::POST, endpoint(kind), Some(body))
            .await?
        {
            Sent::Ok(created) => {
                created["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| TargetError::Permanent {
                        message: "the target created the resource but returned no id".into(),
                    })
            }
            Sent::Conflict | Sent::NotFound => Err(TargetError::Permanent {
                message: format!(
                    "{} answered 409 Conflict creating {name}: it already holds a {} the matching rules ({}) did not find, so it was left alone; extend [targets.matching] to adopt it",
                    self.name,
                    kind.name().to_lowercase(),
                    self.matching.of(kind).join(", ")
                ),
            }),
        }
    }

    /// Resources whose `attr` equals `value`, as the app lists them.
    async fn search(
        &self,
        kind: ResourceKind,
        attr: &str,
        value: &str,
    ) -> Result<Vec<Value>, TargetError> {
        let filter = format!("{attr} eq \"{}\"", quote(value));
        let mut url = url::Url::parse("http://x/").map_err(|e| TargetError::Permanent {
            message: e.to_string(),
        })?;
        url.query_pairs_mut()
            .append_pair("filter", &filter)
            .append_pair("count", "10");
        let path = format!("{}?{}", endpoint(kind), url.query().unwrap_or_default());
        Ok(match self.send(reqwest::Method::GET, &path, None).await? {
            Sent::Ok(list) => list["Resources"].as_array().cloned().unwrap_or_default(),
            Sent::NotFound | Sent::Conflict => Vec::new(),
        })
    }

    /// PUT; `false` when the target no longer has the resource.
    async fn replace(
        &self,
        kind: ResourceKind,
        id: &str,
        body: &Value,
    ) -> Result<bool, TargetError> {
        match self
            .send(
                reqwest::Method::PUT,
                &format!("{}/{id}", endpoint(kind)),
                Some(body),
            )
            .await?
        {
            Sent::Ok(_) => Ok(true),
            Sent::NotFound => Ok(false),
            Sent::Conflict => Err(TargetError::Permanent {
                message: format!(
                    "the target refused the update of {id} with 409 Conflict (uniqueness)"
                ),
            }),
        }
    }

    fn member_list(change: &Change, ids: &[String]) -> Result<Vec<Value>, TargetError> {
        ids.iter()
            .map(|id| {
                change
                    .member_ids
                    .get(id)
                    .map(|t| json!({ "value": t }))
                    .ok_or_else(|| TargetError::MemberPending {
                        message: format!(
                            "member {id} is not at the target yet; waiting for its own delivery"
                        ),
                    })
            })
            .collect()
    }

    async fn apply_group(
        &self,
        change: &Change,
        doc: &Value,
    ) -> Result<Option<String>, TargetError> {
        // A mapping that refuses the group dead-letters it, whichever way it goes.
        let mapped = self.mapping.scim_document(ResourceKind::Group, doc)?;
        if let Some(all) = &change.members {
            let ids: Vec<String> = all.iter().map(|m| m.value.clone()).collect();
            let members = Self::member_list(change, &ids)?;
            // The whole group is replaced: attributes the mapping ignores carry the
            // app's values.
            let mapped = match self.copy_if_needed(change, doc).await? {
                Some(have) => {
                    self.mapping
                        .scim_document_over(ResourceKind::Group, doc, Some(&have))?
                }
                None => mapped,
            };
            let mut body = outbound(mapped, ResourceKind::Group);
            body["members"] = Value::Array(members);
            let id = match &change.target_id {
                Some(id) if self.replace(ResourceKind::Group, id, &body).await? => id.clone(),
                _ => self.post(ResourceKind::Group, &body, &change.name).await?,
            };
            return Ok(Some(id));
        }
        let Some(id) = change.target_id.clone() else {
            return Err(TargetError::Permanent {
                message: "group delivered without members or target id".into(),
            });
        };
        let (added, removed) = change.member_deltas();
        let mut ops = vec![
            json!({"op": "replace", "value": {"displayName": doc.get("displayName").cloned().unwrap_or(Value::Null)}}),
        ];
        if let Some(ext) = doc.get("externalId") {
            ops.push(json!({"op": "replace", "value": {"externalId": ext}}));
        }
        if !added.is_empty() {
            ops.push(json!({"op": "add", "path": "members", "value": Self::member_list(change, &added)?}));
        }
        for r in &removed {
            // A member never delivered to the target is not there to remove.
            if let Some(t) = change.member_ids.get(r) {
                ops.push(
                    json!({"op": "remove", "path": format!("members[value eq \"{}\"]", quote(t))}),
                );
            }
        }
        let patch = json!({"schemas": [PATCH_OP], "Operations": ops});
        match self
            .send(
                reqwest::Method::PATCH,
                &format!("Groups/{id}"),
                Some(&patch),
            )
            .await?
        {
            Sent::Ok(_) => Ok(Some(id)),
            // Gone at the target: the engine's next attempt sends the whole group.
            Sent::NotFound => Err(TargetError::Transient {
                message: format!("group {id} is gone at the target; it will be created again"),
                retry_after: None,
            }),
            Sent::Conflict => Err(TargetError::Permanent {
                message: format!("the target refused the change to group {id} with 409 Conflict"),
            }),
        }
    }
}

#[async_trait::async_trait]
impl Target for ScimTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn desired(
        &self,
        provider: &str,
        kind: ResourceKind,
        doc: &Value,
        relations: &Relations,
        have: Option<&Value>,
    ) -> Value {
        // A document the mapping refuses compares as stored; its delivery dead-letters.
        let shaped = match kind {
            ResourceKind::User => self
                .explain_user(provider, doc, relations, have)
                .map(|(d, _)| d),
            ResourceKind::Group => self.mapping.scim_document_over(kind, doc, have),
        };
        shaped.unwrap_or_else(|_| doc.clone())
    }

    fn relation_needs(&self, provider: &str) -> RelationNeeds {
        let rules = self.rules(provider);
        RelationNeeds {
            groups: rules.is_some_and(RoleRules::uses_groups),
            nested: self.expand_nested,
            // A manager reference names the bridge's id, which means nothing here.
            manager: true,
        }
    }

    fn followups(&self, change: &Change) -> Vec<String> {
        if change.kind != ResourceKind::Group
            || !self
                .rules(&change.provider)
                .is_some_and(RoleRules::uses_groups)
        {
            return Vec::new();
        }
        // Members who joined or left may have a different role now.
        let (mut ids, removed) = change.member_deltas();
        ids.extend(removed);
        for m in change.members.iter().flatten() {
            if m.kind != Some(ResourceKind::Group) && !ids.contains(&m.value) {
                ids.push(m.value.clone());
            }
        }
        ids
    }

    fn compared_fields(&self, provider: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .rules(provider)
            .map(|r| r.field.clone())
            .into_iter()
            .collect();
        out.push(format!("{}:manager.value", crate::identity::ENTERPRISE));
        out
    }

    fn delete_after(&self) -> Option<std::time::Duration> {
        self.delete_after
    }

    fn protected_role(&self, provider: &str, have: &Value) -> Option<String> {
        let rules = self.rules(provider)?;
        let value = role_at(have, &rules.field)?;
        let role = rules.role_of_value(&value)?;
        rules.is_protected(role).then(|| role.to_owned())
    }

    async fn delete_user(&self, target_id: &str) -> Result<(), TargetError> {
        // Already gone is as good as deleted.
        self.send(reqwest::Method::DELETE, &format!("Users/{target_id}"), None)
            .await?;
        Ok(())
    }

    fn expand_nested(&self) -> bool {
        self.expand_nested
    }

    fn member_needs(&self) -> MemberNeeds {
        // Before discovery has run, deltas would be guesswork.
        if self.patch.get().copied().unwrap_or(false) {
            MemberNeeds::Deltas
        } else {
            MemberNeeds::Full
        }
    }

    async fn snapshot(&self, progress: &Progress<'_>) -> Result<Option<Snapshot>, TargetError> {
        let mut snap = Snapshot::default();
        for (kind, into) in [
            (ResourceKind::User, &mut snap.users),
            (ResourceKind::Group, &mut snap.groups),
        ] {
            let mut start = 1u64;
            loop {
                let path = format!("{}?startIndex={start}&count={PAGE}", endpoint(kind));
                let Sent::Ok(page) = self.send(reqwest::Method::GET, &path, None).await? else {
                    return Err(TargetError::Permanent {
                        message: format!("GET {path} answered 404 or 409"),
                    });
                };
                let items = page["Resources"].as_array().cloned().unwrap_or_default();
                let got = items.len() as u64;
                into.extend(items);
                progress(endpoint(kind), into.len());
                let total = page["totalResults"].as_u64().unwrap_or(0);
                start += got;
                // Stop on a short or empty page too: some servers miscount totalResults.
                if got == 0 || start > total {
                    break;
                }
            }
        }
        Ok(Some(snap))
    }

    async fn deactivate(&self, target_id: &str) -> Result<(), TargetError> {
        let body = if self.patch_supported().await {
            json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": false}}]})
        } else {
            let Sent::Ok(mut doc) = self
                .send(reqwest::Method::GET, &format!("Users/{target_id}"), None)
                .await?
            else {
                return Ok(());
            };
            doc["active"] = Value::Bool(false);
            outbound(doc, ResourceKind::User)
        };
        let method = if body.get("Operations").is_some() {
            reqwest::Method::PATCH
        } else {
            reqwest::Method::PUT
        };
        self.send(method, &format!("Users/{target_id}"), Some(&body))
            .await?;
        Ok(())
    }

    fn match_keys(&self, _provider: &str, kind: ResourceKind, doc: &Value) -> Vec<MatchKey> {
        let Ok(out) = self.mapping.scim_document(kind, doc) else {
            return Vec::new();
        };
        self.matching
            .of(kind)
            .iter()
            .filter_map(|rule| {
                let (field, value) = match rule.as_str() {
                    "externalId" => (MatchField::ExternalId, out.get("externalId")?.as_str()?),
                    "userName" => (MatchField::UserName, out.get("userName")?.as_str()?),
                    "displayName" => (MatchField::DisplayName, out.get("displayName")?.as_str()?),
                    "email" => {
                        let emails = out.get("emails")?.as_array()?;
                        let e = emails
                            .iter()
                            .find(|e| e.get("primary") == Some(&Value::Bool(true)))
                            .or_else(|| emails.first())?;
                        (MatchField::Email, e.get("value")?.as_str()?)
                    }
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
        let attr = match key.field {
            MatchField::ExternalId => "externalId",
            MatchField::UserName => "userName",
            MatchField::DisplayName => "displayName",
            MatchField::Email => "emails.value",
            MatchField::Id => "id",
        };
        // Apps differ on case-sensitivity: `candidates` compares as matching does.
        Ok(key.candidates(&self.search(kind, attr, &key.value).await?))
    }

    fn refuses(&self, _provider: &str, kind: ResourceKind, doc: &Value) -> Option<String> {
        self.mapping
            .scim_document(kind, doc)
            .err()
            .map(|e| e.to_string())
    }

    async fn apply(&self, change: &Change) -> Result<Option<String>, TargetError> {
        let supported = self.patch_supported().await;
        match &change.state {
            State::Deleted
                if change.kind == ResourceKind::User && self.on_delete == OnDelete::Deactivate =>
            {
                // The account and its data stay; assigned again, the user is matched by
                // externalId or userName and gets the same account back, active.
                if let Some(id) = &change.target_id {
                    self.deactivate(id).await?;
                }
                Ok(change.target_id.clone())
            }
            State::Deleted => {
                if let Some(id) = &change.target_id {
                    // Already gone is as good as deleted.
                    self.send(
                        reqwest::Method::DELETE,
                        &format!("{}/{id}", endpoint(change.kind)),
                        None,
                    )
                    .await?;
                }
                Ok(None)
            }
            State::Present(doc) if change.kind == ResourceKind::Group => {
                if !supported && change.members.is_none() {
                    return Err(TargetError::Transient {
                        message: "the target has no PATCH; the whole member list is needed".into(),
                        retry_after: None,
                    });
                }
                self.apply_group(change, doc).await
            }
            State::Present(doc) => self.apply_user(change, doc).await,
        }
    }
}

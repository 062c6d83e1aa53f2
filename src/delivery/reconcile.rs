//! Reconciliation: read what a target holds, compare it with what the bridge says it
//! should hold, and produce a plan — create, update, link (adopt an existing resource),
//! fix membership, deactivate users the bridge does not know. Applying a plan queues the
//! resources for the engine (so the guard, pacing and retries apply) and deactivates the
//! unknown users directly, within the guard's threshold.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::guard::{Base, GuardConfig, over_limit};
use super::matching::{
    Candidate, Correlation, SnapshotIndex, decide, holds, name_of, resource_label,
};
use super::relations::gather;
use super::scoping;
use super::target::{Progress, Target, TargetError};
use crate::config::Unmanaged;
use crate::identity::{Relations, Scope, clears_role, role_at};
use crate::scim::ResourceKind;
use crate::scim::username::comparison_key;
use crate::store::{Managed, Store, StoreError, StoredResource, TargetLink};

/// What a plan item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Missing at the target.
    Create,
    /// At the target, with different attributes.
    Update,
    /// An existing account the bridge does not manage yet, matched exactly once by the
    /// target's matching rules: adopt it (record it as the bridge's, then update it).
    Adopt,
    /// A group whose members differ.
    Members,
    /// An account the bridge manages that must lose access (deleted in the IdP), or,
    /// where the target opts in, an active account the bridge does not manage.
    Deactivate,
    /// Managed by the bridge and now out of the target's scope: delivered again, so
    /// the target deprovisions it as its `on_delete` says.
    Deprovision,
    /// Cannot be delivered as it stands (the target's mapping refuses it, or it waits
    /// in the dead-letter queue): not queued again until fixed.
    Blocked,
    /// Several existing accounts match, or the match is someone else's: nothing is
    /// created or linked until the admin settles it.
    Ambiguous,
    /// Active at the target, neither created nor adopted by the bridge: left alone.
    Unmanaged,
    /// Would be deactivated or deleted, but the guard or a protected role protects
    /// it: left alone.
    Protected,
    /// Deleted in the IdP longer ago than the target's `delete_after`: the deactivated
    /// account is deleted.
    Delete,
}

impl Action {
    /// Its name, as `sync` prints it and its JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Adopt => "adopt",
            Action::Members => "members",
            Action::Deactivate => "deactivate",
            Action::Deprovision => "deprovision",
            Action::Protected => "protected",
            Action::Delete => "delete",
            Action::Blocked => "blocked",
            Action::Ambiguous => "ambiguous",
            Action::Unmanaged => "unmanaged",
        }
    }

    /// Whether applying an item with this action changes anything at the target or
    /// in the store.
    pub fn changes(self) -> bool {
        !matches!(
            self,
            Action::Protected | Action::Blocked | Action::Ambiguous | Action::Unmanaged
        )
    }

    /// Whether an item with it waits for an admin to settle it.
    pub fn needs_attention(self) -> bool {
        matches!(self, Action::Ambiguous | Action::Blocked)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub action: Action,
    #[serde(serialize_with = "kind_name")]
    pub kind: ResourceKind,
    /// The bridge's resource (absent for users only the target has).
    pub provider: Option<String>,
    pub id: Option<String>,
    pub target_id: Option<String>,
    /// userName or displayName.
    pub name: String,
    /// What differs.
    pub detail: String,
    /// The matching rule that found the account ([`Action::Adopt`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<String>,
}

fn kind_name<S: serde::Serializer>(k: &ResourceKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

/// A reconciliation plan for one target.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub target: String,
    pub desired_users: usize,
    pub desired_groups: usize,
    pub target_users: usize,
    pub target_groups: usize,
    /// The bridge's resources outside the target's scope (not sent there).
    pub out_of_scope: usize,
    /// Active accounts at the target the bridge does not manage.
    pub unmanaged: usize,
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// Turns deactivations of accounts the guard protects (lower-cased userNames) into
    /// [`Action::Protected`], so the plan shows what will really happen.
    pub fn protect(mut self, protected: &[String]) -> Plan {
        let protected = protected_keys(protected);
        for item in &mut self.items {
            if is_deprovision(item.action) && is_protected(item, &protected) {
                item.action = Action::Protected;
                item.detail = "protected by [targets.guard] protected, so never deactivated or deleted by reconciliation".into();
            }
        }
        self
    }

    /// One line: how many of each change the plan holds.
    pub fn summary(&self) -> String {
        let count = |a| self.items.iter().filter(|i| i.action == a).count();
        format!(
            "{} create, {} update, {} adopt, {} membership, {} deactivate, {} deprovision (left scope), {} delete",
            count(Action::Create),
            count(Action::Update),
            count(Action::Adopt),
            count(Action::Members),
            count(Action::Deactivate),
            count(Action::Deprovision),
            count(Action::Delete),
        )
    }

    /// A fingerprint of what applying the plan would do: its items, whatever order
    /// they were found in. An operator confirms the plan they read by its digest, so
    /// a world that changed since is noticed before anything is applied.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut items: Vec<String> = self
            .items
            .iter()
            .map(|i| serde_json::to_string(i).unwrap_or_default())
            .collect();
        items.sort();
        let mut h = Sha256::new();
        h.update(self.target.as_bytes());
        for i in &items {
            h.update([0]);
            h.update(i.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// One target's reconciliation as the daemon runs it: what `sync` and the schedule
/// plan and apply, for the console to run on request.
#[derive(Clone)]
pub struct Reconciler {
    pub target: std::sync::Arc<dyn Target>,
    pub providers: Vec<String>,
    pub policy: Policy,
    pub guard: GuardConfig,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("target", &self.target.name())
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// The plan at `now`, with the guard's protected accounts marked as such.
    pub async fn plan(
        &self,
        store: &dyn Store,
        progress: &Progress<'_>,
        now: DateTime<Utc>,
    ) -> Result<Plan, ReconcileError> {
        Ok(plan(
            store,
            self.target.as_ref(),
            &self.providers,
            &self.policy,
            progress,
            now,
        )
        .await?
        .protect(&self.guard.protected))
    }

    /// Applies `plan` (one [`Self::plan`] made) within the guard.
    pub async fn apply(
        &self,
        store: &dyn Store,
        plan: &Plan,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        apply(store, self.target.as_ref(), plan, &self.guard, now).await
    }
}

/// Whether the action takes an account away (and so counts against the guard).
fn is_deprovision(action: Action) -> bool {
    matches!(
        action,
        Action::Deactivate | Action::Delete | Action::Deprovision
    )
}

/// The guard's `protected` list keyed once, compared as userNames are.
fn protected_keys(protected: &[String]) -> HashSet<String> {
    protected.iter().map(|p| comparison_key(p)).collect()
}

/// Whether the keyed `protected` list names this item.
fn is_protected(item: &PlanItem, protected: &HashSet<String>) -> bool {
    protected.contains(&comparison_key(&item.name))
}

/// Why reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0} cannot be read, so it cannot be reconciled (a webhook keeps no state)")]
    Unreadable(String),
    #[error("reading the target failed: {0}")]
    Target(#[from] TargetError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// User attributes compared: the ones identity providers set and apps act on.
const USER_FIELDS: &[&[&str]] = &[
    &["userName"],
    &["externalId"],
    &["displayName"],
    &["title"],
    &["name", "givenName"],
    &["name", "familyName"],
];

fn at<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, k| v.get(k))
}

fn primary_email(doc: &Value) -> Option<String> {
    let emails = doc.get("emails")?.as_array()?;
    emails
        .iter()
        .find(|e| e.get("primary") == Some(&Value::Bool(true)))
        .or_else(|| emails.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::to_lowercase)
}

/// What differs between the bridge's user and the target's, as `field: a → b`;
/// `extra` are the SCIM paths the target's rules set (role, manager).
fn user_diff(want: &Value, have: &Value, extra: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for field in extra {
        let (w, h) = (role_at(want, field), role_at(have, field));
        // A field left out is not compared; one sent empty removes the app's value.
        if (w.is_some() || clears_role(want, field)) && w != h {
            out.push(format!(
                "{field}: {} → {}",
                h.map_or_else(|| "-".into(), |h| format!("{h:?}")),
                w.map_or_else(|| "-".into(), |w| format!("{w:?}"))
            ));
        }
    }
    for path in USER_FIELDS {
        let (w, h) = (at(want, path), at(have, path));
        if w.is_some() && w != h {
            out.push(format!("{}: {} → {}", path.join("."), show(h), show(w)));
        }
    }
    let active = |d: &Value| d.get("active").and_then(Value::as_bool).unwrap_or(true);
    if active(want) != active(have) {
        out.push(format!("active: {} → {}", active(have), active(want)));
    }
    if primary_email(want).is_some() && primary_email(want) != primary_email(have) {
        out.push(format!(
            "email: {} → {}",
            primary_email(have).unwrap_or_else(|| "-".into()),
            primary_email(want).unwrap_or_default()
        ));
    }
    out
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    }
}

fn text(doc: &Value, key: &str) -> Option<String> {
    doc.get(key).and_then(Value::as_str).map(str::to_owned)
}

async fn all(
    store: &dyn Store,
    provider: &str,
    kind: ResourceKind,
) -> Result<Vec<StoredResource>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.scan(provider, kind, after, 0, 1000).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = n,
            None => return Ok(out),
        }
    }
}

/// What reconciliation is allowed to do beyond the target's own rules.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The target's scope; `None`: every user and group of its providers.
    pub scope: Option<Scope>,
    /// What to do with active accounts the bridge does not manage.
    pub unmanaged: Unmanaged,
}

/// The plan for `target`, whose desired state is the resources of `providers` in the
/// target's scope, at `now` (retention is measured from it).
///
/// Correlation follows the target's matching rules (as delivery does): an account the
/// bridge does not manage yet is linked only when exactly one matches. Accounts the
/// bridge does not manage are listed as [`Action::Unmanaged`] and left alone unless
/// the policy opts in to deactivating them.
pub async fn plan(
    store: &dyn Store,
    target: &dyn Target,
    providers: &[String],
    policy: &Policy,
    progress: &Progress<'_>,
    now: DateTime<Utc>,
) -> Result<Plan, ReconcileError> {
    let name = target.name().to_owned();
    let snapshot = target
        .snapshot(progress)
        .await?
        .ok_or_else(|| ReconcileError::Unreadable(name.clone()))?;
    let mut plan = Plan {
        target: name.clone(),
        target_users: snapshot.users.len(),
        target_groups: snapshot.groups.len(),
        ..Plan::default()
    };
    let by_id = |docs: &[Value]| -> HashMap<String, Value> {
        docs.iter()
            .filter_map(|d| Some((text(d, "id")?, d.clone())))
            .collect()
    };
    let remote_users = by_id(&snapshot.users);
    let remote_groups = by_id(&snapshot.groups);
    let user_index = SnapshotIndex::new(&snapshot.users);
    let group_index = SnapshotIndex::new(&snapshot.groups);
    // Who the bridge manages there, read once: by target id (whose is this account?)
    // and by bridge resource (which account is this person's?).
    let links = store.managed(&name).await?;
    let linked: HashMap<(String, ResourceKind, String), String> = links
        .iter()
        .map(|m| {
            (
                (m.provider.clone(), m.kind, m.resource_id.clone()),
                m.link.target_id.clone(),
            )
        })
        .collect();
    let managed: HashMap<(ResourceKind, String), Managed> = links
        .into_iter()
        .map(|m| ((m.kind, m.link.target_id.clone()), m))
        .collect();
    let dead: HashMap<(String, ResourceKind, String), (i64, String)> = store
        .dead_letters(Some(&name))
        .await?
        .into_iter()
        .map(|d| ((d.provider, d.kind, d.resource_id), (d.id, d.error)))
        .collect();
    // Target ids this plan accounts for: linked, planned for linking, or handled.
    let mut claimed: HashSet<(ResourceKind, String)> = HashSet::new();
    // Bridge id → target id of the users and groups found there, for group
    // membership: a group nested in another is a member at the target too.
    let mut member_target: HashMap<String, String> = HashMap::new();

    for provider in providers {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let desired = all(store, provider, kind).await?;
            let (remote, index, docs) = match kind {
                ResourceKind::User => {
                    plan.desired_users += desired.len();
                    (&remote_users, &user_index, &snapshot.users)
                }
                ResourceKind::Group => {
                    plan.desired_groups += desired.len();
                    (&remote_groups, &group_index, &snapshot.groups)
                }
            };
            let extra = target.compared_fields(provider);
            // Groups found at the target, with what they should hold and what they do.
            let mut groups: Vec<(PlanItem, Value, Value)> = Vec::new();
            for r in desired {
                let label = resource_label(kind, &r.doc);
                let item = |action, tid: Option<String>, detail: String| PlanItem {
                    action,
                    kind,
                    provider: Some(provider.clone()),
                    id: Some(r.id.clone()),
                    target_id: tid,
                    name: label.clone(),
                    detail,
                    matched_by: None,
                };
                let mapped = linked.get(&(provider.clone(), kind, r.id.clone())).cloned();
                let found = mapped.clone().filter(|t| remote.contains_key(t));
                let scope = scoping::decide(
                    store,
                    &name,
                    policy.scope.as_ref(),
                    provider,
                    kind,
                    &r.id,
                    &r.doc,
                )
                .await?;
                if !scope.in_scope {
                    // Out of scope: nothing to send, but an account the bridge sent
                    // there before is deprovisioned (delivery does it as `on_delete`
                    // says, under the guard).
                    match &found {
                        Some(tid) if is_live(kind, remote.get(tid)) => {
                            claimed.insert((kind, tid.clone()));
                            plan.items.push(item(
                                Action::Deprovision,
                                Some(tid.clone()),
                                format!("left the scope: {}", scope.why),
                            ));
                        }
                        Some(tid) => {
                            claimed.insert((kind, tid.clone()));
                            plan.out_of_scope += 1;
                        }
                        None => plan.out_of_scope += 1,
                    }
                    continue;
                }
                if let Some((dl, error)) = dead.get(&(provider.clone(), kind, r.id.clone())) {
                    if let Some(tid) = &found {
                        claimed.insert((kind, tid.clone()));
                        member_target.insert(r.id.clone(), tid.clone());
                    }
                    plan.items.push(item(
                        Action::Blocked,
                        found.clone(),
                        format!("in the dead-letter queue (dlq show {dl}): {error}"),
                    ));
                    continue;
                }
                if let Some(why) = target.refuses(provider, kind, &r.doc) {
                    plan.items.push(item(
                        Action::Blocked,
                        found.clone(),
                        format!("cannot be delivered: {why}"),
                    ));
                    continue;
                }
                let (tid, rule) = match found {
                    Some(t) => (t, None),
                    None => {
                        let mut candidates = Vec::new();
                        for key in target.match_keys(provider, kind, &r.doc) {
                            let mut found = Vec::new();
                            for i in index.find(&key) {
                                let Some(cand) = Candidate::from_doc(&docs[*i]) else {
                                    continue;
                                };
                                let owner = match managed.get(&(kind, cand.target_id.clone())) {
                                    Some(m) if holds(store, m, provider, &r.id).await? => Some(
                                        name_of(store, &m.provider, m.kind, &m.resource_id).await?,
                                    ),
                                    _ => claimed
                                        .contains(&(kind, cand.target_id.clone()))
                                        .then(|| "another user or group in this plan".into()),
                                };
                                found.push((cand, owner));
                            }
                            let stop = !found.is_empty();
                            candidates.push((key, found));
                            if stop {
                                break;
                            }
                        }
                        match decide(&name, &label, candidates) {
                            Correlation::Absent => {
                                let why = if mapped.is_some() {
                                    "gone at the target"
                                } else {
                                    "not at the target"
                                };
                                plan.items.push(item(Action::Create, None, why.into()));
                                continue;
                            }
                            Correlation::Ambiguous(why) => {
                                plan.items.push(item(Action::Ambiguous, None, why));
                                continue;
                            }
                            Correlation::Found { target_id, rule } => (target_id, Some(rule)),
                        }
                    }
                };
                claimed.insert((kind, tid.clone()));
                member_target.insert(r.id.clone(), tid.clone());
                if let Some(rule) = rule {
                    plan.items.push(PlanItem {
                        matched_by: Some(rule.clone()),
                        ..item(
                            Action::Adopt,
                            Some(tid.clone()),
                            format!("existing account matched by {rule}: adopt it"),
                        )
                    });
                }
                let have = remote.get(&tid).cloned().unwrap_or(Value::Null);
                match kind {
                    ResourceKind::User => {
                        let needs = target.relation_needs(provider);
                        let relations =
                            gather(store, &name, needs, provider, &r.id, &r.doc).await?;
                        // Rules that keep the app's role need the app's copy.
                        let want = target.desired(provider, kind, &r.doc, &relations, Some(&have));
                        let diff = user_diff(&want, &have, &extra);
                        if !diff.is_empty() {
                            plan.items
                                .push(item(Action::Update, Some(tid), diff.join("; ")));
                        }
                    }
                    ResourceKind::Group => {
                        let want = target.desired(
                            provider,
                            kind,
                            &r.doc,
                            &Relations::default(),
                            Some(&have),
                        );
                        groups.push((item(Action::Members, Some(tid), String::new()), want, have));
                    }
                }
            }
            // Compared once every group is found: a nested group may come after the
            // group it is a member of.
            for (item, want, have) in groups {
                let diff = group_diff(
                    store,
                    target,
                    provider,
                    item.id.as_deref().unwrap_or_default(),
                    &want,
                    &have,
                    &item.name,
                    &member_target,
                )
                .await?;
                if !diff.is_empty() {
                    plan.items.push(PlanItem {
                        detail: diff.join("; "),
                        ..item
                    });
                }
            }
        }
    }
    if let Some(keep) = target.delete_after() {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        for o in store.orphaned_users(&name).await? {
            // Assigned again and matched to the same account: it is in use.
            if claimed.contains(&(ResourceKind::User, o.target_id.clone())) {
                continue;
            }
            let Some(doc) = remote_users.get(&o.target_id) else {
                continue;
            };
            claimed.insert((ResourceKind::User, o.target_id.clone()));
            // Events outlive `delete_after` (the config checks it), so a pruned delete
            // event means retention has passed.
            let due = o.deleted_at.is_none_or(|at| at + keep <= now);
            let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
            let since = o.deleted_at.map_or_else(
                || "long ago".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
            );
            let (action, detail) = match (due, target.protected_role(&o.provider, doc)) {
                (true, Some(role)) => (
                    Action::Protected,
                    format!(
                        "deleted in the IdP {since}; holds the protected role {role}, so never deleted automatically"
                    ),
                ),
                (true, None) => (
                    Action::Delete,
                    format!("deleted in the IdP {since}; delete_after has passed"),
                ),
                (false, _) if active => (
                    Action::Deactivate,
                    format!("deleted in the IdP {since}; kept deactivated until delete_after"),
                ),
                (false, _) => continue,
            };
            plan.items.push(PlanItem {
                action,
                kind: ResourceKind::User,
                provider: Some(o.provider.clone()),
                id: Some(o.id.clone()),
                target_id: Some(o.target_id.clone()),
                name: text(doc, "userName").unwrap_or_default(),
                detail,
                matched_by: None,
            });
        }
    }
    // In name order: people read the list.
    let mut rest: Vec<(&String, &Value)> = remote_users.iter().collect();
    rest.sort_by_key(|(tid, doc)| (text(doc, "userName").map(|n| n.to_lowercase()), *tid));
    for (tid, doc) in rest {
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
        if claimed.contains(&(ResourceKind::User, tid.clone())) || !active {
            continue;
        }
        let who = text(doc, "userName").unwrap_or_else(|| tid.clone());
        let (action, provider, id, detail) = match managed.get(&(ResourceKind::User, tid.clone())) {
            // Ours, and the bridge no longer has the person: deleted in the IdP while
            // the delivery that disabled the account failed, or enabled again by hand.
            Some(m) => (
                Action::Deactivate,
                Some(m.provider.clone()),
                Some(m.resource_id.clone()),
                format!(
                    "{}; the identity provider no longer has this user",
                    m.link.origin()
                ),
            ),
            None if policy.unmanaged == Unmanaged::Deactivate => (
                Action::Deactivate,
                None,
                None,
                "not managed by the bridge; deactivated because the target sets unmanaged = \"deactivate\"".into(),
            ),
            None => {
                plan.unmanaged += 1;
                (
                    Action::Unmanaged,
                    None,
                    None,
                    "not created or adopted by the bridge: left alone".into(),
                )
            }
        };
        plan.items.push(PlanItem {
            action,
            kind: ResourceKind::User,
            provider,
            id,
            target_id: Some(tid.clone()),
            name: who,
            detail,
            matched_by: None,
        });
    }
    Ok(plan)
}

/// Whether the target still holds the resource as live (an active user, or any group).
fn is_live(kind: ResourceKind, doc: Option<&Value>) -> bool {
    match (kind, doc) {
        (_, None) => false,
        (ResourceKind::User, Some(d)) => d.get("active").and_then(Value::as_bool).unwrap_or(true),
        (ResourceKind::Group, Some(d)) => d.get("active").and_then(Value::as_bool).unwrap_or(true),
    }
}

/// What differs between the bridge's group and the target's: name, state and members
/// (only members in the target's scope count as wanted; `member_target` holds the
/// target ids of the users and groups found there).
#[allow(clippy::too_many_arguments)]
async fn group_diff(
    store: &dyn Store,
    target: &dyn Target,
    provider: &str,
    id: &str,
    want: &Value,
    have: &Value,
    label: &str,
    member_target: &HashMap<String, String>,
) -> Result<Vec<String>, StoreError> {
    let mut diff = Vec::new();
    if text(want, "displayName") != text(have, "displayName") {
        diff.push(format!("displayName → {label:?}"));
    }
    if let Some(w) = want.get("active")
        && have.get("active").is_some_and(|h| h != w)
    {
        diff.push(format!("active → {w}"));
    }
    let members = if target.expand_nested() {
        super::relations::flattened_members(store, provider, id).await?
    } else {
        store.members(provider, id).await?
    };
    // Members out of scope never reach the target, so are never wanted there; the
    // others only once they are (member_target), like delivery.
    let want: HashSet<String> = members
        .iter()
        .filter_map(|m| member_target.get(&m.value).map(|t| t.to_lowercase()))
        .collect();
    let got: HashSet<String> = have
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| text(m, "value").map(|v| v.to_lowercase()))
        .collect();
    let missing = want.difference(&got).count();
    let extra = got.difference(&want).count();
    if missing + extra > 0 {
        diff.push(format!("members: {missing} to add, {extra} to remove"));
    }
    Ok(diff)
}

/// What applying a plan did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub queued: usize,
    pub linked: usize,
    pub deactivated: usize,
    /// Accounts deleted once their retention passed.
    pub deleted: usize,
    /// Deactivations and deletions held back because they exceed the guard's threshold.
    pub held_back: usize,
    /// Unknown users left alone because the guard protects them.
    pub protected: usize,
    pub errors: Vec<String>,
}

/// Applies `plan`: records links, queues creates, updates and membership fixes for the
/// engine, and deactivates unknown users — never a protected account, and none at all
/// when there are more than the guard's `max_deprovisions`, since that smells of a
/// mis-scoped sync.
pub async fn apply(
    store: &dyn Store,
    target: &dyn Target,
    plan: &Plan,
    guard_config: &GuardConfig,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let mut out = Applied::default();
    let name = target.name();
    // Whether or not the caller marked them, protected accounts are never deactivated.
    let keys = protected_keys(&guard_config.protected);
    let protected = |i: &PlanItem| {
        i.action == Action::Protected || (is_deprovision(i.action) && is_protected(i, &keys))
    };
    let deactivations = plan
        .items
        .iter()
        .filter(|i| is_deprovision(i.action) && !protected(i))
        .count() as u64;
    // Planned deactivations count against the guard too: above the threshold they are
    // held back and the guard trips, until `approve` opens a window for them.
    let guard = store.guard(name).await?;
    let approved = guard.tripped_at.is_none() && guard.approved_until.is_some_and(|u| u > now);
    let managed = store.count_managed(name, ResourceKind::User).await?;
    let base = Base::managed_or(
        managed,
        (plan.desired_users as u64, "users the bridge has".into()),
    );
    let over = over_limit(guard_config, deactivations, &base);
    let hold = guard.tripped_at.is_some() || (over.is_some() && !approved);
    if let (Some(why), false) = (over, approved) {
        let reason = format!("reconciliation planned {why}");
        tracing::warn!(target_name = %name, %reason, "mass-deprovisioning guard tripped");
        store.trip_guard(name, &reason, now).await?;
    }
    let mut queued: HashSet<(String, String)> = HashSet::new();
    for item in &plan.items {
        if protected(item) {
            out.protected += 1;
            continue;
        }
        match (item.action, &item.provider, &item.id) {
            (Action::Deactivate, _, _) => {
                if hold {
                    out.held_back += 1;
                    continue;
                }
                if let Some(tid) = &item.target_id {
                    match target.deactivate(tid).await {
                        Ok(()) => out.deactivated += 1,
                        Err(e) => out
                            .errors
                            .push(format!("deactivating {} ({tid}): {e}", item.name)),
                    }
                }
            }
            (Action::Delete, Some(provider), Some(id)) => {
                if hold {
                    out.held_back += 1;
                    continue;
                }
                let Some(tid) = &item.target_id else {
                    continue;
                };
                match target.delete_user(tid).await {
                    Ok(()) => {
                        store
                            .set_target_id(name, provider, ResourceKind::User, id, None)
                            .await?;
                        out.deleted += 1;
                    }
                    Err(e) => out
                        .errors
                        .push(format!("deleting {} ({tid}): {e}", item.name)),
                }
            }
            (action, Some(provider), Some(id)) => {
                match action {
                    Action::Adopt => {
                        let rule = item.matched_by.as_deref().unwrap_or("reconciliation");
                        let link = item.target_id.clone().map(|t| TargetLink::adopted(t, rule));
                        store
                            .set_target_id(name, provider, item.kind, id, link)
                            .await?;
                        out.linked += 1;
                    }
                    Action::Deprovision if hold => {
                        out.held_back += 1;
                        continue;
                    }
                    // Reported for the admin; queueing them would only dead-letter again.
                    Action::Blocked | Action::Ambiguous | Action::Unmanaged => continue,
                    Action::Create => {
                        // A stale mapping would send updates to a resource that is gone.
                        store
                            .set_target_id(name, provider, item.kind, id, None)
                            .await?;
                    }
                    _ => {}
                }
                if queued.insert((provider.clone(), id.clone())) {
                    store
                        .enqueue_resync(name, provider, item.kind, id, now)
                        .await?;
                    out.queued += 1;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The outcome of the last scheduled reconciliation, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    pub at: Option<DateTime<Utc>>,
    pub next: Option<DateTime<Utc>>,
    /// Plan items found (drift).
    pub drift: usize,
    pub applied: Option<Applied>,
    pub error: Option<String>,
}

/// Reconciles `target` whenever `schedule` fires, until `stop`. `schedule` is in the
/// `cron` crate's form (see `config::normalise_cron`).
pub async fn run_scheduled(
    store: std::sync::Arc<dyn Store>,
    reconciler: std::sync::Arc<Reconciler>,
    schedule: cron::Schedule,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    report: std::sync::Arc<std::sync::Mutex<ReconcileReport>>,
    owner: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let target = &reconciler.target;
    let set = |f: &dyn Fn(&mut ReconcileReport)| match report.lock() {
        Ok(mut r) => f(&mut r),
        Err(p) => f(&mut p.into_inner()),
    };
    loop {
        let now = clock.now();
        let Some(next) = schedule.after(&now).next() else {
            return;
        };
        set(&|r| r.next = Some(next));
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        // Instances sharing a database all wake for this tick; the store lets one run it.
        match store
            .claim_scheduled_run(&format!("reconcile:{}", target.name()), next, &owner)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(target_name = %target.name(), error = %e, "cannot claim the scheduled reconciliation; skipping this run");
                continue;
            }
        }
        let started = clock.now();
        let outcome = match reconciler
            .plan(store.as_ref(), &|_, _| {}, clock.now())
            .await
        {
            Err(e) => Err(e.to_string()),
            Ok(p) => match reconciler.apply(store.as_ref(), &p, clock.now()).await {
                Ok(a) => Ok((p.items.len(), a)),
                Err(e) => Err(e.to_string()),
            },
        };
        match &outcome {
            Ok((drift, a)) => {
                tracing::info!(target_name = %target.name(), drift, queued = a.queued, deactivated = a.deactivated, held_back = a.held_back, "scheduled reconciliation done")
            }
            Err(e) => {
                tracing::warn!(target_name = %target.name(), error = %e, "scheduled reconciliation failed")
            }
        }
        set(&|r| {
            r.at = Some(started);
            match &outcome {
                Ok((drift, a)) => {
                    r.drift = *drift;
                    r.applied = Some(a.clone());
                    r.error = None;
                }
                Err(e) => r.error = Some(e.clone()),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(action: Action, name: &str, detail: &str) -> PlanItem {
        PlanItem {
            action,
            kind: ResourceKind::User,
            provider: Some("entra".into()),
            id: Some(name.into()),
            target_id: Some(name.to_uppercase()),
            name: name.into(),
            detail: detail.into(),
            matched_by: None,
        }
    }

    #[test]
    fn a_plans_digest_follows_what_it_does_not_the_order_it_was_found_in() {
        let a = item(Action::Update, "ada", "displayName: \"x\" → \"Ada\"");
        let b = item(Action::Create, "grace", "");
        let plan = |items: Vec<PlanItem>| Plan {
            target: "dms".into(),
            items,
            ..Plan::default()
        };
        let one = plan(vec![a.clone(), b.clone()]);
        assert_eq!(one.digest(), plan(vec![b.clone(), a.clone()]).digest());
        assert_eq!(one.digest().len(), 64);
        let other = item(Action::Update, "ada", "displayName: \"y\" → \"Ada\"");
        assert_ne!(one.digest(), plan(vec![other, b.clone()]).digest());
        assert_ne!(one.digest(), plan(vec![a.clone()]).digest());
        let elsewhere = Plan {
            target: "hooks".into(),
            ..one.clone()
        };
        assert_ne!(one.digest(), elsewhere.digest());
        assert_eq!(
            one.summary(),
            "1 create, 1 update, 0 adopt, 0 membership, 0 deactivate, 0 deprovision (left scope), 0 delete"
        );
    }
}

//! Reconciliation: read what a target holds, compare it with what the bridge says it
//! should hold, and produce a plan — create, update, link (adopt an existing resource),
//! fix membership, deactivate users the bridge does not know. Applying a plan queues the
//! resources for the engine (so the guard, pacing and retries apply) and deactivates the
//! unknown users directly, within the guard's threshold.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::guard::GuardConfig;
use super::relations::gather;
use super::target::{Progress, Target, TargetError};
use crate::identity::{Relations, role_at};
use crate::scim::ResourceKind;
use crate::store::{Store, StoreError, StoredResource};

/// What a plan item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Missing at the target.
    Create,
    /// At the target, with different attributes.
    Update,
    /// At the target under another id the bridge did not know: adopt it.
    Link,
    /// A group whose members differ.
    Members,
    /// At the target, unknown to the bridge, still active.
    Deactivate,
    /// Would be deactivated or deleted, but the guard or a protected role protects
    /// it: left alone.
    Protected,
    /// Deleted in the IdP longer ago than the target's `delete_after`: the deactivated
    /// account is deleted.
    Delete,
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
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// Turns deactivations of accounts the guard protects (lower-cased userNames) into
    /// [`Action::Protected`], so the plan shows what will really happen.
    pub fn protect(mut self, protected: &[String]) -> Plan {
        for item in &mut self.items {
            if is_deprovision(item.action) && is_protected(item, protected) {
                item.action = Action::Protected;
                item.detail = "protected by [targets.guard] protected, so never deactivated or deleted by reconciliation".into();
            }
        }
        self
    }
}

/// Whether the action takes an account away (and so counts against the guard).
fn is_deprovision(action: Action) -> bool {
    matches!(action, Action::Deactivate | Action::Delete)
}

/// Whether the guard's `protected` list (lower-cased userNames) names this item.
fn is_protected(item: &PlanItem, protected: &[String]) -> bool {
    protected.iter().any(|p| p.eq_ignore_ascii_case(&item.name))
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
        if w.is_some() && w != h {
            out.push(format!(
                "{field}: {} → {}",
                h.map_or_else(|| "-".into(), |h| format!("{h:?}")),
                w.map(|w| format!("{w:?}")).unwrap_or_default()
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

/// The plan for `target`, whose desired state is the resources of `providers`, at
/// `now` (retention is measured from it).
pub async fn plan(
    store: &dyn Store,
    target: &dyn Target,
    providers: &[String],
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
    let index = |docs: &[Value], key: &str| -> HashMap<String, String> {
        docs.iter()
            .filter_map(|d| Some((text(d, key)?.to_lowercase(), text(d, "id")?)))
            .collect()
    };
    let users_by_ext = index(&snapshot.users, "externalId");
    let users_by_name = index(&snapshot.users, "userName");
    let groups_by_ext = index(&snapshot.groups, "externalId");
    let groups_by_name = index(&snapshot.groups, "displayName");
    let mut claimed: HashSet<String> = HashSet::new();
    // Bridge user id → target id, for group membership.
    let mut user_target: HashMap<String, String> = HashMap::new();

    for provider in providers {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let desired = all(store, provider, kind).await?;
            let (remote, by_ext, by_name, name_key) = match kind {
                ResourceKind::User => {
                    plan.desired_users += desired.len();
                    (&remote_users, &users_by_ext, &users_by_name, "userName")
                }
                ResourceKind::Group => {
                    plan.desired_groups += desired.len();
                    (
                        &remote_groups,
                        &groups_by_ext,
                        &groups_by_name,
                        "displayName",
                    )
                }
            };
            let extra = target.compared_fields(provider);
            for r in desired {
                let label = text(&r.doc, name_key).unwrap_or_default();
                let relations = match kind {
                    ResourceKind::User => {
                        let needs = target.relation_needs(provider);
                        gather(store, &name, needs, provider, &r.id, &r.doc).await?
                    }
                    ResourceKind::Group => Relations::default(),
                };
                let want = target.desired(provider, kind, &r.doc, &relations, None);
                // The target may name it differently (an iManage id mapped from the
                // employee number): match on what the target would hold.
                let target_label = text(&want, name_key).unwrap_or_else(|| label.clone());
                let mapped = store.target_id(&name, provider, kind, &r.id).await?;
                let found = mapped.clone().filter(|t| remote.contains_key(t));
                let (tid, link) = match found {
                    Some(t) => (Some(t), false),
                    None => {
                        let m = text(&r.doc, "externalId")
                            .and_then(|e| by_ext.get(&e.to_lowercase()))
                            .or_else(|| by_name.get(&target_label.to_lowercase()))
                            .cloned();
                        (m.clone(), m.is_some())
                    }
                };
                let item = |action, tid: Option<String>, detail: String| PlanItem {
                    action,
                    kind,
                    provider: Some(provider.clone()),
                    id: Some(r.id.clone()),
                    target_id: tid,
                    name: label.clone(),
                    detail,
                };
                let Some(tid) = tid else {
                    let why = if mapped.is_some() {
                        "gone at the target"
                    } else {
                        "not at the target"
                    };
                    plan.items.push(item(Action::Create, None, why.into()));
                    continue;
                };
                claimed.insert(tid.clone());
                if kind == ResourceKind::User {
                    user_target.insert(r.id.clone(), tid.clone());
                }
                if link {
                    plan.items.push(item(
                        Action::Link,
                        Some(tid.clone()),
                        "found by externalId or name".into(),
                    ));
                }
                let have = remote.get(&tid).cloned().unwrap_or(Value::Null);
                match kind {
                    ResourceKind::User => {
                        // Rules that keep the app's role need the app's copy.
                        let want = target.desired(provider, kind, &r.doc, &relations, Some(&have));
                        let diff = user_diff(&want, &have, &extra);
                        if !diff.is_empty() {
                            plan.items
                                .push(item(Action::Update, Some(tid), diff.join("; ")));
                        }
                    }
                    ResourceKind::Group => {
                        let mut diff = Vec::new();
                        if text(&want, "displayName") != text(&have, "displayName") {
                            diff.push(format!("displayName → {label:?}"));
                        }
                        if let Some(w) = want.get("active")
                            && have.get("active").is_some_and(|h| h != w)
                        {
                            diff.push(format!("active → {w}"));
                        }
                        let members = if target.expand_nested() {
                            super::relations::flattened_members(store, provider, &r.id).await?
                        } else {
                            store.members(provider, &r.id).await?
                        };
                        let want: HashSet<String> = members
                            .iter()
                            .filter_map(|m| user_target.get(&m.value).cloned())
                            .collect();
                        let got: HashSet<String> = have
                            .get("members")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|m| text(m, "value"))
                            .collect();
                        let missing = want.difference(&got).count();
                        let extra = got.difference(&want).count();
                        if missing + extra > 0 {
                            diff.push(format!("members: {missing} to add, {extra} to remove"));
                        }
                        if !diff.is_empty() {
                            plan.items
                                .push(item(Action::Members, Some(tid), diff.join("; ")));
                        }
                    }
                }
            }
        }
    }
    if let Some(keep) = target.delete_after() {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        for o in store.orphaned_users(&name).await? {
            // Assigned again and matched to the same account: it is in use.
            if claimed.contains(&o.target_id) {
                continue;
            }
            let Some(doc) = remote_users.get(&o.target_id) else {
                continue;
            };
            claimed.insert(o.target_id.clone());
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
            });
        }
    }
    for (tid, doc) in &remote_users {
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
        if !claimed.contains(tid) && active {
            plan.items.push(PlanItem {
                action: Action::Deactivate,
                kind: ResourceKind::User,
                provider: None,
                id: None,
                target_id: Some(tid.clone()),
                name: text(doc, "userName").unwrap_or_default(),
                detail: "not provisioned by the bridge".into(),
            });
        }
    }
    Ok(plan)
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
    let protected = |i: &PlanItem| {
        i.action == Action::Protected
            || (is_deprovision(i.action) && is_protected(i, &guard_config.protected))
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
    let over = guard_config.max_deprovisions.filter(|m| deactivations > *m);
    let hold = guard.tripped_at.is_some() || (over.is_some() && !approved);
    if let (Some(max), false) = (over, approved) {
        let reason =
            format!("reconciliation planned {deactivations} deactivations, more than {max}");
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
                    Action::Link => {
                        store
                            .set_target_id(name, provider, item.kind, id, item.target_id.clone())
                            .await?;
                        out.linked += 1;
                    }
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
#[allow(clippy::too_many_arguments)]
pub async fn run_scheduled(
    store: std::sync::Arc<dyn Store>,
    target: std::sync::Arc<dyn Target>,
    providers: Vec<String>,
    schedule: cron::Schedule,
    guard_config: GuardConfig,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    report: std::sync::Arc<std::sync::Mutex<ReconcileReport>>,
    owner: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
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
        let outcome = match plan(
            store.as_ref(),
            target.as_ref(),
            &providers,
            &|_, _| {},
            clock.now(),
        )
        .await
        {
            Err(e) => Err(e.to_string()),
            Ok(p) => match apply(
                store.as_ref(),
                target.as_ref(),
                &p,
                &guard_config,
                clock.now(),
            )
            .await
            {
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

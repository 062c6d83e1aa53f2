//! The store side of a target's scope (the rules themselves are pure:
//! [`crate::identity::scope`]): gathering a user's groups to decide, and finding the
//! users a group change may have moved into or out of scope.

use std::collections::HashSet;

use serde_json::Value;

use super::relations::{flattened_members, gather};
use super::target::{Change, RelationNeeds, State};
use crate::identity::{Scope, ScopeDecision, scope};
use crate::scim::ResourceKind;
use crate::store::{Store, StoreError};

/// Whether a stored resource is in `scope` (`None`: everything is), and why.
pub async fn decide(
    store: &dyn Store,
    target: &str,
    scope: Option<&Scope>,
    provider: &str,
    kind: ResourceKind,
    id: &str,
    doc: &Value,
) -> Result<ScopeDecision, StoreError> {
    let groups = match scope {
        Some(s) if kind == ResourceKind::User && s.needs_groups() => {
            let needs = RelationNeeds {
                groups: true,
                nested: s.nested,
                manager: false,
            };
            gather(store, target, needs, provider, id, doc)
                .await?
                .groups
        }
        _ => Vec::new(),
    };
    Ok(scope::decide(scope, kind, doc, &groups))
}

/// Whether a change to this group can change who is in scope: it is a named group or,
/// with `nested`, inside one. A deleted group's name may be gone, so it counts.
async fn moves_scope(
    store: &dyn Store,
    scope: &Scope,
    provider: &str,
    change: &Change,
) -> Result<bool, StoreError> {
    let State::Present(doc) = &change.state else {
        return Ok(true);
    };
    let name = doc.get("displayName").and_then(Value::as_str).unwrap_or("");
    if scope.names(name) {
        return Ok(true);
    }
    if !scope.nested {
        return Ok(false);
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut pending = vec![change.resource_id.clone()];
    while let Some(g) = pending.pop() {
        for (parent, parent_name) in store.groups_of(provider, &g).await? {
            if parent_name.as_deref().is_some_and(|n| scope.names(n)) {
                return Ok(true);
            }
            if seen.insert(parent.clone()) {
                pending.push(parent);
            }
        }
    }
    Ok(false)
}

/// The users whose scope this group change may have moved: members it added or
/// removed (users of added or removed nested groups too) and, for a whole list, those
/// not at the target yet. Delivering them again lets each be provisioned or
/// deprovisioned by its own delivery.
pub async fn moved_users(
    store: &dyn Store,
    scope: &Scope,
    provider: &str,
    change: &Change,
) -> Result<Vec<String>, StoreError> {
    if scope.groups.is_empty() || !moves_scope(store, scope, provider, change).await? {
        return Ok(Vec::new());
    }
    let (added, removed) = change.member_deltas();
    let mut ids: Vec<String> = added.into_iter().chain(removed).collect();
    if let Some(all) = &change.members {
        ids.extend(
            all.iter()
                .filter(|m| !change.member_ids.contains_key(&m.value))
                .map(|m| m.value.clone()),
        );
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id.clone()) {
            continue;
        }
        if store
            .get(provider, ResourceKind::User, &id)
            .await?
            .is_some()
        {
            out.push(id);
        } else if store
            .get(provider, ResourceKind::Group, &id)
            .await?
            .is_some()
        {
            for m in flattened_members(store, provider, &id).await? {
                if seen.insert(m.value.clone()) {
                    out.push(m.value);
                }
            }
        }
    }
    Ok(out)
}

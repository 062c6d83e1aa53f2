//! What a user's identity rules need from the store: its groups and its manager.

use std::collections::HashSet;

use serde_json::Value;

use super::target::RelationNeeds;
use crate::identity::{ManagerLink, Relations, manager_id};
use crate::scim::{MemberRef, ResourceKind};
use crate::store::{Store, StoreError};

/// The user's groups (through nested groups when the rules say so) and its manager
/// with the manager's id at `target`, as far as `needs` asks.
pub async fn gather(
    store: &dyn Store,
    target: &str,
    needs: RelationNeeds,
    provider: &str,
    user_id: &str,
    doc: &Value,
) -> Result<Relations, StoreError> {
    let mut out = Relations::default();
    if needs.groups {
        // The seen set also ends cycles of nested groups.
        let mut seen: HashSet<String> = HashSet::new();
        let mut pending = vec![user_id.to_owned()];
        while let Some(member) = pending.pop() {
            for (gid, name) in store.groups_of(provider, &member).await? {
                if !seen.insert(gid.clone()) {
                    continue;
                }
                out.groups.extend(name);
                if needs.nested {
                    pending.push(gid);
                }
            }
        }
    }
    if needs.manager
        && let Some(manager) = manager_id(doc)
    {
        let target_id = store
            .target_id(target, provider, ResourceKind::User, manager)
            .await?;
        out.manager = Some(ManagerLink {
            id: manager.to_owned(),
            target_id,
        });
    }
    Ok(out)
}

/// The users in a group, directly or through groups nested in it (each once, in
/// the order first reached); nested groups themselves are left out.
pub async fn flattened_members(
    store: &dyn Store,
    provider: &str,
    group_id: &str,
) -> Result<Vec<MemberRef>, StoreError> {
    let mut out = Vec::new();
    let mut users: HashSet<String> = HashSet::new();
    // The seen set also ends cycles of nested groups.
    let mut groups: HashSet<String> = HashSet::from([group_id.to_owned()]);
    let mut pending = vec![group_id.to_owned()];
    while let Some(g) = pending.pop() {
        for m in store.members(provider, &g).await? {
            if m.kind == Some(ResourceKind::Group) {
                if groups.insert(m.value.clone()) {
                    pending.push(m.value.clone());
                }
            } else if users.insert(m.value.clone()) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

//! What a downstream target implements.

use std::time::Duration;

use serde_json::Value;

use std::collections::HashMap;

use super::matching::{Candidate, MatchKey};
use crate::identity::Relations;
use crate::scim::{MemberRef, ResourceKind};
use crate::store::ChangeEvent;

/// The resource's state the target should converge to.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// The resource's current SCIM document (groups without their member list; see
    /// [`Change::events`] for membership changes).
    Present(Value),
    /// The resource was deleted.
    Deleted,
}

/// One delivery: a resource's latest state and the changes it brings the target past.
#[derive(Debug, Clone)]
pub struct Change {
    pub provider: String,
    pub kind: ResourceKind,
    pub resource_id: String,
    /// userName or displayName (from the last known document once deleted), for logs
    /// and errors people read.
    pub name: String,
    /// The newest change event included; the target is up to date through it afterwards.
    pub seq: i64,
    pub state: State,
    /// The coalesced change events, oldest first (membership deltas are in their detail).
    pub events: Vec<ChangeEvent>,
    /// The target's id for this resource, recorded by an earlier success.
    pub target_id: Option<String>,
    /// Groups: the whole member list, given when the target has not seen the group yet,
    /// when a change replaced the list wholesale, or when the target asks for it
    /// ([`MemberNeeds::Full`]); otherwise the deltas in `events` suffice.
    pub members: Option<Vec<MemberRef>>,
    /// Target ids of the members named in `members` and in the events' deltas, keyed by
    /// bridge id; a member not delivered to the target yet is absent.
    pub member_ids: HashMap<String, String>,
    /// Users: the groups and manager the target's rules asked for
    /// ([`Target::relation_needs`]); empty otherwise.
    pub relations: Relations,
    /// Groups: members outside the target's scope, left out of `members` and of the
    /// added deltas (their own deliveries keep them away from the target).
    pub excluded: std::collections::HashSet<String>,
    /// Set when a resync asked for this delivery (reconciliation found drift, a rule's
    /// input changed, a member arrived): when it was queued. Stable across retries, so
    /// a webhook can name a delivery that carries no change event of its own.
    pub resync_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Change {
    /// Member ids added and removed by the coalesced events, in order, net of each other.
    pub fn member_deltas(&self) -> (Vec<String>, Vec<String>) {
        let mut added: Vec<String> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        for e in &self.events {
            for id in e.detail.added() {
                if self.excluded.contains(id) {
                    continue;
                }
                removed.retain(|x| x != id);
                if !added.contains(id) {
                    added.push(id.clone());
                }
            }
            for id in e.detail.removed() {
                added.retain(|x| x != id);
                if !removed.contains(id) {
                    removed.push(id.clone());
                }
            }
        }
        (added, removed)
    }

    /// Whether a coalesced event replaced the member list wholesale.
    pub fn members_replaced(&self) -> bool {
        self.events.iter().any(|e| e.detail.replaced())
    }
}

/// How much of a group's membership a delivery carries. Reading a large group's list
/// and its members' target ids costs a store read per member, so the engine does it
/// only for targets that use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberNeeds {
    /// The events' member deltas, and the whole list (without target ids: a webhook
    /// keeps none) only when a change replaced it or a resync asks for it.
    EventsOnly,
    /// Deltas with the members' target ids, and the whole list when the target has not
    /// seen the group yet or its list was replaced.
    Deltas,
    /// The whole list with target ids on every delivery (a SCIM app without PATCH).
    Full,
}

/// What a target's identity rules need to know about a user beyond its document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelationNeeds {
    /// The names of the user's groups.
    pub groups: bool,
    /// Groups reached through nested groups count too.
    pub nested: bool,
    /// The target's id for the user's manager.
    pub manager: bool,
}

/// Called with `("Users" | "Groups", read so far)` while a target is read.
pub type Progress<'a> = dyn Fn(&str, usize) + Send + Sync + 'a;

/// A target's users and groups as it reports them (SCIM-shaped documents with `id`).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
}

/// Why a target did not take a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Worth retrying: timeouts, connection errors, 5xx, 408, 429.
    #[error("{message}")]
    Transient {
        message: String,
        /// The target's `Retry-After`, honoured instead of the backoff.
        retry_after: Option<Duration>,
    },
    /// Retrying will not help (other 4xx): dead-lettered at once with the answer.
    #[error("{message}")]
    Permanent { message: String },
}

/// A downstream system. Implementations must be idempotent: after a crash the same
/// change may be delivered again.
#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// The configured name.
    fn name(&self) -> &str;

    /// Whether the target has ids of its own for what it holds (a webhook has none).
    fn keeps_ids(&self) -> bool {
        true
    }

    /// What this target needs to know about a group's members.
    fn member_needs(&self) -> MemberNeeds {
        MemberNeeds::Deltas
    }

    /// Whether a group's members include the users of nested groups (the whole,
    /// flattened list goes on every delivery) rather than the direct members.
    fn expand_nested(&self) -> bool {
        false
    }

    /// What the target's rules need for `provider`'s users (default: nothing).
    fn relation_needs(&self, provider: &str) -> RelationNeeds {
        let _ = provider;
        RelationNeeds::default()
    }

    /// Users to deliver again after `change` succeeded, because their desired state
    /// depends on it (members of a group that grants roles). Default: none.
    fn followups(&self, change: &Change) -> Vec<String> {
        let _ = change;
        Vec::new()
    }

    /// The bridge's document as this target's [`Target::snapshot`] would show it, so
    /// reconciliation compares only what the target keeps. `have` is the target's
    /// current copy, when there is one (rules that keep the app's role read it).
    /// Default: the document itself.
    fn desired(
        &self,
        provider: &str,
        kind: ResourceKind,
        doc: &Value,
        relations: &Relations,
        have: Option<&Value>,
    ) -> Value {
        let _ = (provider, kind, relations, have);
        doc.clone()
    }

    /// Fields beyond the usual ones (names, emails, active) that reconciliation
    /// compares for `provider`'s users: those the target's rules set, as SCIM paths.
    fn compared_fields(&self, provider: &str) -> Vec<String> {
        let _ = provider;
        Vec::new()
    }

    /// How long a user deleted in the IdP stays deactivated here before
    /// reconciliation deletes it; `None`: never deleted.
    fn delete_after(&self) -> Option<Duration> {
        None
    }

    /// The protected role `have` (the target's copy of one of `provider`'s users)
    /// holds, if any: such an account is never deleted automatically.
    fn protected_role(&self, provider: &str, have: &Value) -> Option<String> {
        let _ = (provider, have);
        None
    }

    /// What `kind`'s matching rules look for at the target for this document, in rule
    /// order (see [`super::matching`]). Default: nothing, so nothing is ever adopted.
    fn match_keys(&self, provider: &str, kind: ResourceKind, doc: &Value) -> Vec<MatchKey> {
        let _ = (provider, kind, doc);
        Vec::new()
    }

    /// Accounts (or groups) at the target that `key` finds.
    async fn find(
        &self,
        kind: ResourceKind,
        key: &MatchKey,
    ) -> Result<Vec<Candidate>, TargetError> {
        let _ = (kind, key);
        Ok(Vec::new())
    }

    /// Why the target can never take this document (its mapping fails), so
    /// reconciliation reports it instead of queueing it to be dead-lettered again.
    fn refuses(&self, provider: &str, kind: ResourceKind, doc: &Value) -> Option<String> {
        let _ = (provider, kind, doc);
        None
    }

    /// Deletes a user whose deactivation retention has passed (found by reconciliation).
    async fn delete_user(&self, target_id: &str) -> Result<(), TargetError> {
        Err(TargetError::Permanent {
            message: format!(
                "{} cannot delete {target_id}: not supported by this target",
                self.name()
            ),
        })
    }

    /// Everything the target holds, for reconciliation; `None` when it cannot be read
    /// (a webhook).
    /// `progress` is told how many resources of each kind have been read so far.
    async fn snapshot(&self, progress: &Progress<'_>) -> Result<Option<Snapshot>, TargetError> {
        let _ = progress;
        Ok(None)
    }

    /// Deactivates a user the bridge does not know (found by reconciliation).
    async fn deactivate(&self, target_id: &str) -> Result<(), TargetError> {
        Err(TargetError::Permanent {
            message: format!(
                "{} cannot deactivate {target_id}: not supported by this target",
                self.name()
            ),
        })
    }

    /// Brings the target's copy of the resource to `change.state`. Returns the target's
    /// id for the resource (`None` once deleted), recorded for the next change.
    async fn apply(&self, change: &Change) -> Result<Option<String>, TargetError>;
}

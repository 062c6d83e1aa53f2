//! What the store keeps for delivery to downstream targets.

use chrono::{DateTime, Utc};

use crate::scim::ResourceKind;

/// A resource with changes a target has not received yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedDelivery {
    pub target: String,
    pub provider: String,
    pub kind: ResourceKind,
    pub resource_id: String,
    /// Events after this sequence number are undelivered.
    pub from_seq: i64,
    /// The newest undelivered event when the row was claimed.
    pub last_seq: i64,
    /// When the oldest undelivered change arrived.
    pub queued_at: DateTime<Utc>,
    /// Failed attempts so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Deliver the whole resource (reconciliation found drift, a role or a manager
    /// link changed).
    pub resync: bool,
    /// Resyncs requested for the row when it was claimed. A request made while the
    /// delivery is in flight raises the stored count, so finishing leaves the row
    /// queued instead of deleting it: the delivery may have read the state from
    /// before the request.
    pub resync_requests: i64,
}

/// What asking for one resource's queued delivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Leased to the caller, due or not.
    Claimed(QueuedDelivery),
    /// Leased to a delivery in flight until then.
    Leased { until: DateTime<Utc> },
    /// Nothing queued for it.
    Absent,
}

/// What came of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The target has everything up to the claimed `last_seq`.
    Done,
    /// Try again at `next_at`.
    Retry {
        next_at: DateTime<Utc>,
        error: String,
    },
    /// Give up on these changes and keep them in the dead-letter queue.
    Dead { error: String },
    /// Not attempted (paused by the guard): due again at `next_at`, attempts unchanged.
    Defer {
        next_at: DateTime<Utc>,
        reason: String,
    },
}

impl DeliveryOutcome {
    /// The guard still holds the change for the reason the queue row already records
    /// (`last_error`): a change held is looked at again every few seconds, and the
    /// logs record the hold once (and again if its reason changes), not every look.
    pub fn holds_again(&self, last_error: Option<&str>) -> bool {
        matches!(self, DeliveryOutcome::Defer { reason, .. } if last_error == Some(reason.as_str()))
    }
}

/// Changes set aside with the target's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub target: String,
    pub provider: String,
    #[serde(serialize_with = "kind_name")]
    pub kind: ResourceKind,
    pub resource_id: String,
    pub from_seq: i64,
    pub last_seq: i64,
    pub queued_at: DateTime<Utc>,
    pub attempts: u32,
    pub error: String,
    pub at: DateTime<Utc>,
}

/// One target's backlog, for metrics, `/readyz` and `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryStats {
    /// Resources with undelivered changes.
    pub queued: u64,
    /// Of those, how many wait for a retry after a failure.
    pub retrying: u64,
    /// When the oldest undelivered change arrived.
    pub oldest: Option<DateTime<Utc>>,
    /// Dead letters kept.
    pub dead_letters: u64,
}

fn kind_name<S: serde::Serializer>(kind: &ResourceKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

/// One delivery attempt, as `trace` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryAttempt {
    pub target: String,
    pub from_seq: i64,
    pub last_seq: i64,
    /// `delivered`, `retry`, `dead_letter` or `paused`.
    pub outcome: String,
    /// The error or reason, when not delivered.
    pub detail: Option<String>,
    pub duration_ms: u64,
    pub at: DateTime<Utc>,
}

/// A target's mass-deprovisioning guard.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GuardState {
    /// Set while destructive deliveries are paused.
    pub tripped_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    /// Destructive deliveries go ahead without counting until then.
    pub approved_until: Option<DateTime<Utc>>,
}

/// How the bridge holds a target's account or group: the target's id for it, and
/// whether the bridge created it or adopted one that existed before. A recorded link
/// is what makes an account the bridge's to update, deactivate or delete.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetLink {
    pub target_id: String,
    /// The matching rule that adopted an existing account (`"email"`, `"userName"`, …);
    /// `None` when the bridge created it.
    pub adopted_by: Option<String>,
}

impl TargetLink {
    /// An account the bridge created.
    pub fn created(target_id: impl Into<String>) -> Self {
        Self {
            target_id: target_id.into(),
            adopted_by: None,
        }
    }

    /// An existing account adopted by matching `rule`.
    pub fn adopted(target_id: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            target_id: target_id.into(),
            adopted_by: Some(rule.into()),
        }
    }

    /// "created by the bridge" or "adopted by email", for people to read.
    pub fn origin(&self) -> String {
        match &self.adopted_by {
            None => "created by the bridge".into(),
            Some(rule) => format!("adopted by {rule}"),
        }
    }
}

/// A target account or group the bridge manages, and the bridge resource behind it
/// (which may since have been deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    pub provider: String,
    pub kind: ResourceKind,
    pub resource_id: String,
    pub link: TargetLink,
}

/// A user the target still holds (under `target_id`) though the bridge deleted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub provider: String,
    pub id: String,
    pub target_id: String,
    /// When the user was deleted; `None` once the delete event was pruned.
    pub deleted_at: Option<DateTime<Utc>>,
}

//! What a downstream target implements.

use std::time::Duration;

use serde_json::Value;

use crate::scim::ResourceKind;
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
    /// The newest change event included; the target is up to date through it afterwards.
    pub seq: i64,
    pub state: State,
    /// The coalesced change events, oldest first (membership deltas are in their detail).
    pub events: Vec<ChangeEvent>,
    /// The target's id for this resource, recorded by an earlier success.
    pub target_id: Option<String>,
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

    /// Brings the target's copy of the resource to `change.state`. Returns the target's
    /// id for the resource (`None` once deleted), recorded for the next change.
    async fn apply(&self, change: &Change) -> Result<Option<String>, TargetError>;
}

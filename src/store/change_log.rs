//! The change-event outbox as readers see it: events in seq order, per resource, and pruning.

use crate::scim::ResourceKind;
use crate::store::{ChangeEvent, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The change-event outbox as readers see it: events in seq order, per resource, and pruning.
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// Committed change events after `after_seq`, in seq order. Not a cursor to follow:
    /// on PostgreSQL, changes to different resources can commit out of seq order (one
    /// resource's events always commit in order, which is what delivery relies on; it
    /// reads the queue and [`ChangeLog::resource_events`]).
    async fn events_after(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StoreError>;

    /// One resource's change events in `(after_seq, upto_seq]`, oldest first.
    async fn resource_events(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        after_seq: i64,
        upto_seq: i64,
    ) -> Result<Vec<ChangeEvent>, StoreError>;

    /// Deletes up to `batch` change events older than `before` that no queued delivery
    /// or dead letter still needs; returns how many went. Call until it returns less
    /// than `batch`, so the writer is never held for long.
    async fn prune_change_events(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize, StoreError>;
}

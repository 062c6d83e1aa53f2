//! Routes, the coalescing delivery queue with its leases, the delivery log, dead letters and waits between resources.

use crate::scim::ResourceKind;
use crate::store::{
    Claim, DeadLetter, DeliveryAttempt, DeliveryOutcome, DeliveryStats, QueuedDelivery, StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Routes, the coalescing delivery queue with its leases, the delivery log, dead letters and waits between resources.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Replaces which targets receive which provider's changes (from the config, at
    /// start). Queued changes for routes that no longer exist are removed; returns how many.
    async fn set_delivery_routes(&self, routes: Vec<(String, String)>)
    -> Result<usize, StoreError>;

    /// Leases up to `limit` of `target`'s due deliveries to `owner` until `lease_until`.
    /// Cheap when nothing is due: idle polling does not write.
    async fn claim_deliveries(
        &self,
        target: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedDelivery>, StoreError>;

    /// Leases `target`'s queued delivery of one resource to `owner` until
    /// `lease_until`, due or not (an operator asked for it now), unless a delivery in
    /// flight holds it.
    #[allow(clippy::too_many_arguments)]
    async fn claim_delivery(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;

    /// Releases every lease `owner` holds: called at start, so a restarted instance takes
    /// back at once what it was delivering when it died.
    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError>;

    /// Records a claimed delivery's outcome (ignored when `owner` lost the lease) and logs
    /// the attempt, which took `took`. Changes that arrived meanwhile stay queued and
    /// become due at once.
    async fn finish_delivery(
        &self,
        delivery: QueuedDelivery,
        owner: &str,
        outcome: DeliveryOutcome,
        took: std::time::Duration,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish_delivery_recorded(delivery, owner, outcome, took, at, None)
            .await
    }

    /// [`DeliveryQueue::finish_delivery`], writing the provisioning log's `record` of
    /// the action in the same transaction (when the lease was still held, as the
    /// delivery's own log row is).
    async fn finish_delivery_recorded(
        &self,
        delivery: QueuedDelivery,
        owner: &str,
        outcome: DeliveryOutcome,
        took: std::time::Duration,
        at: DateTime<Utc>,
        record: Option<crate::provlog::LogRow>,
    ) -> Result<(), StoreError>;

    /// Delivery attempts for one resource, oldest first.
    async fn delivery_attempts(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError>;

    /// Removes delivery-log rows older than `before`; returns how many.
    async fn prune_delivery_log(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Queues a resource so its whole current state is delivered again, due now.
    async fn enqueue_resync(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Dead letters, oldest first, of one target or all.
    async fn dead_letters(&self, target: Option<&str>) -> Result<Vec<DeadLetter>, StoreError>;

    /// Queues a dead letter's changes again, due now; `false` when there is no such id.
    async fn requeue_dead_letter(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Discards a dead letter; `false` when there is no such id.
    async fn drop_dead_letter(&self, id: i64) -> Result<bool, StoreError>;

    /// A target's backlog.
    async fn delivery_stats(&self, target: &str) -> Result<DeliveryStats, StoreError>;

    /// Records that `resource_id` (a user) waits for `awaited_id` (its manager) to
    /// reach `target`.
    async fn await_link(
        &self,
        target: &str,
        provider: &str,
        awaited_id: &str,
        resource_id: &str,
    ) -> Result<(), StoreError>;

    /// Queues every user waiting for `awaited_id` for full delivery, due `at`, and
    /// forgets the waits, atomically; returns how many.
    async fn release_waiting(
        &self,
        target: &str,
        provider: &str,
        awaited_id: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
}

//! Durable state behind one [`Store`] trait: resources, group memberships, the
//! change-event outbox and API tokens. Only this module knows SQL.
//!
//! Every resource change is written in the same transaction as its change event, so
//! a 2xx from the SCIM front means both are on disk. Callers never branch on the
//! engine: SQLite (embedded, group commit) and PostgreSQL implement the same trait.

#[cfg(test)]
mod conformance;
pub mod copy;
mod delivery;
mod error;
mod model;
pub mod postgres;
mod rekey;
pub mod sqlite;

pub use delivery::{
    DeadLetter, DeliveryAttempt, DeliveryOutcome, DeliveryStats, GuardState, Managed, Orphan,
    QueuedDelivery, TargetLink,
};
pub use error::{MemberProblem, StoreError};
pub use model::{
    ApiToken, ChangeEvent, ChangeOp, Committed, IndexKeys, Lookup, MemberChange, Mutation,
    MutationKind, Page, SecretRow, StoreStatus, StoredResource, VaultRecord,
};
pub(crate) use model::{MemberCheck, MemberDelta, UserNameKey};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::scim::{MemberRef, ResourceKind};

/// The engine-independent storage interface. Implementations must make every
/// successful [`Store::apply`] durable before returning.
#[async_trait]
pub trait Store: Send + Sync {
    /// Applies one change (resource + member rows + change event) atomically and durably.
    async fn apply(&self, m: Mutation) -> Result<Committed, StoreError>;

    /// One resource by id, without group members.
    async fn get(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError>;

    /// Resources found through an index (ids, userNames, externalIds, displayNames, emails).
    async fn lookup(
        &self,
        provider: &str,
        kind: ResourceKind,
        lookup: Lookup,
    ) -> Result<Vec<StoredResource>, StoreError>;

    /// Up to `limit` resources in creation order after `after_seq`, skipping the first
    /// `skip` of those: keyset paging for full scans, offset paging for listings.
    async fn scan(
        &self,
        provider: &str,
        kind: ResourceKind,
        after_seq: i64,
        skip: usize,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// How many resources of `kind` a provider has.
    async fn count(&self, provider: &str, kind: ResourceKind) -> Result<u64, StoreError>;

    /// Members of a group, in insertion order.
    async fn members(&self, provider: &str, group_id: &str) -> Result<Vec<MemberRef>, StoreError>;

    /// Ids of the groups `member_id` belongs to (for a User's read-only `groups`).
    async fn groups_of(
        &self,
        provider: &str,
        member_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError>;

    /// Committed change events after `after_seq`, in seq order. Not a cursor to follow:
    /// on PostgreSQL, changes to different resources can commit out of seq order (one
    /// resource's events always commit in order, which is what delivery relies on; it
    /// reads the queue and [`Store::resource_events`]).
    async fn events_after(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StoreError>;

    /// Stores a new API token (only its hash).
    async fn create_token(&self, token: ApiToken) -> Result<(), StoreError>;

    /// A token by its public id.
    async fn find_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError>;

    /// All tokens, newest first.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;

    /// Revokes a token; `false` when there is no such token.
    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Records when tokens were last used (batched by the caller).
    async fn touch_tokens(&self, used: Vec<(String, DateTime<Utc>)>) -> Result<(), StoreError>;

    /// The vault header, when the vault has been initialised.
    async fn vault(&self) -> Result<Option<VaultRecord>, StoreError>;

    /// Stores the header of a new vault; fails with [`StoreError::DuplicateId`] when
    /// one exists (a second init would orphan every stored secret).
    async fn init_vault(&self, header: String, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Creates or replaces a sealed secret. `sealed_under` is the vault header the
    /// caller's key was derived from: when the vault has been rotated since, the write
    /// fails with [`StoreError::Conflict`], so a long-running process holding the old
    /// key can never store a secret the new passphrase cannot open.
    async fn put_secret(
        &self,
        name: &str,
        sealed: Vec<u8>,
        sealed_under: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// One sealed secret.
    async fn secret(&self, name: &str) -> Result<Option<SecretRow>, StoreError>;

    /// Every sealed secret, by name.
    async fn secrets(&self) -> Result<Vec<SecretRow>, StoreError>;

    /// Deletes a secret; `false` when there was none.
    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError>;

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

    /// Deletes up to `batch` change events older than `before` that no queued delivery
    /// or dead letter still needs; returns how many went. Call until it returns less
    /// than `batch`, so the writer is never held for long.
    async fn prune_change_events(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize, StoreError>;

    /// One resource's change events in `(after_seq, upto_seq]`, oldest first.
    async fn resource_events(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        after_seq: i64,
        upto_seq: i64,
    ) -> Result<Vec<ChangeEvent>, StoreError>;

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

    /// A target's mass-deprovisioning guard (default: not tripped).
    async fn guard(&self, target: &str) -> Result<GuardState, StoreError>;

    /// Pauses `target`'s destructive deliveries; keeps the first reason while tripped.
    async fn trip_guard(
        &self,
        target: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Releases a tripped guard; destructive deliveries then go ahead uncounted until
    /// `until`. `false` when the guard was not tripped.
    async fn approve_guard(
        &self,
        target: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The target's id for a resource, once created there.
    async fn target_id(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Records (or with `None`, forgets) the target's id for a resource and how the
    /// bridge came to manage it (created or adopted).
    async fn set_target_id(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        link: Option<TargetLink>,
    ) -> Result<(), StoreError>;

    /// Every account and group the bridge manages at `target` (created or adopted),
    /// including those of resources deleted since.
    async fn managed(&self, target: &str) -> Result<Vec<Managed>, StoreError>;

    /// The bridge resource that manages the target's `target_id`, if any.
    async fn target_owner(
        &self,
        target: &str,
        kind: ResourceKind,
        target_id: &str,
    ) -> Result<Option<Managed>, StoreError>;

    /// How many accounts (or groups) the bridge manages at `target`.
    async fn count_managed(&self, target: &str, kind: ResourceKind) -> Result<u64, StoreError>;

    /// The destructive changes the mass-deprovisioning guard holds back at `target`.
    async fn held_by_guard(&self, target: &str) -> Result<Vec<QueuedDelivery>, StoreError>;

    /// Moves what the guard holds at `target` to the dead-letter queue with `reason`
    /// and clears the trip, atomically; returns how many changes moved.
    async fn reject_held(
        &self,
        target: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError>;

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

    /// Users `target` holds that the bridge has deleted since (their target id is
    /// still recorded), for retention.
    async fn orphaned_users(&self, target: &str) -> Result<Vec<Orphan>, StoreError>;

    /// Claims one tick of a schedule (`name`, e.g. a target's reconciliation) for
    /// `owner`: true for exactly one caller per tick, however many instances share the
    /// database, and never for a tick at or before one already claimed.
    async fn claim_scheduled_run(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        owner: &str,
    ) -> Result<bool, StoreError>;

    /// Replaces the header and every secret in one transaction (passphrase rotation).
    /// Fails, changing nothing, unless the stored header is still `old_header` and
    /// `rows` covers exactly the stored secrets.
    async fn rotate_vault(
        &self,
        old_header: String,
        new_header: String,
        rows: Vec<(String, Vec<u8>)>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Health, schema version and outbox figures, touching the database.
    async fn status(&self) -> Result<StoreStatus, StoreError>;

    /// Stops accepting writes and waits until everything acknowledged is flushed.
    async fn close(&self);
}

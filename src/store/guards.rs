//! The mass-deprovisioning guard of each target and what it holds back.

use crate::store::{GuardState, QueuedDelivery, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The mass-deprovisioning guard of each target and what it holds back.
#[async_trait]
pub trait Guards: Send + Sync {
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
}

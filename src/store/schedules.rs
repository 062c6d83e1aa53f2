//! Schedule ticks claimed once across every instance sharing the database.

use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Schedule ticks claimed once across every instance sharing the database.
#[async_trait]
pub trait Schedules: Send + Sync {
    /// Claims one tick of a schedule (`name`, e.g. a target's reconciliation) for
    /// `owner`: true for exactly one caller per tick, however many instances share the
    /// database, and never for a tick at or before one already claimed.
    async fn claim_scheduled_run(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        owner: &str,
    ) -> Result<bool, StoreError>;
}

//! Health figures and an orderly close.

use crate::store::{StoreCounts, StoreError, StoreStatus};
use async_trait::async_trait;

/// Health figures and an orderly close.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// Health and schema version, touching the database with indexed reads only.
    async fn status(&self) -> Result<StoreStatus, StoreError>;

    /// Users, groups and change events stored, counted (a scan: see [`StoreCounts`]).
    async fn counts(&self) -> Result<StoreCounts, StoreError>;

    /// Stops accepting writes and waits until everything acknowledged is flushed.
    async fn close(&self);
}

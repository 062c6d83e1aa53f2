//! Health figures and an orderly close.

use crate::store::{StoreError, StoreStatus};
use async_trait::async_trait;

/// Health figures and an orderly close.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// Health, schema version and outbox figures, touching the database.
    async fn status(&self) -> Result<StoreStatus, StoreError>;

    /// Stops accepting writes and waits until everything acknowledged is flushed.
    async fn close(&self);
}

//! Which target account or group each bridge resource is, and how the bridge came to hold it.

use crate::scim::ResourceKind;
use crate::store::{Managed, Orphan, StoreError, TargetLink};
use async_trait::async_trait;

/// Which target account or group each bridge resource is, and how the bridge came to hold it.
#[async_trait]
pub trait TargetLinks: Send + Sync {
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

    /// Users `target` holds that the bridge has deleted since (their target id is
    /// still recorded), for retention.
    async fn orphaned_users(&self, target: &str) -> Result<Vec<Orphan>, StoreError>;
}

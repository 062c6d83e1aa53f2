//! Users and groups: the one write path and every read of resources and memberships.

use crate::scim::{MemberRef, ResourceKind};
use crate::store::{Committed, Lookup, Mutation, Page, StoreError, StoredResource};
use async_trait::async_trait;

/// Users and groups: the one write path and every read of resources and memberships.
#[async_trait]
pub trait Resources: Send + Sync {
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
}

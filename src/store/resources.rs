//! Users and groups: the one write path and every read of resources and memberships.

use crate::scim::{MemberRef, ResourceKind};
use crate::store::{Committed, Lookup, Mutation, Page, StoreError, StoredResource, StoredText};
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

    /// Resources found through an index (ids, userNames, externalIds, displayNames,
    /// emails), in creation order, each once.
    async fn lookup(
        &self,
        provider: &str,
        kind: ResourceKind,
        lookup: Lookup,
    ) -> Result<Vec<StoredResource>, StoreError> {
        self.lookup_text(provider, kind, lookup)
            .await?
            .into_iter()
            .map(StoredText::parse)
            .collect()
    }

    /// [`Self::lookup`] with the documents as stored, unparsed: the answer to an
    /// IdP's `userName eq` lookup is written from this text (`directory::text`).
    async fn lookup_text(
        &self,
        provider: &str,
        kind: ResourceKind,
        lookup: Lookup,
    ) -> Result<Vec<StoredText>, StoreError>;

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

    /// Up to `limit` members of the group stored at `group_seq`, in insertion order,
    /// after position `after` (from the start when `None`), each with its position;
    /// `None` when the group is no longer at `version` (changed or deleted since).
    /// A large group's answer is read page by page as the client takes it: the version
    /// check, made in the page's own snapshot, keeps one answer from mixing two versions.
    async fn members_page(
        &self,
        group_seq: i64,
        version: i64,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<(i64, MemberRef)>>, StoreError>;

    /// Ids of the groups `member_id` belongs to (for a User's read-only `groups`).
    async fn groups_of(
        &self,
        provider: &str,
        member_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError>;
}

//! API tokens, stored by the hash of their secret.

use crate::store::{ApiToken, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// API tokens, stored by the hash of their secret.
#[async_trait]
pub trait Tokens: Send + Sync {
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

    /// A number that grows whenever a token may have been revoked, by this process
    /// or any other sharing the database, for caches of verified tokens: a cached
    /// verification holds only while the generation read before its row is current.
    /// It has grown by the time `revoke_token` returns anywhere. `None` when no such
    /// number can be vouched for right now (nothing may be answered from a cache).
    async fn token_generation(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
}

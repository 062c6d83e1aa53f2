//! What the daemon's own endpoints read through the service rather than from the
//! store: bearer tokens, readiness and per-target delivery state.

use chrono::{DateTime, Utc};

use super::Directory;
use crate::store::{DeliveryStats, GuardState, StoreCounts, StoreError, StoreStatus};
use crate::tokens::{self, Refusal, TokenScope};

/// Why a presented bearer token opens nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    /// The token is refused; the refusal says how coarsely to tell the client.
    Refused(Refusal),
    /// The store could not be asked (logged here); the client may retry.
    Unavailable,
}

impl Directory {
    /// Checks `presented` for `scope` (and, for SCIM tokens, `provider`) at `now`;
    /// returns the token's id, whose use the caller records.
    pub async fn authenticate(
        &self,
        presented: &str,
        provider: Option<&str>,
        scope: TokenScope,
        now: DateTime<Utc>,
    ) -> Result<String, TokenFailure> {
        let Some((id, secret)) = tokens::parse(presented) else {
            return Err(TokenFailure::Refused(Refusal::Invalid));
        };
        let unavailable = |e: StoreError| {
            tracing::error!(error = %e, "token lookup failed");
            TokenFailure::Unavailable
        };
        // Read before the row: a revocation committed after this read makes the
        // generation grow, so whatever is verified below cannot outlive it.
        let generation = self.store.token_generation().await.map_err(unavailable)?;
        if let Some(g) = generation
            && let Some(verdict) = self.tokens.check(id, secret, provider, scope, now, g)
        {
            return verdict
                .map(|()| id.to_owned())
                .map_err(TokenFailure::Refused);
        }
        let record = match self.store.find_token(id).await.map_err(unavailable)? {
            Some(record) => record,
            None => return Err(TokenFailure::Refused(Refusal::Invalid)),
        };
        tokens::verify(&record, secret, provider, scope, now).map_err(TokenFailure::Refused)?;
        let id = record.id.clone();
        if let Some(g) = generation {
            self.tokens.insert(record, g);
        }
        Ok(id)
    }

    /// Records when tokens were last used (buffered by the caller).
    pub async fn record_token_use(
        &self,
        used: Vec<(String, DateTime<Utc>)>,
    ) -> Result<(), StoreError> {
        self.store.touch_tokens(used).await
    }

    /// The store's engine, schema version and newest change, for readiness.
    pub async fn store_status(&self) -> Result<StoreStatus, StoreError> {
        self.store.status().await
    }

    /// Users, groups and change events, counted (a scan; see [`StoreCounts`]).
    pub async fn store_counts(&self) -> Result<StoreCounts, StoreError> {
        self.store.counts().await
    }

    /// `target`'s delivery backlog.
    pub async fn delivery_stats(&self, target: &str) -> Result<DeliveryStats, StoreError> {
        self.store.delivery_stats(target).await
    }

    /// `target`'s mass-deprovisioning guard.
    pub async fn guard(&self, target: &str) -> Result<GuardState, StoreError> {
        self.store.guard(target).await
    }

    /// How many destructive changes `target`'s guard holds back, for `/metrics`.
    pub async fn guard_held(&self, target: &str) -> Result<usize, StoreError> {
        Ok(self.store.held_by_guard(target).await?.len())
    }
}

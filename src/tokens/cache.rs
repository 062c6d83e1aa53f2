//! Verified tokens held in memory, so that a request's token check reads nothing
//! from the database while no token has been revoked.
//!
//! Every entry belongs to a *generation*: a number the store changes whenever a
//! token may have been revoked (by any process or instance; see
//! `Tokens::token_generation`). The caller reads the generation before it reads a
//! token's row, and an entry answers only while the generation it was verified
//! under is still the current one, so a verification that raced a revocation can
//! never outlive it.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};

use super::{Refusal, TokenScope, verify};
use crate::store::ApiToken;

/// More verified tokens than any deployment has; reaching it just starts afresh,
/// so the memory stays bounded whatever happens.
const MAX_ENTRIES: usize = 4096;

/// Verified token rows by token id, all of one generation.
#[derive(Debug, Default)]
pub struct TokenCache {
    inner: RwLock<Generation>,
}

#[derive(Debug, Default)]
struct Generation {
    number: u64,
    rows: HashMap<String, ApiToken>,
}

impl TokenCache {
    /// The verdict on `secret` for token `id` from memory, when the token was
    /// verified under `generation`: the same checks as [`verify`] (secret hash,
    /// expiry at `now`, provider and scope) on the row as it was read then.
    /// `None` when the database has to be asked.
    pub fn check(
        &self,
        id: &str,
        secret: &str,
        provider: Option<&str>,
        scope: TokenScope,
        now: DateTime<Utc>,
        generation: u64,
    ) -> Option<Result<(), Refusal>> {
        let held = self.inner.read().ok()?;
        if held.number != generation {
            return None;
        }
        let row = held.rows.get(id)?;
        Some(verify(row, secret, provider, scope, now))
    }

    /// Keeps `row`, just verified, under `generation` (read before the row was).
    /// Generations only grow: a verification made under an older one than held is
    /// dropped, and rows of older generations go when a newer one arrives.
    pub fn insert(&self, row: ApiToken, generation: u64) {
        let Ok(mut held) = self.inner.write() else {
            return;
        };
        if generation < held.number {
            return;
        }
        if held.number != generation || held.rows.len() >= MAX_ENTRIES {
            held.rows.clear();
            held.number = generation;
        }
        held.rows.insert(row.id.clone(), row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::tokens::{mint, parse};

    #[test]
    fn answers_only_within_the_generation_it_was_verified_under() {
        let now = chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap();
        let t = mint(
            Some("entra"),
            TokenScope::Scim,
            Some(now + chrono::Duration::try_hours(1).unwrap()),
            now,
            &SeededEntropy::new(7),
        );
        let (id, secret) = parse(&t.plaintext).unwrap();
        let cache = TokenCache::default();
        let ask = |secret: &str, provider: &str, now, generation| {
            cache.check(
                id,
                secret,
                Some(provider),
                TokenScope::Scim,
                now,
                generation,
            )
        };
        assert_eq!(ask(secret, "entra", now, 3), None);
        cache.insert(t.record.clone(), 3);
        assert_eq!(ask(secret, "entra", now, 3), Some(Ok(())));
        // The row's own checks still run on every answer.
        assert_eq!(ask("wrong", "entra", now, 3), Some(Err(Refusal::Invalid)));
        assert_eq!(
            ask(secret, "okta", now, 3),
            Some(Err(Refusal::WrongAudience))
        );
        let later = now + chrono::Duration::try_hours(2).unwrap();
        assert_eq!(ask(secret, "entra", later, 3), Some(Err(Refusal::Expired)));
        // A newer generation (a revocation somewhere) sends the check to the database.
        assert_eq!(ask(secret, "entra", now, 4), None);
        // A verification made under an older generation, stored late, is dropped.
        cache.insert(t.record.clone(), 4);
        assert_eq!(ask(secret, "entra", now, 4), Some(Ok(())));
        cache.insert(t.record.clone(), 3);
        assert_eq!(ask(secret, "entra", now, 3), None);
        assert_eq!(ask(secret, "entra", now, 4), Some(Ok(())));
    }
}

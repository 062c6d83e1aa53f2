//! Revocations by any process writing this database file (`token revoke` writes it
//! itself, from the CLI), seen by the daemon's token cache without a token query
//! per request (see [`TokenLease`] for the argument).
//!
//! A task counts the revoked tokens every [`CHECK`]. A revocation only ever sets a
//! row's `revoked` and no token row is ever deleted, so the count grows with every
//! revocation; a check that finds it changed moves the generation on.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::time::Instant;

use super::ReadPool;
use crate::store::{StoreError, TokenLease, Watched};

/// How often the revoked tokens are counted.
const CHECK: Duration = Duration::from_millis(100);
/// How long after a check's start the generation may be trusted; also how long a
/// revocation waits after its commit.
const LEASE: Duration = Duration::from_millis(500);

/// The counting side; see [`Watched`].
pub struct TokenWatch(Watched);

impl TokenWatch {
    pub fn new() -> Self {
        TokenWatch(Watched::new(LEASE))
    }

    /// The lease, for a revocation to outwait.
    pub fn lease(&self) -> &TokenLease {
        self.0.lease()
    }

    /// The current generation while the lease holds, starting the counting task
    /// on the first call. `None` until its first count is in.
    pub fn generation(&self, readers: &Arc<ReadPool>) -> Option<u64> {
        self.0
            .generation(|lease| tokio::spawn(watch(Arc::clone(readers), lease)))
    }

    /// Stops counting (the store is closing).
    pub fn stop(&self) {
        self.0.stop();
    }
}

fn revoked(c: &Connection) -> Result<i64, StoreError> {
    Ok(
        c.prepare_cached("SELECT count(*) FROM api_tokens WHERE revoked IS NOT NULL")?
            .query_row([], |r| r.get(0))?,
    )
}

async fn watch(readers: Arc<ReadPool>, lease: Arc<TokenLease>) {
    let mut seen = None;
    loop {
        let start = Instant::now();
        match readers.point(revoked).await {
            Ok(n) => {
                if seen.is_some_and(|s| s != n) {
                    lease.bump();
                }
                seen = Some(n);
                lease.vouch(start);
            }
            Err(e) => {
                if seen.take().is_some() {
                    tracing::warn!(error = %e, "cannot count revoked tokens; tokens are checked in the database until it works again");
                }
                lease.lost();
            }
        }
        tokio::time::sleep(CHECK).await;
    }
}

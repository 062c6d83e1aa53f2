//! The generation a daemon's token cache is keyed by (`Tokens::token_generation`),
//! vouched for by a lease, so that a revocation made by any process or instance is
//! in force everywhere by the time `revoke_token` returns, without a token query
//! per request.
//!
//! A watcher (one per engine) checks the database every so often and [`bump`]s the
//! generation when it sees (or may have missed) a revocation; each check that
//! comes back [`vouch`]es for the generation for [`TokenLease::lease`] after the
//! moment the check *started*. A check started after a revocation's commit sees
//! it, so a watcher that has not counted a revocation committed at time C vouches
//! for nothing later than C plus the lease: `revoke_token` waits that long after
//! its commit, and from then on every instance either has counted the revocation
//! or answers nothing from its cache.
//!
//! [`bump`]: TokenLease::bump
//! [`vouch`]: TokenLease::vouch

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A generation and the lease on it.
#[derive(Debug)]
pub struct TokenLease {
    generation: AtomicU64,
    /// Milliseconds after `origin` at which the last check that came back started,
    /// plus one (0: none since the watcher last lost track).
    vouched: AtomicU64,
    origin: Instant,
    lease: Duration,
}

impl TokenLease {
    /// A lease of `lease` per check; nothing is vouched for yet.
    pub fn new(lease: Duration) -> Self {
        TokenLease {
            generation: AtomicU64::new(0),
            vouched: AtomicU64::new(0),
            origin: Instant::now(),
            lease,
        }
    }

    /// Waits, after a revocation's commit, until every watcher of the database has
    /// counted it or stopped vouching: the lease, and a margin for the clocks of two
    /// machines running at slightly different rates.
    pub async fn outwait(&self) {
        tokio::time::sleep(self.lease + self.lease / 20).await;
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.origin).as_millis()).unwrap_or(u64::MAX / 2)
    }

    /// The generation, while a check vouches for it.
    pub fn current(&self) -> Option<u64> {
        let vouched = self.vouched.load(Ordering::SeqCst);
        let generation = self.generation.load(Ordering::SeqCst);
        let lease = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX / 2);
        let now = self.millis(Instant::now());
        (vouched > 0 && now < (vouched - 1).saturating_add(lease)).then_some(generation)
    }

    /// A check that started at `started` came back, having counted what it saw.
    pub fn vouch(&self, started: Instant) {
        let at = self.millis(started).saturating_add(1);
        self.vouched.fetch_max(at, Ordering::SeqCst);
    }

    /// A token may have been revoked: what was cached can answer no more.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The watcher lost track (a failed check, a lost connection): nothing is
    /// vouched for until a check comes back, and what was cached is dropped.
    pub fn lost(&self) {
        self.vouched.store(0, Ordering::SeqCst);
        self.bump();
    }
}

/// A lease and the engine's watcher task keeping it, started by the first
/// [`Watched::generation`] call (a daemon checking tokens), never by a command that
/// opens the store for one change.
#[derive(Debug)]
pub struct Watched {
    lease: Arc<TokenLease>,
    started: AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Watched {
    /// A lease of `lease` per check, with no watcher yet.
    pub fn new(lease: Duration) -> Self {
        Watched {
            lease: Arc::new(TokenLease::new(lease)),
            started: AtomicBool::new(false),
            task: Mutex::new(None),
        }
    }

    /// The lease, for a revocation to outwait.
    pub fn lease(&self) -> &TokenLease {
        &self.lease
    }

    /// The current generation while the lease holds, spawning the watcher with
    /// `start` on the first call.
    pub fn generation(&self, start: impl FnOnce(Arc<TokenLease>) -> JoinHandle<()>) -> Option<u64> {
        if !self.started.swap(true, Ordering::AcqRel) {
            let task = start(Arc::clone(&self.lease));
            if let Ok(mut t) = self.task.lock() {
                *t = Some(task);
            }
        }
        self.lease.current()
    }

    /// Stops the watcher (the store is closing).
    pub fn stop(&self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
        self.lease.lost();
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_check_vouches_for_the_lease_from_its_start() {
        let lease = TokenLease::new(Duration::from_millis(300));
        assert_eq!(lease.current(), None, "nothing vouched yet");
        let started = Instant::now();
        lease.vouch(started);
        assert_eq!(lease.current(), Some(0));
        lease.bump();
        assert_eq!(lease.current(), Some(1));
        // Counted from the check's start, not from when it came back.
        tokio::time::sleep(Duration::from_millis(200)).await;
        lease.vouch(started);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(lease.current(), None, "the lease ran out");
        lease.vouch(Instant::now());
        assert_eq!(lease.current(), Some(1));
        lease.lost();
        assert_eq!(lease.current(), None);
        lease.vouch(Instant::now());
        assert_eq!(lease.current(), Some(2), "a loss moves the generation on");
    }
}

//! The store's counts for `/readyz` and `/metrics`, without a table scan per probe.
//!
//! Counting users, groups and change events scans tables (about 10 ms of CPU at
//! 100,000 users and as many events on SQLite, more on larger stores), and
//! orchestrators poll readiness every few seconds while Prometheus scrapes
//! `/metrics`: counting on every call was the idle daemon's main work. Readiness itself needs only the store's cheap status, read on every call;
//! the counts are counted again only when a change landed since the last count (the
//! newest change's seq moved), no more often than keeps counting under a tenth of
//! the time, and at least every [`MAX_AGE`] (retention pruning removes events without
//! a new seq).

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Mutex;

use crate::directory::Directory;
use crate::store::{StoreCounts, StoreError};

/// The oldest counts served, whatever happened meanwhile.
const MAX_AGE: TimeDelta = TimeDelta::seconds(60);
/// Counting takes at most 1 / `PACE` of the time: after a count that took `d`, the
/// next waits at least `PACE × d`.
const PACE: i32 = 10;

/// The last counts, when they were taken, what they cost and which change they saw.
#[derive(Debug, Clone, Copy)]
struct Counted {
    counts: StoreCounts,
    at: DateTime<Utc>,
    took: TimeDelta,
    last_event_seq: i64,
}

/// Recent counts, shared by `/readyz` and `/metrics` (one count at a time: callers
/// that arrive during a count wait for it instead of starting their own).
#[derive(Debug, Default)]
pub struct RecentCounts {
    last: Mutex<Option<Counted>>,
}

impl RecentCounts {
    /// Counts no older than the rules above allow, given the newest change's seq
    /// as the store reports it now.
    pub async fn get(
        &self,
        directory: &Directory,
        last_event_seq: i64,
        now: impl Fn() -> DateTime<Utc>,
    ) -> Result<(StoreCounts, DateTime<Utc>), StoreError> {
        let mut last = self.last.lock().await;
        let started = now();
        if let Some(c) = *last
            && fresh(&c, last_event_seq, started)
        {
            return Ok((c.counts, c.at));
        }
        let counts = directory.store_counts().await?;
        let took = now() - started;
        *last = Some(Counted {
            counts,
            at: started,
            took,
            last_event_seq,
        });
        Ok((counts, started))
    }
}

/// Whether counts taken as `c` still stand at `now` with `last_event_seq` the newest
/// change.
fn fresh(c: &Counted, last_event_seq: i64, now: DateTime<Utc>) -> bool {
    let age = now - c.at;
    if age >= MAX_AGE || age < TimeDelta::zero() {
        return false;
    }
    c.last_event_seq == last_event_seq || age < c.took * PACE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(took_ms: i64, seq: i64) -> Counted {
        Counted {
            counts: StoreCounts {
                events: 1,
                users: 1,
                groups: 0,
            },
            at: DateTime::UNIX_EPOCH,
            took: TimeDelta::milliseconds(took_ms),
            last_event_seq: seq,
        }
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::milliseconds(ms)
    }

    #[test]
    fn nothing_changed_means_no_recount_until_the_max_age() {
        let c = counted(100, 7);
        assert!(fresh(&c, 7, at(5_000)));
        assert!(fresh(&c, 7, at(59_999)));
        assert!(!fresh(&c, 7, at(60_000)));
    }

    #[test]
    fn a_change_recounts_once_the_pace_allows() {
        // A count that took 100 ms is not repeated within a second, changes or not.
        let c = counted(100, 7);
        assert!(fresh(&c, 8, at(999)));
        assert!(!fresh(&c, 8, at(1_000)));
        // A cheap count is repeated as soon as something changed.
        let c = counted(0, 7);
        assert!(!fresh(&c, 8, at(0)));
    }

    #[test]
    fn a_clock_set_back_recounts() {
        let c = counted(100, 7);
        assert!(!fresh(&c, 7, at(-1)));
    }
}

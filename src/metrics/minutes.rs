//! Counts per minute over the last hour, kept in memory: what the console's overview
//! plots and sums as "last hour". A ring of sixty one-minute slots, each stamped with
//! the minute it counts, so a slot left from an earlier hour reads as zero without a
//! sweeper; adding costs one short lock, reading copies sixty slots.
//!
//! In memory on purpose: the SCIM requests a provider made are stored nowhere else,
//! and reading deliveries back from the provisioning log would cost an indexed range
//! count per target on every page view. The price is that a restart starts the hour
//! again from zero; callers show minutes before the start as "no data", not as zero.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Minutes kept: one hour.
pub const MINUTES: usize = 60;

#[derive(Debug, Clone, Copy)]
struct Slot<const K: usize> {
    /// Minutes since the Unix epoch this slot counts; `i64::MIN`: never used.
    minute: i64,
    counts: [u64; K],
}

/// `K` counters (say: requests and errors) per minute over the last hour.
#[derive(Debug)]
pub struct PerMinute<const K: usize> {
    slots: Mutex<[Slot<K>; MINUTES]>,
    /// The latest moment anything was added.
    last: Mutex<Option<DateTime<Utc>>>,
}

impl<const K: usize> Default for PerMinute<K> {
    fn default() -> Self {
        PerMinute {
            slots: Mutex::new(
                [Slot {
                    minute: i64::MIN,
                    counts: [0; K],
                }; MINUTES],
            ),
            last: Mutex::new(None),
        }
    }
}

/// The minute `at` falls in, counted from the Unix epoch.
pub fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

fn slot_index(minute: i64) -> usize {
    // rem_euclid(60) is in 0..60, so the cast is lossless.
    minute.rem_euclid(MINUTES as i64) as usize
}

/// The last hour's counts, oldest minute first; the last entry is the current
/// (partial) minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hour<const K: usize> {
    /// The minute of the last entry (see [`minute_of`]).
    pub end_minute: i64,
    pub counts: Vec<[u64; K]>,
}

impl<const K: usize> Hour<K> {
    /// Counter `k` summed over the hour.
    pub fn total(&self, k: usize) -> u64 {
        self.counts.iter().filter_map(|c| c.get(k)).sum()
    }

    /// The minute (from the epoch) of entry `i`.
    pub fn minute(&self, i: usize) -> i64 {
        self.end_minute - (self.counts.len() as i64 - 1) + i as i64
    }
}

impl<const K: usize> PerMinute<K> {
    /// Adds `n` to counter `k` of the minute `at` falls in. A moment more than an hour
    /// before the newest one counted is dropped (its slot holds a later minute).
    pub fn add(&self, at: DateTime<Utc>, k: usize, n: u64) {
        let minute = minute_of(at);
        if let Ok(mut slots) = self.slots.lock() {
            let slot = &mut slots[slot_index(minute)];
            if slot.minute < minute {
                *slot = Slot {
                    minute,
                    counts: [0; K],
                };
            }
            if slot.minute == minute
                && let Some(c) = slot.counts.get_mut(k)
            {
                *c += n;
            }
        }
        if let Ok(mut last) = self.last.lock()
            && last.is_none_or(|l| l < at)
        {
            *last = Some(at);
        }
    }

    /// The latest moment anything was added, if ever.
    pub fn last(&self) -> Option<DateTime<Utc>> {
        self.last.lock().ok().and_then(|l| *l)
    }

    /// The sixty minutes up to and including the one `now` falls in.
    pub fn hour(&self, now: DateTime<Utc>) -> Hour<K> {
        let end_minute = minute_of(now);
        let mut counts = vec![[0; K]; MINUTES];
        if let Ok(slots) = self.slots.lock() {
            for (i, c) in counts.iter_mut().enumerate() {
                let minute = end_minute - (MINUTES as i64 - 1) + i as i64;
                let slot = &slots[slot_index(minute)];
                if slot.minute == minute {
                    *c = slot.counts;
                }
            }
        }
        Hour { end_minute, counts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64, second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_020 * 60 + minute * 60 + second, 0).unwrap()
    }

    #[test]
    fn counts_land_in_their_minute_and_age_out_after_an_hour() {
        let m = PerMinute::<2>::default();
        m.add(at(0, 5), 0, 1);
        m.add(at(0, 59), 0, 2);
        m.add(at(0, 30), 1, 1);
        m.add(at(3, 0), 0, 4);
        let h = m.hour(at(3, 10));
        assert_eq!(h.counts.len(), MINUTES);
        assert_eq!(h.counts[MINUTES - 1], [4, 0]);
        assert_eq!(h.counts[MINUTES - 4], [3, 1]);
        assert_eq!(h.total(0), 7);
        assert_eq!(h.total(1), 1);
        assert_eq!(h.minute(MINUTES - 4), minute_of(at(0, 0)));
        assert_eq!(m.last(), Some(at(3, 0)));
        // Fifty-nine minutes on, minute 0 is the oldest still shown; at sixty it is gone.
        assert_eq!(m.hour(at(59, 0)).total(0), 7);
        assert_eq!(m.hour(at(60, 0)).total(0), 4);
        // A new minute reuses the slot of the one an hour before it.
        m.add(at(60, 1), 0, 10);
        assert_eq!(m.hour(at(60, 2)).total(0), 14);
        assert_eq!(m.hour(at(60, 2)).counts[MINUTES - 1], [10, 0]);
    }

    #[test]
    fn a_moment_older_than_its_slot_is_dropped_not_mixed_in() {
        let m = PerMinute::<1>::default();
        m.add(at(61, 0), 0, 1);
        // Minute 1 shares minute 61's slot; counting it there would inflate minute 61.
        m.add(at(1, 0), 0, 5);
        assert_eq!(m.hour(at(61, 0)).total(0), 1);
        assert_eq!(m.last(), Some(at(61, 0)));
        // Out of range counters are ignored rather than panicking.
        m.add(at(61, 0), 3, 1);
        assert_eq!(m.hour(at(61, 0)).total(0), 1);
    }
}

//! The chainer task: every 200 ms it links what SCIM writes and deliveries logged,
//! seals the head after 1,000 unsealed records or 60 s with any, and prunes past the
//! retention (hourly, or more often when the retention is shorter than that). The
//! request path never waits on it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Journal;

/// How often pending rows are linked.
pub const CHAIN_EVERY: Duration = Duration::from_millis(200);

/// How often the retention is applied at most.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// When the head is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealPolicy {
    /// After this many unsealed records …
    pub records: u64,
    /// … or once the oldest unsealed record has waited this long.
    pub wait: chrono::Duration,
}

impl Default for SealPolicy {
    fn default() -> Self {
        Self {
            records: 1000,
            wait: chrono::Duration::seconds(60),
        }
    }
}

impl SealPolicy {
    /// Whether to seal now, with `unsealed` records waiting since `since`.
    pub fn due(&self, unsealed: u64, since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        unsealed > 0 && (unsealed >= self.records || since.is_some_and(|t| now - t >= self.wait))
    }
}

/// How often to prune for a retention: hourly, but at least four times per
/// retention period, so a short one (a test's seconds) is kept to.
fn prune_every(retention: chrono::Duration) -> Duration {
    let quarter = retention.to_std().unwrap_or(PRUNE_EVERY) / 4;
    quarter.clamp(Duration::from_secs(1), PRUNE_EVERY)
}

/// Runs until aborted. `retention` (`[database] log_retention`; `None` or zero:
/// kept for ever) is what the pruner cuts at.
pub async fn run(journal: Arc<Journal>, retention: Option<chrono::Duration>, policy: SealPolicy) {
    let retention = retention.filter(|r| !r.is_zero());
    let mut tick = tokio::time::interval(CHAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since: Option<DateTime<Utc>> = None;
    let mut last_error = String::new();
    let mut next_prune = tokio::time::Instant::now();
    let mut rounds: u64 = 0;
    loop {
        tick.tick().await;
        rounds += 1;
        let now = journal.clock.now();
        let round = async {
            journal.chain().await?;
            // Seals made elsewhere count too; once a second is enough for status.
            if rounds.is_multiple_of(5) && journal.status().unsealed > 0 {
                journal.refresh().await?;
            }
            let unsealed = journal.status().unsealed;
            since = if unsealed == 0 {
                None
            } else {
                since.or(Some(now))
            };
            if journal.key().is_some() && policy.due(unsealed, since, now) {
                journal.seal().await?;
                since = None;
            }
            if let Some(keep) = retention
                && tokio::time::Instant::now() >= next_prune
            {
                next_prune = tokio::time::Instant::now() + prune_every(keep);
                if journal.key().is_some() {
                    journal.prune(now - keep).await?;
                }
            }
            Ok::<(), super::JournalError>(())
        };
        match round.await {
            Ok(()) => last_error.clear(),
            // Once per distinct failure, not five times a second.
            Err(e) => {
                let text = e.to_string();
                if text != last_error {
                    tracing::warn!(error = %text, "audit chain upkeep failed; retrying");
                    last_error = text;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_is_due_after_enough_records_or_a_long_enough_wait() {
        let p = SealPolicy::default();
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        assert!(!p.due(0, Some(t), t + chrono::Duration::hours(1)));
        assert!(!p.due(999, Some(t), t + chrono::Duration::seconds(59)));
        assert!(p.due(1000, Some(t), t));
        assert!(p.due(1, Some(t), t + chrono::Duration::seconds(60)));
        assert!(!p.due(1, None, t));
    }

    #[test]
    fn pruning_keeps_to_a_short_retention_and_is_hourly_otherwise() {
        assert_eq!(prune_every(chrono::Duration::days(400)), PRUNE_EVERY);
        assert_eq!(
            prune_every(chrono::Duration::seconds(8)),
            Duration::from_secs(2)
        );
        assert_eq!(
            prune_every(chrono::Duration::milliseconds(10)),
            Duration::from_secs(1)
        );
    }
}

//! A request-rate ceiling: starts are spaced evenly, 2% under R. Exactly `1/R` apart,
//! network jitter lets a receiver's one-second window see R + 1 requests (measured);
//! the margin keeps it at or under R while a steady backlog still gets 98% of R.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Share of the configured rate actually used.
const SAFETY: f64 = 0.98;

#[derive(Debug)]
pub struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// `None`: no limit.
    pub fn new(per_second: Option<f64>) -> Self {
        let interval = per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / (r * SAFETY)));
        Self {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = match self.next.lock() {
                Ok(n) => n,
                Err(p) => p.into_inner(),
            };
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

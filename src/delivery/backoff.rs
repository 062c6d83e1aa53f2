//! Exponential backoff with jitter, and `Retry-After`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::entropy::Entropy;

/// Delay before retry `n` (0-based): `base · 2ⁿ` capped at `max`, then a random point in
/// its upper half, so a target that comes back is not hit by every retry at once.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn delay(&self, attempt: u32, entropy: &dyn Entropy) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        let full = self.base.saturating_mul(factor).min(self.max);
        let mut b = [0u8; 8];
        entropy.fill(&mut b);
        let unit = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
        full.mul_f64(0.5 + unit / 2.0)
    }
}

/// A `Retry-After` value (RFC 9110 section 10.2.3): seconds or an HTTP date, capped at
/// `max` so a confused target cannot park a change for days.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>, max: Duration) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use chrono::TimeZone;

    #[test]
    fn delays_grow_stay_capped_and_jitter_in_the_upper_half() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        };
        let e = SeededEntropy::new(7);
        for attempt in 0..40 {
            let full = Duration::from_secs(1u64 << attempt.min(20)).min(Duration::from_secs(300));
            let d = b.delay(attempt, &e);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_dates_and_garbage() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let max = Duration::from_secs(3600);
        assert_eq!(
            parse_retry_after("7", now, max),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now, max),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now, max),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("999999", now, max), Some(max));
        assert_eq!(parse_retry_after("soon", now, max), None);
        assert_eq!(parse_retry_after("-3", now, max), None);
    }
}

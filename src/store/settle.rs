//! What finishing a claimed delivery does to the queue, decided once for both
//! engines: [`settle`] turns the outcome and the queue row as it is now into the
//! writes each engine spells in its own SQL.

use chrono::{DateTime, Utc};

use crate::store::{DeliveryOutcome, QueuedDelivery};

/// The claimed row as it is when the delivery finishes, read under the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    /// The newest change queued for the resource now.
    pub last_seq: i64,
    /// Resync requests recorded now.
    pub resync: i64,
}

/// One write a finished delivery makes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settle<'a> {
    /// Logs the attempt (`delivered`, `retry`, `dead_letter` or `paused`, with the
    /// error or reason).
    Log {
        outcome: &'static str,
        detail: Option<&'a str>,
    },
    /// One more failed attempt; due again at `next_at`, unleased and unpaused.
    Retry {
        next_at: DateTime<Utc>,
        error: &'a str,
    },
    /// Not attempted (the guard paused it): due again at `next_at`, unleased, marked
    /// paused, attempts unchanged.
    Defer {
        next_at: DateTime<Utc>,
        reason: &'a str,
    },
    /// Sets the span aside as the resource's one dead letter at the target: merged
    /// into the letter it already has (widest span, one more attempt, this error),
    /// else a new one from the queue row.
    DeadLetter { error: &'a str },
    /// Nothing arrived meanwhile: the row goes.
    Remove,
    /// Changes or a resync request arrived while this one was in flight: they are
    /// due at once, from the claimed `last_seq` on, with attempts, error, lease,
    /// pause and the sent span cleared. A resync requested meanwhile stays
    /// requested; the one this delivery served is cleared.
    Requeue { from_seq: i64, resync_served: i64 },
}

/// The writes that finish `d` with `outcome`. `held` is the row as `owner` still
/// leases it; `None` (another instance took the lease over, or the row is gone)
/// writes nothing.
pub(crate) fn settle<'a>(
    d: &QueuedDelivery,
    outcome: &'a DeliveryOutcome,
    held: Option<Held>,
) -> Vec<Settle<'a>> {
    let Some(held) = held else {
        return Vec::new();
    };
    // Logged at every look, a held mass deprovisioning of 1,000 people would write
    // 17 million rows a day.
    let held_again = outcome.holds_again(d.last_error.as_deref());
    let log = match outcome {
        DeliveryOutcome::Done => Settle::Log {
            outcome: "delivered",
            detail: None,
        },
        DeliveryOutcome::Retry { error, .. } => Settle::Log {
            outcome: "retry",
            detail: Some(error),
        },
        DeliveryOutcome::Dead { error } => Settle::Log {
            outcome: "dead_letter",
            detail: Some(error),
        },
        DeliveryOutcome::Defer { reason, .. } => Settle::Log {
            outcome: "paused",
            detail: Some(reason),
        },
    };
    let mut steps = if held_again { Vec::new() } else { vec![log] };
    match outcome {
        DeliveryOutcome::Retry { next_at, error } => {
            steps.push(Settle::Retry {
                next_at: *next_at,
                error,
            });
            return steps;
        }
        DeliveryOutcome::Defer { next_at, reason } => {
            steps.push(Settle::Defer {
                next_at: *next_at,
                reason,
            });
            return steps;
        }
        // A dead letter holds the changes; the row then settles as if delivered.
        DeliveryOutcome::Dead { error } => steps.push(Settle::DeadLetter { error }),
        DeliveryOutcome::Done => {}
    }
    if held.last_seq == d.last_seq && held.resync == d.resync_requests {
        steps.push(Settle::Remove);
    } else {
        steps.push(Settle::Requeue {
            from_seq: d.last_seq,
            resync_served: d.resync_requests,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::ResourceKind;

    fn claimed(last_seq: i64, resync_requests: i64) -> QueuedDelivery {
        QueuedDelivery {
            target: "t".into(),
            provider: "p".into(),
            kind: ResourceKind::User,
            resource_id: "u".into(),
            from_seq: 0,
            last_seq,
            queued_at: DateTime::<Utc>::UNIX_EPOCH,
            attempts: 2,
            last_error: None,
            resync: resync_requests > 0,
            resync_requests,
        }
    }

    fn held(last_seq: i64, resync: i64) -> Option<Held> {
        Some(Held { last_seq, resync })
    }

    #[test]
    fn a_hold_is_logged_once_not_at_every_look() {
        let defer = DeliveryOutcome::Defer {
            next_at: DateTime::<Utc>::UNIX_EPOCH,
            reason: "too many deletions".into(),
        };
        let first = settle(&claimed(5, 0), &defer, held(5, 0));
        assert!(matches!(
            first[0],
            Settle::Log {
                outcome: "paused",
                ..
            }
        ));
        let mut looked = claimed(5, 0);
        looked.last_error = Some("too many deletions".into());
        let again = settle(&looked, &defer, held(5, 0));
        assert!(matches!(again[..], [Settle::Defer { .. }]), "{again:?}");
        // A new reason is news.
        looked.last_error = Some("another reason".into());
        let changed = settle(&looked, &defer, held(5, 0));
        assert!(matches!(
            changed[0],
            Settle::Log {
                outcome: "paused",
                ..
            }
        ));
    }

    #[test]
    fn a_lost_lease_writes_nothing() {
        assert!(settle(&claimed(5, 0), &DeliveryOutcome::Done, None).is_empty());
    }

    #[test]
    fn delivered_removes_the_row_unless_something_arrived_meanwhile() {
        let done = DeliveryOutcome::Done;
        let log = Settle::Log {
            outcome: "delivered",
            detail: None,
        };
        assert_eq!(
            settle(&claimed(5, 1), &done, held(5, 1)),
            [log.clone(), Settle::Remove]
        );
        // A change arrived: due at once from the delivered seq.
        assert_eq!(
            settle(&claimed(5, 1), &done, held(7, 1)),
            [
                log.clone(),
                Settle::Requeue {
                    from_seq: 5,
                    resync_served: 1
                }
            ]
        );
        // A resync was requested meanwhile.
        assert_eq!(
            settle(&claimed(5, 1), &done, held(5, 2)),
            [
                log,
                Settle::Requeue {
                    from_seq: 5,
                    resync_served: 1
                }
            ]
        );
    }

    #[test]
    fn retry_and_defer_keep_the_row_where_it_is() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let retry = DeliveryOutcome::Retry {
            next_at: at,
            error: "HTTP 503".into(),
        };
        assert_eq!(
            settle(&claimed(5, 0), &retry, held(9, 0)),
            [
                Settle::Log {
                    outcome: "retry",
                    detail: Some("HTTP 503")
                },
                Settle::Retry {
                    next_at: at,
                    error: "HTTP 503"
                }
            ]
        );
        let defer = DeliveryOutcome::Defer {
            next_at: at,
            reason: "guard".into(),
        };
        assert_eq!(
            settle(&claimed(5, 0), &defer, held(5, 0)),
            [
                Settle::Log {
                    outcome: "paused",
                    detail: Some("guard")
                },
                Settle::Defer {
                    next_at: at,
                    reason: "guard"
                }
            ]
        );
    }

    #[test]
    fn a_dead_letter_then_settles_like_a_delivery() {
        let dead = DeliveryOutcome::Dead {
            error: "HTTP 400".into(),
        };
        let first = [
            Settle::Log {
                outcome: "dead_letter",
                detail: Some("HTTP 400"),
            },
            Settle::DeadLetter { error: "HTTP 400" },
        ];
        let gone = settle(&claimed(5, 0), &dead, held(5, 0));
        assert_eq!(gone[..2], first);
        assert_eq!(gone[2..], [Settle::Remove]);
        let more = settle(&claimed(5, 0), &dead, held(6, 0));
        assert_eq!(
            more[2..],
            [Settle::Requeue {
                from_seq: 5,
                resync_served: 0
            }]
        );
    }
}

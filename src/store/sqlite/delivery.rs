//! SQL for delivery: routes, the coalescing queue with leases, dead letters, target ids.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::rows::{fmt_time, parse_kind, parse_time};
use crate::scim::ResourceKind;
use crate::store::settle::{Held, Settle, settle};
use crate::store::{
    ChangeEvent, ChangeOp, Claim, DeadLetter, DeliveryAttempt, DeliveryOutcome, DeliveryStats,
    EventDetail, GuardState, Managed, Orphan, QueuedDelivery, StoreError, TargetLink,
};

const QUEUE_COLUMNS: &str = "target, provider, kind, resource_id, from_seq, last_seq, queued_at, attempts, last_error, resync";

/// [`QUEUE_COLUMNS`] as a claim reads them: a span already attempted is sent again as
/// it was (see `sent_seq` in migration 10), later changes wait for the next delivery.
const CLAIM_COLUMNS: &str = "target, provider, kind, resource_id, from_seq, coalesce(sent_seq, last_seq), queued_at, attempts, last_error, resync";

type RawQueued = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    i64,
    Option<String>,
    i64,
);

fn raw_queued(r: &Row<'_>) -> rusqlite::Result<RawQueued> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn queued(raw: RawQueued) -> Result<QueuedDelivery, StoreError> {
    let (
        target,
        provider,
        kind,
        resource_id,
        from_seq,
        last_seq,
        queued_at,
        attempts,
        last_error,
        resync,
    ) = raw;
    Ok(QueuedDelivery {
        target,
        provider,
        kind: parse_kind(&kind)?,
        resource_id,
        from_seq,
        last_seq,
        queued_at: parse_time(&queued_at)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        last_error,
        resync: resync > 0,
        resync_requests: resync,
    })
}

/// Replaces the routing table; returns how many queued rows belonged to targets or
/// routes that no longer exist (and were removed).
pub(super) fn set_routes(c: &Connection, routes: &[(String, String)]) -> Result<usize, StoreError> {
    c.execute("DELETE FROM delivery_routes", [])?;
    let mut insert = c.prepare_cached(
        "INSERT OR IGNORE INTO delivery_routes (target, provider) VALUES (?1, ?2)",
    )?;
    for (target, provider) in routes {
        insert.execute(params![target, provider])?;
    }
    let removed = c.execute(
        "DELETE FROM delivery_queue WHERE NOT EXISTS (SELECT 1 FROM delivery_routes r
            WHERE r.target = delivery_queue.target AND r.provider = delivery_queue.provider)",
        [],
    )?;
    Ok(removed)
}

/// Whether anything is due: a read, so an idle engine does not queue writes.
pub(super) fn any_due(c: &Connection, target: &str, now: &str) -> Result<bool, StoreError> {
    Ok(c.prepare_cached(
        "SELECT 1 FROM delivery_queue WHERE target = ?1 AND next_at <= ?2
               AND (lease_until IS NULL OR lease_until < ?2) LIMIT 1",
    )?
    .query_row(params![target, now], |_| Ok(()))
    .optional()?
    .is_some())
}

/// Leases up to `limit` due rows to `owner` until `until`.
pub(super) fn claim(
    c: &Connection,
    target: &str,
    owner: &str,
    now: &str,
    until: &str,
    limit: usize,
) -> Result<Vec<QueuedDelivery>, StoreError> {
    let raws: Vec<RawQueued> = c
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM delivery_queue WHERE target = ?1 AND next_at <= ?2
               AND (lease_until IS NULL OR lease_until < ?2) ORDER BY next_at LIMIT ?3"
        ))?
        .query_map(params![target, now, limit as i64], raw_queued)?
        .collect::<Result<_, _>>()?;
    let mut lease = c.prepare_cached(
        "UPDATE delivery_queue SET lease_owner = ?5, lease_until = ?6, sent_seq = coalesce(sent_seq, last_seq)
         WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
    )?;
    let mut out = Vec::with_capacity(raws.len());
    for raw in raws {
        lease.execute(params![raw.0, raw.1, raw.2, raw.3, owner, until])?;
        out.push(queued(raw)?);
    }
    Ok(out)
}

/// Leases one resource's queued row to `owner` until `until`, due or not, unless a
/// lease still running holds it.
#[allow(clippy::too_many_arguments)]
pub(super) fn claim_one(
    c: &Connection,
    target: &str,
    provider: &str,
    kind: ResourceKind,
    id: &str,
    owner: &str,
    now: &str,
    until: &str,
) -> Result<Claim, StoreError> {
    let found: Option<(RawQueued, Option<String>)> = c
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS}, lease_until FROM delivery_queue
             WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4"
        ))?
        .query_row(params![target, provider, kind.name(), id], |r| {
            Ok((raw_queued(r)?, r.get(10)?))
        })
        .optional()?;
    let Some((raw, lease)) = found else {
        return Ok(Claim::Absent);
    };
    if let Some(lease) = lease.filter(|l| l.as_str() >= now) {
        return Ok(Claim::Leased {
            until: parse_time(&lease)?,
        });
    }
    c.prepare_cached(
        "UPDATE delivery_queue SET lease_owner = ?5, lease_until = ?6, sent_seq = coalesce(sent_seq, last_seq)
         WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
    )?
    .execute(params![raw.0, raw.1, raw.2, raw.3, owner, until])?;
    Ok(Claim::Claimed(queued(raw)?))
}

/// Records the outcome of a claimed delivery: the writes [`settle`] decides, in
/// SQLite's SQL. Nothing happens unless `owner` still holds the lease (another
/// instance may have taken over an expired one).
pub(super) fn finish(
    c: &Connection,
    d: &QueuedDelivery,
    owner: &str,
    outcome: &DeliveryOutcome,
    took: std::time::Duration,
    at: &str,
    record: Option<&crate::provlog::LogRow>,
) -> Result<(), StoreError> {
    let key = params![d.target, d.provider, d.kind.name(), d.resource_id, owner];
    let held = c
        .prepare_cached(
            "SELECT last_seq, resync FROM delivery_queue WHERE target = ?1 AND provider = ?2 AND kind = ?3
               AND resource_id = ?4 AND lease_owner = ?5",
        )?
        .query_row(key, |r| {
            Ok(Held {
                last_seq: r.get(0)?,
                resync: r.get(1)?,
            })
        })
        .optional()?;
    let steps = settle(d, outcome, held);
    // The provisioning-log record is written whenever the lease still stands (an
    // empty settlement means another instance took the row over), also when the
    // attempt log skips a hold it already recorded.
    if !steps.is_empty()
        && let Some(row) = record
    {
        super::provlog::insert(c, row)?;
    }
    for step in steps {
        let pk = params![d.target, d.provider, d.kind.name(), d.resource_id];
        match step {
            Settle::Log { outcome, detail } => {
                c.prepare_cached(
                    "INSERT INTO delivery_log (target, provider, kind, resource_id, from_seq, last_seq, outcome, detail, duration_ms, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    d.target,
                    d.provider,
                    d.kind.name(),
                    d.resource_id,
                    d.from_seq,
                    d.last_seq,
                    outcome,
                    detail,
                    i64::try_from(took.as_millis()).unwrap_or(i64::MAX),
                    at
                ])?;
            }
            Settle::Retry { next_at, error } => {
                c.prepare_cached(
                    "UPDATE delivery_queue SET attempts = attempts + 1, next_at = ?5, last_error = ?6,
                       lease_owner = NULL, lease_until = NULL, paused = 0
                     WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
                )?
                .execute(params![
                    d.target,
                    d.provider,
                    d.kind.name(),
                    d.resource_id,
                    fmt_time(next_at),
                    error
                ])?;
            }
            Settle::Defer { next_at, reason } => {
                c.prepare_cached(
                    "UPDATE delivery_queue SET next_at = ?5, last_error = ?6, lease_owner = NULL, lease_until = NULL,
                       paused = 1
                     WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
                )?
                .execute(params![d.target, d.provider, d.kind.name(), d.resource_id, fmt_time(next_at), reason])?;
            }
            Settle::DeadLetter { error } => {
                let merged = c
                    .prepare_cached(
                        "UPDATE dead_letters SET
                           from_seq = min(from_seq, coalesce((SELECT from_seq FROM delivery_queue
                             WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4), from_seq)),
                           last_seq = max(last_seq, ?5), attempts = attempts + 1, error = ?6, at = ?7
                         WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
                    )?
                    .execute(params![d.target, d.provider, d.kind.name(), d.resource_id, d.last_seq, error, at])?;
                if merged == 0 {
                    c.prepare_cached(
                        "INSERT INTO dead_letters (target, provider, kind, resource_id, from_seq, last_seq,
                           queued_at, attempts, error, at)
                         SELECT target, provider, kind, resource_id, from_seq, ?5, queued_at, attempts + 1, ?6, ?7
                         FROM delivery_queue WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
                    )?
                    .execute(params![d.target, d.provider, d.kind.name(), d.resource_id, d.last_seq, error, at])?;
                }
            }
            Settle::Remove => {
                c.prepare_cached(
                    "DELETE FROM delivery_queue WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
                )?
                .execute(pk)?;
            }
            Settle::Requeue {
                from_seq,
                resync_served,
            } => {
                c.prepare_cached(
                    "UPDATE delivery_queue SET from_seq = ?5, queued_at = ?6, next_at = ?6, attempts = 0,
                       last_error = NULL, lease_owner = NULL, lease_until = NULL, paused = 0, sent_seq = NULL,
                       resync = CASE WHEN resync = ?7 THEN 0 ELSE resync END
                     WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
                )?
                .execute(params![
                    d.target,
                    d.provider,
                    d.kind.name(),
                    d.resource_id,
                    from_seq,
                    at,
                    resync_served
                ])?;
            }
        }
    }
    Ok(())
}

/// Events of one resource in `(after, upto]`, oldest first.
pub(super) fn resource_events(
    c: &Connection,
    provider: &str,
    kind: ResourceKind,
    id: &str,
    after: i64,
    upto: i64,
) -> Result<Vec<ChangeEvent>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT seq, provider, kind, resource_id, op, version, at, detail, request_id
         FROM change_events WHERE provider = ?1 AND kind = ?2 AND resource_id = ?3
           AND seq > ?4 AND seq <= ?5 ORDER BY seq",
    )?;
    let rows = st.query_map(params![provider, kind.name(), id, after, upto], raw_event)?;
    rows.map(|r| event(r?)).collect()
}

pub(super) type RawEvent = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
);

pub(super) fn raw_event(r: &Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

pub(super) fn event(raw: RawEvent) -> Result<ChangeEvent, StoreError> {
    let (seq, provider, kind, resource_id, op, version, at, detail, request_id) = raw;
    Ok(ChangeEvent {
        seq,
        provider,
        kind: parse_kind(&kind)?,
        resource_id,
        op: ChangeOp::parse(&op)
            .ok_or_else(|| StoreError::Database(format!("bad stored op {op:?}")))?,
        version,
        at: parse_time(&at)?,
        detail: EventDetail::parse(&detail),
        request_id,
    })
}

pub(super) fn dead_letters(
    c: &Connection,
    target: Option<&str>,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, target, provider, kind, resource_id, from_seq, last_seq, queued_at, attempts, error, at
         FROM dead_letters WHERE ?1 IS NULL OR target = ?1 ORDER BY id",
    )?;
    type Raw = (
        i64,
        String,
        String,
        String,
        String,
        i64,
        i64,
        String,
        i64,
        String,
        String,
    );
    let raws: Vec<Raw> = st
        .query_map(params![target], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    raws.into_iter()
        .map(
            |(
                id,
                target,
                provider,
                kind,
                resource_id,
                from_seq,
                last_seq,
                queued_at,
                attempts,
                error,
                at,
            )| {
                Ok(DeadLetter {
                    id,
                    target,
                    provider,
                    kind: parse_kind(&kind)?,
                    resource_id,
                    from_seq,
                    last_seq,
                    queued_at: parse_time(&queued_at)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    error,
                    at: parse_time(&at)?,
                })
            },
        )
        .collect()
}

/// Puts a dead letter's changes back in the queue, due now; `false` when no such letter.
pub(super) fn requeue_dead_letter(c: &Connection, id: i64, at: &str) -> Result<bool, StoreError> {
    let n = c.execute(
        "INSERT INTO delivery_queue (target, provider, kind, resource_id, from_seq, last_seq, queued_at, next_at)
         SELECT target, provider, kind, resource_id, from_seq, last_seq, queued_at, ?2 FROM dead_letters WHERE id = ?1
         ON CONFLICT (target, provider, kind, resource_id) DO UPDATE SET
           from_seq = min(from_seq, excluded.from_seq), last_seq = max(last_seq, excluded.last_seq), next_at = ?2",
        params![id, at],
    )?;
    if n == 0 {
        return Ok(false);
    }
    c.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
    Ok(true)
}

pub(super) fn drop_dead_letter(c: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM dead_letters WHERE id = ?1", [id])? == 1)
}

pub(super) fn stats(c: &Connection, target: &str) -> Result<DeliveryStats, StoreError> {
    let (queued, retrying, oldest): (i64, i64, Option<String>) = c
        .prepare_cached(
            "SELECT count(*), count(*) FILTER (WHERE attempts > 0), min(queued_at)
             FROM delivery_queue WHERE target = ?1",
        )?
        .query_row([target], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let dead: i64 = c
        .prepare_cached("SELECT count(*) FROM dead_letters WHERE target = ?1")?
        .query_row([target], |r| r.get(0))?;
    Ok(DeliveryStats {
        queued: queued.max(0) as u64,
        retrying: retrying.max(0) as u64,
        oldest: oldest.as_deref().map(parse_time).transpose()?,
        dead_letters: dead.max(0) as u64,
    })
}

pub(super) fn target_id(
    c: &Connection,
    target: &str,
    provider: &str,
    kind: ResourceKind,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(c
        .prepare_cached(
            "SELECT target_id FROM target_ids WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
        )?
        .query_row(params![target, provider, kind.name(), id], |r| r.get(0))
        .optional()?)
}

pub(super) fn set_target_id(
    c: &Connection,
    target: &str,
    provider: &str,
    kind: ResourceKind,
    id: &str,
    link: Option<&TargetLink>,
) -> Result<(), StoreError> {
    match link {
        Some(l) => c
            .prepare_cached(
                "INSERT INTO target_ids (target, provider, kind, resource_id, target_id, adopted_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (target, provider, kind, resource_id)
                 DO UPDATE SET target_id = excluded.target_id, adopted_by = excluded.adopted_by",
            )?
            .execute(params![target, provider, kind.name(), id, l.target_id, l.adopted_by])?,
        None => c
            .prepare_cached(
                "DELETE FROM target_ids WHERE target = ?1 AND provider = ?2 AND kind = ?3 AND resource_id = ?4",
            )?
            .execute(params![target, provider, kind.name(), id])?,
    };
    Ok(())
}

type RawManaged = (String, String, String, String, Option<String>);

fn raw_managed(r: &Row<'_>) -> rusqlite::Result<RawManaged> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn managed_row(raw: RawManaged) -> Result<Managed, StoreError> {
    let (provider, kind, resource_id, target_id, adopted_by) = raw;
    Ok(Managed {
        provider,
        kind: parse_kind(&kind)?,
        resource_id,
        link: TargetLink {
            target_id,
            adopted_by,
        },
    })
}

/// Every account and group the bridge manages at `target`.
pub(super) fn managed(c: &Connection, target: &str) -> Result<Vec<Managed>, StoreError> {
    let raws: Vec<RawManaged> = c
        .prepare_cached(
            "SELECT provider, kind, resource_id, target_id, adopted_by FROM target_ids WHERE target = ?1",
        )?
        .query_map(params![target], raw_managed)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(managed_row).collect()
}

/// The bridge resource that manages `target_id` at `target`, if any.
pub(super) fn target_owner(
    c: &Connection,
    target: &str,
    kind: ResourceKind,
    target_id: &str,
) -> Result<Option<Managed>, StoreError> {
    let raw: Option<RawManaged> = c
        .prepare_cached(
            "SELECT provider, kind, resource_id, target_id, adopted_by FROM target_ids
             WHERE target = ?1 AND kind = ?2 AND target_id = ?3 LIMIT 1",
        )?
        .query_row(params![target, kind.name(), target_id], raw_managed)
        .optional()?;
    raw.map(managed_row).transpose()
}

pub(super) fn count_managed(
    c: &Connection,
    target: &str,
    kind: ResourceKind,
) -> Result<u64, StoreError> {
    let n: i64 = c
        .prepare_cached("SELECT count(*) FROM target_ids WHERE target = ?1 AND kind = ?2")?
        .query_row(params![target, kind.name()], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// The changes the guard holds back at `target`.
pub(super) fn held(c: &Connection, target: &str) -> Result<Vec<QueuedDelivery>, StoreError> {
    let raws: Vec<RawQueued> = c
        .prepare_cached(&format!(
            "SELECT {QUEUE_COLUMNS} FROM delivery_queue WHERE target = ?1 AND paused = 1 ORDER BY queued_at"
        ))?
        .query_map(params![target], raw_queued)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(queued).collect()
}

/// Moves what the guard holds at `target` to the dead-letter queue with `reason`
/// (visible, retryable, never silently dropped) and clears the trip; returns how many.
/// Rows being delivered right now (leased) are left to finish.
pub(super) fn reject_held(
    c: &Connection,
    target: &str,
    reason: &str,
    at: &str,
) -> Result<usize, StoreError> {
    c.prepare_cached(
        "INSERT INTO dead_letters (target, provider, kind, resource_id, from_seq, last_seq,
           queued_at, attempts, error, at)
         SELECT target, provider, kind, resource_id, from_seq, last_seq, queued_at, attempts, ?2, ?3
         FROM delivery_queue WHERE target = ?1 AND paused = 1 AND (lease_until IS NULL OR lease_until < ?3)",
    )?
    .execute(params![target, reason, at])?;
    let n = c
        .prepare_cached(
            "DELETE FROM delivery_queue WHERE target = ?1 AND paused = 1 AND (lease_until IS NULL OR lease_until < ?2)",
        )?
        .execute(params![target, at])?;
    c.prepare_cached(
        "UPDATE delivery_guard SET tripped_at = NULL, reason = NULL WHERE target = ?1",
    )?
    .execute(params![target])?;
    Ok(n)
}

pub(super) fn guard(c: &Connection, target: &str) -> Result<GuardState, StoreError> {
    type Raw = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let raw: Option<Raw> = c
        .prepare_cached(
            "SELECT tripped_at, reason, approved_at, approved_until FROM delivery_guard WHERE target = ?1",
        )?
        .query_row([target], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((tripped_at, reason, approved_at, approved_until)) = raw else {
        return Ok(GuardState::default());
    };
    let time = |t: Option<String>| t.as_deref().map(parse_time).transpose();
    Ok(GuardState {
        tripped_at: time(tripped_at)?,
        reason,
        approved_at: time(approved_at)?,
        approved_until: time(approved_until)?,
    })
}

pub(super) fn trip_guard(
    c: &Connection,
    target: &str,
    reason: &str,
    at: &str,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO delivery_guard (target, tripped_at, reason) VALUES (?1, ?3, ?2)
         ON CONFLICT (target) DO UPDATE SET tripped_at = coalesce(tripped_at, excluded.tripped_at),
           reason = CASE WHEN tripped_at IS NULL THEN excluded.reason ELSE reason END",
        params![target, reason, at],
    )?;
    Ok(())
}

pub(super) fn approve_guard(
    c: &Connection,
    target: &str,
    at: &str,
    until: &str,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "UPDATE delivery_guard SET tripped_at = NULL, reason = NULL, approved_at = ?2, approved_until = ?3
         WHERE target = ?1 AND tripped_at IS NOT NULL",
        params![target, at, until],
    )? == 1)
}

pub(super) fn attempts(
    c: &Connection,
    provider: &str,
    kind: ResourceKind,
    id: &str,
) -> Result<Vec<DeliveryAttempt>, StoreError> {
    type Raw = (String, i64, i64, String, Option<String>, i64, String);
    let raws: Vec<Raw> = c
        .prepare_cached(
            "SELECT target, from_seq, last_seq, outcome, detail, duration_ms, at FROM delivery_log
             WHERE provider = ?1 AND kind = ?2 AND resource_id = ?3 ORDER BY id",
        )?
        .query_map(params![provider, kind.name(), id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    raws.into_iter()
        .map(|(target, from_seq, last_seq, outcome, detail, ms, at)| {
            Ok(DeliveryAttempt {
                target,
                from_seq,
                last_seq,
                outcome,
                detail,
                duration_ms: u64::try_from(ms).unwrap_or(0),
                at: parse_time(&at)?,
            })
        })
        .collect()
}

/// Queues a resource for delivery of its whole current state, due now (reconciliation).
pub(super) fn enqueue_resync(
    c: &Connection,
    target: &str,
    provider: &str,
    kind: ResourceKind,
    id: &str,
    at: &str,
) -> Result<(), StoreError> {
    let last: i64 = c
        .prepare_cached(
            "SELECT coalesce(max(seq), 0) FROM change_events WHERE provider = ?1 AND kind = ?2 AND resource_id = ?3",
        )?
        .query_row(params![provider, kind.name(), id], |r| r.get(0))?;
    c.prepare_cached(
        "INSERT INTO delivery_queue (target, provider, kind, resource_id, from_seq, last_seq, queued_at, next_at, resync)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?6, 1)
         ON CONFLICT (target, provider, kind, resource_id) DO UPDATE SET resync = resync + 1, next_at = min(next_at, ?6)",
    )?
    .execute(params![target, provider, kind.name(), id, last, at])?;
    Ok(())
}

/// Records that `resource_id` waits for `awaited_id` to reach `target`.
pub(super) fn await_link(
    c: &Connection,
    target: &str,
    provider: &str,
    awaited_id: &str,
    resource_id: &str,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO link_waits (target, provider, awaited_id, resource_id) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![target, provider, awaited_id, resource_id])?;
    Ok(())
}

/// Queues every user waiting for `awaited_id` for full delivery and forgets the waits,
/// in one transaction so a crash cannot lose a wait that was not queued.
pub(super) fn release_waiting(
    c: &Connection,
    target: &str,
    provider: &str,
    awaited_id: &str,
    at: &str,
) -> Result<usize, StoreError> {
    let waiting: Vec<String> = c
        .prepare_cached(
            "DELETE FROM link_waits WHERE target = ?1 AND provider = ?2 AND awaited_id = ?3
             RETURNING resource_id",
        )?
        .query_map(params![target, provider, awaited_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &waiting {
        enqueue_resync(c, target, provider, ResourceKind::User, id, at)?;
    }
    Ok(waiting.len())
}

/// Users the target holds for resources the bridge no longer has, with when each was
/// deleted (`None` once its events were pruned).
pub(super) fn orphaned_users(c: &Connection, target: &str) -> Result<Vec<Orphan>, StoreError> {
    let rows = c
        .prepare_cached(
            "SELECT t.provider, t.resource_id, t.target_id,
                    (SELECT max(e.at) FROM change_events e
                      WHERE e.provider = t.provider AND e.kind = t.kind
                        AND e.resource_id = t.resource_id AND e.op = 'delete')
             FROM target_ids t
             WHERE t.target = ?1 AND t.kind = 'User'
               AND NOT EXISTS (SELECT 1 FROM resources r
                               WHERE r.provider = t.provider AND r.kind = t.kind AND r.id = t.resource_id)",
        )?
        .query_map(params![target], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(provider, id, target_id, at)| {
            Ok(Orphan {
                provider,
                id,
                target_id,
                deleted_at: at.as_deref().map(parse_time).transpose()?,
            })
        })
        .collect()
}

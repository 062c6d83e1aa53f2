//! Delivery SQL on PostgreSQL: routes, the coalescing queue with leases (claimed with
//! `FOR UPDATE SKIP LOCKED`, so instances never wait on or double-claim each other's
//! rows), dead letters, the guard, target ids and the delivery log.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::rows::{Failed, execute, kind, ms, query, query_opt};
use crate::scim::ResourceKind;
use crate::store::settle::{Held, Settle, settle};
use crate::store::{
    ChangeEvent, ChangeOp, Claim, DeadLetter, DeliveryAttempt, DeliveryOutcome, DeliveryStats,
    EventDetail, GuardState, Managed, Orphan, QueuedDelivery, StoreError, TargetLink,
};

/// Serialises route replacement: instances starting together with the same config
/// would otherwise interleave their delete-and-insert.
const ROUTES_LOCK: i64 = 0x5C1B_0002;

pub const EVENT_COLUMNS: &str =
    "seq, provider, kind, resource_id, op, version, at, detail, request_id";

pub fn event(r: &Row) -> Result<ChangeEvent, StoreError> {
    let op: String = r.try_get(4)?;
    let detail: String = r.try_get(7)?;
    Ok(ChangeEvent {
        seq: r.try_get(0)?,
        provider: r.try_get(1)?,
        kind: kind(r, 2)?,
        resource_id: r.try_get(3)?,
        op: ChangeOp::parse(&op)
            .ok_or_else(|| StoreError::Database(format!("bad stored op {op:?}")))?,
        version: r.try_get(5)?,
        at: r.try_get(6)?,
        detail: EventDetail::parse(&detail),
        request_id: r.try_get(8)?,
    })
}

const QUEUE_COLUMNS: &str = "q.target, q.provider, q.kind, q.resource_id, q.from_seq, q.last_seq, q.queued_at, q.attempts, q.last_error, q.resync, q.next_at";

/// [`QUEUE_COLUMNS`] as a claim returns them: a span already attempted is sent again
/// as it was (see `sent_seq` in migration 6), later changes wait for the next delivery.
const CLAIM_COLUMNS: &str = "q.target, q.provider, q.kind, q.resource_id, q.from_seq, q.sent_seq, q.queued_at, q.attempts, q.last_error, q.resync, q.next_at";

fn queued(r: &Row) -> Result<(QueuedDelivery, DateTime<Utc>), StoreError> {
    let attempts: i32 = r.try_get(7)?;
    let resync: i64 = r.try_get(9)?;
    Ok((
        QueuedDelivery {
            target: r.try_get(0)?,
            provider: r.try_get(1)?,
            kind: kind(r, 2)?,
            resource_id: r.try_get(3)?,
            from_seq: r.try_get(4)?,
            last_seq: r.try_get(5)?,
            queued_at: r.try_get(6)?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            last_error: r.try_get(8)?,
            resync: resync > 0,
            resync_requests: resync,
        },
        r.try_get(10)?,
    ))
}

pub async fn set_routes(
    tx: &Transaction<'_>,
    routes: &[(String, String)],
) -> Result<usize, Failed> {
    execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&ROUTES_LOCK]).await?;
    execute(tx, "DELETE FROM delivery_routes", &[]).await?;
    let targets: Vec<&str> = routes.iter().map(|r| r.0.as_str()).collect();
    let providers: Vec<&str> = routes.iter().map(|r| r.1.as_str()).collect();
    execute(
        tx,
        "INSERT INTO delivery_routes (target, provider)
         SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
        &[&targets, &providers],
    )
    .await?;
    let removed = execute(
        tx,
        "DELETE FROM delivery_queue q WHERE NOT EXISTS (SELECT 1 FROM delivery_routes r
            WHERE r.target = q.target AND r.provider = q.provider)",
        &[],
    )
    .await?;
    Ok(usize::try_from(removed).unwrap_or(usize::MAX))
}

/// Leases up to `limit` due rows. Rows another instance is claiming right now are
/// skipped rather than waited for, and a row leased meanwhile fails the re-checked
/// condition, so no row is ever leased twice.
pub async fn claim(
    c: &impl GenericClient,
    target: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<QueuedDelivery>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = query(
        c,
        &format!(
            "WITH due AS (
               SELECT target, provider, kind, resource_id FROM delivery_queue
               WHERE target = $1 AND next_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
               ORDER BY next_at LIMIT $5
               FOR UPDATE SKIP LOCKED
             )
             UPDATE delivery_queue q SET lease_owner = $3, lease_until = $4,
               sent_seq = coalesce(q.sent_seq, q.last_seq)
             FROM due WHERE q.target = due.target AND q.provider = due.provider
               AND q.kind = due.kind AND q.resource_id = due.resource_id
             RETURNING {CLAIM_COLUMNS}"
        ),
        &[&target, &ms(now), &owner, &ms(until), &limit],
    )
    .await?;
    let mut out = rows.iter().map(queued).collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|(_, next_at)| *next_at);
    Ok(out.into_iter().map(|(d, _)| d).collect())
}

/// Leases one resource's queued row to `owner` until `until`, due or not, unless a
/// lease still running holds it.
#[allow(clippy::too_many_arguments)]
pub async fn claim_one(
    c: &impl GenericClient,
    target: &str,
    provider: &str,
    kind: ResourceKind,
    id: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Claim, StoreError> {
    let k = kind.name();
    let claimed = query_opt(
        c,
        &format!(
            "UPDATE delivery_queue q SET lease_owner = $5, lease_until = $6,
               sent_seq = coalesce(q.sent_seq, q.last_seq)
             WHERE q.target = $1 AND q.provider = $2 AND q.kind = $3 AND q.resource_id = $4
               AND (q.lease_until IS NULL OR q.lease_until < $7)
             RETURNING {CLAIM_COLUMNS}"
        ),
        &[&target, &provider, &k, &id, &owner, &ms(until), &ms(now)],
    )
    .await?;
    if let Some(row) = claimed {
        return Ok(Claim::Claimed(queued(&row)?.0));
    }
    let lease = query_opt(
        c,
        "SELECT lease_until FROM delivery_queue
         WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4",
        &[&target, &provider, &k, &id],
    )
    .await?;
    Ok(match lease {
        None => Claim::Absent,
        Some(row) => match row.try_get::<_, Option<DateTime<Utc>>>(0)? {
            Some(until) => Claim::Leased { until },
            // Its lease ran out between the two statements: a retry takes it.
            None => Claim::Leased { until: now },
        },
    })
}

/// Records the outcome of a claimed delivery: the writes [`settle`] decides, in
/// PostgreSQL's SQL. Nothing happens unless `owner` still holds the lease. The row
/// stays locked until commit, so a change written meanwhile (which updates
/// `last_seq`) is ordered entirely before or after this.
pub async fn finish(
    tx: &Transaction<'_>,
    d: &QueuedDelivery,
    owner: &str,
    outcome: &DeliveryOutcome,
    took: std::time::Duration,
    at: DateTime<Utc>,
    record: Option<&crate::provlog::LogRow>,
) -> Result<(), Failed> {
    let at = ms(at);
    let kind = d.kind.name();
    let held = query_opt(
        tx,
        "SELECT last_seq, resync FROM delivery_queue WHERE target = $1 AND provider = $2 AND kind = $3
           AND resource_id = $4 AND lease_owner = $5 FOR UPDATE",
        &[&d.target, &d.provider, &kind, &d.resource_id, &owner],
    )
    .await?;
    let held = match held {
        Some(r) => Some(Held {
            last_seq: r.try_get(0).map_err(StoreError::from)?,
            resync: r.try_get(1).map_err(StoreError::from)?,
        }),
        None => None,
    };
    let steps = settle(d, outcome, held);
    // The provisioning-log record is written whenever the lease still stands (an
    // empty settlement means another instance took the row over), also when the
    // attempt log skips a hold it already recorded.
    if !steps.is_empty()
        && let Some(row) = record
    {
        super::provlog::insert(tx, row).await?;
    }
    for step in steps {
        match step {
            Settle::Log { outcome, detail } => {
                let took_ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
                execute(
                    tx,
                    "INSERT INTO delivery_log (target, provider, kind, resource_id, from_seq, last_seq, outcome, detail, duration_ms, at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[&d.target, &d.provider, &kind, &d.resource_id, &d.from_seq, &d.last_seq, &outcome, &detail, &took_ms, &at],
                )
                .await?;
            }
            Settle::Retry { next_at, error } => {
                execute(
                    tx,
                    "UPDATE delivery_queue SET attempts = attempts + 1, next_at = $5, last_error = $6,
                       lease_owner = NULL, lease_until = NULL, paused = 0
                     WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4",
                    &[&d.target, &d.provider, &kind, &d.resource_id, &ms(next_at), &error],
                )
                .await?;
            }
            Settle::Defer { next_at, reason } => {
                execute(
                    tx,
                    "UPDATE delivery_queue SET next_at = $5, last_error = $6, lease_owner = NULL, lease_until = NULL,
                       paused = 1
                     WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4",
                    &[&d.target, &d.provider, &kind, &d.resource_id, &ms(next_at), &reason],
                )
                .await?;
            }
            Settle::DeadLetter { error } => {
                let merged = execute(
                    tx,
                    "UPDATE dead_letters SET
                       from_seq = LEAST(from_seq, coalesce((SELECT from_seq FROM delivery_queue
                         WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4), from_seq)),
                       last_seq = GREATEST(last_seq, $5), attempts = attempts + 1, error = $6, at = $7
                     WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4",
                    &[&d.target, &d.provider, &kind, &d.resource_id, &d.last_seq, &error, &at],
                )
                .await?;
                if merged == 0 {
                    execute(
                        tx,
                        "INSERT INTO dead_letters (target, provider, kind, resource_id, from_seq, last_seq,
                           queued_at, attempts, error, at)
                         SELECT target, provider, kind, resource_id, from_seq, $5, queued_at, attempts + 1, $6, $7
                         FROM delivery_queue WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4",
                        &[&d.target, &d.provider, &kind, &d.resource_id, &d.last_seq, &error, &at],
                    )
                    .await?;
                }
            }
            Settle::Remove => {
                execute(
                    tx,
                    "DELETE FROM delivery_queue WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4",
                    &[&d.target, &d.provider, &kind, &d.resource_id],
                )
                .await?;
            }
            Settle::Requeue {
                from_seq,
                resync_served,
            } => {
                execute(
                    tx,
                    "UPDATE delivery_queue SET from_seq = $5, queued_at = $6, next_at = $6, attempts = 0,
                       last_error = NULL, lease_owner = NULL, lease_until = NULL, paused = 0, sent_seq = NULL,
                       resync = CASE WHEN resync = $7 THEN 0 ELSE resync END
                     WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4",
                    &[&d.target, &d.provider, &kind, &d.resource_id, &from_seq, &at, &resync_served],
                )
                .await?;
            }
        }
    }
    Ok(())
}

pub async fn resource_events(
    c: &impl GenericClient,
    provider: &str,
    kind: ResourceKind,
    id: &str,
    after: i64,
    upto: i64,
) -> Result<Vec<ChangeEvent>, StoreError> {
    query(
        c,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM change_events WHERE provider = $1 AND kind = $2
               AND resource_id = $3 AND seq > $4 AND seq <= $5 ORDER BY seq"
        ),
        &[&provider, &kind.name(), &id, &after, &upto],
    )
    .await?
    .iter()
    .map(event)
    .collect()
}

pub async fn dead_letters(
    c: &impl GenericClient,
    target: Option<&str>,
) -> Result<Vec<DeadLetter>, StoreError> {
    query(
        c,
        "SELECT id, target, provider, kind, resource_id, from_seq, last_seq, queued_at, attempts, error, at
         FROM dead_letters WHERE $1::text IS NULL OR target = $1 ORDER BY id",
        &[&target],
    )
    .await?
    .iter()
    .map(|r| {
        let attempts: i32 = r.try_get(8)?;
        Ok(DeadLetter {
            id: r.try_get(0)?,
            target: r.try_get(1)?,
            provider: r.try_get(2)?,
            kind: kind(r, 3)?,
            resource_id: r.try_get(4)?,
            from_seq: r.try_get(5)?,
            last_seq: r.try_get(6)?,
            queued_at: r.try_get(7)?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            error: r.try_get(9)?,
            at: r.try_get(10)?,
        })
    })
    .collect()
}

/// Moves a dead letter back into the queue in one statement, so two `dlq retry` runs
/// cannot both succeed for one letter.
pub async fn requeue_dead_letter(
    c: &impl GenericClient,
    id: i64,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = execute(
        c,
        "WITH dl AS (
           DELETE FROM dead_letters WHERE id = $1
           RETURNING target, provider, kind, resource_id, from_seq, last_seq, queued_at
         )
         INSERT INTO delivery_queue (target, provider, kind, resource_id, from_seq, last_seq, queued_at, next_at)
         SELECT target, provider, kind, resource_id, from_seq, last_seq, queued_at, $2 FROM dl
         ON CONFLICT (target, provider, kind, resource_id) DO UPDATE SET
           from_seq = least(delivery_queue.from_seq, excluded.from_seq),
           last_seq = greatest(delivery_queue.last_seq, excluded.last_seq), next_at = $2",
        &[&id, &ms(at)],
    )
    .await?;
    Ok(n > 0)
}

pub async fn stats(c: &impl GenericClient, target: &str) -> Result<DeliveryStats, StoreError> {
    let r = query(
        c,
        "SELECT count(*), count(*) FILTER (WHERE attempts > 0), min(queued_at),
                (SELECT count(*) FROM dead_letters WHERE target = $1)
         FROM delivery_queue WHERE target = $1",
        &[&target],
    )
    .await?;
    let r = r
        .first()
        .ok_or_else(|| StoreError::Database("no row from an aggregate".into()))?;
    let n = |i: usize| -> Result<u64, StoreError> {
        Ok(u64::try_from(r.try_get::<_, i64>(i)?).unwrap_or(0))
    };
    Ok(DeliveryStats {
        queued: n(0)?,
        retrying: n(1)?,
        oldest: r.try_get(2)?,
        dead_letters: n(3)?,
    })
}

pub async fn guard(c: &impl GenericClient, target: &str) -> Result<GuardState, StoreError> {
    let row = query_opt(
        c,
        "SELECT tripped_at, reason, approved_at, approved_until FROM delivery_guard WHERE target = $1",
        &[&target],
    )
    .await?;
    let Some(r) = row else {
        return Ok(GuardState::default());
    };
    Ok(GuardState {
        tripped_at: r.try_get(0)?,
        reason: r.try_get(1)?,
        approved_at: r.try_get(2)?,
        approved_until: r.try_get(3)?,
    })
}

/// Keeps the first trip's time and reason while tripped; instances tripping at once
/// meet in the upsert.
pub async fn trip_guard(
    c: &impl GenericClient,
    target: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO delivery_guard (target, tripped_at, reason) VALUES ($1, $3, $2)
         ON CONFLICT (target) DO UPDATE SET
           tripped_at = coalesce(delivery_guard.tripped_at, excluded.tripped_at),
           reason = CASE WHEN delivery_guard.tripped_at IS NULL THEN excluded.reason
                         ELSE delivery_guard.reason END",
        &[&target, &reason, &ms(at)],
    )
    .await?;
    Ok(())
}

pub async fn approve_guard(
    c: &impl GenericClient,
    target: &str,
    at: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(execute(
        c,
        "UPDATE delivery_guard SET tripped_at = NULL, reason = NULL, approved_at = $2, approved_until = $3
         WHERE target = $1 AND tripped_at IS NOT NULL",
        &[&target, &ms(at), &ms(until)],
    )
    .await?
        == 1)
}

pub async fn attempts(
    c: &impl GenericClient,
    provider: &str,
    kind: ResourceKind,
    id: &str,
) -> Result<Vec<DeliveryAttempt>, StoreError> {
    query(
        c,
        "SELECT target, from_seq, last_seq, outcome, detail, duration_ms, at FROM delivery_log
         WHERE provider = $1 AND kind = $2 AND resource_id = $3 ORDER BY id",
        &[&provider, &kind.name(), &id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(DeliveryAttempt {
            target: r.try_get(0)?,
            from_seq: r.try_get(1)?,
            last_seq: r.try_get(2)?,
            outcome: r.try_get(3)?,
            detail: r.try_get(4)?,
            duration_ms: u64::try_from(r.try_get::<_, i64>(5)?).unwrap_or(0),
            at: r.try_get(6)?,
        })
    })
    .collect()
}

/// Queues a resource for delivery of its whole current state, due now.
pub async fn enqueue_resync(
    c: &impl GenericClient,
    target: &str,
    provider: &str,
    kind: ResourceKind,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO delivery_queue (target, provider, kind, resource_id, from_seq, last_seq, queued_at, next_at, resync)
         SELECT $1, $2, $3, $4, s, s, $5, $5, 1 FROM (SELECT coalesce(max(seq), 0) AS s
           FROM change_events WHERE provider = $2 AND kind = $3 AND resource_id = $4) m
         ON CONFLICT (target, provider, kind, resource_id) DO UPDATE SET resync = delivery_queue.resync + 1,
           next_at = least(delivery_queue.next_at, $5)",
        &[&target, &provider, &kind.name(), &id, &ms(at)],
    )
    .await?;
    Ok(())
}

pub async fn target_id(
    c: &impl GenericClient,
    target: &str,
    provider: &str,
    kind: ResourceKind,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(query_opt(
        c,
        "SELECT target_id FROM target_ids WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4",
        &[&target, &provider, &kind.name(), &id],
    )
    .await?
    .map(|r| r.try_get(0))
    .transpose()?)
}

pub async fn set_target_id(
    c: &impl GenericClient,
    target: &str,
    provider: &str,
    kind: ResourceKind,
    id: &str,
    link: Option<&TargetLink>,
) -> Result<(), StoreError> {
    match link {
        Some(l) => execute(
            c,
            "INSERT INTO target_ids (target, provider, kind, resource_id, target_id, adopted_by) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (target, provider, kind, resource_id)
             DO UPDATE SET target_id = excluded.target_id, adopted_by = excluded.adopted_by",
            &[&target, &provider, &kind.name(), &id, &l.target_id, &l.adopted_by],
        )
        .await?,
        None => execute(
            c,
            "DELETE FROM target_ids WHERE target = $1 AND provider = $2 AND kind = $3 AND resource_id = $4",
            &[&target, &provider, &kind.name(), &id],
        )
        .await?,
    };
    Ok(())
}

const MANAGED_COLUMNS: &str = "provider, kind, resource_id, target_id, adopted_by";

fn managed_row(r: &Row) -> Result<Managed, StoreError> {
    Ok(Managed {
        provider: r.try_get(0)?,
        kind: kind(r, 1)?,
        resource_id: r.try_get(2)?,
        link: TargetLink {
            target_id: r.try_get(3)?,
            adopted_by: r.try_get(4)?,
        },
    })
}

/// Every account and group the bridge manages at `target`.
pub async fn managed(c: &impl GenericClient, target: &str) -> Result<Vec<Managed>, StoreError> {
    query(
        c,
        &format!("SELECT {MANAGED_COLUMNS} FROM target_ids WHERE target = $1"),
        &[&target],
    )
    .await?
    .iter()
    .map(managed_row)
    .collect()
}

/// The bridge resource that manages `target_id` at `target`, if any.
pub async fn target_owner(
    c: &impl GenericClient,
    target: &str,
    kind: ResourceKind,
    target_id: &str,
) -> Result<Option<Managed>, StoreError> {
    query_opt(
        c,
        &format!(
            "SELECT {MANAGED_COLUMNS} FROM target_ids WHERE target = $1 AND kind = $2 AND target_id = $3 LIMIT 1"
        ),
        &[&target, &kind.name(), &target_id],
    )
    .await?
    .as_ref()
    .map(managed_row)
    .transpose()
}

pub async fn count_managed(
    c: &impl GenericClient,
    target: &str,
    kind: ResourceKind,
) -> Result<u64, StoreError> {
    let n: i64 = query_opt(
        c,
        "SELECT count(*) FROM target_ids WHERE target = $1 AND kind = $2",
        &[&target, &kind.name()],
    )
    .await?
    .map(|r| r.try_get(0))
    .transpose()?
    .unwrap_or(0);
    Ok(n.max(0) as u64)
}

/// The changes the guard holds back at `target`.
pub async fn held(c: &impl GenericClient, target: &str) -> Result<Vec<QueuedDelivery>, StoreError> {
    query(
        c,
        &format!(
            "SELECT {QUEUE_COLUMNS} FROM delivery_queue q WHERE q.target = $1 AND q.paused = 1 ORDER BY q.queued_at"
        ),
        &[&target],
    )
    .await?
    .iter()
    .map(|r| queued(r).map(|(q, _)| q))
    .collect()
}

/// Moves what the guard holds at `target` to the dead-letter queue with `reason` and
/// clears the trip; rows being delivered right now (leased) are left to finish.
pub async fn reject_held(
    tx: &Transaction<'_>,
    target: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let at = ms(at);
    execute(
        tx,
        "INSERT INTO dead_letters (target, provider, kind, resource_id, from_seq, last_seq,
           queued_at, attempts, error, at)
         SELECT target, provider, kind, resource_id, from_seq, last_seq, queued_at, attempts, $2, $3
         FROM delivery_queue WHERE target = $1 AND paused = 1 AND (lease_until IS NULL OR lease_until < $3)",
        &[&target, &reason, &at],
    )
    .await?;
    let n = execute(
        tx,
        "DELETE FROM delivery_queue WHERE target = $1 AND paused = 1 AND (lease_until IS NULL OR lease_until < $2)",
        &[&target, &at],
    )
    .await?;
    execute(
        tx,
        "UPDATE delivery_guard SET tripped_at = NULL, reason = NULL WHERE target = $1",
        &[&target],
    )
    .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Records that `resource_id` waits for `awaited_id` to reach `target`.
pub async fn await_link(
    c: &impl GenericClient,
    target: &str,
    provider: &str,
    awaited_id: &str,
    resource_id: &str,
) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO link_waits (target, provider, awaited_id, resource_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        &[&target, &provider, &awaited_id, &resource_id],
    )
    .await?;
    Ok(())
}

/// Queues every user waiting for `awaited_id` for full delivery and forgets the waits;
/// the caller's transaction makes it atomic.
pub async fn release_waiting(
    tx: &Transaction<'_>,
    target: &str,
    provider: &str,
    awaited_id: &str,
    at: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let rows = query(
        tx,
        "DELETE FROM link_waits WHERE target = $1 AND provider = $2 AND awaited_id = $3
         RETURNING resource_id",
        &[&target, &provider, &awaited_id],
    )
    .await?;
    for r in &rows {
        let id: String = r.try_get(0)?;
        enqueue_resync(tx, target, provider, ResourceKind::User, &id, at).await?;
    }
    Ok(rows.len())
}

/// Users the target holds for resources the bridge no longer has, with when each was
/// deleted (`None` once its events were pruned).
pub async fn orphaned_users(
    c: &impl GenericClient,
    target: &str,
) -> Result<Vec<Orphan>, StoreError> {
    let rows = query(
        c,
        "SELECT t.provider, t.resource_id, t.target_id,
                (SELECT max(e.at) FROM change_events e
                  WHERE e.provider = t.provider AND e.kind = t.kind
                    AND e.resource_id = t.resource_id AND e.op = 'delete')
         FROM target_ids t
         WHERE t.target = $1 AND t.kind = 'User'
           AND NOT EXISTS (SELECT 1 FROM resources r
                           WHERE r.provider = t.provider AND r.kind = t.kind AND r.id = t.resource_id)
         ORDER BY t.provider, t.resource_id",
        &[&target],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Orphan {
                provider: r.try_get(0)?,
                id: r.try_get(1)?,
                target_id: r.try_get(2)?,
                deleted_at: r.try_get(3)?,
            })
        })
        .collect()
}

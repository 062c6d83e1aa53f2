//! The audit chain's upkeep in SQLite's SQL (docs/provisioning-log.md §3).
//!
//! SQLite hands out `audit_log.id`s in commit order (AUTOINCREMENT under the one
//! write lock), so the chain's order is the id order and chaining writes nothing to
//! the rows: it moves the head (`last_id`, the newest id chained) and, every
//! [`MARK_EVERY`] records, adds a mark (seq, row id, the hash it links to). A
//! record's seq, links and line are rebuilt from the nearest mark before it, when
//! an export or a query asks. Rewriting every row with its seq, hash and line
//! doubled the log's WAL volume and cost SCIM writes about a tenth of their rate.
//!
//! The hashing runs on a reader connection; the writer only moves the head, with a
//! compare-and-set that refuses a second process chaining the same file meanwhile.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::audit::{Digest, LogId};
use crate::store::StoreError;
use crate::store::audit_chain::{
    AuditChain, AuditHead, Chained, ChainedLine, Link, StoredCheckpoint, StoredSeal, Unchained,
    digest, head_moved, head_row, plan_links, seq_of, sql_seq,
};
use crate::store::provisioning_log::{from_micros, micros};

/// Marks sit at seqs that are multiples of this (and at pruning's cut), so
/// rebuilding a record replays at most this many rows before it.
const MARK_EVERY: u64 = 256;

/// The head and the newest row id it covers.
fn read_head(c: &Connection) -> Result<Option<(AuditHead, i64)>, StoreError> {
    let row = c
        .prepare_cached("SELECT log_id, next_seq, prev, last_id FROM audit_head WHERE one = 1")?
        .query_row([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    row.map(|(log, next, prev, last)| Ok((head_row(&log, next, &prev)?, last)))
        .transpose()
}

/// Where rebuilding starts: record `seq` is row `log_id` and links to `prev`.
struct Mark {
    seq: u64,
    log_id: i64,
    prev: Digest,
}

fn one_mark(c: &Connection, sql: &str, key: i64) -> Result<Option<Mark>, StoreError> {
    let row = c
        .prepare_cached(sql)?
        .query_row([key], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()?;
    row.map(|(seq, log_id, prev)| {
        Ok(Mark {
            seq: seq_of(seq),
            log_id,
            prev: digest(&prev, "audit_marks.prev")?,
        })
    })
    .transpose()
}

/// The mark at or before record `seq`.
fn mark_before_seq(c: &Connection, seq: u64) -> Result<Option<Mark>, StoreError> {
    one_mark(
        c,
        "SELECT seq, log_id, prev FROM audit_marks WHERE seq <= ?1 ORDER BY seq DESC LIMIT 1",
        sql_seq(seq),
    )
}

/// The mark at or before row `id`.
fn mark_before_id(c: &Connection, id: i64) -> Result<Option<Mark>, StoreError> {
    one_mark(
        c,
        "SELECT seq, log_id, prev FROM audit_marks WHERE log_id <= ?1 ORDER BY log_id DESC, seq DESC LIMIT 1",
        id,
    )
}

fn add_mark(c: &Connection, seq: u64, log_id: i64, prev: &str) -> Result<(), StoreError> {
    c.prepare_cached("INSERT OR IGNORE INTO audit_marks (seq, log_id, prev) VALUES (?1, ?2, ?3)")?
        .execute(params![sql_seq(seq), log_id, prev])?;
    Ok(())
}

/// Rows `from_id..=to_id` by id, at most `limit`.
fn rows(
    c: &Connection,
    from_id: i64,
    to_id: i64,
    limit: u64,
) -> Result<Vec<Unchained>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .prepare_cached(
            "SELECT id, at, kind, body FROM audit_log WHERE id >= ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
        )?
        .query_map(params![from_id, to_id, limit], |r| {
            Ok(Unchained {
                id: r.get(0)?,
                at: r.get(1)?,
                kind: r.get(2)?,
                body: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Chained records `from` on (at most `limit`), rebuilt from the mark before
/// `from`, each with its row's time.
fn rebuild(
    c: &Connection,
    log: &LogId,
    last_id: i64,
    from: u64,
    limit: u64,
) -> Result<Vec<(Link, i64)>, StoreError> {
    // Before the oldest record kept (pruned): from that record on, as a stored seq
    // column would answer.
    let mark = match mark_before_seq(c, from)? {
        Some(m) => m,
        None => match one_mark(
            c,
            "SELECT seq, log_id, prev FROM audit_marks WHERE seq >= ?1 ORDER BY seq LIMIT 1",
            sql_seq(from),
        )? {
            Some(m) => m,
            None => return Ok(Vec::new()),
        },
    };
    let skip = from.saturating_sub(mark.seq);
    let rows = rows(c, mark.log_id, last_id, skip.saturating_add(limit))?;
    let start = AuditHead {
        log: log.clone(),
        next_seq: mark.seq,
        prev: mark.prev,
    };
    let plan = plan_links(&start, &rows)?;
    Ok(plan
        .links
        .into_iter()
        .zip(rows.iter().map(|r| r.at))
        .filter(|(l, _)| l.seq >= from)
        .collect())
}

/// Finds chained records' seqs by row id.
pub(super) struct Seqs {
    last_id: i64,
}

impl Seqs {
    pub(super) fn new(c: &Connection) -> Result<Seqs, StoreError> {
        let last_id = read_head(c)?.map_or(0, |(_, last)| last);
        Ok(Seqs { last_id })
    }

    /// Row `id`'s seq; `None` while it waits to be chained.
    pub(super) fn of(&self, c: &Connection, id: i64) -> Result<Option<u64>, StoreError> {
        if id > self.last_id {
            return Ok(None);
        }
        let Some(mark) = mark_before_id(c, id)? else {
            return Ok(None);
        };
        let before: i64 = c
            .prepare_cached("SELECT count(*) FROM audit_log WHERE id >= ?1 AND id < ?2")?
            .query_row([mark.log_id, id], |r| r.get(0))?;
        Ok(Some(mark.seq + seq_of(before)))
    }
}

/// The row id of record `next`, where pruning cuts; places a mark there first, so
/// the records kept are rebuilt from it once those before it are gone.
fn cut_at(c: &Connection, head: &AuditHead, last_id: i64, next: u64) -> Result<i64, StoreError> {
    if let Some(m) = mark_before_seq(c, next)?
        && m.seq == next
    {
        return Ok(m.log_id);
    }
    if next > head.next_seq {
        return Err(StoreError::Database(format!(
            "audit record {next} is past the chain's head ({}), so nothing is pruned",
            head.next_seq
        )));
    }
    if next == head.next_seq {
        // Everything chained goes: the chain carries on from the head.
        add_mark(c, head.next_seq, last_id + 1, &head.prev.to_hex())?;
        return Ok(last_id + 1);
    }
    let Some((link, _)) = rebuild(c, &head.log, last_id, next, 1)?.into_iter().next() else {
        return Err(StoreError::Database(format!(
            "audit record {next} is not in the log, so nothing can be pruned up to it"
        )));
    };
    add_mark(c, next, link.id, &link.prev)?;
    Ok(link.id)
}

const SEAL_COLUMNS: &str = "seq, head, at, key_id, line";

fn seal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, i64, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn seal(row: (i64, String, i64, String, String)) -> Result<StoredSeal, StoreError> {
    let (seq, head, at, key_id, line) = row;
    Ok(StoredSeal {
        seq: seq_of(seq),
        head: digest(&head, "audit_seals.head")?,
        at: from_micros(at),
        key_id,
        line,
    })
}

fn one_seal(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Option<StoredSeal>, StoreError> {
    let row = c.prepare_cached(sql)?.query_row(p, seal_row).optional()?;
    row.map(seal).transpose()
}

#[async_trait]
impl AuditChain for SqliteStore {
    async fn audit_head(&self, fresh: &LogId) -> Result<AuditHead, StoreError> {
        let new = AuditHead::genesis(fresh.clone());
        self.exec(move |c| {
            // A new head covers no row yet: rows logged before it are chained first.
            c.prepare_cached(
                "INSERT INTO audit_head (one, log_id, next_seq, prev, last_id) VALUES (1, ?1, 0, ?2, 0)
                 ON CONFLICT (one) DO NOTHING",
            )?
            .execute(params![new.log.as_str(), new.prev.to_hex()])?;
            read_head(c)?
                .map(|(head, _)| head)
                .ok_or_else(|| StoreError::Database("audit_head is missing".into()))
        })
        .await
    }

    async fn chain_pending(&self, batch: usize) -> Result<Chained, StoreError> {
        let batch = u64::try_from(batch).unwrap_or(u64::MAX);
        // Hash on a reader: the writer's time is every SCIM write's latency.
        let planned = self
            .read(move |c| {
                let Some((head, last_id)) = read_head(c)? else {
                    return Ok(None);
                };
                let pending = rows(c, last_id.saturating_add(1), i64::MAX, batch)?;
                let plan = plan_links(&head, &pending)?;
                Ok(Some((head, last_id, plan)))
            })
            .await?;
        let Some((head, last_id, plan)) = planned else {
            return Ok(Chained::default());
        };
        let Some(newest) = plan.links.last().map(|l| l.id) else {
            return Ok(plan.chained(head));
        };
        self.exec(move |c| {
            let moved = c
                .prepare_cached(
                    "UPDATE audit_head SET next_seq = ?1, prev = ?2, last_id = ?3
                     WHERE one = 1 AND next_seq = ?4 AND prev = ?5 AND last_id = ?6",
                )?
                .execute(params![
                    sql_seq(plan.next_seq),
                    plan.prev.to_hex(),
                    newest,
                    sql_seq(head.next_seq),
                    head.prev.to_hex(),
                    last_id
                ])?;
            if moved != 1 {
                return Err(head_moved());
            }
            for l in plan.links.iter().filter(|l| l.seq % MARK_EVERY == 0) {
                add_mark(c, l.seq, l.id, &l.prev)?;
            }
            Ok(plan.chained(head))
        })
        .await
    }

    async fn add_seal(&self, s: &StoredSeal) -> Result<bool, StoreError> {
        let s = s.clone();
        self.exec(move |c| {
            Ok(c.prepare_cached(
                "INSERT INTO audit_seals (seq, head, at, key_id, line) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (seq) DO NOTHING",
            )?
            .execute(params![
                sql_seq(s.seq),
                s.head.to_hex(),
                micros(s.at),
                s.key_id,
                s.line
            ])? == 1)
        })
        .await
    }

    async fn latest_seal(&self) -> Result<Option<StoredSeal>, StoreError> {
        self.read(|c| {
            one_seal(
                c,
                &format!("SELECT {SEAL_COLUMNS} FROM audit_seals ORDER BY seq DESC LIMIT 1"),
                [],
            )
        })
        .await
    }

    async fn seal_before(&self, before: DateTime<Utc>) -> Result<Option<StoredSeal>, StoreError> {
        self.read(move |c| {
            one_seal(
                c,
                &format!(
                    "SELECT {SEAL_COLUMNS} FROM audit_seals WHERE at < ?1 ORDER BY seq DESC LIMIT 1"
                ),
                [micros(before)],
            )
        })
        .await
    }

    async fn seals_between(&self, from: u64, to: u64) -> Result<Vec<StoredSeal>, StoreError> {
        self.read(move |c| {
            let rows = c
                .prepare_cached(&format!(
                    "SELECT {SEAL_COLUMNS} FROM audit_seals WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq"
                ))?
                .query_map([sql_seq(from), sql_seq(to)], seal_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(seal).collect()
        })
        .await
    }

    async fn add_checkpoint(&self, cp: &StoredCheckpoint) -> Result<bool, StoreError> {
        let cp = cp.clone();
        self.exec(move |c| {
            Ok(c.prepare_cached(
                "INSERT INTO audit_checkpoints (next, prev, at, key_id, line) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (next) DO NOTHING",
            )?
            .execute(params![
                sql_seq(cp.next),
                cp.prev.to_hex(),
                micros(cp.at),
                cp.key_id,
                cp.line
            ])? == 1)
        })
        .await
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.read(|c| {
            let row = c
                .prepare_cached(
                    "SELECT next, prev, at, key_id, line FROM audit_checkpoints ORDER BY next DESC LIMIT 1",
                )?
                .query_row([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .optional()?;
            row.map(|(next, prev, at, key_id, line)| {
                Ok(StoredCheckpoint {
                    next: seq_of(next),
                    prev: digest(&prev, "audit_checkpoints.prev")?,
                    at: from_micros(at),
                    key_id,
                    line,
                })
            })
            .transpose()
        })
        .await
    }

    async fn chained_lines(&self, from: u64, limit: usize) -> Result<Vec<ChainedLine>, StoreError> {
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        self.read(move |c| {
            let Some((head, last_id)) = read_head(c)? else {
                return Ok(Vec::new());
            };
            Ok(rebuild(c, &head.log, last_id, from, limit)?
                .into_iter()
                .map(|(l, at)| ChainedLine {
                    seq: l.seq,
                    at: from_micros(at),
                    line: l.line,
                })
                .collect())
        })
        .await
    }

    async fn first_seq_since(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        self.read(move |c| {
            let seqs = Seqs::new(c)?;
            let id: Option<i64> = c
                .prepare_cached("SELECT min(id) FROM audit_log WHERE at >= ?1 AND id <= ?2")?
                .query_row(params![micros(at), seqs.last_id], |r| r.get(0))?;
            id.map_or(Ok(None), |id| seqs.of(c, id))
        })
        .await
    }

    async fn last_seq_before(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        self.read(move |c| {
            let seqs = Seqs::new(c)?;
            let id: Option<i64> = c
                .prepare_cached("SELECT max(id) FROM audit_log WHERE at < ?1 AND id <= ?2")?
                .query_row(params![micros(at), seqs.last_id], |r| r.get(0))?;
            id.map_or(Ok(None), |id| seqs.of(c, id))
        })
        .await
    }

    async fn prune_chained(&self, next: u64, batch: usize) -> Result<usize, StoreError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        self.exec(move |c| {
            let Some((head, last_id)) = read_head(c)? else {
                return Ok(0);
            };
            let cut = cut_at(c, &head, last_id, next)?;
            let n = c.execute(
                "DELETE FROM audit_log WHERE id IN (
                   SELECT id FROM audit_log WHERE id < ?1 ORDER BY id LIMIT ?2)",
                params![cut, batch],
            )?;
            if n == 0 {
                let next = sql_seq(next);
                c.execute("DELETE FROM audit_seals WHERE seq < ?1", [next])?;
                c.execute("DELETE FROM audit_checkpoints WHERE next < ?1", [next])?;
                c.execute("DELETE FROM audit_marks WHERE seq < ?1", [next])?;
            }
            Ok(n)
        })
        .await
    }
}

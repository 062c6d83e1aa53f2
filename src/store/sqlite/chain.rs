//! The audit chain's upkeep in SQLite's SQL. Linking runs as one job on the writer
//! connection, so the head read, the rows' links and the head written are one
//! transaction; another process on the same file goes through its own writer, and
//! the head's compare-and-set refuses whichever of the two comes second.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::audit::LogId;
use crate::store::StoreError;
use crate::store::audit_chain::{
    AuditChain, AuditHead, Chained, ChainedLine, StoredCheckpoint, StoredSeal, Unchained, digest,
    head_moved, head_row, plan_links, seq_of, sql_seq,
};
use crate::store::provisioning_log::{from_micros, micros};

fn read_head(c: &Connection) -> Result<Option<AuditHead>, StoreError> {
    let row = c
        .prepare_cached("SELECT log_id, next_seq, prev FROM audit_head WHERE one = 1")?
        .query_row([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()?;
    row.map(|(log, next, prev)| head_row(&log, next, &prev))
        .transpose()
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
            c.prepare_cached(
                "INSERT INTO audit_head (one, log_id, next_seq, prev) VALUES (1, ?1, 0, ?2)
                 ON CONFLICT (one) DO NOTHING",
            )?
            .execute(params![new.log.as_str(), new.prev.to_hex()])?;
            read_head(c)?.ok_or_else(|| StoreError::Database("audit_head is missing".into()))
        })
        .await
    }

    async fn chain_pending(&self, batch: usize) -> Result<Chained, StoreError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        self.exec(move |c| {
            let Some(head) = read_head(c)? else {
                return Ok(Chained::default());
            };
            let rows = c
                .prepare_cached(
                    "SELECT id, at, kind, body FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT ?1",
                )?
                .query_map([batch], |r| {
                    Ok(Unchained {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        kind: r.get(2)?,
                        body: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let plan = plan_links(&head, &rows)?;
            let mut link = c.prepare_cached(
                "UPDATE audit_log SET seq = ?2, prev = ?3, hash = ?4, line = ?5 WHERE id = ?1 AND seq IS NULL",
            )?;
            for l in &plan.links {
                if link.execute(params![l.id, sql_seq(l.seq), l.prev, l.hash, l.line])? != 1 {
                    return Err(head_moved());
                }
            }
            let moved = c
                .prepare_cached(
                    "UPDATE audit_head SET next_seq = ?1, prev = ?2
                     WHERE one = 1 AND next_seq = ?3 AND prev = ?4",
                )?
                .execute(params![
                    sql_seq(plan.next_seq),
                    plan.prev.to_hex(),
                    sql_seq(head.next_seq),
                    head.prev.to_hex()
                ])?;
            if moved != 1 {
                return Err(head_moved());
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT seq, at, line FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map([sql_seq(from), limit], |r| {
                    Ok(ChainedLine {
                        seq: seq_of(r.get(0)?),
                        at: from_micros(r.get(1)?),
                        // A line nulled behind the chainer's back is exported empty,
                        // and verification names it.
                        line: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn first_seq_since(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        self.read(move |c| {
            let seq: Option<i64> = c
                .prepare_cached(
                    "SELECT min(seq) FROM audit_log WHERE seq IS NOT NULL AND at >= ?1",
                )?
                .query_row([micros(at)], |r| r.get(0))?;
            Ok(seq.map(seq_of))
        })
        .await
    }

    async fn last_seq_before(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        self.read(move |c| {
            let seq: Option<i64> = c
                .prepare_cached("SELECT max(seq) FROM audit_log WHERE seq IS NOT NULL AND at < ?1")?
                .query_row([micros(at)], |r| r.get(0))?;
            Ok(seq.map(seq_of))
        })
        .await
    }

    async fn prune_chained(&self, next: u64, batch: usize) -> Result<usize, StoreError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let next = sql_seq(next);
        self.exec(move |c| {
            let n = c.execute(
                "DELETE FROM audit_log WHERE id IN (
                   SELECT id FROM audit_log WHERE seq < ?1 ORDER BY seq LIMIT ?2)",
                params![next, batch],
            )?;
            if n == 0 {
                c.execute("DELETE FROM audit_seals WHERE seq < ?1", [next])?;
                c.execute("DELETE FROM audit_checkpoints WHERE next < ?1", [next])?;
            }
            Ok(n)
        })
        .await
    }
}

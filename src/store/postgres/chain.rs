//! The audit chain's upkeep in PostgreSQL's SQL. Instances sharing a database chain
//! one at a time: each chaining transaction first takes a transaction-scoped
//! advisory lock (released by its commit or rollback, so a crashed instance holds
//! nothing), and one that does not get it does nothing this round. The head row is
//! read `FOR UPDATE` and written back with a compare-and-set, so even without the
//! lock two instances could not fork the chain.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::PgStore;
use super::rows::{execute, query, query_one, query_opt};
use crate::audit::LogId;
use crate::store::StoreError;
use crate::store::audit_chain::{
    AuditChain, AuditHead, Chained, ChainedLine, StoredCheckpoint, StoredSeal, Unchained, digest,
    head_moved, head_row, plan_links, seq_of, sql_seq,
};
use crate::store::provisioning_log::{from_micros, micros};

/// The advisory lock key of the chainer ("scim-bridge audit" in spirit; any fixed
/// number no other code of ours uses).
const CHAIN_LOCK: i64 = 0x5C1B_A0D1_7C4A_0001;

const SEAL_COLUMNS: &str = "seq, head, at, key_id, line";

/// An export's page of chained records (`plans.rs` checks it walks `audit_log_seq`).
pub(super) const CHAINED_LINES: &str =
    "SELECT seq, at, line FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2";

async fn read_head(c: &impl GenericClient, lock: bool) -> Result<Option<AuditHead>, StoreError> {
    let sql = if lock {
        "SELECT log_id, next_seq, prev FROM audit_head WHERE one = 1 FOR UPDATE"
    } else {
        "SELECT log_id, next_seq, prev FROM audit_head WHERE one = 1"
    };
    let row = query_opt(c, sql, &[]).await?;
    row.map(|r| {
        let (log, next, prev): (String, i64, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        head_row(&log, next, &prev)
    })
    .transpose()
}

fn seal(r: &Row) -> Result<StoredSeal, StoreError> {
    let head: String = r.try_get(1)?;
    Ok(StoredSeal {
        seq: seq_of(r.try_get(0)?),
        head: digest(&head, "audit_seals.head")?,
        at: from_micros(r.try_get(2)?),
        key_id: r.try_get(3)?,
        line: r.try_get(4)?,
    })
}

impl PgStore {
    async fn chain_once(&self, batch: i64) -> Result<Chained, StoreError> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await?;
        let locked: bool = query_one(&tx, "SELECT pg_try_advisory_xact_lock($1)", &[&CHAIN_LOCK])
            .await?
            .try_get(0)?;
        if !locked {
            return Ok(Chained {
                busy: true,
                ..Chained::default()
            });
        }
        let Some(head) = read_head(&tx, true).await? else {
            return Ok(Chained::default());
        };
        // SKIP LOCKED: a row still being written by an open SCIM transaction is not
        // visible anyway; one locked by a racing chainer is left to it.
        let rows = query(
            &tx,
            "SELECT id, at, kind, body FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT $1
             FOR UPDATE SKIP LOCKED",
            &[&batch],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Unchained {
                id: r.try_get(0)?,
                at: r.try_get(1)?,
                kind: r.try_get(2)?,
                body: r.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let plan = plan_links(&head, &rows)?;
        if !plan.links.is_empty() {
            let ids: Vec<i64> = plan.links.iter().map(|l| l.id).collect();
            let seqs: Vec<i64> = plan.links.iter().map(|l| sql_seq(l.seq)).collect();
            let prevs: Vec<&str> = plan.links.iter().map(|l| l.prev.as_str()).collect();
            let hashes: Vec<&str> = plan.links.iter().map(|l| l.hash.as_str()).collect();
            let lines: Vec<&str> = plan.links.iter().map(|l| l.line.as_str()).collect();
            let n = execute(
                &tx,
                "UPDATE audit_log SET seq = u.seq, prev = u.prev, hash = u.hash, line = u.line
                 FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[])
                      AS u(id, seq, prev, hash, line)
                 WHERE audit_log.id = u.id AND audit_log.seq IS NULL",
                &[&ids, &seqs, &prevs, &hashes, &lines],
            )
            .await?;
            if n != ids.len() as u64 {
                return Err(head_moved());
            }
        }
        let moved = execute(
            &tx,
            "UPDATE audit_head SET next_seq = $1, prev = $2
             WHERE one = 1 AND next_seq = $3 AND prev = $4",
            &[
                &sql_seq(plan.next_seq),
                &plan.prev.to_hex(),
                &sql_seq(head.next_seq),
                &head.prev.to_hex(),
            ],
        )
        .await?;
        if moved != 1 {
            return Err(head_moved());
        }
        tx.commit().await?;
        Ok(plan.chained(head))
    }
}

#[async_trait]
impl AuditChain for PgStore {
    async fn audit_head(&self, fresh: &LogId) -> Result<AuditHead, StoreError> {
        let new = AuditHead::genesis(fresh.clone());
        let c = self.writer().await?;
        execute(
            &c,
            "INSERT INTO audit_head (one, log_id, next_seq, prev) VALUES (1, $1, 0, $2)
             ON CONFLICT (one) DO NOTHING",
            &[&new.log.as_str(), &new.prev.to_hex()],
        )
        .await?;
        read_head(&c, false)
            .await?
            .ok_or_else(|| StoreError::Database("audit_head is missing".into()))
    }

    async fn chain_pending(&self, batch: usize) -> Result<Chained, StoreError> {
        self.chain_once(i64::try_from(batch).unwrap_or(i64::MAX))
            .await
    }

    async fn add_seal(&self, s: &StoredSeal) -> Result<bool, StoreError> {
        let c = self.writer().await?;
        let n = execute(
            &c,
            "INSERT INTO audit_seals (seq, head, at, key_id, line) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (seq) DO NOTHING",
            &[
                &sql_seq(s.seq),
                &s.head.to_hex(),
                &micros(s.at),
                &s.key_id,
                &s.line,
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn latest_seal(&self) -> Result<Option<StoredSeal>, StoreError> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            &format!("SELECT {SEAL_COLUMNS} FROM audit_seals ORDER BY seq DESC LIMIT 1"),
            &[],
        )
        .await?;
        row.as_ref().map(seal).transpose()
    }

    async fn seal_before(&self, before: DateTime<Utc>) -> Result<Option<StoredSeal>, StoreError> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            &format!(
                "SELECT {SEAL_COLUMNS} FROM audit_seals WHERE at < $1 ORDER BY seq DESC LIMIT 1"
            ),
            &[&micros(before)],
        )
        .await?;
        row.as_ref().map(seal).transpose()
    }

    async fn seals_between(&self, from: u64, to: u64) -> Result<Vec<StoredSeal>, StoreError> {
        let c = self.client().await?;
        query(
            &c,
            &format!(
                "SELECT {SEAL_COLUMNS} FROM audit_seals WHERE seq BETWEEN $1 AND $2 ORDER BY seq"
            ),
            &[&sql_seq(from), &sql_seq(to)],
        )
        .await?
        .iter()
        .map(seal)
        .collect()
    }

    async fn add_checkpoint(&self, cp: &StoredCheckpoint) -> Result<bool, StoreError> {
        let c = self.writer().await?;
        let n = execute(
            &c,
            "INSERT INTO audit_checkpoints (next, prev, at, key_id, line) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (next) DO NOTHING",
            &[
                &sql_seq(cp.next),
                &cp.prev.to_hex(),
                &micros(cp.at),
                &cp.key_id,
                &cp.line,
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "SELECT next, prev, at, key_id, line FROM audit_checkpoints ORDER BY next DESC LIMIT 1",
            &[],
        )
        .await?;
        row.map(|r| {
            let prev: String = r.try_get(1)?;
            Ok(StoredCheckpoint {
                next: seq_of(r.try_get(0)?),
                prev: digest(&prev, "audit_checkpoints.prev")?,
                at: from_micros(r.try_get(2)?),
                key_id: r.try_get(3)?,
                line: r.try_get(4)?,
            })
        })
        .transpose()
    }

    async fn chained_lines(&self, from: u64, limit: usize) -> Result<Vec<ChainedLine>, StoreError> {
        let c = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        query(&c, CHAINED_LINES, &[&sql_seq(from), &limit])
            .await?
            .iter()
            .map(|r| {
                let line: Option<String> = r.try_get(2)?;
                Ok(ChainedLine {
                    seq: seq_of(r.try_get(0)?),
                    at: from_micros(r.try_get(1)?),
                    line: line.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn first_seq_since(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        let c = self.client().await?;
        let seq: Option<i64> = query_one(
            &c,
            "SELECT min(seq) FROM audit_log WHERE seq IS NOT NULL AND at >= $1",
            &[&micros(at)],
        )
        .await?
        .try_get(0)?;
        Ok(seq.map(seq_of))
    }

    async fn last_seq_before(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        let c = self.client().await?;
        let seq: Option<i64> = query_one(
            &c,
            "SELECT max(seq) FROM audit_log WHERE seq IS NOT NULL AND at < $1",
            &[&micros(at)],
        )
        .await?
        .try_get(0)?;
        Ok(seq.map(seq_of))
    }

    async fn prune_chained(&self, next: u64, batch: usize) -> Result<usize, StoreError> {
        let c = self.writer().await?;
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let next = sql_seq(next);
        let n = execute(
            &c,
            "DELETE FROM audit_log WHERE id IN (
               SELECT id FROM audit_log WHERE seq < $1 ORDER BY seq LIMIT $2)",
            &[&next, &batch],
        )
        .await?;
        if n == 0 {
            execute(&c, "DELETE FROM audit_seals WHERE seq < $1", &[&next]).await?;
            execute(
                &c,
                "DELETE FROM audit_checkpoints WHERE next < $1",
                &[&next],
            )
            .await?;
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

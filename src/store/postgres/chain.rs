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
        // SKIP LOCKED: a record still being written by an open SCIM transaction is
        // not visible anyway; one locked by a racing chainer is left to it.
        let rows = query(
            &tx,
            "SELECT a.id, a.at, a.kind, a.body
             FROM audit_unchained u JOIN audit_log a ON a.id = u.id
             ORDER BY u.id LIMIT $1
             FOR UPDATE OF u SKIP LOCKED",
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
            // The records leave the queue they were locked in and join the chain;
            // `audit_chain`'s keys refuse a record or a seq linked twice.
            let n = execute(
                &tx,
                "DELETE FROM audit_unchained WHERE id = ANY($1)",
                &[&ids],
            )
            .await?;
            if n != ids.len() as u64 {
                return Err(head_moved());
            }
            execute(
                &tx,
                "INSERT INTO audit_chain (seq, log_id, prev, hash, line)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[])",
                &[&seqs, &ids, &prevs, &hashes, &lines],
            )
            .await?;
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
        query(
            &c,
            "SELECT c.seq, a.at, c.line FROM audit_chain c JOIN audit_log a ON a.id = c.log_id
             WHERE c.seq >= $1 ORDER BY c.seq LIMIT $2",
            &[&sql_seq(from), &limit],
        )
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
            "SELECT min(c.seq) FROM audit_log a JOIN audit_chain c ON c.log_id = a.id
             WHERE a.at >= $1",
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
            "SELECT max(c.seq) FROM audit_log a JOIN audit_chain c ON c.log_id = a.id
             WHERE a.at < $1",
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
        let n: i64 = query_one(
            &c,
            "WITH gone AS (
               DELETE FROM audit_chain WHERE seq IN (
                 SELECT seq FROM audit_chain WHERE seq < $1 ORDER BY seq LIMIT $2)
               RETURNING log_id
             ), records AS (
               DELETE FROM audit_log WHERE id IN (SELECT log_id FROM gone)
             )
             SELECT count(*) FROM gone",
            &[&next, &batch],
        )
        .await?
        .try_get(0)?;
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

#[cfg(test)]
mod tests {
    use tokio_postgres::NoTls;

    use super::*;
    use crate::store::{Lifecycle, ProvisioningLog};
    use crate::store::postgres::testkit::TestCluster;

    fn lines(l: &[ChainedLine]) -> Vec<&str> {
        l.iter().map(|l| l.line.as_str()).collect()
    }

    /// A database whose chainer linked records on their rows (before migration 0011)
    /// keeps those links, and the records still unlinked then are linked after,
    /// continuing the same chain: the lines are the ones one chainer linking all of
    /// them would have written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn links_made_on_the_rows_carry_over_and_the_chain_continues() {
        let Some(cluster) = TestCluster::start().unwrap() else {
            return;
        };
        let url = cluster.create_database("chain_apart").await.unwrap();
        let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        let task = tokio::spawn(conn);
        super::super::schema::create_at_version(&client, 10)
            .await
            .unwrap();
        let head = AuditHead::genesis(LogId::new("upgrade-test").unwrap());
        client
            .execute(
                "INSERT INTO audit_head (one, log_id, next_seq, prev) VALUES (1, $1, 0, $2)",
                &[&head.log.as_str(), &head.prev.to_hex()],
            )
            .await
            .unwrap();
        let rows: Vec<Unchained> = (0..5)
            .map(|i| Unchained {
                id: i + 1,
                at: 1_700_000_000_000_000 + i,
                kind: "scim.change".into(),
                body: format!("{{\"n\":{i}}}"),
            })
            .collect();
        for r in &rows {
            client
                .execute(
                    "INSERT INTO audit_log (id, at, kind, body, action, outcome)
                     VALUES ($1, $2, $3, $4, 'create', 'ok')",
                    &[&r.id, &r.at, &r.kind, &r.body],
                )
                .await
                .unwrap();
        }
        // The old chainer linked the first three on their rows.
        let old = plan_links(&head, &rows[..3]).unwrap();
        for l in &old.links {
            client
                .execute(
                    "UPDATE audit_log SET seq = $2, prev = $3, hash = $4, line = $5 WHERE id = $1",
                    &[&l.id, &sql_seq(l.seq), &l.prev, &l.hash, &l.line],
                )
                .await
                .unwrap();
        }
        client
            .execute(
                "UPDATE audit_head SET next_seq = $1, prev = $2",
                &[&sql_seq(old.next_seq), &old.prev.to_hex()],
            )
            .await
            .unwrap();
        drop(client);
        let _ = task.await;

        let store = PgStore::open(&url, 2).await.unwrap();
        assert_eq!(store.migrated_from(), 10);
        let before: Vec<&str> = old.links.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(lines(&store.chained_lines(0, 10).await.unwrap()), before);
        assert_eq!(store.log_entry(3).await.unwrap().unwrap().seq, Some(2));
        assert_eq!(store.log_entry(4).await.unwrap().unwrap().seq, None);

        assert_eq!(store.chain_pending(128).await.unwrap().linked, 2);
        let whole = plan_links(&head, &rows).unwrap();
        let all: Vec<&str> = whole.links.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(lines(&store.chained_lines(0, 10).await.unwrap()), all);
        assert_eq!(store.log_entry(5).await.unwrap().unwrap().seq, Some(4));
        assert_eq!(store.chain_pending(128).await.unwrap().linked, 0);

        // Pruning below seq 2 takes the records and their links, nothing else.
        assert_eq!(store.prune_chained(2, 100).await.unwrap(), 2);
        assert_eq!(
            lines(&store.chained_lines(0, 10).await.unwrap()),
            all[2..].to_vec()
        );
        assert!(store.log_entry(1).await.unwrap().is_none());
        assert!(store.log_entry(3).await.unwrap().is_some());
        store.close().await;
    }
}

//! The provisioning log's hash chain as the store keeps it (docs/provisioning-log.md
//! §2, §3, §6). Rows are inserted unchained by the writes they record; one chainer
//! links them afterwards, so no SCIM write waits on the chain head. [`plan_links`]
//! decides the links once for both engines; each engine only reads the head and the
//! pending rows and writes the plan back in one transaction, refusing it when the
//! head moved meanwhile (two instances never fork the chain).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::audit::{Appended, Chain, Digest, Head, LogId, Seal};
use crate::store::StoreError;
use crate::store::provisioning_log::from_micros;

/// Records linked per chaining transaction. Small, because on SQLite a chaining
/// transaction holds the one writer: 1,000 rows at a time held SCIM writes for
/// tens of milliseconds (POST p99 8 → 35 ms under `cargo bench --bench http`); the
/// writer's queue lets SCIM writes in between batches.
pub const CHAIN_BATCH: usize = 128;

/// The chain's head row: the log's name, the next seq and what it links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub log: LogId,
    pub next_seq: u64,
    /// The hash of record `next_seq - 1`, or the log's genesis value.
    pub prev: Digest,
}

impl AuditHead {
    /// A new log's head: nothing chained yet.
    pub fn genesis(log: LogId) -> Self {
        let prev = log.genesis();
        Self {
            log,
            next_seq: 0,
            prev,
        }
    }

    /// The newest chained record; `None` before the first.
    pub fn head(&self) -> Option<Head> {
        self.next_seq.checked_sub(1).map(|seq| Head {
            seq,
            hash: self.prev,
        })
    }

    fn chain(&self) -> Chain {
        match self.head() {
            Some(h) => Chain::resume(h),
            None => Chain::genesis(&self.log),
        }
    }
}

/// A row waiting to be chained, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchained {
    pub id: i64,
    /// Microseconds since the Unix epoch (the row's `at`).
    pub at: i64,
    pub kind: String,
    pub body: String,
}

/// What the chainer writes on one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: i64,
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    pub line: String,
}

/// One chaining transaction's writes: the rows' links, then the new head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlan {
    pub links: Vec<Link>,
    pub next_seq: u64,
    pub prev: Digest,
}

impl LinkPlan {
    /// What executing this plan after `head` did.
    pub(crate) fn chained(&self, head: AuditHead) -> Chained {
        let after = AuditHead {
            next_seq: self.next_seq,
            prev: self.prev,
            ..head
        };
        Chained {
            linked: self.links.len(),
            head: after.head(),
            busy: false,
        }
    }
}

/// What one call of [`AuditChain::chain_pending`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Chained {
    /// Rows linked now.
    pub linked: usize,
    /// The newest chained record after it.
    pub head: Option<Head>,
    /// Another instance holds the chain (PostgreSQL): nothing was done.
    pub busy: bool,
}

/// A seal as stored: its head and time for lookups, its line for export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSeal {
    pub seq: u64,
    pub head: Digest,
    pub at: DateTime<Utc>,
    pub key_id: String,
    pub line: String,
}

impl StoredSeal {
    pub fn of(seal: &Seal) -> Self {
        Self {
            seq: seal.head.seq,
            head: seal.head.hash,
            at: seal.time,
            key_id: seal.key.as_str().to_owned(),
            line: String::from_utf8_lossy(&seal.line()).into_owned(),
        }
    }
}

/// A checkpoint as stored (`next`: the first seq kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub next: u64,
    pub prev: Digest,
    pub at: DateTime<Utc>,
    pub key_id: String,
    pub line: String,
}

impl StoredCheckpoint {
    pub fn of(cp: &crate::audit::Checkpoint) -> Self {
        Self {
            next: cp.next,
            prev: cp.prev,
            at: cp.time,
            key_id: cp.key.as_str().to_owned(),
            line: String::from_utf8_lossy(&cp.line()).into_owned(),
        }
    }
}

/// A chained row read for export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedLine {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub line: String,
}

/// The chain's upkeep: linking, seals, checkpoints, export reads and pruning.
#[async_trait]
pub trait AuditChain: Send + Sync {
    /// The head; created with `fresh` as the log's name when there is none yet (the
    /// first instance to get here names the log; later calls answer that name).
    async fn audit_head(&self, fresh: &LogId) -> Result<AuditHead, StoreError>;

    /// Links up to `batch` unchained rows, oldest id first, after the head, and
    /// moves the head, in one transaction. Fails with `Conflict` when the head moved
    /// under it, and answers `busy` when another instance is chaining (PostgreSQL).
    async fn chain_pending(&self, batch: usize) -> Result<Chained, StoreError>;

    /// Stores a seal; `false` when one of that seq is stored already.
    async fn add_seal(&self, seal: &StoredSeal) -> Result<bool, StoreError>;

    /// The seal of the highest seq.
    async fn latest_seal(&self) -> Result<Option<StoredSeal>, StoreError>;

    /// The newest seal made before `before` (the pruner's cut).
    async fn seal_before(&self, before: DateTime<Utc>) -> Result<Option<StoredSeal>, StoreError>;

    /// Seals of `from..=to`, by seq.
    async fn seals_between(&self, from: u64, to: u64) -> Result<Vec<StoredSeal>, StoreError>;

    /// Stores a checkpoint; `false` when one of that `next` is stored already.
    async fn add_checkpoint(&self, cp: &StoredCheckpoint) -> Result<bool, StoreError>;

    /// The checkpoint of the highest `next`: where retained history starts.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// Up to `limit` chained rows from seq `from` on, by seq.
    async fn chained_lines(&self, from: u64, limit: usize) -> Result<Vec<ChainedLine>, StoreError>;

    /// The first chained seq written at or after `at` (an export's `--from TIME`).
    async fn first_seq_since(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError>;

    /// The last chained seq written before `at` (an export's `--to TIME`).
    async fn last_seq_before(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError>;

    /// Deletes up to `batch` chained rows with seq below `next` (a stored checkpoint's
    /// `next`); once none is left, the seals below `next` and the older checkpoints.
    /// Answers how many rows went. Unchained rows are never touched.
    async fn prune_chained(&self, next: u64, batch: usize) -> Result<usize, StoreError>;
}

/// The body that is hashed: the stored JSON (as stored when it is canonical, as
/// the log writes it), or, when it cannot be read or is not what a record may carry
/// (not an object, a float), the stored text under `unreadable`, so one bad row is
/// still chained (and visible) instead of halting the chain for good.
fn record(chain: &mut Chain, row: &Unchained) -> Result<Appended, StoreError> {
    let time = from_micros(row.at);
    // A refused body leaves the chain where it was.
    if let Ok(r) = chain.append_text(time, &row.kind, &row.body) {
        return Ok(r);
    }
    let body = json!({ "kind": row.kind, "unreadable": row.body });
    chain
        .append(time, "unreadable", body)
        .map(|r| Appended {
            seq: r.seq(),
            prev: r.prev(),
            hash: r.hash(),
            line: String::from_utf8_lossy(r.line()).into_owned(),
        })
        .map_err(|e| StoreError::Database(format!("audit record {}: {e}", row.id)))
}

/// The links `rows` get after `head`, in the order given (id order as read).
pub(crate) fn plan_links(head: &AuditHead, rows: &[Unchained]) -> Result<LinkPlan, StoreError> {
    let mut chain = head.chain();
    let mut links = Vec::with_capacity(rows.len());
    for row in rows {
        let r = record(&mut chain, row)?;
        links.push(Link {
            id: row.id,
            seq: r.seq,
            prev: r.prev.to_hex(),
            hash: r.hash.to_hex(),
            line: r.line,
        });
    }
    let (next_seq, prev) = match chain.head() {
        Some(h) => (chain.next_seq(), h.hash),
        None => (head.next_seq, head.prev),
    };
    Ok(LinkPlan {
        links,
        next_seq,
        prev,
    })
}

/// A stored seq (an SQL BIGINT) as the chain counts it.
pub(crate) fn seq_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A chain seq as SQL stores it.
pub(crate) fn sql_seq(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored hash read back; a damaged one is a database error, not a panic.
pub(crate) fn digest(text: &str, what: &str) -> Result<Digest, StoreError> {
    Digest::from_hex(text)
        .ok_or_else(|| StoreError::Database(format!("{what}: {text:?} is not a SHA-256 hex value")))
}

/// The head row read back.
pub(crate) fn head_row(log: &str, next_seq: i64, prev: &str) -> Result<AuditHead, StoreError> {
    Ok(AuditHead {
        log: LogId::new(log).map_err(|e| StoreError::Database(format!("audit_head: {e}")))?,
        next_seq: seq_of(next_seq),
        prev: digest(prev, "audit_head.prev")?,
    })
}

/// The refusal when the head moved between reading and writing it.
pub(crate) fn head_moved() -> StoreError {
    StoreError::Conflict(
        "the audit chain's head moved while chaining (another instance chained meanwhile); nothing was written"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Exporter, Header, SigningKey, Start, verify};
    use serde_json::Value;

    fn row(id: i64, body: &str) -> Unchained {
        Unchained {
            id,
            at: 1_700_000_000_000_000 + id,
            kind: "scim.change".into(),
            body: body.into(),
        }
    }

    #[test]
    fn links_continue_the_head_and_verify_as_an_export() {
        let log = LogId::new("test-log").unwrap();
        let head = AuditHead::genesis(log.clone());
        let first = plan_links(&head, &[row(5, r#"{"a":1}"#), row(9, r#"{ "b" : [2] }"#)]).unwrap();
        assert_eq!(
            first
                .links
                .iter()
                .map(|l| (l.id, l.seq))
                .collect::<Vec<_>>(),
            [(5, 0), (9, 1)]
        );
        assert_eq!(first.links[0].prev, log.genesis().to_hex());
        assert_eq!(first.links[1].prev, first.links[0].hash);
        // The body is canonicalised: white space in the stored JSON does not matter.
        assert!(first.links[1].line.contains(r#""body":{"b":[2]}"#));
        let after = AuditHead {
            log: log.clone(),
            next_seq: first.next_seq,
            prev: first.prev,
        };
        let second = plan_links(&after, &[row(10, "{}")]).unwrap();
        assert_eq!(second.links[0].seq, 2);
        assert_eq!(second.links[0].prev, first.links[1].hash);

        let key = SigningKey::ed25519_from_seed(&[7; 32]).unwrap();
        let mut x = Exporter::new(
            Vec::new(),
            &Header {
                log: log.clone(),
                alg: key.algorithm(),
                key: key.id().clone(),
                start: Start::Genesis,
            },
        )
        .unwrap();
        for l in first.links.iter().chain(&second.links) {
            x.stored_record(l.seq, l.line.as_bytes()).unwrap();
        }
        let file = x.finish().unwrap();
        let report = verify(&file[..], key.verifying_key()).unwrap();
        assert_eq!(report.records, 3);
    }

    #[test]
    fn an_unreadable_body_is_chained_as_text_not_left_behind() {
        let head = AuditHead::genesis(LogId::new("l").unwrap());
        let plan = plan_links(&head, &[row(1, "{not json"), row(2, r#"{"x":1.5}"#)]).unwrap();
        assert_eq!(plan.links.len(), 2);
        assert!(plan.links[0].line.contains(r#""unreadable":"{not json""#));
        assert!(plan.links[1].line.contains(r#""kind":"unreadable""#));
        assert_eq!(plan.next_seq, 2);
    }

    #[test]
    fn a_body_stored_before_bodies_were_canonical_hashes_as_it_did() {
        // Rows written before the log stored canonical bodies keep their keys in
        // the order they were built; the canonical one hashes as stored. Both must
        // give one line, so chains made before still verify.
        let head = AuditHead::genesis(LogId::new("l").unwrap());
        let old = r#"{"provider":"entra","op":"create","changes":[{"path":"title","old":null,"new":"Aé"}],"status":201}"#;
        let new = r#"{"changes":[{"new":"Aé","old":null,"path":"title"}],"op":"create","provider":"entra","status":201}"#;
        assert!(!crate::canonical::is_canonical_object(old));
        assert!(crate::canonical::is_canonical_object(new));
        let a = plan_links(&head, &[row(1, old), row(2, old)]).unwrap();
        let b = plan_links(&head, &[row(1, new), row(2, new)]).unwrap();
        assert_eq!(a, b);
        assert!(
            a.links[0]
                .line
                .starts_with(&format!(r#"{{"body":{new},"kind":"#))
        );
        // And as `Chain::append` writes it from the parsed value.
        let mut chain = head.chain();
        let value: Value = serde_json::from_str(old).unwrap();
        let r = chain
            .append(from_micros(row(1, old).at), "scim.change", value)
            .unwrap();
        assert_eq!(a.links[0].line.as_bytes(), r.line());
        assert_eq!(a.links[0].hash, r.hash().to_hex());
    }

    #[test]
    fn nothing_pending_leaves_the_head_as_it_is() {
        let head = AuditHead::genesis(LogId::new("l").unwrap());
        let plan = plan_links(&head, &[]).unwrap();
        assert_eq!((plan.next_seq, plan.prev), (0, head.prev));
    }
}

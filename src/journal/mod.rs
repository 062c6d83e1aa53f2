//! The provisioning log's audit chain, kept: one chainer links the rows the SCIM
//! writes and deliveries insert unchained, seals the head at a steady cadence with
//! the vault's Ed25519 key, carries the chain across retention pruning with signed
//! checkpoints, and exports it as the self-describing file `audit verify` checks
//! (docs/provisioning-log.md §2, §4–§7).
//!
//! - [`keys`]: the signing key, a vault secret created on first use;
//! - [`chainer`]: the task that links, seals and prunes, and its cadence;
//! - [`export`]: the JSON Lines export of a range, streamed page by page.

pub mod chainer;
pub mod export;
pub mod keys;
mod prune;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::audit::{AuditError, Head, LogId, Seal, SigningKey};
use crate::clock::Clock;
use crate::entropy::Entropy;
use crate::store::{CHAIN_BATCH, Store, StoreError, StoredSeal};
use crate::vault::SecretsError;

pub use chainer::SealPolicy;
pub use export::Range;

/// Why chaining, sealing, pruning or an export failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("audit log store: {0}")]
    Store(#[from] StoreError),
    #[error("audit: {0}")]
    Audit(#[from] AuditError),
    #[error("audit signing key: {0}")]
    Key(#[from] SecretsError),
    /// Sealing or exporting needs the key and there is none (no vault, or locked).
    #[error("{0}")]
    NoKey(String),
    /// A range or value the caller gave cannot be used.
    #[error("{0}")]
    Invalid(String),
}

/// What `/metrics` and `status` show of the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditStatus {
    pub log: Option<String>,
    /// The newest chained record.
    pub head_seq: Option<u64>,
    /// The newest record a seal vouches for.
    pub sealed_through: Option<u64>,
    /// Chained records no seal covers yet.
    pub unsealed: u64,
    /// The sealing key's id; `None` when records are chained but cannot be sealed.
    pub key: Option<String>,
}

/// The chain of one installation's log, as this process keeps it.
pub struct Journal {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    key: Option<SigningKey>,
    log: LogId,
    status: Mutex<AuditStatus>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("log", &self.log)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens the chain (naming the log on first use). `key` is `None` when the vault
    /// is absent or locked: records are then chained but not sealed.
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        entropy: &dyn Entropy,
        key: Option<SigningKey>,
    ) -> Result<Self, JournalError> {
        let head = store.audit_head(&LogId::generate(entropy)).await?;
        let sealed = store.latest_seal().await?;
        let journal = Self {
            store,
            clock,
            log: head.log.clone(),
            status: Mutex::new(AuditStatus {
                log: Some(head.log.as_str().to_owned()),
                key: key.as_ref().map(|k| k.id().as_str().to_owned()),
                ..AuditStatus::default()
            }),
            key,
        };
        journal.observe(head.head(), sealed.map(|s| s.seq));
        Ok(journal)
    }

    pub fn log(&self) -> &LogId {
        &self.log
    }

    pub fn key(&self) -> Option<&SigningKey> {
        self.key.as_ref()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn status(&self) -> AuditStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn observe(&self, head: Option<Head>, sealed: Option<u64>) {
        if let Ok(mut s) = self.status.lock() {
            if head.is_some() {
                s.head_seq = head.map(|h| h.seq);
            }
            if sealed.is_some() {
                s.sealed_through = sealed.max(s.sealed_through);
            }
            s.unsealed = match (s.head_seq, s.sealed_through) {
                (Some(h), Some(t)) => h.saturating_sub(t),
                (Some(h), None) => h + 1,
                (None, _) => 0,
            };
        }
    }

    /// Reads the newest seal, which another process (`audit seal`, an export,
    /// another instance) may have made, into the status.
    pub async fn refresh(&self) -> Result<(), JournalError> {
        let sealed = self.store.latest_seal().await?;
        self.observe(None, sealed.map(|s| s.seq));
        Ok(())
    }

    /// Links every pending row (a batch per transaction); answers how many. On
    /// PostgreSQL another instance may be chaining: then this does nothing now.
    pub async fn chain(&self) -> Result<usize, JournalError> {
        let mut total = 0;
        let mut refused = 0;
        loop {
            let done = match self.store.chain_pending(CHAIN_BATCH).await {
                Ok(done) => done,
                // Another process chained between our read and write of the head (the
                // CLI beside the daemon on one SQLite file): nothing was written; try
                // again on the head it left.
                Err(StoreError::Conflict(_)) if refused < 5 => {
                    refused += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            total += done.linked;
            self.observe(done.head, None);
            if done.busy || done.linked < CHAIN_BATCH {
                return Ok(total);
            }
        }
    }

    /// Seals the chain's head, unless a seal of it is stored already or nothing is
    /// chained; answers the seal of the head. Each new seal is also logged at info,
    /// so journald or a SIEM keeps a copy outside the database (what makes a
    /// rollback of the database detectable, §7).
    pub async fn seal(&self) -> Result<Option<StoredSeal>, JournalError> {
        let key = self.key.as_ref().ok_or_else(|| {
            JournalError::NoKey(
                "the audit chain cannot be sealed: no signing key (the vault is not configured, not initialised or locked)"
                    .into(),
            )
        })?;
        let head = self.store.audit_head(&self.log).await?;
        let Some(h) = head.head() else {
            return Ok(None);
        };
        if let Some(latest) = self.store.latest_seal().await?
            && latest.seq >= h.seq
        {
            self.observe(Some(h), Some(latest.seq));
            return Ok(Some(latest));
        }
        let seal = StoredSeal::of(&Seal::sign(key, &self.log, h, self.clock.now())?);
        if self.store.add_seal(&seal).await? {
            tracing::info!(
                "audit seal seq={} head={} key={}",
                seal.seq,
                seal.head,
                seal.key_id
            );
        }
        self.observe(Some(h), Some(seal.seq));
        Ok(Some(seal))
    }

    /// Chains what is pending, then seals the head: what `audit seal`, an export and
    /// shutdown do.
    pub async fn chain_and_seal(&self) -> Result<Option<StoredSeal>, JournalError> {
        self.chain().await?;
        self.seal().await
    }

    /// Checkpoints at the newest seal made before `before` and deletes what it
    /// carries the chain past; answers the rows deleted.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<usize, JournalError> {
        prune::prune(self, before).await
    }
}

/// Builds the journal for the daemon: the key from the vault when it is unlocked.
pub async fn open_for_daemon(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    secrets: Option<&crate::vault::Secrets>,
) -> Result<Arc<Journal>, JournalError> {
    let key = match secrets {
        Some(s) => Some(keys::signing_key(s, entropy.as_ref()).await?),
        None => None,
    };
    Ok(Arc::new(
        Journal::open(store, clock, entropy.as_ref(), key).await?,
    ))
}

//! Signed statements about the chain: a seal vouches for a head (every record up to
//! it, through the hashes), a checkpoint for where retained history starts after
//! pruning. Both sign their own canonical line without the `sig` field, behind a
//! domain tag; the `type` field inside keeps a seal from passing as a checkpoint.

use chrono::{DateTime, Utc};

use super::AuditError;
use super::canonical::Object;
use super::key::{KeyId, SigningKey};
use super::record::{Digest, Head, LogId, VERSION, format_time};

const SIGNATURE_TAG: &[u8] = b"scim-bridge-audit/v1/signature\0";

/// A signature over the chain head `head` of log `log`, made at `time`.
#[derive(Debug, Clone, PartialEq)]
pub struct Seal {
    pub log: LogId,
    pub head: Head,
    pub time: DateTime<Utc>,
    pub key: KeyId,
    pub sig: Vec<u8>,
}

impl Seal {
    pub fn sign(
        key: &SigningKey,
        log: &LogId,
        head: Head,
        time: DateTime<Utc>,
    ) -> Result<Self, AuditError> {
        let mut seal = Self {
            log: log.clone(),
            head,
            time,
            key: key.id().clone(),
            sig: Vec::new(),
        };
        seal.sig = key.sign(&seal.signed_message())?;
        Ok(seal)
    }

    /// The line with `sig` present (`Some`) or left out (`None`, what is signed).
    fn encode(&self, sig: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        let o = Object::new(&mut out)
            .str("head", &self.head.hash.to_hex())
            .str("key", self.key.as_str())
            .str("log", self.log.as_str())
            .u64("seq", self.head.seq);
        let o = match sig {
            Some(sig) => o.str("sig", &hex::encode(sig)),
            None => o,
        };
        o.str("time", &format_time(self.time))
            .str("type", "seal")
            .u64("v", VERSION)
            .end();
        out
    }

    pub(crate) fn signed_message(&self) -> Vec<u8> {
        [SIGNATURE_TAG, &self.encode(None)].concat()
    }

    /// The canonical JSON line (no newline).
    pub fn line(&self) -> Vec<u8> {
        self.encode(Some(&self.sig))
    }
}

/// After records before `next` are pruned: "the record before `next` had hash
/// `prev`", signed, so verification can start at `next`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub log: LogId,
    pub next: u64,
    pub prev: Digest,
    pub time: DateTime<Utc>,
    pub key: KeyId,
    pub sig: Vec<u8>,
}

impl Checkpoint {
    /// A checkpoint at `head`: records up to `head.seq` may then be deleted. The
    /// pruner takes `head` from a seal it has verified, never from the rows alone.
    pub fn sign(
        key: &SigningKey,
        log: &LogId,
        head: Head,
        time: DateTime<Utc>,
    ) -> Result<Self, AuditError> {
        let next = head.seq.checked_add(1).ok_or_else(|| {
            AuditError::Invalid("a checkpoint after seq u64::MAX cannot be made".into())
        })?;
        let mut checkpoint = Self {
            log: log.clone(),
            next,
            prev: head.hash,
            time,
            key: key.id().clone(),
            sig: Vec::new(),
        };
        checkpoint.sig = key.sign(&checkpoint.signed_message())?;
        Ok(checkpoint)
    }

    fn encode(&self, sig: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        let o = Object::new(&mut out)
            .str("key", self.key.as_str())
            .str("log", self.log.as_str())
            .u64("next", self.next)
            .str("prev", &self.prev.to_hex());
        let o = match sig {
            Some(sig) => o.str("sig", &hex::encode(sig)),
            None => o,
        };
        o.str("time", &format_time(self.time))
            .str("type", "checkpoint")
            .u64("v", VERSION)
            .end();
        out
    }

    pub(crate) fn signed_message(&self) -> Vec<u8> {
        [SIGNATURE_TAG, &self.encode(None)].concat()
    }

    pub fn line(&self) -> Vec<u8> {
        self.encode(Some(&self.sig))
    }

    /// The head it vouches for: the record just before `next`.
    pub fn head(&self) -> Head {
        Head {
            seq: self.next.saturating_sub(1),
            hash: self.prev,
        }
    }
}

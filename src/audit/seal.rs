//! Signed statements about the chain: a seal vouches for a head (every record up to
//! it, through the hashes), a checkpoint for where retained history starts after
//! pruning. Both sign their own canonical line without the `sig` field, behind a
//! domain tag; the `type` field inside keeps a seal from passing as a checkpoint.

use chrono::{DateTime, Utc};

use super::AuditError;
use super::key::{KeyId, SigningKey};
use super::record::{Digest, Head, LogId, VERSION, format_time};
use crate::canonical::Object;

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
        let unsigned = Self {
            log: log.clone(),
            head,
            time,
            key: key.id().clone(),
            sig: Vec::new(),
        };
        let sig = key.sign(&unsigned.signed_message())?;
        Ok(Self { sig, ..unsigned })
    }

    /// The line with `sig` present (`Some`) or left out (`None`, what is signed).
    fn encode(&self, sig: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        let o = Object::new(&mut out)
            .str("head", &self.head.hash.to_hex())
            .str("key", self.key.as_str())
            .str("log", self.log.as_str())
            .u64("seq", self.head.seq);
        tail(o, sig, self.time, "seal");
        out
    }

    pub(crate) fn signed_message(&self) -> Vec<u8> {
        signed_message(&self.encode(None))
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
        let unsigned = Self {
            log: log.clone(),
            next,
            prev: head.hash,
            time,
            key: key.id().clone(),
            sig: Vec::new(),
        };
        let sig = key.sign(&unsigned.signed_message())?;
        Ok(Self { sig, ..unsigned })
    }

    fn encode(&self, sig: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        let o = Object::new(&mut out)
            .str("key", self.key.as_str())
            .str("log", self.log.as_str())
            .u64("next", self.next)
            .str("prev", &self.prev.to_hex());
        tail(o, sig, self.time, "checkpoint");
        out
    }

    pub(crate) fn signed_message(&self) -> Vec<u8> {
        signed_message(&self.encode(None))
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

/// The fields both statements end with, in canonical order: `sig` when the line is
/// written (left out of what is signed), `time`, `type`, `v`.
fn tail(o: Object<'_>, sig: Option<&[u8]>, time: DateTime<Utc>, kind: &str) {
    let o = match sig {
        Some(sig) => o.str("sig", &hex::encode(sig)),
        None => o,
    };
    o.str("time", &format_time(time))
        .str("type", kind)
        .u64("v", VERSION)
        .end();
}

/// What a key signs: the statement's line without `sig`, behind the domain tag.
fn signed_message(unsigned_line: &[u8]) -> Vec<u8> {
    [SIGNATURE_TAG, unsigned_line].concat()
}

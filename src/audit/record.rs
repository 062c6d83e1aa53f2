//! Records and the hash chain that links them.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::AuditError;
use crate::canonical::{self, Object};
use crate::entropy::Entropy;

/// Version of the record encoding, written in every line as `"v"`.
pub const VERSION: u64 = 1;
/// Domain tag of a log's genesis value.
const GENESIS_TAG: &[u8] = b"scim-bridge-audit/v1/genesis\0";

/// A SHA-256 value, written as 64 lower-case hex digits (one spelling only, so that
/// no edit to a file can leave its meaning unchanged).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Reads exactly 64 lower-case hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = strict_hex(s)?;
        Some(Self(bytes.try_into().ok()?))
    }
}

/// Lower-case hex only: `hex::decode` also takes upper case, which would give one
/// value two spellings.
pub(crate) fn strict_hex(s: &str) -> Option<Vec<u8>> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    hex::decode(s).ok()
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The name of one installation's log. It seeds the genesis value, so a chain from
/// one installation cannot be passed off as another's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogId(String);

impl LogId {
    /// 1 to 64 characters of `A-Z a-z 0-9 - _ .`.
    pub fn new(id: &str) -> Result<Self, AuditError> {
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(AuditError::Invalid(format!(
                "log id {id:?}: 1 to 64 letters, digits, '-', '_' or '.'"
            )))
        }
    }

    /// A fresh random id (32 hex digits), made once when the log is created.
    pub fn generate(entropy: &dyn Entropy) -> Self {
        let mut b = [0u8; 16];
        entropy.fill(&mut b);
        Self(hex::encode(b))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the record with sequence number 0 names as its `prev`.
    pub fn genesis(&self) -> Digest {
        let mut h = Sha256::new();
        h.update(GENESIS_TAG);
        h.update(self.0.as_bytes());
        Digest(h.finalize().into())
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The last record of a chain: what a seal signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: Digest,
}

/// Times in the log: RFC 3339 in UTC with exactly six fractional digits, so each
/// instant has one spelling.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads a time written by [`format_time`], and only in that spelling.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    (format_time(t) == s).then_some(t)
}

fn check_kind(kind: &str) -> Result<(), AuditError> {
    if kind.is_empty() || kind.len() > 64 || kind.chars().any(char::is_control) {
        return Err(AuditError::Invalid(format!(
            "record kind {kind:?}: 1 to 64 printable characters"
        )));
    }
    Ok(())
}

/// One entry of the log, with its canonical line (what is stored, exported and
/// hashed) computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    seq: u64,
    time: DateTime<Utc>,
    kind: String,
    body: Value,
    prev: Digest,
    line: Vec<u8>,
    hash: Digest,
}

impl Record {
    /// A record from its stored parts. `body` must be a JSON object with integer
    /// numbers only; `kind` a non-empty name such as `scim.change`.
    pub fn from_parts(
        seq: u64,
        time: DateTime<Utc>,
        kind: &str,
        body: Value,
        prev: Digest,
    ) -> Result<Self, AuditError> {
        check_kind(kind)?;
        if !body.is_object() {
            return Err(AuditError::Invalid("a record body is a JSON object".into()));
        }
        let time_text = format_time(time);
        let mut line = Vec::with_capacity(256);
        Object::new(&mut line)
            .value("body", &body)?
            .str("kind", kind)
            .str("prev", &prev.to_hex())
            .u64("seq", seq)
            .str("time", &time_text)
            .str("type", "record")
            .u64("v", VERSION)
            .end();
        let hash = Digest::of(&line);
        Ok(Self {
            seq,
            // The stored time is the one written: microseconds.
            time: parse_time(&time_text).unwrap_or(time),
            kind: kind.to_owned(),
            body,
            prev,
            line,
            hash,
        })
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }
    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }
    pub fn kind(&self) -> &str {
        &self.kind
    }
    pub fn body(&self) -> &Value {
        &self.body
    }
    pub fn prev(&self) -> Digest {
        self.prev
    }
    /// The canonical JSON line (no newline): stored, exported and hashed as is.
    pub fn line(&self) -> &[u8] {
        &self.line
    }
    /// SHA-256 of [`Record::line`]: the next record's `prev`.
    pub fn hash(&self) -> Digest {
        self.hash
    }
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }
}

/// A record appended by [`Chain::append_text`]: what the store keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub prev: Digest,
    /// SHA-256 of `line`: the next record's `prev`.
    pub hash: Digest,
    /// The canonical JSON line (no newline), as exported.
    pub line: String,
}

/// The writer's side of the chain: where the next record goes and what it links to.
/// It holds no records; the store keeps them, and resumes a chain from its last row
/// (or from a checkpoint once everything older is pruned).
#[derive(Debug, Clone)]
pub struct Chain {
    next_seq: u64,
    prev: Digest,
    head: Option<Head>,
}

impl Chain {
    /// An empty log: the first record is seq 0 and links to the log's genesis value.
    pub fn genesis(log: &LogId) -> Self {
        Self {
            next_seq: 0,
            prev: log.genesis(),
            head: None,
        }
    }

    /// Carry on after `head` (the newest stored record).
    pub fn resume(head: Head) -> Self {
        Self {
            next_seq: head.seq.saturating_add(1),
            prev: head.hash,
            head: Some(head),
        }
    }

    /// Append a record. The chain moves on only if the record could be encoded.
    pub fn append(
        &mut self,
        time: DateTime<Utc>,
        kind: &str,
        body: Value,
    ) -> Result<Record, AuditError> {
        let record = Record::from_parts(self.next_seq, time, kind, body, self.prev)?;
        self.next_seq = record.seq.saturating_add(1);
        self.prev = record.hash;
        self.head = Some(record.head());
        Ok(record)
    }

    /// Append a record whose body is stored JSON text, and answer only its line
    /// and links. A body already in canonical form (as the provisioning log writes
    /// its records) goes into the line as it is, without being parsed; any other is
    /// parsed and written canonically, which gives the same line for the same value,
    /// so rows stored before bodies were canonical still hash as they did.
    pub fn append_text(
        &mut self,
        time: DateTime<Utc>,
        kind: &str,
        body: &str,
    ) -> Result<Appended, AuditError> {
        if !canonical::is_canonical_object(body) {
            let value: Value = serde_json::from_str(body)
                .map_err(|e| AuditError::Invalid(format!("a record body is not JSON: {e}")))?;
            let r = self.append(time, kind, value)?;
            return Ok(Appended {
                seq: r.seq,
                prev: r.prev,
                hash: r.hash,
                line: canonical::into_text(r.line),
            });
        }
        check_kind(kind)?;
        let mut line = Vec::with_capacity(body.len() + 200);
        Object::new(&mut line)
            .raw("body", body)
            .str("kind", kind)
            .str("prev", &self.prev.to_hex())
            .u64("seq", self.next_seq)
            .str("time", &format_time(time))
            .str("type", "record")
            .u64("v", VERSION)
            .end();
        let done = Appended {
            seq: self.next_seq,
            prev: self.prev,
            hash: Digest::of(&line),
            line: canonical::into_text(line),
        };
        self.next_seq = done.seq.saturating_add(1);
        self.prev = done.hash;
        self.head = Some(Head {
            seq: done.seq,
            hash: done.hash,
        });
        Ok(done)
    }

    /// The newest record appended or resumed from; `None` for an empty log.
    pub fn head(&self) -> Option<Head> {
        self.head
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

//! The tamper-evident core of the provisioning log: records in a SHA-256 hash chain,
//! seals that sign the chain's head, checkpoints that carry the chain across
//! retention pruning, and a self-describing JSON Lines export with a streaming
//! verifier (as certificate transparency logs and journald's sealing do it).
//!
//! Pure: no I/O beyond the reader/writer handed in, no clock (times are arguments),
//! no global state. Where records are written and how keys are kept is the caller's
//! business; `docs/provisioning-log.md` has the design and the threat model.
//!
//! - [`record`]: the record, its canonical line, and the [`Chain`] an appender keeps;
//! - [`seal`]: signed [`Seal`]s of a head and [`Checkpoint`]s for pruning;
//! - [`key`]: Ed25519 (primary) or HMAC-SHA256 keys;
//! - [`export`]: the file format and its writer; [`verify`](mod@verify): the checker.

pub mod export;
pub mod key;
pub mod record;
pub mod seal;
pub mod verify;

#[cfg(test)]
mod tests;

pub use export::{Exporter, Header, Start};
pub use key::{Algorithm, KeyId, SigningKey, VerifyingKey};
pub use record::{Appended, Chain, Digest, Head, LogId, Record};
pub use seal::{Checkpoint, Seal};
pub use verify::{Anchor, Report, parse_seal, verify, verify_witnessed};

use crate::canonical;

/// Everything that can go wrong building, exporting or verifying an audit log.
/// Tampering names the sequence number of the record it concerns.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A value the caller passed cannot be logged or used as a key.
    #[error("{0}")]
    Invalid(String),
    #[error("reading or writing the audit export: {0}")]
    Io(#[from] std::io::Error),
    /// A line that is not what the format allows there.
    #[error("line {line}{}: {reason}", after_seq(*.after))]
    Malformed {
        line: u64,
        after: Option<u64>,
        reason: String,
    },
    /// The chain, a seal or a count does not hold.
    #[error("seq {seq}: {reason}")]
    Tampered { seq: u64, reason: String },
    #[error(
        "{}the file is sealed with key {file}, not with the key given ({given})",
        .seq.map(|s| format!("seq {s}: ")).unwrap_or_default()
    )]
    WrongKey {
        seq: Option<u64>,
        file: String,
        given: String,
    },
    #[error("the file is truncated{}: {how}", after_seq(*.after))]
    Truncated { after: Option<u64>, how: String },
}

impl From<canonical::NotInteger> for AuditError {
    fn from(e: canonical::NotInteger) -> Self {
        AuditError::Invalid(e.to_string())
    }
}

fn after_seq(after: Option<u64>) -> String {
    match after {
        Some(seq) => format!(" (after seq {seq})"),
        None => String::new(),
    }
}

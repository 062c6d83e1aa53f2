//! The export file: JSON Lines, one canonical object per line.
//!
//! ```text
//! {"alg":"ed25519","format":"scim-bridge-audit","key":"…","log":"…","start":"genesis","type":"header","v":1}
//! {"key":"…","log":"…","next":N,"prev":"…","sig":"…","time":"…","type":"checkpoint","v":1}   (start "checkpoint" only)
//! {"body":{…},"kind":"scim.change","prev":"…","seq":N,"time":"…","type":"record","v":1}
//! {"head":"…","key":"…","log":"…","seq":N,"sig":"…","time":"…","type":"seal","v":1}      (after the record it seals)
//! {"last_seq":N,"records":K,"seals":S,"type":"end","v":1}
//! ```
//!
//! The end line is not signed: it catches a file cut short by accident, not one
//! rewritten on purpose (what seals cover is in the verification report).

use std::io::Write;

use super::AuditError;
use super::key::{Algorithm, KeyId};
use super::record::{LogId, Record, VERSION};
use super::seal::{Checkpoint, Seal};
use crate::canonical::Object;

/// The value of the header's `format` field.
pub const FORMAT: &str = "scim-bridge-audit";

/// Where the exported chain starts, as the header declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At seq 0, linked to the log's genesis value: the whole history.
    Genesis,
    /// At a signed checkpoint (the line after the header): all retained history.
    Checkpoint,
    /// At some record whose `prev` is taken on trust: a `--from` range. Seals still
    /// vouch for every record from there on.
    Range,
}

impl Start {
    pub fn name(self) -> &'static str {
        match self {
            Self::Genesis => "genesis",
            Self::Checkpoint => "checkpoint",
            Self::Range => "range",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "genesis" => Some(Self::Genesis),
            "checkpoint" => Some(Self::Checkpoint),
            "range" => Some(Self::Range),
            _ => None,
        }
    }
}

/// The first line: what the file is and how to check it.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub log: LogId,
    pub alg: Algorithm,
    pub key: KeyId,
    pub start: Start,
}

impl Header {
    pub fn line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(192);
        Object::new(&mut out)
            .str("alg", self.alg.name())
            .str("format", FORMAT)
            .str("key", self.key.as_str())
            .str("log", self.log.as_str())
            .str("start", self.start.name())
            .str("type", "header")
            .u64("v", VERSION)
            .end();
        out
    }
}

/// The totals the end line states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub records: u64,
    pub seals: u64,
    pub last_seq: Option<u64>,
}

impl Totals {
    pub fn end_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        Object::new(&mut out)
            .opt_u64("last_seq", self.last_seq)
            .u64("records", self.records)
            .u64("seals", self.seals)
            .str("type", "end")
            .u64("v", VERSION)
            .end();
        out
    }
}

/// Writes an export line by line, in the order given (the store's order by seq,
/// each seal after the record it seals), and counts for the end line.
pub struct Exporter<W: Write> {
    out: W,
    totals: Totals,
}

impl<W: Write> Exporter<W> {
    pub fn new(mut out: W, header: &Header) -> Result<Self, AuditError> {
        write_line(&mut out, &header.line())?;
        Ok(Self {
            out,
            totals: Totals::default(),
        })
    }

    /// The anchor of a `Start::Checkpoint` export; right after the header.
    pub fn checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), AuditError> {
        write_line(&mut self.out, &checkpoint.line())
    }

    pub fn record(&mut self, record: &Record) -> Result<(), AuditError> {
        write_line(&mut self.out, record.line())?;
        self.totals.records += 1;
        self.totals.last_seq = Some(record.seq());
        Ok(())
    }

    pub fn seal(&mut self, seal: &Seal) -> Result<(), AuditError> {
        write_line(&mut self.out, &seal.line())?;
        self.totals.seals += 1;
        Ok(())
    }

    /// A record as the store holds it (its canonical line, written by the chainer):
    /// copied as is, so what `verify` checks is what the database holds, and a row
    /// edited there fails verification instead of being re-encoded into shape.
    pub fn stored_record(&mut self, seq: u64, line: &[u8]) -> Result<(), AuditError> {
        write_line(&mut self.out, line)?;
        self.totals.records += 1;
        self.totals.last_seq = Some(seq);
        Ok(())
    }

    /// A seal's line as the store holds it (see [`Exporter::stored_record`]).
    pub fn stored_seal(&mut self, line: &[u8]) -> Result<(), AuditError> {
        write_line(&mut self.out, line)?;
        self.totals.seals += 1;
        Ok(())
    }

    /// A checkpoint's line as the store holds it; right after the header.
    pub fn stored_checkpoint(&mut self, line: &[u8]) -> Result<(), AuditError> {
        write_line(&mut self.out, line)
    }

    /// The writer, for a caller that hands on what is written so far (a streamed
    /// HTTP answer takes the bytes of each page).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes the end line and hands back the writer (flushed).
    pub fn finish(mut self) -> Result<W, AuditError> {
        write_line(&mut self.out, &self.totals.end_line())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_line(out: &mut impl Write, line: &[u8]) -> Result<(), AuditError> {
    out.write_all(line)?;
    out.write_all(b"\n")?;
    Ok(())
}

//! Streaming verification of an export: one line in memory at a time, the chain's
//! state carried between them, so a file of any length is checked in constant space.
//!
//! Every line must be the canonical encoding of what it parses to, so no byte of a
//! file can change without changing a hash, a signature or a count, or failing to
//! parse. Tampering is reported with the sequence number of the record concerned.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::AuditError;
use super::export::{FORMAT, Header, Start};
use super::key::{Algorithm, KeyId, VerifyingKey};
use super::record::{Digest, Head, LogId, VERSION, parse_time, strict_hex};
use super::seal::{Checkpoint, Seal};
use crate::canonical;

/// Longest line read (a record with a very large group's membership change fits).
const MAX_LINE: u64 = 8 << 20;

/// Where the verified chain starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// At seq 0 from the log's genesis value: nothing before it can be missing.
    Genesis,
    /// At a signed checkpoint: records before `next` were pruned at `time`.
    Checkpoint { next: u64, time: DateTime<Utc> },
    /// At the first record, whose link backwards is taken on trust (a range export).
    Range,
}

/// What a file that verified contains, and how much of it seals vouch for.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub log: LogId,
    pub alg: Algorithm,
    pub key: KeyId,
    pub anchor: Anchor,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub seals: u64,
    /// The newest record a seal vouches for (and with it every record before it).
    pub sealed_through: Option<u64>,
    pub last_seal_time: Option<DateTime<Utc>>,
}

impl Report {
    /// The records no seal vouches for (`first..=last`): whoever could write the
    /// database could have changed or cut them.
    pub fn unsealed(&self) -> Option<(u64, u64)> {
        let last = self.last_seq?;
        let first = match self.sealed_through {
            Some(s) if s >= last => return None,
            Some(s) => s + 1,
            None => self.first_seq?,
        };
        Some((first, last))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "log {} · {} key {}", self.log, self.alg.name(), self.key)?;
        match self.anchor {
            Anchor::Genesis => writeln!(f, "starts at the log's beginning (genesis)")?,
            Anchor::Checkpoint { next, time } => writeln!(
                f,
                "starts at a signed checkpoint: records before seq {next} pruned ({})",
                super::record::format_time(time)
            )?,
            Anchor::Range => writeln!(
                f,
                "a range: the link of its first record to earlier ones is not checked"
            )?,
        }
        match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => writeln!(f, "{} records, seq {a}..={b}", self.records)?,
            _ => writeln!(f, "no records")?,
        }
        match (self.sealed_through, self.last_seal_time) {
            (Some(s), Some(t)) => writeln!(
                f,
                "{} seals; sealed through seq {s} (last seal {})",
                self.seals,
                super::record::format_time(t)
            )?,
            _ => writeln!(f, "no seals")?,
        }
        match self.unsealed() {
            Some((a, b)) => write!(
                f,
                "NOT SEALED: seq {a}..={b} (chained, but no seal vouches for them)"
            ),
            None => write!(f, "every record is covered by a seal"),
        }
    }
}

/// Checks an export read from `reader` with `key`. `Ok` means every line is intact,
/// every link holds and every seal verifies; the report says how far seals reach.
pub fn verify<R: BufRead>(reader: R, key: &VerifyingKey) -> Result<Report, AuditError> {
    verify_witnessed(reader, key, &[])
}

/// [`verify`], and each head in `witnessed` (seals copied outside the database, to
/// journald or a SIEM, or read from an earlier export) must be in the file with the
/// same hash: a log rolled back to an older seal and rewritten from there fails here,
/// although its own seals still verify.
pub fn verify_witnessed<R: BufRead>(
    reader: R,
    key: &VerifyingKey,
    witnessed: &[Head],
) -> Result<Report, AuditError> {
    let mut lines = Lines {
        reader,
        buf: Vec::new(),
        number: 0,
    };
    let Some((_, first)) = lines.next()? else {
        return Err(malformed(1, None, "the file is empty: no header line"));
    };
    let first = first.to_vec();
    let mut state = State::start(&first, key)?;
    state.witnessed = witnessed.iter().map(|h| (h.seq, h.hash)).collect();
    loop {
        match lines.next() {
            Ok(Some((number, line))) => state.line(number, line, key)?,
            Ok(None) => return state.finish(),
            // Name the last record read before the cut.
            Err(AuditError::Truncated { how, .. }) => {
                return Err(AuditError::Truncated {
                    after: state.head.map(|h| h.seq),
                    how,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// A seal from its stored line (canonical, as [`Seal::line`] writes it). The
/// signature is not checked here: see [`Seal::verify`].
pub fn parse_seal(line: &[u8]) -> Result<Seal, AuditError> {
    let f = Fields::parse(line, 1, None)?;
    if f.kind()? != "seal" {
        return Err(f.bad("not a seal"));
    }
    f.seal()
}

impl Seal {
    /// The seal is signed by `key` (and names it).
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        &self.key == key.id() && key.verify(&self.signed_message(), &self.sig)
    }
}

struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    /// The next line without its newline; `None` at the end of the file.
    fn next(&mut self) -> Result<Option<(u64, &[u8])>, AuditError> {
        self.buf.clear();
        let read = (&mut self.reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut self.buf)?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        match self.buf.last() {
            Some(b'\n') => {
                self.buf.pop();
            }
            _ if read as u64 > MAX_LINE => {
                return Err(malformed(
                    self.number,
                    None,
                    &format!("longer than {MAX_LINE} bytes"),
                ));
            }
            // The last line has no newline: the writer always ends one, so it was cut.
            _ => {
                return Err(AuditError::Truncated {
                    after: None,
                    how: format!("line {} ends without a newline", self.number),
                });
            }
        }
        Ok(Some((self.number, &self.buf)))
    }
}

fn malformed(line: u64, after: Option<u64>, reason: &str) -> AuditError {
    AuditError::Malformed {
        line,
        after,
        reason: reason.to_owned(),
    }
}

fn tampered(seq: u64, reason: String) -> AuditError {
    AuditError::Tampered { seq, reason }
}

struct State {
    header: Header,
    /// The seq and `prev` the next record must have; `None` before the first record
    /// of a range export, whose link is taken on trust.
    expect: Option<(u64, Digest)>,
    awaiting_checkpoint: bool,
    anchor: Anchor,
    head: Option<Head>,
    first_seq: Option<u64>,
    records: u64,
    seals: u64,
    sealed_through: Option<u64>,
    last_seal_time: Option<DateTime<Utc>>,
    ended: bool,
    /// Heads known from outside the file, by seq; removed as they are matched.
    witnessed: BTreeMap<u64, Digest>,
}

/// One parsed, canonical line: its fields, with where it is for error messages.
struct Fields {
    map: Map<String, Value>,
    line: u64,
    after: Option<u64>,
}

impl Fields {
    fn parse(bytes: &[u8], line: u64, after: Option<u64>) -> Result<Self, AuditError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| malformed(line, after, &format!("not JSON: {e}")))?;
        let mut again = Vec::with_capacity(bytes.len());
        canonical::write_value(&mut again, &value)
            .map_err(|e| malformed(line, after, &e.to_string()))?;
        if again != bytes {
            return Err(malformed(
                line,
                after,
                "not in canonical form (keys sorted, no spaces, minimal escapes)",
            ));
        }
        let Value::Object(map) = value else {
            return Err(malformed(line, after, "not a JSON object"));
        };
        if map.get("v") != Some(&Value::from(VERSION)) {
            return Err(malformed(
                line,
                after,
                &format!("not format version {VERSION} (\"v\")"),
            ));
        }
        Ok(Self { map, line, after })
    }

    fn kind(&self) -> Result<&str, AuditError> {
        self.str("type")
    }

    /// The line has exactly these fields (besides `type` and `v`).
    fn exactly(&self, names: &[&str]) -> Result<(), AuditError> {
        let known = |k: &str| k == "type" || k == "v" || names.contains(&k);
        match self.map.keys().find(|k| !known(k)) {
            Some(extra) => Err(self.bad(&format!("unexpected field {extra:?}"))),
            None if self.map.len() != names.len() + 2 => {
                let missing = names.iter().find(|n| !self.map.contains_key(**n));
                Err(self.bad(&format!("missing field {:?}", missing.unwrap_or(&"?"))))
            }
            None => Ok(()),
        }
    }

    fn bad(&self, reason: &str) -> AuditError {
        malformed(self.line, self.after, reason)
    }

    fn get(&self, name: &str) -> Result<&Value, AuditError> {
        self.map
            .get(name)
            .ok_or_else(|| self.bad(&format!("missing field {name:?}")))
    }

    fn str(&self, name: &str) -> Result<&str, AuditError> {
        self.get(name)?
            .as_str()
            .ok_or_else(|| self.bad(&format!("{name:?} is not a string")))
    }

    fn u64(&self, name: &str) -> Result<u64, AuditError> {
        self.get(name)?
            .as_u64()
            .ok_or_else(|| self.bad(&format!("{name:?} is not a whole number")))
    }

    fn opt_u64(&self, name: &str) -> Result<Option<u64>, AuditError> {
        match self.get(name)? {
            Value::Null => Ok(None),
            _ => self.u64(name).map(Some),
        }
    }

    fn digest(&self, name: &str) -> Result<Digest, AuditError> {
        Digest::from_hex(self.str(name)?)
            .ok_or_else(|| self.bad(&format!("{name:?} is not 64 lower-case hex digits")))
    }

    fn sig(&self) -> Result<Vec<u8>, AuditError> {
        strict_hex(self.str("sig")?).ok_or_else(|| self.bad("\"sig\" is not lower-case hex"))
    }

    fn time(&self) -> Result<DateTime<Utc>, AuditError> {
        parse_time(self.str("time")?).ok_or_else(|| {
            self.bad("\"time\" is not RFC 3339 UTC with six fractional digits and a Z")
        })
    }

    fn log(&self) -> Result<LogId, AuditError> {
        LogId::new(self.str("log")?).map_err(|e| self.bad(&e.to_string()))
    }

    /// The line as a seal (its fields exactly those of one).
    fn seal(&self) -> Result<Seal, AuditError> {
        self.exactly(&["head", "key", "log", "seq", "sig", "time"])?;
        Ok(Seal {
            log: self.log()?,
            head: Head {
                seq: self.u64("seq")?,
                hash: self.digest("head")?,
            },
            time: self.time()?,
            key: self.key_id()?,
            sig: self.sig()?,
        })
    }

    fn key_id(&self) -> Result<KeyId, AuditError> {
        let id = self.str("key")?;
        if id.len() != 32 || strict_hex(id).is_none() {
            return Err(self.bad("\"key\" is not a key id (32 lower-case hex digits)"));
        }
        Ok(KeyId::from_text(id))
    }
}

impl State {
    fn start(line: &[u8], key: &VerifyingKey) -> Result<Self, AuditError> {
        let f = Fields::parse(line, 1, None)?;
        if f.kind()? != "header" || f.str("format").ok() != Some(FORMAT) {
            return Err(f.bad("not a scim-bridge audit export (no header line)"));
        }
        f.exactly(&["alg", "format", "key", "log", "start"])?;
        let alg = Algorithm::parse(f.str("alg")?)
            .ok_or_else(|| f.bad("unknown signature algorithm \"alg\""))?;
        let start = Start::parse(f.str("start")?)
            .ok_or_else(|| f.bad("\"start\" is not genesis, checkpoint or range"))?;
        let header = Header {
            log: f.log()?,
            alg,
            key: f.key_id()?,
            start,
        };
        if header.alg != key.algorithm() || &header.key != key.id() {
            return Err(AuditError::WrongKey {
                seq: None,
                file: format!("{} {}", header.alg.name(), header.key),
                given: format!("{} {}", key.algorithm().name(), key.id()),
            });
        }
        let (expect, anchor) = match start {
            Start::Genesis => (Some((0, header.log.genesis())), Anchor::Genesis),
            Start::Checkpoint | Start::Range => (None, Anchor::Range),
        };
        Ok(Self {
            header,
            expect,
            awaiting_checkpoint: start == Start::Checkpoint,
            anchor,
            head: None,
            first_seq: None,
            records: 0,
            seals: 0,
            sealed_through: None,
            last_seal_time: None,
            ended: false,
            witnessed: BTreeMap::new(),
        })
    }

    fn line(&mut self, number: u64, line: &[u8], key: &VerifyingKey) -> Result<(), AuditError> {
        let after = self.head.map(|h| h.seq);
        if self.ended {
            return Err(malformed(number, after, "a line after the end line"));
        }
        let f = Fields::parse(line, number, after)?;
        let kind = f.kind()?.to_owned();
        if self.awaiting_checkpoint && kind != "checkpoint" {
            return Err(f.bad("the header announces a checkpoint, but this line is not one"));
        }
        match kind.as_str() {
            "record" => self.record(&f, line),
            "seal" => self.seal(&f, key),
            "checkpoint" => self.checkpoint(&f, key),
            "end" => self.end(&f),
            "header" => Err(f.bad("a second header")),
            other => Err(f.bad(&format!("unknown line type {other:?}"))),
        }
    }

    fn record(&mut self, f: &Fields, line: &[u8]) -> Result<(), AuditError> {
        f.exactly(&["body", "kind", "prev", "seq", "time"])?;
        let seq = f.u64("seq")?;
        let prev = f.digest("prev")?;
        f.time()?;
        if !f.get("body")?.is_object() {
            return Err(f.bad("\"body\" is not an object"));
        }
        if f.str("kind")?.is_empty() {
            return Err(f.bad("\"kind\" is empty"));
        }
        if let Some((want_seq, want_prev)) = self.expect {
            if seq != want_seq {
                return Err(tampered(seq, self.out_of_place(seq, want_seq)));
            }
            if prev != want_prev {
                let why = match (self.head, self.anchor) {
                    (Some(h), _) => format!(
                        "its prev is not the hash of seq {}: seq {} was altered, or seq {seq} was inserted or moved here",
                        h.seq, h.seq
                    ),
                    (None, Anchor::Checkpoint { .. }) => {
                        "its prev does not match the checkpoint: altered, or not the record the checkpoint names".to_owned()
                    }
                    (None, _) => {
                        "its prev is not the log's genesis value: altered, or the file is from another log".to_owned()
                    }
                };
                return Err(tampered(seq, why));
            }
        }
        let hash = Digest::of(line);
        self.head = Some(Head { seq, hash });
        self.first_seq.get_or_insert(seq);
        self.records += 1;
        let next = seq
            .checked_add(1)
            .ok_or_else(|| tampered(seq, "no record can follow seq u64::MAX".into()))?;
        self.expect = Some((next, hash));
        if let Some(want) = self.witnessed.remove(&seq)
            && want != hash
        {
            return Err(tampered(
                seq,
                format!(
                    "its hash is not the witnessed head {want}: the log was rewritten from an earlier seal"
                ),
            ));
        }
        Ok(())
    }

    fn out_of_place(&self, seq: u64, want: u64) -> String {
        if seq > want {
            let gap = if seq - want == 1 {
                format!("seq {want} is missing")
            } else {
                format!("seq {want}..={} are missing", seq - 1)
            };
            format!("expected seq {want} here: {gap} (deleted), or records were reordered")
        } else {
            format!(
                "expected seq {want} here: seq {seq} comes again or out of order (inserted, duplicated or reordered)"
            )
        }
    }

    fn seal(&mut self, f: &Fields, key: &VerifyingKey) -> Result<(), AuditError> {
        let seal = f.seal()?;
        let seq = seal.head.seq;
        self.check_signed(seq, &seal.log, &seal.key, key)?;
        if !key.verify(&seal.signed_message(), &seal.sig) {
            return Err(tampered(
                seq,
                format!(
                    "the seal's signature does not verify with key {}: the seal was forged or altered",
                    key.id()
                ),
            ));
        }
        let Some(head) = self.head else {
            return Err(tampered(
                seq,
                format!("a seal of seq {seq} comes before any record: records were removed"),
            ));
        };
        if seq != head.seq {
            return Err(tampered(
                seq,
                format!(
                    "a seal of seq {seq} follows seq {}: records were removed, inserted or reordered",
                    head.seq
                ),
            ));
        }
        if seal.head.hash != head.hash {
            let from = match self.sealed_through {
                Some(s) => s + 1,
                None => self.first_seq.unwrap_or(seq),
            };
            return Err(tampered(
                seq,
                format!(
                    "the chain up to seq {seq} does not match its seal: a record in seq {from}..={seq} was altered, inserted or removed"
                ),
            ));
        }
        self.seals += 1;
        self.sealed_through = Some(seq);
        self.last_seal_time = Some(seal.time);
        Ok(())
    }

    fn checkpoint(&mut self, f: &Fields, key: &VerifyingKey) -> Result<(), AuditError> {
        if !self.awaiting_checkpoint {
            return Err(f.bad("a checkpoint may only come right after a header that announces it"));
        }
        f.exactly(&["key", "log", "next", "prev", "sig", "time"])?;
        let checkpoint = Checkpoint {
            log: f.log()?,
            next: f.u64("next")?,
            prev: f.digest("prev")?,
            time: f.time()?,
            key: f.key_id()?,
            sig: f.sig()?,
        };
        if checkpoint.next == 0 {
            return Err(f.bad("a checkpoint's \"next\" is at least 1"));
        }
        let next = checkpoint.next;
        self.check_signed(next, &checkpoint.log, &checkpoint.key, key)?;
        if !key.verify(&checkpoint.signed_message(), &checkpoint.sig) {
            return Err(tampered(
                next,
                format!(
                    "the checkpoint before seq {next} does not verify with key {}: forged or altered",
                    key.id()
                ),
            ));
        }
        self.awaiting_checkpoint = false;
        self.expect = Some((next, checkpoint.prev));
        self.anchor = Anchor::Checkpoint {
            next,
            time: checkpoint.time,
        };
        Ok(())
    }

    /// The log and key a seal or checkpoint names are the file's and the one given.
    fn check_signed(
        &self,
        seq: u64,
        log: &LogId,
        file_key: &KeyId,
        key: &VerifyingKey,
    ) -> Result<(), AuditError> {
        if log != &self.header.log {
            return Err(tampered(
                seq,
                format!(
                    "signed for log {log}, but the file is log {}",
                    self.header.log
                ),
            ));
        }
        if file_key != key.id() {
            return Err(AuditError::WrongKey {
                seq: Some(seq),
                file: file_key.to_string(),
                given: key.id().to_string(),
            });
        }
        Ok(())
    }

    fn end(&mut self, f: &Fields) -> Result<(), AuditError> {
        f.exactly(&["last_seq", "records", "seals"])?;
        let last_seq = f.opt_u64("last_seq")?;
        let ours = self.head.map(|h| h.seq);
        if last_seq != ours {
            let name = |s: Option<u64>| s.map_or("no record".to_owned(), |s| format!("seq {s}"));
            return Err(tampered(
                last_seq.or(ours).unwrap_or(0),
                format!(
                    "the end line says the file ends at {}, but it ends at {}: records removed or added at the end",
                    name(last_seq),
                    name(ours)
                ),
            ));
        }
        let (records, seals) = (f.u64("records")?, f.u64("seals")?);
        if records != self.records || seals != self.seals {
            return Err(tampered(
                ours.unwrap_or(0),
                format!(
                    "the end line counts {records} records and {seals} seals, the file has {} and {}: lines removed or added",
                    self.records, self.seals
                ),
            ));
        }
        self.ended = true;
        Ok(())
    }

    fn finish(self) -> Result<Report, AuditError> {
        let last = self.head.map(|h| h.seq);
        if let Some((&seq, _)) = self
            .witnessed
            .iter()
            .find(|(seq, _)| last.is_none_or(|l| **seq > l))
        {
            let end = last.map_or("before any record".to_owned(), |l| format!("at seq {l}"));
            return Err(tampered(
                seq,
                format!(
                    "a witnessed head, but the file ends {end}: the log was cut back or the export stops short"
                ),
            ));
        }
        if !self.ended {
            return Err(AuditError::Truncated {
                after: self.head.map(|h| h.seq),
                how: "the file has no end line".into(),
            });
        }
        Ok(Report {
            log: self.header.log,
            alg: self.header.alg,
            key: self.header.key,
            anchor: self.anchor,
            records: self.records,
            first_seq: self.first_seq,
            last_seq: self.head.map(|h| h.seq),
            seals: self.seals,
            sealed_through: self.sealed_through,
            last_seal_time: self.last_seal_time,
        })
    }
}

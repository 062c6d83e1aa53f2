//! The export of a range of the chain (docs/provisioning-log.md §4, §5), read page
//! by page from the store and handed on as chunks, so memory stays constant however
//! long the log. The head is sealed first, so a full export is covered to its last
//! line; a range runs on to the first seal at or after its end, so its tail is
//! covered too.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::{Journal, JournalError};
use crate::audit::{Exporter, Header, Start};

/// Records read per page.
const PAGE: usize = 1000;

/// One end of an export range: a seq, or a time (records written at or after it
/// for the start, before it for the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Seq(u64),
    Time(DateTime<Utc>),
}

impl Bound {
    /// A seq (digits), an RFC 3339 time, or a date (`2026-12-01`, midnight UTC).
    pub fn parse(name: &str, text: &str) -> Result<Self, JournalError> {
        let text = text.trim();
        if let Ok(seq) = text.parse::<u64>() {
            return Ok(Self::Seq(seq));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(Self::Time(t.with_timezone(&Utc)));
        }
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Self::Time(t.and_utc()))
            .ok_or_else(|| {
                JournalError::Invalid(format!(
                    "{name}: expected a seq, an RFC 3339 time or a date (2026-12-01), found {text:?}"
                ))
            })
    }
}

/// What to export; both ends open: all retained history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    pub from: Option<Bound>,
    pub to: Option<Bound>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exported {
    pub records: u64,
    pub seals: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
}

/// A chunk of the file, or why it stopped.
pub type Chunk = Result<Vec<u8>, std::io::Error>;

fn gone() -> JournalError {
    JournalError::Audit(crate::audit::AuditError::Io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the export's reader went away",
    )))
}

/// Far above any seq: an open upper end for range reads (SQL BIGINT holds it).
const OPEN_END: u64 = i64::MAX as u64;

impl Journal {
    /// Writes the export of `range` to `out`, chunk by chunk.
    pub async fn export(
        &self,
        range: Range,
        out: &mpsc::Sender<Chunk>,
    ) -> Result<Exported, JournalError> {
        let key = self.key.as_ref().ok_or_else(|| {
            JournalError::NoKey(
                "an export needs the audit signing key, which is in the vault: configure [vault] and run `scim-bridge vault init`"
                    .into(),
            )
        })?;
        self.chain_and_seal().await?;
        let store = self.store.as_ref();
        let head = store.audit_head(&self.log).await?.head();
        let checkpoint = store.latest_checkpoint().await?;
        let floor = checkpoint.as_ref().map_or(0, |c| c.next);
        let from = match range.from {
            None => Some(floor),
            Some(Bound::Seq(s)) => Some(s.max(floor)),
            Some(Bound::Time(t)) => store.first_seq_since(t).await?.map(|s| s.max(floor)),
        };
        let to = match range.to {
            None => head.map(|h| h.seq),
            Some(Bound::Seq(s)) => Some(s),
            Some(Bound::Time(t)) => store.last_seq_before(t).await?,
        };
        if let (Some(a), Some(b)) = (from, to)
            && b < a
            && range.to.is_some()
            && range.from.is_some()
        {
            return Err(JournalError::Invalid(format!(
                "the range ends (seq {b}) before it starts (seq {a})"
            )));
        }
        // Run on to the first seal at or after the end, so the tail is covered.
        let end = match to {
            Some(t) => {
                let sealed = store.seals_between(t, OPEN_END).await?;
                let covered = sealed.first().map_or(t, |s| s.seq);
                Some(head.map_or(covered, |h| covered.min(h.seq)))
            }
            None => None,
        };
        let start = match (from, &checkpoint) {
            (Some(f), Some(c)) if f == c.next => Start::Checkpoint,
            (Some(0), None) => Start::Genesis,
            _ => Start::Range,
        };
        let header = Header {
            log: self.log.clone(),
            alg: key.algorithm(),
            key: key.id().clone(),
            start,
        };
        let mut x = Exporter::new(Vec::with_capacity(64 << 10), &header)?;
        if start == Start::Checkpoint
            && let Some(c) = &checkpoint
        {
            x.stored_checkpoint(c.line.as_bytes())?;
        }
        let mut done = Exported::default();
        if let (Some(mut cursor), Some(end)) = (from, end) {
            while cursor <= end {
                let mut lines = store.chained_lines(cursor, PAGE).await?;
                lines.retain(|l| l.seq <= end);
                let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
                    break;
                };
                let (first, last) = (first.seq, last.seq);
                let seals = store.seals_between(first, last).await?;
                let mut seals = seals.iter().peekable();
                for l in &lines {
                    x.stored_record(l.seq, l.line.as_bytes())?;
                    while let Some(s) = seals.next_if(|s| s.seq <= l.seq) {
                        if s.seq == l.seq {
                            x.stored_seal(s.line.as_bytes())?;
                            done.seals += 1;
                        }
                    }
                }
                done.records += lines.len() as u64;
                done.first_seq.get_or_insert(first);
                done.last_seq = Some(last);
                let chunk = std::mem::take(x.get_mut());
                out.send(Ok(chunk)).await.map_err(|_| gone())?;
                cursor = last + 1;
            }
        }
        let tail = x.finish()?;
        out.send(Ok(tail)).await.map_err(|_| gone())?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_seqs_times_or_dates() {
        assert_eq!(Bound::parse("from", "42").unwrap(), Bound::Seq(42));
        let t = Bound::parse("to", "2026-03-04T05:06:07Z").unwrap();
        assert_eq!(
            t,
            Bound::Time(DateTime::from_timestamp(1_772_600_767, 0).unwrap())
        );
        assert!(matches!(
            Bound::parse("to", "2026-03-04").unwrap(),
            Bound::Time(_)
        ));
        let e = Bound::parse("from", "yesterday").unwrap_err().to_string();
        assert!(e.starts_with("from: expected a seq"), "{e}");
    }
}

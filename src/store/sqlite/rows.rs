//! Row ↔ value conversions shared by the reader and the writer.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Row;

use crate::store::{StoreError, StoredResource, StoredText};

/// Columns [`resource`] expects, in order.
pub const RESOURCE_COLUMNS: &str = "seq, provider, kind, id, version, created, last_modified, doc";

/// Timestamps are stored as RFC 3339 UTC with milliseconds, which sort as text.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a stored timestamp.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Database(format!("bad stored timestamp {s:?}: {e}")))
}

pub use crate::store::model::parse_kind;

/// A raw resource row; converted outside the SQLite callback so errors stay typed.
pub struct RawResource {
    seq: i64,
    provider: String,
    kind: String,
    id: String,
    version: i64,
    created: String,
    last_modified: String,
    doc: String,
}

/// Reads [`RESOURCE_COLUMNS`].
pub fn resource(r: &Row<'_>) -> rusqlite::Result<RawResource> {
    Ok(RawResource {
        seq: r.get(0)?,
        provider: r.get(1)?,
        kind: r.get(2)?,
        id: r.get(3)?,
        version: r.get(4)?,
        created: r.get(5)?,
        last_modified: r.get(6)?,
        doc: r.get(7)?,
    })
}

impl RawResource {
    /// The typed resource.
    pub fn into_resource(self) -> Result<StoredResource, StoreError> {
        self.into_text()?.parse()
    }

    /// The typed resource, its document left as stored.
    pub fn into_text(self) -> Result<StoredText, StoreError> {
        Ok(StoredText {
            seq: self.seq,
            provider: self.provider,
            kind: parse_kind(&self.kind)?,
            id: self.id,
            version: self.version,
            created: parse_time(&self.created)?,
            last_modified: parse_time(&self.last_modified)?,
            doc: self.doc,
        })
    }
}

//! Row ↔ value conversions and the small query helpers every PostgreSQL module uses.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::scim::ResourceKind;
use crate::store::model::parse_kind;
use crate::store::{StoreError, StoredResource, StoredText};

/// Columns [`resource`] expects, in order.
pub const RESOURCE_COLUMNS: &str = "seq, provider, kind, id, version, created, last_modified, doc";

/// Query parameters, as tokio-postgres takes them.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Why one attempt at an operation failed: transient failures (serialization
/// failures, deadlocks between instances) are retried with a fresh transaction.
#[derive(Debug)]
pub enum Failed {
    Transient(String),
    Store(StoreError),
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::Store(e)
    }
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(c)
                if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED =>
            {
                Failed::Transient(e.to_string())
            }
            _ => Failed::Store(db_error(&e)),
        }
    }
}

impl From<Failed> for StoreError {
    fn from(f: Failed) -> Self {
        match f {
            Failed::Transient(e) => StoreError::Database(e),
            Failed::Store(e) => e,
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        db_error(&e)
    }
}

/// The server's message (with its detail) when there is one: tokio-postgres prints
/// only "db error" for server errors otherwise.
pub fn db_error(e: &tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Database(match db.detail() {
            Some(d) => format!("{}: {} ({d})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        }),
        // The cause is in the source chain ("error performing TLS handshake" alone
        // does not say the certificate is untrusted).
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            StoreError::Database(text)
        }
    }
}

/// The unique constraint a failed statement ran into, if that is why it failed.
pub fn unique_violation(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or_default())
}

/// PostgreSQL keeps microseconds, SQLite's text timestamps milliseconds: truncate on
/// write so both engines give back the same instant.
pub fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Runs a prepared (and cached per connection) query.
pub async fn query(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let st = c.prepare_cached(sql).await?;
    c.query(&st, params).await
}

/// Runs a prepared (and cached per connection) query returning at most one row.
pub async fn query_opt(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let st = c.prepare_cached(sql).await?;
    c.query_opt(&st, params).await
}

/// Runs a prepared (and cached per connection) query returning exactly one row.
pub async fn query_one(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Row, tokio_postgres::Error> {
    let st = c.prepare_cached(sql).await?;
    c.query_one(&st, params).await
}

/// Runs a prepared (and cached per connection) statement; returns the rows it touched.
pub async fn execute(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let st = c.prepare_cached(sql).await?;
    c.execute(&st, params).await
}

/// Reads [`RESOURCE_COLUMNS`].
pub fn resource(r: &Row) -> Result<StoredResource, StoreError> {
    resource_text(r)?.parse()
}

/// [`resource`] with the document left as stored.
pub fn resource_text(r: &Row) -> Result<StoredText, StoreError> {
    let kind: String = r.try_get(2)?;
    Ok(StoredText {
        seq: r.try_get(0)?,
        provider: r.try_get(1)?,
        kind: parse_kind(&kind)?,
        id: r.try_get(3)?,
        version: r.try_get(4)?,
        created: r.try_get(5)?,
        last_modified: r.try_get(6)?,
        doc: r.try_get(7)?,
    })
}

/// A stored resource kind.
pub fn kind(r: &Row, i: usize) -> Result<ResourceKind, StoreError> {
    let k: String = r.try_get(i)?;
    parse_kind(&k)
}

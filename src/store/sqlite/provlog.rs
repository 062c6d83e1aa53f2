//! The provisioning log in SQLite's SQL (the queries are built once, in
//! `store::provisioning_log`).

use async_trait::async_trait;
use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OptionalExtension, ToSql, params_from_iter};

use super::SqliteStore;
use super::chain::Seqs;
use crate::provlog::{LogEntry, LogQuery, LogRow};
use crate::store::provisioning_log::{INSERT_COLUMNS, Param, entry, insert_values, query_sql};
use crate::store::{ProvisioningLog, StoreError};

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Param::Text(v) => v.to_sql(),
            Param::Int(v) => v.to_sql(),
        }
    }
}

/// Inserts one record on the writer's connection (inside whatever job runs there);
/// answers its id.
pub(super) fn insert(c: &Connection, row: &LogRow) -> Result<i64, StoreError> {
    c.prepare_cached(&format!(
        "INSERT INTO audit_log ({INSERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?
    .execute(params_from_iter(insert_values(row)))?;
    Ok(c.last_insert_rowid())
}

/// The columns read back. A record's audit seq is not stored in SQLite: it follows
/// from the row's id and the chain's marks (`chain.rs`).
pub(super) const ENTRY_COLUMNS: &str = "id, at, kind, body";

type Read = (i64, i64, String, String);

fn read_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Read> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_entry(
    c: &Connection,
    seqs: &Seqs,
    (id, at, kind, body): Read,
) -> Result<LogEntry, StoreError> {
    let seq = seqs.of(c, id)?.map(crate::store::audit_chain::sql_seq);
    entry(id, seq, at, kind, &body)
}

#[async_trait]
impl ProvisioningLog for SqliteStore {
    async fn log_query(&self, q: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        let (filter, params) = query_sql(q, |n| format!("?{n}"));
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log{filter}");
        self.read(move |c| {
            let rows = c
                .prepare_cached(&sql)?
                .query_map(params_from_iter(params), read_entry)?
                .collect::<Result<Vec<_>, _>>()?;
            let seqs = Seqs::new(c)?;
            rows.into_iter().map(|r| to_entry(c, &seqs, r)).collect()
        })
        .await
    }

    async fn log_entry(&self, id: i64) -> Result<Option<LogEntry>, StoreError> {
        self.read(move |c| {
            let row = c
                .prepare_cached(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE id = ?1"
                ))?
                .query_row([id], read_entry)
                .optional()?;
            let seqs = Seqs::new(c)?;
            row.map(|r| to_entry(c, &seqs, r)).transpose()
        })
        .await
    }

    async fn log_append(&self, row: LogRow) -> Result<i64, StoreError> {
        self.exec(move |c| insert(c, &row)).await
    }
}

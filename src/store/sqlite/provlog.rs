//! The provisioning log in SQLite's SQL (the queries are built once, in
//! `store::provisioning_log`).

use async_trait::async_trait;
use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OptionalExtension, ToSql, params_from_iter};

use super::SqliteStore;
use crate::provlog::{LogEntry, LogQuery, LogRow};
use crate::store::provisioning_log::{
    ENTRY_COLUMNS, INSERT_COLUMNS, Param, entry, insert_values, query_sql,
};
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

fn read_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Option<i64>, i64, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

#[async_trait]
impl ProvisioningLog for SqliteStore {
    async fn log_query(&self, q: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        let (filter, params) = query_sql(q, |n| format!("?{n}"));
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log{filter}");
        self.read(move |c| {
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(params_from_iter(params), read_entry)?;
            let mut out = Vec::new();
            for r in rows {
                let (id, seq, at, kind, body) = r?;
                out.push(entry(id, seq, at, kind, &body)?);
            }
            Ok(out)
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
            row.map(|(id, seq, at, kind, body)| entry(id, seq, at, kind, &body))
                .transpose()
        })
        .await
    }

    async fn log_append(&self, row: LogRow) -> Result<i64, StoreError> {
        self.exec(move |c| insert(c, &row)).await
    }
}

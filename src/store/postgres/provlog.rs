//! The provisioning log in PostgreSQL's SQL (the queries are built once, in
//! `store::provisioning_log`).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::PgStore;
use super::rows::{Failed, query_one, query_opt};
use crate::provlog::{LogEntry, LogQuery, LogRow};
use crate::store::provisioning_log::{
    ENTRY_COLUMNS, INSERT_COLUMNS, Param, entry, insert_values, query_sql,
};
use crate::store::{ProvisioningLog, StoreError};

/// The values as tokio-postgres binds them.
pub(super) fn bound(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Text(v) => v as &(dyn ToSql + Sync),
            Param::Int(v) => v as &(dyn ToSql + Sync),
        })
        .collect()
}

/// Inserts one record in the caller's transaction; answers its id.
pub(super) async fn insert(c: &impl GenericClient, row: &LogRow) -> Result<i64, Failed> {
    let values = insert_values(row);
    let r = query_one(
        c,
        &format!(
            "INSERT INTO audit_log ({INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"
        ),
        &bound(&values),
    )
    .await?;
    Ok(r.try_get(0).map_err(StoreError::from)?)
}

fn read_entry(r: &tokio_postgres::Row) -> Result<LogEntry, StoreError> {
    let body: String = r.try_get(4)?;
    entry(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        &body,
    )
}

#[async_trait]
impl ProvisioningLog for PgStore {
    async fn log_query(&self, q: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        let (filter, params) = query_sql(q, |n| format!("${n}"));
        let c = self.client().await?;
        // Not prepared-and-cached: the filters vary, and each shape would stay
        // prepared on the connection for good.
        let rows = c
            .query(
                &format!("SELECT {ENTRY_COLUMNS} FROM audit_log{filter}"),
                &bound(&params),
            )
            .await?;
        rows.iter().map(read_entry).collect()
    }

    async fn log_entry(&self, id: i64) -> Result<Option<LogEntry>, StoreError> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            &format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE id = $1"),
            &[&id],
        )
        .await?;
        row.as_ref().map(read_entry).transpose()
    }

    async fn log_append(&self, row: LogRow) -> Result<i64, StoreError> {
        let c = self.writer().await?;
        Ok(insert(&c, &row).await?)
    }
}

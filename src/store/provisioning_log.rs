//! The provisioning log's rows: queried by person, target, time, action and
//! outcome, newest first. Change records are written by [`Resources::apply`]
//! (a [`Mutation`] carrying a draft) and action records by
//! [`DeliveryQueue::finish_delivery_recorded`], each in the transaction of what it
//! records; this trait reads them and writes the records that stand alone.
//!
//! [`Resources::apply`]: super::Resources::apply
//! [`Mutation`]: super::Mutation
//! [`DeliveryQueue::finish_delivery_recorded`]: super::DeliveryQueue::finish_delivery_recorded

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::provlog::{LogEntry, LogQuery, LogRow};
use crate::store::StoreError;

/// The provisioning log's rows.
#[async_trait]
pub trait ProvisioningLog: Send + Sync {
    /// Records matching `q`, newest first, at most `q.limit`.
    async fn log_query(&self, q: &LogQuery) -> Result<Vec<LogEntry>, StoreError>;

    /// One record by id.
    async fn log_entry(&self, id: i64) -> Result<Option<LogEntry>, StoreError>;

    /// Writes a record of its own (not part of a change or a delivery); answers its id.
    async fn log_append(&self, row: LogRow) -> Result<i64, StoreError>;

    // Pruning is the chain's: `AuditChain::prune_chained` deletes only rows a signed
    // checkpoint carries the chain past (docs/provisioning-log.md §6).
}

/// The columns an INSERT names, in the order [`insert_values`] gives them.
pub(crate) const INSERT_COLUMNS: &str = "at, kind, body, provider, resource_kind, resource_id, user_name_key, display_name, target, action, outcome, change_seq, change_seq_last, request_id";

/// The columns a query reads, in the order [`entry`] takes them.
pub(crate) const ENTRY_COLUMNS: &str = "id, seq, at, kind, body";

/// A bound value of a log query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(Option<String>),
    Int(Option<i64>),
}

/// A record's time as stored: microseconds since the Unix epoch.
pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The stored time read back.
pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// `row`'s values for [`INSERT_COLUMNS`].
pub(crate) fn insert_values(row: &LogRow) -> Vec<Param> {
    let text = |v: &Option<String>| Param::Text(v.clone());
    vec![
        Param::Int(Some(micros(row.at))),
        Param::Text(Some(row.kind.to_owned())),
        Param::Text(Some(row.body.clone())),
        text(&row.provider),
        text(&row.resource_kind),
        text(&row.resource_id),
        text(&row.user_name_key),
        text(&row.display_name),
        text(&row.target),
        Param::Text(Some(row.action.clone())),
        Param::Text(Some(row.outcome.clone())),
        Param::Int(row.change_seq),
        Param::Int(row.change_seq_last),
        text(&row.request_id),
    ]
}

/// The SQL of `q` (after `SELECT {ENTRY_COLUMNS} FROM audit_log`) and its values,
/// with placeholders spelled by `ph` (`?1` on SQLite, `$1` on PostgreSQL). Written
/// once so both engines answer a query alike.
pub(crate) fn query_sql(q: &LogQuery, ph: fn(usize) -> String) -> (String, Vec<Param>) {
    let mut params: Vec<Param> = Vec::new();
    let mut bind = |p: Param| {
        params.push(p);
        ph(params.len())
    };
    let mut wheres: Vec<String> = Vec::new();
    if let Some(s) = &q.subject {
        let mut any = Vec::new();
        for (column, values) in [
            ("resource_id", &s.ids),
            ("user_name_key", &s.user_name_keys),
            ("display_name", &s.display_names),
        ] {
            if values.is_empty() {
                continue;
            }
            let list: Vec<String> = values
                .iter()
                .map(|v| bind(Param::Text(Some(v.clone()))))
                .collect();
            any.push(format!("{column} IN ({})", list.join(", ")));
        }
        // A subject that resolved to nothing matches nothing, not everything.
        wheres.push(if any.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!("({})", any.join(" OR "))
        });
    }
    for (column, value) in [
        ("provider", &q.provider),
        ("resource_kind", &q.resource_kind),
        ("target", &q.target),
        ("kind", &q.kind),
        ("action", &q.action),
        ("outcome", &q.outcome),
    ] {
        if let Some(v) = value {
            wheres.push(format!("{column} = {}", bind(Param::Text(Some(v.clone())))));
        }
    }
    if let Some(t) = q.since {
        wheres.push(format!("at >= {}", bind(Param::Int(Some(micros(t))))));
    }
    if let Some(t) = q.until {
        wheres.push(format!("at < {}", bind(Param::Int(Some(micros(t))))));
    }
    if let Some(id) = q.before_id {
        wheres.push(format!("id < {}", bind(Param::Int(Some(id)))));
    }
    if let Some(seq) = q.change_seq {
        let a = bind(Param::Int(Some(seq)));
        let b = bind(Param::Int(Some(seq)));
        wheres.push(format!("change_seq <= {a} AND change_seq_last >= {b}"));
    }
    let mut sql = String::new();
    if !wheres.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&wheres.join(" AND "));
    }
    let limit = q.limit.clamp(1, crate::provlog::MAX_LIMIT);
    sql.push_str(&format!(
        " ORDER BY id DESC LIMIT {}",
        bind(Param::Int(Some(i64::try_from(limit).unwrap_or(100))))
    ));
    (sql, params)
}

/// A row read back: `(id, seq, at, kind, body)`.
pub(crate) fn entry(
    id: i64,
    seq: Option<i64>,
    at: i64,
    kind: String,
    body: &str,
) -> Result<LogEntry, StoreError> {
    Ok(LogEntry {
        id,
        seq,
        at: from_micros(at),
        kind,
        body: serde_json::from_str(body)
            .map_err(|e| StoreError::Database(format!("provisioning log record {id}: {e}")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provlog::Subject;

    fn sqlite(n: usize) -> String {
        format!("?{n}")
    }

    #[test]
    fn a_person_query_looks_in_each_name_column_and_pages_by_id() {
        let q = LogQuery {
            subject: Some(Subject {
                ids: vec!["u1".into()],
                user_name_keys: vec!["ann".into()],
                display_names: vec![],
            }),
            target: Some("imanage".into()),
            before_id: Some(90),
            limit: 20,
            ..LogQuery::default()
        };
        let (sql, params) = query_sql(&q, sqlite);
        assert_eq!(
            sql,
            " WHERE (resource_id IN (?1) OR user_name_key IN (?2)) AND target = ?3 AND id < ?4 ORDER BY id DESC LIMIT ?5"
        );
        assert_eq!(params.len(), 5);
        assert_eq!(params[4], Param::Int(Some(20)));
    }

    #[test]
    fn a_subject_that_resolved_to_nobody_matches_nothing() {
        let q = LogQuery {
            subject: Some(Subject::default()),
            ..LogQuery::default()
        };
        assert!(query_sql(&q, sqlite).0.contains("1 = 0"));
    }
}

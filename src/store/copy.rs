//! `scim-bridge migrate --from sqlite://… --to postgres://…`: copies every table of an
//! SQLite database into a PostgreSQL one in one transaction, then checks the counts.
//! Both schemas are brought to this binary's version first, so the tables match
//! column for column; only the types differ (text timestamps, integer booleans).

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::OpenFlags;
use rusqlite::types::ValueRef;
use tokio_postgres::types::ToSql;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{Lifecycle, StoreError};

#[derive(Clone, Copy)]
enum Col {
    Int,
    Int4,
    Text,
    Blob,
    Time,
}

use Col::{Blob, Int, Int4, Text, Time};

type Table = (
    &'static str,
    &'static [(&'static str, Col)],
    Option<&'static str>,
);

/// Every table, in an order that keeps references valid, with its identity column.
/// `delivery_queue` is copied without its leases: they name instances of the old
/// deployment, and the new ones claim the rows afresh. `console_sessions` is left
/// out: a session is a sign-in, cheap to make again, and the new deployment starts
/// with everyone signed out.
const TABLES: &[Table] = &[
    (
        "resources",
        &[
            ("seq", Int),
            ("provider", Text),
            ("kind", Text),
            ("id", Text),
            ("version", Int),
            ("created", Time),
            ("last_modified", Time),
            ("user_name_ci", Text),
            ("user_name_dup", Int),
            ("external_id", Text),
            ("display_name_ci", Text),
            ("doc", Text),
        ],
        Some("seq"),
    ),
    (
        "resource_emails",
        &[("value_ci", Text), ("resource_seq", Int)],
        None,
    ),
    (
        "group_members",
        &[
            ("group_seq", Int),
            ("member_id", Text),
            ("member_type", Text),
            ("display", Text),
            ("pos", Int),
        ],
        None,
    ),
    (
        "change_events",
        &[
            ("seq", Int),
            ("provider", Text),
            ("kind", Text),
            ("resource_id", Text),
            ("op", Text),
            ("version", Int),
            ("at", Time),
            ("detail", Text),
            ("request_id", Text),
        ],
        Some("seq"),
    ),
    (
        "api_tokens",
        &[
            ("id", Text),
            ("provider", Text),
            ("scope", Text),
            ("secret_hash", Blob),
            ("created", Time),
            ("expires", Time),
            ("last_used", Time),
            ("revoked", Time),
        ],
        None,
    ),
    (
        "vault",
        &[
            ("id", Int4),
            ("header", Text),
            ("created", Time),
            ("rotated", Time),
        ],
        None,
    ),
    (
        "secrets",
        &[
            ("name", Text),
            ("sealed", Blob),
            ("created", Time),
            ("updated", Time),
        ],
        None,
    ),
    (
        "delivery_routes",
        &[("target", Text), ("provider", Text)],
        None,
    ),
    (
        "delivery_queue",
        &[
            ("target", Text),
            ("provider", Text),
            ("kind", Text),
            ("resource_id", Text),
            ("from_seq", Int),
            ("last_seq", Int),
            ("queued_at", Time),
            ("attempts", Int4),
            ("next_at", Time),
            ("last_error", Text),
            ("resync", Int),
            ("paused", Int4),
        ],
        None,
    ),
    (
        "dead_letters",
        &[
            ("id", Int),
            ("target", Text),
            ("provider", Text),
            ("kind", Text),
            ("resource_id", Text),
            ("from_seq", Int),
            ("last_seq", Int),
            ("queued_at", Time),
            ("attempts", Int4),
            ("error", Text),
            ("at", Time),
        ],
        Some("id"),
    ),
    (
        "target_ids",
        &[
            ("target", Text),
            ("provider", Text),
            ("kind", Text),
            ("resource_id", Text),
            ("target_id", Text),
            ("adopted_by", Text),
        ],
        None,
    ),
    (
        "delivery_guard",
        &[
            ("target", Text),
            ("tripped_at", Time),
            ("reason", Text),
            ("approved_at", Time),
            ("approved_until", Time),
        ],
        None,
    ),
    (
        "delivery_log",
        &[
            ("id", Int),
            ("target", Text),
            ("provider", Text),
            ("kind", Text),
            ("resource_id", Text),
            ("from_seq", Int),
            ("last_seq", Int),
            ("outcome", Text),
            ("detail", Text),
            ("duration_ms", Int),
            ("at", Time),
        ],
        Some("id"),
    ),
    (
        "schedule_runs",
        &[("name", Text), ("tick", Time), ("owner", Text)],
        None,
    ),
    // The provisioning log and its chain, so the history stays and the chain (seals,
    // checkpoints) carries on. SQLite keeps no links on the rows (its chain order is
    // the id order); PostgreSQL does, so the rows arrive unlinked and the head is
    // wound back to the oldest record kept (see `AUDIT_HEAD_REWOUND`).
    (
        "audit_log",
        &[
            ("id", Int),
            ("at", Int),
            ("kind", Text),
            ("body", Text),
            ("provider", Text),
            ("resource_kind", Text),
            ("resource_id", Text),
            ("user_name_key", Text),
            ("display_name", Text),
            ("target", Text),
            ("action", Text),
            ("outcome", Text),
            ("change_seq", Int),
            ("change_seq_last", Int),
            ("request_id", Text),
        ],
        Some("id"),
    ),
    (
        "audit_head",
        &[
            ("one", Int4),
            ("log_id", Text),
            ("next_seq", Int),
            ("prev", Text),
        ],
        None,
    ),
    (
        "audit_seals",
        &[
            ("seq", Int),
            ("head", Text),
            ("at", Int),
            ("key_id", Text),
            ("line", Text),
        ],
        None,
    ),
    (
        "audit_checkpoints",
        &[
            ("next", Int),
            ("prev", Text),
            ("at", Int),
            ("key_id", Text),
            ("line", Text),
        ],
        None,
    ),
    (
        "link_waits",
        &[
            ("target", Text),
            ("provider", Text),
            ("awaited_id", Text),
            ("resource_id", Text),
        ],
        None,
    ),
];

/// The audit head as PostgreSQL gets it: at the oldest record kept (its mark), so
/// PostgreSQL's chainer links the copied rows again, in the same (id) order over the
/// same content, to the same hashes the seals signed.
const AUDIT_HEAD_REWOUND: &str = "SELECT h.one, h.log_id,
       coalesce((SELECT m.seq FROM audit_marks m ORDER BY m.seq LIMIT 1), h.next_seq),
       coalesce((SELECT m.prev FROM audit_marks m ORDER BY m.seq LIMIT 1), h.prev)
     FROM audit_head h";

/// Rows copied per table, in [`TABLES`] order.
pub type CopyReport = Vec<(&'static str, u64)>;

fn param(col: Col, v: ValueRef<'_>) -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
    let bad = |what: &str| StoreError::Database(format!("unexpected stored {what}"));
    Ok(match (col, v) {
        (Int, ValueRef::Null) => Box::new(None::<i64>),
        (Int, ValueRef::Integer(i)) => Box::new(i),
        (Int4, ValueRef::Null) => Box::new(None::<i32>),
        (Int4, ValueRef::Integer(i)) => {
            Box::new(i32::try_from(i).map_err(|_| bad("integer out of range"))?)
        }
        (Text, ValueRef::Null) => Box::new(None::<String>),
        (Text, ValueRef::Text(t)) => Box::new(String::from_utf8_lossy(t).into_owned()),
        (Blob, ValueRef::Blob(b)) => Box::new(b.to_vec()),
        (Time, ValueRef::Null) => Box::new(None::<DateTime<Utc>>),
        (Time, ValueRef::Text(t)) => {
            let s = String::from_utf8_lossy(t);
            let at = DateTime::parse_from_rfc3339(&s)
                .map_err(|e| StoreError::Database(format!("bad stored timestamp {s:?}: {e}")))?;
            Box::new(at.with_timezone(&Utc))
        }
        _ => return Err(bad("value type")),
    })
}

/// Copies `from` into the PostgreSQL database at `to`. Refuses a destination that
/// holds resources, events, tokens or a vault unless `force`, which empties it first.
pub async fn sqlite_to_postgres(
    from: &Path,
    to: &str,
    force: bool,
) -> Result<CopyReport, StoreError> {
    if !from.is_file() {
        return Err(StoreError::Open {
            path: from.display().to_string(),
            reason: "no such file".into(),
        });
    }
    // Brings the source to this binary's schema (the copy maps it column for column).
    let path = from.to_owned();
    let source = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;
    source.close().await;
    drop(source);
    let dest = PgStore::open(to, 2).await?;
    let location = dest.location().to_owned();
    dest.close().await;
    let mut client = super::postgres::tls::connect_once(to).await?;

    let tx = client.transaction().await?;
    let occupied: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM resources) + (SELECT count(*) FROM change_events)
                  + (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM vault)
                  + (SELECT count(*) FROM secrets)",
            &[],
        )
        .await?
        .try_get(0)?;
    if occupied > 0 && !force {
        return Err(StoreError::Conflict(format!(
            "{location} already holds scim-bridge data ({occupied} resources, events, tokens and secrets); nothing was copied. Pass --force to replace it"
        )));
    }
    let names: Vec<&str> = TABLES.iter().map(|t| t.0).collect();
    tx.batch_execute(&format!("TRUNCATE {}", names.join(", ")))
        .await?;

    // One read transaction: a consistent snapshot even while a daemon still writes.
    let mut src = rusqlite::Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let snapshot = src.transaction()?;
    let mut report = Vec::new();
    for (table, cols, identity) in TABLES {
        let list: Vec<&str> = cols.iter().map(|c| c.0).collect();
        let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let overriding = if identity.is_some() {
            "OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {table} ({}) {overriding} VALUES ({})",
                list.join(", "),
                placeholders.join(", ")
            ))
            .await?;
        let rows: Vec<Vec<Box<dyn ToSql + Sync + Send>>> = {
            let select = match *table {
                "audit_head" => AUDIT_HEAD_REWOUND.to_owned(),
                _ => format!("SELECT {} FROM {table}", list.join(", ")),
            };
            let mut st = snapshot.prepare(&select)?;
            let mut rows = st.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let mut vals = Vec::with_capacity(cols.len());
                for (i, (_, col)) in cols.iter().enumerate() {
                    vals.push(param(*col, r.get_ref(i)?)?);
                }
                out.push(vals);
            }
            out
        };
        for vals in &rows {
            let refs: Vec<&(dyn ToSql + Sync)> = vals
                .iter()
                .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                .collect();
            tx.execute(&insert, &refs).await?;
        }
        if let Some(id) = identity {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{id}'), coalesce((SELECT max({id}) FROM {table}), 0) + 1, false)"
                ),
                &[],
            )
            .await?;
        }
        let copied: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .try_get(0)?;
        if copied != rows.len() as i64 {
            return Err(StoreError::Conflict(format!(
                "{table}: read {} rows but {copied} are in the destination; nothing was copied",
                rows.len()
            )));
        }
        report.push((*table, rows.len() as u64));
    }
    drop(snapshot);
    tx.commit().await?;
    // Statistics now, not at autovacuum's next round: until a table is analysed the
    // planner takes `provider = $1` for a selective condition, and the daemon about
    // to start on this database would plan its first lookups badly.
    client.batch_execute("ANALYZE").await?;
    drop(client);
    Ok(report)
}

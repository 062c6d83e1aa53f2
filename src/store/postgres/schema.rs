//! Migrations of a PostgreSQL database: embedded, versioned in `meta`, applied at open
//! under an advisory lock so instances starting together migrate once.

use deadpool_postgres::Client;

use super::rows::{query, query_opt};
use crate::store::StoreError;

/// Marker in `meta` that says a schema is scim-bridge's.
const APP_MARKER: &str = "scim-bridge";

/// Held while checking and migrating, for the transaction only.
const MIGRATE_LOCK: i64 = 0x5C1B_0000;

/// Embedded migrations, applied in order; the index + 1 is the schema version.
/// PostgreSQL's versions are its own: they do not follow SQLite's.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_identity.sql"),
    include_str!("migrations/0003_lookup_indexes.sql"),
    include_str!("migrations/0004_resync_requests.sql"),
    include_str!("migrations/0005_ownership.sql"),
    include_str!("migrations/0006_stable_spans.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Checks the schema is ours (or empty) and applies missing migrations, all in one
/// transaction. Returns the version found before migrating.
pub async fn prepare(client: &mut Client, location: &str) -> Result<i64, StoreError> {
    let foreign = |why: String| {
        StoreError::Foreign(format!(
            "{location} is not a scim-bridge database ({why}); refusing to touch it. Point database.url at an empty database or schema."
        ))
    };
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await?;
    let schema: Option<String> = query_opt(&tx, "SELECT current_schema()", &[])
        .await?
        .and_then(|r| r.try_get(0).ok());
    let Some(schema) = schema else {
        return Err(StoreError::Database(
            "the connection has no current schema (search_path names none that exists)".into(),
        ));
    };
    let tables: Vec<String> = query(
        &tx,
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        &[&schema],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    let found = if tables.is_empty() {
        0
    } else {
        if !tables.iter().any(|t| t == "meta") {
            return Err(foreign(format!(
                "schema {schema} has {} tables but no scim-bridge marker",
                tables.len()
            )));
        }
        let value = |key: &'static str| {
            let tx = &tx;
            async move {
                Ok::<Option<String>, StoreError>(
                    query_opt(tx, "SELECT value FROM meta WHERE key = $1", &[&key])
                        .await?
                        .map(|r| r.try_get(0))
                        .transpose()?,
                )
            }
        };
        if value("app").await?.as_deref() != Some(APP_MARKER) {
            return Err(foreign("its marker names another application".into()));
        }
        value("schema_version")
            .await?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| foreign("its schema version is missing".into()))?
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        for sql in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
            tx.batch_execute(sql).await?;
        }
        let version = SCHEMA_VERSION.to_string();
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('app', $1), ('schema_version', $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&APP_MARKER, &version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(found)
}

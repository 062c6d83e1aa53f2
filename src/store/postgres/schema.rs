//! Migrations of a PostgreSQL database: embedded, versioned in `meta`, applied at open
//! under an advisory lock so instances starting together migrate once.

use deadpool_postgres::{Client, Transaction};

use super::rows::{query, query_opt};
use crate::store::{StoreError, rekey};

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
    include_str!("migrations/0007_user_name_keys.sql"),
    include_str!("migrations/0008_provisioning_log.sql"),
    include_str!("migrations/0009_console_sessions.sql"),
    include_str!("migrations/0010_sparse_log_indexes.sql"),
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
    // Under the same advisory lock: instances starting together recompute once.
    let rekeyed = rekey_user_names(&tx).await?;
    tx.commit().await?;
    rekeyed.report("postgres");
    Ok(found)
}

/// Recomputes stored userName keys when `meta` says they were computed by another key
/// version (see [`crate::store::rekey`]), in batches, inside the caller's transaction.
async fn rekey_user_names(tx: &Transaction<'_>) -> Result<rekey::Rekeyed, StoreError> {
    let version = rekey::key_version();
    let stored: Option<String> = tx
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&rekey::META_KEY])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    let mut out = rekey::Rekeyed::default();
    if stored.as_deref() == Some(version.as_str()) {
        return Ok(out);
    }
    let mut after = 0i64;
    loop {
        let rows = tx
            .query(
                "SELECT seq, doc, user_name_ci FROM resources
                 WHERE kind = 'User' AND seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &rekey::BATCH],
            )
            .await?;
        let Some(last) = rows.last().map(|r| r.try_get::<_, i64>(0)).transpose()? else {
            break;
        };
        for r in &rows {
            let seq: i64 = r.try_get(0)?;
            let doc: String = r.try_get(1)?;
            let key: Option<String> = r.try_get(2)?;
            if let Some(new) = rekey::changed_key(&doc, key.as_deref()) {
                tx.execute(
                    "UPDATE resources SET user_name_ci = $2, user_name_dup = $1 WHERE seq = $1",
                    &[&seq, &new],
                )
                .await?;
                out.changed += 1;
            }
        }
        after = last;
    }
    let mut after = 0i64;
    loop {
        let rows = tx
            .query(
                "SELECT seq, provider, kind, id, user_name_ci, doc FROM resources
                 WHERE user_name_dup <> 0 AND user_name_ci IS NOT NULL AND seq > $1
                 ORDER BY seq LIMIT $2",
                &[&after, &rekey::BATCH],
            )
            .await?;
        let Some(last) = rows.last().map(|r| r.try_get::<_, i64>(0)).transpose()? else {
            break;
        };
        for r in &rows {
            let seq: i64 = r.try_get(0)?;
            let provider: String = r.try_get(1)?;
            let kind: String = r.try_get(2)?;
            let id: String = r.try_get(3)?;
            let key: String = r.try_get(4)?;
            let doc: String = r.try_get(5)?;
            let holder = tx
                .query_opt(
                    "SELECT id, doc FROM resources WHERE user_name_ci = $3 AND provider = $1
                       AND kind = $2 AND user_name_dup = 0",
                    &[&provider, &kind, &key],
                )
                .await?;
            match holder {
                None => {
                    tx.execute(
                        "UPDATE resources SET user_name_dup = 0 WHERE seq = $1",
                        &[&seq],
                    )
                    .await?;
                }
                Some(h) => {
                    let holder_doc: String = h.try_get(1)?;
                    out.collisions.push(rekey::Collision::new(
                        provider,
                        (h.try_get(0)?, &holder_doc),
                        (id, &doc),
                    ));
                }
            }
        }
        after = last;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&rekey::META_KEY, &version],
    )
    .await?;
    Ok(out)
}

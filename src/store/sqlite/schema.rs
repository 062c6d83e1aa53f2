//! Opening a database file safely: refuse what is not ours, migrate what is.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::store::{StoreError, rekey};

/// Marker in `meta` that says a file is a scim-bridge database.
const APP_MARKER: &str = "scim-bridge";

/// Embedded migrations, applied in order; the index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_vault.sql"),
    include_str!("migrations/0003_delivery.sql"),
    include_str!("migrations/0004_guard.sql"),
    include_str!("migrations/0005_delivery_log.sql"),
    include_str!("migrations/0006_resync.sql"),
    include_str!("migrations/0007_schedule_runs.sql"),
    include_str!("migrations/0008_identity.sql"),
    include_str!("migrations/0009_ownership.sql"),
    include_str!("migrations/0010_stable_spans.sql"),
    include_str!("migrations/0011_user_name_keys.sql"),
    include_str!("migrations/0012_provisioning_log.sql"),
    include_str!("migrations/0013_audit_marks.sql"),
    include_str!("migrations/0014_console_sessions.sql"),
    include_str!("migrations/0015_sparse_log_indexes.sql"),
];

/// Brings a new file to schema `version` exactly, as an older binary left it: what
/// migration tests start from.
#[cfg(test)]
pub(super) fn create_at_version(conn: &Connection, version: usize) -> Result<(), StoreError> {
    for sql in &MIGRATIONS[..version] {
        conn.execute_batch(sql)?;
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('app', ?1), ('schema_version', ?2)",
        params![APP_MARKER, version.to_string()],
    )?;
    Ok(())
}

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens (creating if absent) a connection with the pragmas every connection needs.
pub fn connect(path: &Path, read_only: bool, cache_kib: u32) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    // synchronous=FULL in WAL mode fsyncs the log at every commit: an acknowledged
    // write survives power loss, not just a process crash.
    conn.execute_batch(&format!(
        "PRAGMA busy_timeout = 5000;
         PRAGMA synchronous = FULL;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA temp_store = MEMORY;"
    ))
    .map_err(open_err)?;
    Ok(conn)
}

/// Checks the file is ours (or empty), switches it to WAL and applies missing
/// migrations. Returns the schema version found before migrating.
pub fn prepare(conn: &mut Connection, path: &Path) -> Result<i64, StoreError> {
    let foreign = |why: String| {
        StoreError::Foreign(format!(
            "{} is not a scim-bridge database ({why}); refusing to touch it. Point database.url or --data-dir elsewhere.",
            path.display()
        ))
    };
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| foreign(e.to_string()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
            "cannot switch {} to WAL mode (got {mode})",
            path.display()
        )));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| foreign(e.to_string()))?;
    let found = if tables == 0 {
        0
    } else {
        let has_meta: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get(0),
        )?;
        if !has_meta {
            return Err(foreign(format!(
                "it has {tables} tables but no scim-bridge marker"
            )));
        }
        let app: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'app'", [], |r| r.get(0))
            .optional()?;
        if app.as_deref() != Some(APP_MARKER) {
            return Err(foreign("its marker names another application".into()));
        }
        let v: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        v.and_then(|v| v.parse().ok())
            .ok_or_else(|| foreign("its schema version is missing".into()))?
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        let tx = conn.transaction()?;
        for sql in &MIGRATIONS[found as usize..] {
            tx.execute_batch(sql)?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('app', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [APP_MARKER],
        )?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [SCHEMA_VERSION.to_string()],
        )?;
        tx.commit()?;
    }
    Ok(found)
}

/// SQLite would report "file is not a database" only on first query, and would
/// happily turn an empty-looking file into a database: check the header first.
pub fn refuse_foreign_file(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return Ok(());
    };
    let mut header = [0u8; 16];
    let n = f.read(&mut header).unwrap_or(0);
    if n == 0 {
        return Ok(());
    }
    if n < 16 || &header != b"SQLite format 3\0" {
        return Err(StoreError::Foreign(format!(
            "{} exists but is not an SQLite database (corrupt or foreign file); refusing to overwrite it",
            path.display()
        )));
    }
    Ok(())
}

/// Recomputes stored userName keys when `meta` says they were computed by another key
/// version (see [`crate::store::rekey`]); one transaction, read in batches.
pub fn rekey_user_names(conn: &mut Connection) -> Result<rekey::Rekeyed, StoreError> {
    let version = rekey::key_version();
    let stored: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [rekey::META_KEY],
            |r| r.get(0),
        )
        .optional()?;
    let mut out = rekey::Rekeyed::default();
    if stored.as_deref() == Some(version.as_str()) {
        return Ok(out);
    }
    let tx = conn.transaction()?;
    let mut after = 0i64;
    loop {
        let rows: Vec<(i64, String, Option<String>)> = tx
            .prepare(
                "SELECT seq, doc, user_name_ci FROM resources
                 WHERE kind = 'User' AND seq > ?1 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![after, rekey::BATCH], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        for (seq, doc, key) in rows {
            if let Some(new) = rekey::changed_key(&doc, key.as_deref()) {
                // Prepared once for the whole pass, not once a row.
                tx.prepare_cached(
                    "UPDATE resources SET user_name_ci = ?2, user_name_dup = ?1 WHERE seq = ?1",
                )?
                .execute(params![seq, new])?;
                out.changed += 1;
            }
        }
        after = last;
    }
    let mut after = 0i64;
    loop {
        let rows: Vec<(i64, String, String, String, String, String)> = tx
            .prepare(
                "SELECT seq, provider, kind, id, user_name_ci, doc FROM resources
                 WHERE user_name_dup <> 0 AND user_name_ci IS NOT NULL AND seq > ?1
                 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![after, rekey::BATCH], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        for (seq, provider, kind, id, key, doc) in rows {
            let holder: Option<(String, String)> = tx
                .prepare_cached(
                    "SELECT id, doc FROM resources WHERE provider = ?1 AND kind = ?2
                       AND user_name_ci = ?3 AND user_name_dup = 0",
                )?
                .query_row(params![provider, kind, key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match holder {
                None => {
                    tx.prepare_cached("UPDATE resources SET user_name_dup = 0 WHERE seq = ?1")?
                        .execute([seq])?;
                }
                Some((holder_id, holder_doc)) => out.collisions.push(rekey::Collision::new(
                    provider,
                    (holder_id, &holder_doc),
                    (id, &doc),
                )),
            }
        }
        after = last;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![rekey::META_KEY, version],
    )?;
    tx.commit()?;
    Ok(out)
}

//! The console's sessions in SQLite. A page view reads its session on a reader; it
//! writes only when there is a notice to take or an expired row to delete, so
//! browsing costs no fsync.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::rows::{fmt_time, parse_time};
use crate::store::{ConsoleSessionRow, ConsoleSessions, StoreError};

const COLUMNS: &str = "key, role, token, who, csrf, expires, notice";

type Raw = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
);

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn row(
    (key, role, token, who, csrf, expires, notice): Raw,
) -> Result<ConsoleSessionRow, StoreError> {
    Ok(ConsoleSessionRow {
        key,
        role,
        token,
        who,
        csrf,
        expires: parse_time(&expires)?,
        notice,
    })
}

#[async_trait]
impl ConsoleSessions for SqliteStore {
    async fn open_console_session(
        &self,
        s: ConsoleSessionRow,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.exec(move |c| {
            c.execute(
                "DELETE FROM console_sessions WHERE expires <= ?1",
                [fmt_time(now)],
            )?;
            c.execute(
                &format!(
                    "INSERT INTO console_sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    s.key,
                    s.role,
                    s.token,
                    s.who,
                    s.csrf,
                    fmt_time(s.expires),
                    s.notice
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn console_session(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSessionRow>, StoreError> {
        let k = key.to_owned();
        let found = self
            .read_point(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM console_sessions WHERE key = ?1"
                ))?
                .query_row([k], raw)
                .optional()
                .map_err(StoreError::from)
            })
            .await?;
        let Some(found) = found.map(row).transpose()? else {
            return Ok(None);
        };
        let key = key.to_owned();
        if found.expires <= now {
            self.exec(move |c| {
                c.execute("DELETE FROM console_sessions WHERE key = ?1", [key])?;
                Ok(())
            })
            .await?;
            return Ok(None);
        }
        if found.notice.is_some() {
            // Taken once: the page that shows it clears it, whichever reads first.
            let taken = self
                .exec(move |c| {
                    Ok(c.execute(
                        "UPDATE console_sessions SET notice = NULL WHERE key = ?1 AND notice IS NOT NULL",
                        [key],
                    )? == 1)
                })
                .await?;
            if !taken {
                return Ok(Some(ConsoleSessionRow {
                    notice: None,
                    ..found
                }));
            }
        }
        Ok(Some(found))
    }

    async fn note_console_session(&self, key: &str, notice: &str) -> Result<(), StoreError> {
        let (key, notice) = (key.to_owned(), notice.to_owned());
        self.exec(move |c| {
            c.execute(
                "UPDATE console_sessions SET notice = ?2 WHERE key = ?1",
                params![key, notice],
            )?;
            Ok(())
        })
        .await
    }

    async fn close_console_session(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.exec(move |c| {
            Ok(c.execute("DELETE FROM console_sessions WHERE key = ?1", [key])? == 1)
        })
        .await
    }

    async fn close_console_sessions_of_token(&self, token: &str) -> Result<u64, StoreError> {
        let token = token.to_owned();
        self.exec(move |c| {
            let n = c.execute("DELETE FROM console_sessions WHERE token = ?1", [token])?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }
}

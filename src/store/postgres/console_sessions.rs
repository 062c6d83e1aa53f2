//! The console's sessions in PostgreSQL, shared by every instance on the database: a
//! session opened on one is open on all, and signing out on one ends it everywhere.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::PgStore;
use super::rows::{execute, ms, query_opt};
use crate::store::{ConsoleSessionRow, ConsoleSessions, StoreError};

const COLUMNS: &str = "key, role, token, who, csrf, expires, notice";

fn row(r: &Row) -> Result<ConsoleSessionRow, StoreError> {
    Ok(ConsoleSessionRow {
        key: r.try_get(0)?,
        role: r.try_get(1)?,
        token: r.try_get(2)?,
        who: r.try_get(3)?,
        csrf: r.try_get(4)?,
        expires: r.try_get(5)?,
        notice: r.try_get(6)?,
    })
}

#[async_trait]
impl ConsoleSessions for PgStore {
    async fn open_console_session(
        &self,
        s: ConsoleSessionRow,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let c = self.writer().await?;
        execute(
            &c,
            "DELETE FROM console_sessions WHERE expires <= $1",
            &[&ms(now)],
        )
        .await?;
        execute(
            &c,
            &format!(
                "INSERT INTO console_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            &[
                &s.key,
                &s.role,
                &s.token,
                &s.who,
                &s.csrf,
                &ms(s.expires),
                &s.notice,
            ],
        )
        .await?;
        Ok(())
    }

    async fn console_session(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSessionRow>, StoreError> {
        let c = self.client().await?;
        let found = query_opt(
            &c,
            &format!("SELECT {COLUMNS} FROM console_sessions WHERE key = $1"),
            &[&key],
        )
        .await?
        .as_ref()
        .map(row)
        .transpose()?;
        let Some(found) = found else {
            return Ok(None);
        };
        if found.expires <= now {
            execute(&c, "DELETE FROM console_sessions WHERE key = $1", &[&key]).await?;
            return Ok(None);
        }
        if found.notice.is_some() {
            // Taken once: the page that shows it clears it, whichever instance reads first.
            let taken = execute(
                &c,
                "UPDATE console_sessions SET notice = NULL WHERE key = $1 AND notice IS NOT NULL",
                &[&key],
            )
            .await?;
            if taken == 0 {
                return Ok(Some(ConsoleSessionRow {
                    notice: None,
                    ..found
                }));
            }
        }
        Ok(Some(found))
    }

    async fn note_console_session(&self, key: &str, notice: &str) -> Result<(), StoreError> {
        let c = self.writer().await?;
        execute(
            &c,
            "UPDATE console_sessions SET notice = $2 WHERE key = $1",
            &[&key, &notice],
        )
        .await?;
        Ok(())
    }

    async fn close_console_session(&self, key: &str) -> Result<bool, StoreError> {
        let c = self.writer().await?;
        Ok(execute(&c, "DELETE FROM console_sessions WHERE key = $1", &[&key]).await? == 1)
    }

    async fn close_console_sessions_of_token(&self, token: &str) -> Result<u64, StoreError> {
        let c = self.writer().await?;
        execute(
            &c,
            "DELETE FROM console_sessions WHERE token = $1",
            &[&token],
        )
        .await
        .map_err(StoreError::from)
    }
}

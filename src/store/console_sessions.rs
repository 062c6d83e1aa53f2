//! The console's sign-in sessions, kept in the database so a restart signs nobody out
//! and every instance sharing PostgreSQL knows every session. Rows are keyed by the
//! SHA-256 of the session id: the cookie holds the id, the table never does, so a
//! copy of the database opens no browser's session.

use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One console session as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSessionRow {
    /// Hex SHA-256 of the session id.
    pub key: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// The API token the session was opened with (its id, never its secret); `None`
    /// for a sign-in through the identity provider.
    pub token: Option<String>,
    /// Who, as records name them: the token id, or the person's name and subject.
    pub who: String,
    /// The synchroniser token every form of the session carries.
    pub csrf: String,
    pub expires: DateTime<Utc>,
    /// A one-time message for the session's next page.
    pub notice: Option<String>,
}

/// The CSRF token is a secret of the session: never printed.
impl std::fmt::Debug for ConsoleSessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSessionRow")
            .field("role", &self.role)
            .field("token", &self.token)
            .field("who", &self.who)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The console's sessions.
#[async_trait]
pub trait ConsoleSessions: Send + Sync {
    /// Stores a new session, and deletes the sessions expired at `now` on the way.
    async fn open_console_session(
        &self,
        row: ConsoleSessionRow,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The session `key` names, live at `now`, with its notice taken (the next
    /// read finds none). `None` when unknown, signed out or expired; an expired
    /// row is deleted.
    async fn console_session(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSessionRow>, StoreError>;

    /// Leaves `notice` for the session's next page.
    async fn note_console_session(&self, key: &str, notice: &str) -> Result<(), StoreError>;

    /// Signs one session out; `false` when there was none.
    async fn close_console_session(&self, key: &str) -> Result<bool, StoreError>;

    /// Signs out every session opened with API token `token`; returns how many.
    async fn close_console_sessions_of_token(&self, token: &str) -> Result<u64, StoreError>;
}

//! Console sessions: rows in the store keyed by the SHA-256 of a random session id
//! (the cookie holds the id; the table never does), each with its role, who signed
//! in, its own CSRF token and an expiry on the daemon's clock. Signing out deletes
//! the row, so a copied cookie opens nothing afterwards.
//!
//! Kept in the store ([`crate::store::ConsoleSessions`]): a restart signs nobody out,
//! and instances sharing PostgreSQL share sessions, so signing out on one ends the
//! session on all. Token sign-in (`signin.rs`) and OpenID Connect (`oidc.rs`) both
//! end in [`Sessions::open`]; nothing else knows where sessions are kept.

use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::entropy::Entropy;
use crate::store::{ConsoleSessionRow, Store, StoreError};

/// What a signed-in person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads every page; changes nothing (a `viewer` token, or a viewer group).
    Viewer,
    /// Reads and acts: retries and drops dead letters, approves and rejects guard
    /// holds (an `admin` token, or an admin group).
    Admin,
}

impl Role {
    /// As pages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer (read only)",
            Role::Admin => "admin",
        }
    }

    /// As the store keeps it.
    fn key(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    fn from_key(key: &str) -> Option<Role> {
        match key {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// An API token, by its id (never its secret).
    Token(String),
    /// A person the identity provider vouched for: the ID token's `sub` and a name
    /// to show (display name, username or email; may be empty).
    Person { subject: String, name: String },
}

impl Who {
    /// As records and logs name them: the token id, or `Name (oidc:subject)`.
    pub fn label(&self) -> String {
        match self {
            Who::Token(id) => id.clone(),
            Who::Person { subject, name } if name.is_empty() || name == subject => {
                format!("oidc:{subject}")
            }
            Who::Person { subject, name } => format!("{name} (oidc:{subject})"),
        }
    }
}

/// One signed-in browser, as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who signed in, as records name them (see [`Who::label`]).
    pub who: String,
    /// The id of the API token the session was opened with; `None` for a person
    /// signed in through the identity provider.
    pub token: Option<String>,
    pub role: Role,
    /// The synchroniser token every form of this session carries.
    pub csrf: String,
    pub expires: DateTime<Utc>,
    /// A one-time message for the next page (what the last action did).
    pub notice: Option<String>,
}

/// The session table.
pub struct Sessions {
    store: Arc<dyn Store>,
    lifetime: chrono::Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// 32 random bytes, URL-safe base64: a session id, CSRF token, state or verifier.
pub fn random_token(entropy: &dyn Entropy) -> String {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    entropy.fill(bytes.as_mut());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
}

/// The row key of session `id`: hex SHA-256.
fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// The sessions kept in `store`, each lasting `lifetime`.
    pub fn new(store: Arc<dyn Store>, lifetime: std::time::Duration) -> Self {
        Sessions {
            store,
            lifetime: chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(8)),
        }
    }

    /// Opens a session for `who` with `role` at `now`; returns the id for the cookie
    /// and the session. Expired rows are swept on the way.
    pub async fn open(
        &self,
        who: Who,
        role: Role,
        now: DateTime<Utc>,
        entropy: &dyn Entropy,
    ) -> Result<(String, Session), StoreError> {
        let id = random_token(entropy);
        let session = Session {
            who: who.label(),
            token: match who {
                Who::Token(id) => Some(id),
                Who::Person { .. } => None,
            },
            role,
            csrf: random_token(entropy),
            expires: now + self.lifetime,
            notice: None,
        };
        let row = ConsoleSessionRow {
            key: key(&id),
            role: role.key().to_owned(),
            token: session.token.clone(),
            who: session.who.clone(),
            csrf: session.csrf.clone(),
            expires: session.expires,
            notice: None,
        };
        self.store.open_console_session(row, now).await?;
        Ok((id, session))
    }

    /// The live session `id` names at `now`, taking its notice; `None` when unknown,
    /// signed out or expired (an expired row is removed).
    pub async fn find(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
        let Some(row) = self.store.console_session(&key(id), now).await? else {
            return Ok(None);
        };
        // A role this binary does not know (written by a newer one) opens nothing.
        let Some(role) = Role::from_key(&row.role) else {
            return Ok(None);
        };
        Ok(Some(Session {
            who: row.who,
            token: row.token,
            role,
            csrf: row.csrf,
            expires: row.expires,
            notice: row.notice,
        }))
    }

    /// Leaves `notice` for the session's next page. A notice that cannot be kept is
    /// logged and lost: the action it reports has happened and is recorded.
    pub async fn notify(&self, id: &str, notice: String) {
        if let Err(e) = self.store.note_console_session(&key(id), &notice).await {
            tracing::warn!(error = %e, "console: cannot keep the notice for the next page");
        }
    }

    /// Signs the session out.
    pub async fn close(&self, id: &str) -> Result<(), StoreError> {
        self.store.close_console_session(&key(id)).await.map(drop)
    }

    /// Signs out every session opened with API token `token` (found revoked or expired).
    pub async fn close_all_of_token(&self, token: &str) -> Result<(), StoreError> {
        self.store
            .close_console_sessions_of_token(token)
            .await
            .map(drop)
    }

    /// How long a new session lasts.
    pub fn lifetime(&self) -> chrono::Duration {
        self.lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn sessions_expire_on_the_clock_close_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let open = || {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
            Sessions::new(store, std::time::Duration::from_secs(3600))
        };
        let t0 = chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap();
        let table = open();
        let e = SeededEntropy::new(7);
        let (id, s) = table
            .open(Who::Token("abc".into()), Role::Admin, t0, &e)
            .await
            .unwrap();
        assert_eq!(s.expires, t0 + chrono::Duration::hours(1));
        assert!(table.find(&id, t0).await.unwrap().is_some());
        assert!(table.find("other", t0).await.unwrap().is_none());
        assert!(
            table
                .find(&id, t0 + chrono::Duration::hours(1))
                .await
                .unwrap()
                .is_none()
        );
        // Gone for good once seen expired, even if the clock went back.
        assert!(table.find(&id, t0).await.unwrap().is_none());
        let person = Who::Person {
            subject: "00u1".into(),
            name: "Ada Lovelace".into(),
        };
        let (id, s) = table.open(person, Role::Viewer, t0, &e).await.unwrap();
        assert_eq!(s.who, "Ada Lovelace (oidc:00u1)");
        assert_eq!(s.token, None);
        table.notify(&id, "done".into()).await;
        // A restart keeps the session (and its notice).
        drop(table);
        let table = open();
        let found = table.find(&id, t0).await.unwrap().unwrap();
        assert_eq!(
            (found.role, found.who.as_str(), found.notice.as_deref()),
            (Role::Viewer, "Ada Lovelace (oidc:00u1)", Some("done"))
        );
        assert_eq!(table.find(&id, t0).await.unwrap().unwrap().notice, None);
        table.close(&id).await.unwrap();
        assert!(table.find(&id, t0).await.unwrap().is_none());
        let (id, _) = table
            .open(Who::Token("abc".into()), Role::Viewer, t0, &e)
            .await
            .unwrap();
        table.close_all_of_token("abc").await.unwrap();
        assert!(table.find(&id, t0).await.unwrap().is_none());
        assert!(!format!("{table:?}").contains(&id));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
        assert_eq!(
            Who::Person {
                subject: "s".into(),
                name: String::new()
            }
            .label(),
            "oidc:s"
        );
    }
}

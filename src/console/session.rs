//! Console sessions: a server-side table keyed by the SHA-256 of a random session id
//! (the cookie holds the id; the table never does), each with its role, its own CSRF
//! token and an expiry on the daemon's clock. Signing out removes the row, so a
//! copied cookie opens nothing afterwards.
//!
//! The table lives in memory: a restart signs everyone out, and with several
//! instances behind one address a session opens only the instance that made it
//! (route the console to one instance, or give each its own `console.listen`). A
//! table in the store, and sign-in through OpenID Connect that ends in the same
//! [`Sessions::open`], are the next steps; nothing outside this file knows where
//! sessions are kept.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::entropy::Entropy;

/// What a signed-in person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads every page; changes nothing (a `viewer` token).
    Viewer,
    /// Reads and acts: retries and drops dead letters, approves and rejects guard
    /// holds (an `admin` token).
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
}

/// One signed-in browser, as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who signed in: the id of the token they presented (never its secret).
    pub who: String,
    pub role: Role,
    /// The synchroniser token every form of this session carries.
    pub csrf: String,
    pub expires: DateTime<Utc>,
    /// A one-time message for the next page (what the last action did).
    pub notice: Option<String>,
}

/// The session table.
pub struct Sessions {
    rows: Mutex<HashMap<[u8; 32], Session>>,
    lifetime: chrono::Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// 32 random bytes, URL-safe base64: a session id or CSRF token.
pub fn random_token(entropy: &dyn Entropy) -> String {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    entropy.fill(bytes.as_mut());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// An empty table whose sessions last `lifetime`.
    pub fn new(lifetime: std::time::Duration) -> Self {
        Sessions {
            rows: Mutex::new(HashMap::new()),
            lifetime: chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(8)),
        }
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a session for `who` with `role` at `now`; returns the id for the cookie
    /// and the session. Expired rows are swept here, so the table holds only live ones.
    pub fn open(
        &self,
        who: String,
        role: Role,
        now: DateTime<Utc>,
        entropy: &dyn Entropy,
    ) -> (String, Session) {
        let id = random_token(entropy);
        let session = Session {
            who,
            role,
            csrf: random_token(entropy),
            expires: now + self.lifetime,
            notice: None,
        };
        let mut rows = self.rows();
        rows.retain(|_, s| s.expires > now);
        rows.insert(key(&id), session.clone());
        (id, session)
    }

    /// The live session `id` names at `now`, taking its notice; `None` when unknown,
    /// signed out or expired (an expired row is removed).
    pub fn find(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let mut rows = self.rows();
        let k = key(id);
        match rows.get_mut(&k) {
            Some(s) if s.expires > now => {
                let found = s.clone();
                s.notice = None;
                Some(found)
            }
            Some(_) => {
                rows.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Leaves `notice` for the session's next page.
    pub fn notify(&self, id: &str, notice: String) {
        if let Some(s) = self.rows().get_mut(&key(id)) {
            s.notice = Some(notice);
        }
    }

    /// Signs the session out.
    pub fn close(&self, id: &str) {
        self.rows().remove(&key(id));
    }

    /// Signs out every session of `who` (a token found revoked or expired).
    pub fn close_all_of(&self, who: &str) {
        self.rows().retain(|_, s| s.who != who);
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

    #[test]
    fn sessions_expire_on_the_clock_and_close() {
        let t0 = chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap();
        let table = Sessions::new(std::time::Duration::from_secs(3600));
        let e = SeededEntropy::new(7);
        let (id, s) = table.open("abc".into(), Role::Admin, t0, &e);
        assert_eq!(s.expires, t0 + chrono::Duration::hours(1));
        assert!(table.find(&id, t0).is_some());
        assert!(table.find("other", t0).is_none());
        assert!(table.find(&id, t0 + chrono::Duration::hours(1)).is_none());
        // Gone for good once seen expired, even if the clock went back.
        assert!(table.find(&id, t0).is_none());
        let (id, _) = table.open("abc".into(), Role::Viewer, t0, &e);
        table.notify(&id, "done".into());
        assert_eq!(table.find(&id, t0).unwrap().notice.as_deref(), Some("done"));
        assert_eq!(table.find(&id, t0).unwrap().notice, None);
        table.close(&id);
        assert!(table.find(&id, t0).is_none());
        assert!(!format!("{table:?}").contains(&id));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}

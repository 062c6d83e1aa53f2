//! An access token with what is needed to use, refresh and persist it.

use chrono::{DateTime, Utc};
use oauth2::TokenResponse;
use oauth2::basic::BasicTokenResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// How usable a token is at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Freshness {
    /// Valid beyond the refresh-ahead window.
    Fresh,
    /// Still valid, but inside the refresh-ahead window.
    Ahead,
    /// Expired (or marked so after a 401).
    Expired,
}

/// An OAuth2 access token. `Debug` shows only its expiry.
#[derive(Clone)]
pub struct Token {
    access: SecretString,
    refresh: Option<SecretString>,
    expires_at: Option<DateTime<Utc>>,
    issued: DateTime<Utc>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("expires_at", &self.expires_at)
            .field("refreshable", &self.refresh.is_some())
            .finish_non_exhaustive()
    }
}

/// The persisted form, wiped from memory when dropped.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Stored {
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[zeroize(skip)]
    expires_at: Option<DateTime<Utc>>,
    #[zeroize(skip)]
    issued: DateTime<Utc>,
    /// Ties the token to the settings it was obtained with (see `TokenSource`).
    #[serde(default)]
    binding: String,
}

impl Token {
    /// A token as the token endpoint returned it at `now`. A missing `refresh_token`
    /// in a refresh response keeps the one used (RFC 6749 section 6).
    pub(super) fn from_response(
        r: &BasicTokenResponse,
        now: DateTime<Utc>,
        previous_refresh: Option<&SecretString>,
    ) -> Self {
        let expires_at = r
            .expires_in()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| now.checked_add_signed(d));
        Self {
            access: SecretString::from(r.access_token().secret().as_str()),
            refresh: r
                .refresh_token()
                .map(|t| SecretString::from(t.secret().as_str()))
                .or_else(|| previous_refresh.cloned()),
            expires_at,
            issued: now,
        }
    }

    /// The access token itself.
    pub fn access(&self) -> &SecretString {
        &self.access
    }

    /// The refresh token, when the server issued one.
    pub fn refresh(&self) -> Option<&SecretString> {
        self.refresh.as_ref()
    }

    /// When the token expires; `None` when the server did not say.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// When the token was obtained.
    pub fn issued(&self) -> DateTime<Utc> {
        self.issued
    }

    /// Without `expires_in` a token is taken as fresh until a target refuses it.
    pub(super) fn freshness(&self, now: DateTime<Utc>, ahead: std::time::Duration) -> Freshness {
        let Some(expires) = self.expires_at else {
            return Freshness::Fresh;
        };
        if expires <= now {
            return Freshness::Expired;
        }
        let ahead = chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::MAX);
        if expires - now <= ahead {
            Freshness::Ahead
        } else {
            Freshness::Fresh
        }
    }

    /// The same token marked expired, keeping its refresh token: used when a target
    /// answers 401 to it.
    pub(super) fn expired_copy(&self) -> Self {
        Self {
            expires_at: Some(DateTime::<Utc>::UNIX_EPOCH),
            ..self.clone()
        }
    }

    /// JSON for the vault.
    pub(super) fn to_stored(&self, binding: &str) -> Result<SecretString, String> {
        let stored = Stored {
            access_token: self.access.expose_secret().to_owned(),
            refresh_token: self.refresh.as_ref().map(|r| r.expose_secret().to_owned()),
            expires_at: self.expires_at,
            issued: self.issued,
            binding: binding.to_owned(),
        };
        serde_json::to_string(&stored)
            .map(SecretString::from)
            .map_err(|e| e.to_string())
    }

    /// Reads [`Token::to_stored`] output; `None` when unreadable or bound to other
    /// settings.
    pub(super) fn from_stored(json: &SecretString, binding: &str) -> Option<Self> {
        let stored: Stored = serde_json::from_str(json.expose_secret()).ok()?;
        (stored.binding == binding).then(|| Self {
            access: SecretString::from(stored.access_token.as_str()),
            refresh: stored.refresh_token.as_deref().map(SecretString::from),
            expires_at: stored.expires_at,
            issued: stored.issued,
        })
    }
}

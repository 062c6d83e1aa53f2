//! User accounts linked to a target through the authorization-code flow with PKCE
//! (RFC 6749 section 4.1, RFC 7636): the bridge then acts for that user, with the
//! user's tokens kept in the vault and refreshed on use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::error::OAuthError;
use super::exchange::TokenEndpoint;
use super::persist::TokenStore;
use super::token::{Freshness, Token};
use crate::clock::Clock;
use crate::entropy::Entropy;

/// How long a started link waits for its callback.
const PENDING_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// Settings for linking user accounts to one target.
#[derive(Clone)]
pub struct LinkerConfig {
    pub target: String,
    pub authorize_url: String,
    pub endpoint: TokenEndpoint,
    /// `{public_url}/link/{target}/callback`, registered with the provider.
    pub redirect_url: String,
    pub refresh_ahead: Duration,
}

/// A linked account as `link list` shows it: never its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkInfo {
    pub target: String,
    pub user: String,
    pub linked: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    pub refreshable: bool,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Pending {
    user: String,
    verifier: String,
    #[zeroize(skip)]
    expires: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Linked {
    user: String,
    #[zeroize(skip)]
    linked: DateTime<Utc>,
    /// [`Token`]'s stored form.
    token: String,
}

/// Starts, completes, refreshes and removes user links for one target.
pub struct Linker {
    cfg: LinkerConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    store: Arc<dyn TokenStore>,
    /// One refresh at a time per user.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Linker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linker")
            .field("target", &self.cfg.target)
            .finish_non_exhaustive()
    }
}

fn random_urlsafe(entropy: &dyn Entropy, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    entropy.fill(&mut buf);
    let out = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&buf);
    buf.zeroize();
    out
}

/// Secret names allow `[A-Za-z0-9._@-]`; anything else in a user name is `%XX`.
fn escape(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"._@-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Linker {
    /// A linker keeping pending links and tokens in `store`.
    pub fn new(
        cfg: LinkerConfig,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        store: Arc<dyn TokenStore>,
    ) -> Self {
        Self {
            cfg,
            http,
            clock,
            entropy,
            store,
            refreshing: Mutex::new(HashMap::new()),
        }
    }

    fn pending_prefix(&self) -> String {
        format!("link-pending.{}.", self.cfg.target)
    }

    fn link_name(&self, user: &str) -> String {
        format!("link.{}.{}", self.cfg.target, escape(user))
    }

    fn vault(e: String) -> OAuthError {
        OAuthError::Vault(e)
    }

    /// Begins linking `user`: stores a single-use state with its PKCE verifier and
    /// returns the provider URL to send the user's browser to.
    pub async fn start(&self, user: &str) -> Result<String, OAuthError> {
        let user = user.trim();
        if user.is_empty() || user.len() > 256 {
            return Err(OAuthError::Link(
                "a user name of 1 to 256 characters is required".into(),
            ));
        }
        self.sweep_pending().await;
        // 64 random bytes: an 86-character verifier, inside RFC 7636's 43..=128.
        let verifier = random_urlsafe(self.entropy.as_ref(), 64);
        let state = random_urlsafe(self.entropy.as_ref(), 32);
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
        let pending = Pending {
            user: user.to_owned(),
            verifier,
            expires: self.clock.now() + PENDING_TTL,
        };
        let json = serde_json::to_string(&pending).map_err(|e| OAuthError::Link(e.to_string()))?;
        self.store
            .save(
                &format!("{}{state}", self.pending_prefix()),
                &SecretString::from(json),
            )
            .await
            .map_err(Self::vault)?;
        let mut url = url::Url::parse(&self.cfg.authorize_url)
            .map_err(|e| OAuthError::Config(format!("authorize_url: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.cfg.endpoint.client_id)
                .append_pair("redirect_uri", &self.cfg.redirect_url)
                .append_pair("state", &state)
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", challenge.method().as_str());
            if !self.cfg.endpoint.scopes.is_empty() {
                q.append_pair("scope", &self.cfg.endpoint.scopes.join(" "));
            }
        }
        Ok(url.into())
    }

    /// Removes pending links past their expiry, so abandoned ones do not accumulate.
    async fn sweep_pending(&self) {
        let Ok(names) = self.store.names(&self.pending_prefix()).await else {
            return;
        };
        let now = self.clock.now();
        for name in names {
            let expired = match self.store.load(&name).await {
                Ok(Some(json)) => serde_json::from_str::<Pending>(json.expose_secret())
                    .map_or(true, |p| p.expires <= now),
                _ => false,
            };
            if expired {
                let _ = self.store.remove(&name).await;
            }
        }
    }

    /// Completes a link from the provider's callback; returns the linked user.
    pub async fn finish(&self, state: &str, code: &str) -> Result<String, OAuthError> {
        let valid_state = !state.is_empty()
            && state.len() <= 64
            && state
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_state {
            return Err(OAuthError::Link(
                "the callback's state is not one this bridge issued".into(),
            ));
        }
        let name = format!("{}{state}", self.pending_prefix());
        let json = self
            .store
            .load(&name)
            .await
            .map_err(Self::vault)?
            .ok_or_else(|| {
                OAuthError::Link("unknown or already used link; start again from /link".into())
            })?;
        // Single use, whatever happens next.
        self.store.remove(&name).await.map_err(Self::vault)?;
        let pending: Pending = serde_json::from_str(json.expose_secret())
            .map_err(|_| OAuthError::Link("the pending link is damaged; start again".into()))?;
        if pending.expires <= self.clock.now() {
            return Err(OAuthError::Link(
                "the link expired before the callback; start again".into(),
            ));
        }
        let response = self
            .cfg
            .endpoint
            .code(&self.http, code, &pending.verifier, &self.cfg.redirect_url)
            .await?;
        let token = Token::from_response(&response, self.clock.now(), None);
        self.save(&pending.user, &token, self.clock.now()).await?;
        Ok(pending.user.clone())
    }

    async fn save(
        &self,
        user: &str,
        token: &Token,
        linked: DateTime<Utc>,
    ) -> Result<(), OAuthError> {
        let linked = Linked {
            user: user.to_owned(),
            linked,
            token: token
                .to_stored(user)
                .map_err(OAuthError::Link)?
                .expose_secret()
                .to_owned(),
        };
        let json = serde_json::to_string(&linked).map_err(|e| OAuthError::Link(e.to_string()))?;
        self.store
            .save(&self.link_name(user), &SecretString::from(json))
            .await
            .map_err(Self::vault)
    }

    async fn load(&self, name: &str) -> Result<Option<(Linked, Token)>, OAuthError> {
        let Some(json) = self.store.load(name).await.map_err(Self::vault)? else {
            return Ok(None);
        };
        let linked: Linked = serde_json::from_str(json.expose_secret())
            .map_err(|_| OAuthError::Link(format!("the stored link {name} is damaged")))?;
        let token = Token::from_stored(&SecretString::from(linked.token.as_str()), &linked.user)
            .ok_or_else(|| OAuthError::Link(format!("the stored link {name} is damaged")))?;
        Ok(Some((linked, token)))
    }

    /// `user`'s access token, refreshed first when it is expired or about to be.
    pub async fn access_token(&self, user: &str) -> Result<SecretString, OAuthError> {
        let name = self.link_name(user);
        let lock = {
            let mut map = match self.refreshing.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            Arc::clone(map.entry(name.clone()).or_default())
        };
        let _one_at_a_time = lock.lock().await;
        let (linked, token) = self.load(&name).await?.ok_or_else(|| {
            OAuthError::Link(format!(
                "{user} has not linked an account to {}",
                self.cfg.target
            ))
        })?;
        if token.freshness(self.clock.now(), self.cfg.refresh_ahead) == Freshness::Fresh {
            return Ok(token.access().clone());
        }
        let Some(refresh) = token.refresh() else {
            if token.freshness(self.clock.now(), Duration::ZERO) != Freshness::Expired {
                return Ok(token.access().clone());
            }
            return Err(OAuthError::Link(format!(
                "{user}'s link to {} expired and cannot be refreshed; link again",
                self.cfg.target
            )));
        };
        let response = self.cfg.endpoint.refresh(&self.http, refresh).await?;
        let fresh = Token::from_response(&response, self.clock.now(), Some(refresh));
        self.save(&linked.user, &fresh, linked.linked).await?;
        Ok(fresh.access().clone())
    }

    /// Every linked account of this target.
    pub async fn list(&self) -> Result<Vec<LinkInfo>, OAuthError> {
        let prefix = format!("link.{}.", self.cfg.target);
        let mut out = Vec::new();
        for name in self.store.names(&prefix).await.map_err(Self::vault)? {
            if let Some((linked, token)) = self.load(&name).await? {
                out.push(LinkInfo {
                    target: self.cfg.target.clone(),
                    user: linked.user.clone(),
                    linked: linked.linked,
                    expires: token.expires_at(),
                    refreshable: token.refresh().is_some(),
                });
            }
        }
        Ok(out)
    }

    /// Forgets `user`'s tokens; `false` when there were none.
    pub async fn revoke(&self, user: &str) -> Result<bool, OAuthError> {
        self.store
            .remove(&self.link_name(user))
            .await
            .map_err(Self::vault)
    }
}

//! User accounts linked to a target through the authorization-code flow with PKCE
//! (RFC 6749 section 4.1, RFC 7636): the bridge then acts for that user, with the
//! user's tokens kept in the vault and refreshed on use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// After a refused refresh, how long to look for the pair another instance stored
/// (steps of `ROTATION_WAIT_STEP`).
const ROTATION_WAIT_STEPS: u32 = 20;
const ROTATION_WAIT_STEP: Duration = Duration::from_millis(100);

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
    /// The provider's RFC 7009 revocation endpoint, when it has one.
    pub revoke_url: Option<String>,
    /// Who approved a link, checked before it is kept; `None`: the provider cannot be
    /// asked, so a link is taken on trust (the README says so).
    pub approver: Option<Arc<dyn Approver>>,
}

/// Tells who a link's tokens act as, and who a person is at the provider, so a link
/// started for one person and approved by another is refused.
#[async_trait::async_trait]
pub trait Approver: Send + Sync {
    /// The account `access` acts as at the provider (iManage: `GET /api` `data.user.id`).
    async fn approver(&self, access: &SecretString) -> Result<String, OAuthError>;
    /// The provider accounts `user` (the person the link was started for) has: their
    /// recorded or mapped id. Compared ignoring case.
    async fn expected(&self, user: &str) -> Result<Vec<String>, OAuthError>;
}

/// What `revoke` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// There was no link to revoke.
    NoLink,
    /// Revoked at the provider, then forgotten here.
    AtProvider,
    /// Forgotten here; the provider has no revocation endpoint configured, so the
    /// tokens stay valid there until they expire.
    LocallyOnly,
}

/// A linked account as `link list` and `link status` show it: never its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkStatus {
    pub target: String,
    pub user: String,
    pub linked: DateTime<Utc>,
    /// When the access token expires (`None`: the provider did not say).
    pub expires: Option<DateTime<Utc>>,
    pub refreshable: bool,
    /// When the tokens were last refreshed (`None`: never since linking).
    pub refreshed: Option<DateTime<Utc>>,
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
    /// When the tokens were last refreshed.
    #[zeroize(skip)]
    #[serde(default)]
    refreshed: Option<DateTime<Utc>>,
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
    /// Refreshes that failed, for `/metrics`: a person's link then needs attention.
    refresh_failures: AtomicU64,
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
            refresh_failures: AtomicU64::new(0),
        }
    }

    fn pending_prefix(&self) -> String {
        format!("link-pending.{}.", self.cfg.target)
    }

    /// A pending link's secret name. The state is the browser's proof of the link, so
    /// only its hash is kept in a name (names are not encrypted; values are).
    fn pending_name(&self, state: &str) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(state.as_bytes());
        format!("{}{}", self.pending_prefix(), hex::encode(&digest[..16]))
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
            .save(&self.pending_name(&state), &SecretString::from(json))
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

    /// Removes pending links past their expiry, so abandoned ones do not accumulate;
    /// the daemon calls it every minute, and every new link start does too. Returns how
    /// many went.
    pub async fn sweep_pending(&self) -> usize {
        let Ok(names) = self.store.names(&self.pending_prefix()).await else {
            return 0;
        };
        let now = self.clock.now();
        let mut swept = 0;
        for name in names {
            let expired = match self.store.load(&name).await {
                Ok(Some(json)) => serde_json::from_str::<Pending>(json.expose_secret())
                    .map_or(true, |p| p.expires <= now),
                _ => false,
            };
            if expired && self.store.remove(&name).await.unwrap_or(false) {
                swept += 1;
            }
        }
        swept
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
        let name = self.pending_name(state);
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
            .code(
                &self.http,
                self.clock.as_ref(),
                code,
                &pending.verifier,
                &self.cfg.redirect_url,
            )
            .await?;
        let token = Token::from_response(&response, self.clock.now(), None);
        if let Err(e) = self.check_approver(&pending.user, &token).await {
            // Tokens that are not the person's are never kept, and never left valid.
            let revoked = self.revoke_at_provider(&token).await;
            let note = match revoked {
                Ok(true) => "; the tokens were revoked at the provider",
                Ok(false) => {
                    "; the provider has no revocation endpoint configured, so its tokens expire on their own"
                }
                Err(_) => {
                    "; revoking its tokens at the provider failed, so they expire on their own"
                }
            };
            return Err(OAuthError::Link(format!("{e}{note}")));
        }
        self.save(&pending.user, &token, self.clock.now(), None)
            .await?;
        Ok(pending.user.clone())
    }

    /// Refuses a link approved at the provider by someone other than the person it was
    /// started for: their tokens would let one person act with another's rights.
    async fn check_approver(&self, user: &str, token: &Token) -> Result<(), OAuthError> {
        let Some(approver) = &self.cfg.approver else {
            return Ok(());
        };
        let who = approver.approver(token.access()).await.map_err(|e| {
            OAuthError::Link(format!(
                "the link for {user} was not kept: {} could not say who approved it ({e})",
                self.cfg.target
            ))
        })?;
        let expected = approver.expected(user).await?;
        if expected.iter().any(|e| e.eq_ignore_ascii_case(&who)) {
            return Ok(());
        }
        Err(OAuthError::Link(format!(
            "the link was started for {user} (at {} {}) but approved by {who}: not kept; {user} must sign in as themselves",
            self.cfg.target,
            if expected.is_empty() {
                "unknown".to_owned()
            } else {
                expected.join(" or ")
            }
        )))
    }

    /// Revokes a token pair at the provider (refresh token first: RFC 7009 has that
    /// end the whole grant); `Ok(false)` when no revocation endpoint is configured.
    async fn revoke_at_provider(&self, token: &Token) -> Result<bool, OAuthError> {
        let Some(url) = &self.cfg.revoke_url else {
            return Ok(false);
        };
        if let Some(refresh) = token.refresh() {
            self.cfg
                .endpoint
                .revoke(&self.http, url, refresh, "refresh_token")
                .await?;
        }
        self.cfg
            .endpoint
            .revoke(&self.http, url, token.access(), "access_token")
            .await?;
        Ok(true)
    }

    /// Stores the link in one vault write, so a rotated refresh token and its access
    /// token are replaced together or not at all.
    async fn save(
        &self,
        user: &str,
        token: &Token,
        linked: DateTime<Utc>,
        refreshed: Option<DateTime<Utc>>,
    ) -> Result<(), OAuthError> {
        let linked = Linked {
            user: user.to_owned(),
            linked,
            refreshed,
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

    /// The per-user lock: one refresh at a time for a user, whoever asks.
    fn user_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = match self.refreshing.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        Arc::clone(map.entry(name.to_owned()).or_default())
    }

    fn not_linked(&self, user: &str) -> OAuthError {
        OAuthError::Link(format!(
            "{user} has not linked an account to {}",
            self.cfg.target
        ))
    }

    /// `user`'s access token, refreshed first when it is expired or about to be.
    /// Concurrent callers share one refresh (the per-user lock), and the rotated
    /// refresh token is stored with its access token in one write.
    pub async fn access_token(&self, user: &str) -> Result<SecretString, OAuthError> {
        let name = self.link_name(user);
        let lock = self.user_lock(&name);
        let _one_at_a_time = lock.lock().await;
        let (linked, token) = self
            .load(&name)
            .await?
            .ok_or_else(|| self.not_linked(user))?;
        if token.freshness(self.clock.now(), self.cfg.refresh_ahead) == Freshness::Fresh {
            return Ok(token.access().clone());
        }
        if token.refresh().is_none()
            && token.freshness(self.clock.now(), Duration::ZERO) != Freshness::Expired
        {
            return Ok(token.access().clone());
        }
        self.refresh_locked(&linked, &token).await
    }

    /// After the provider refused `rejected` (a 401: iManage ends tokens after
    /// inactivity, before their expiry): a new access token, unless another caller
    /// already replaced the rejected one.
    pub async fn refresh_rejected(
        &self,
        user: &str,
        rejected: &SecretString,
    ) -> Result<SecretString, OAuthError> {
        let name = self.link_name(user);
        let lock = self.user_lock(&name);
        let _one_at_a_time = lock.lock().await;
        let (linked, token) = self
            .load(&name)
            .await?
            .ok_or_else(|| self.not_linked(user))?;
        if token.access().expose_secret() != rejected.expose_secret() {
            return Ok(token.access().clone());
        }
        self.refresh_locked(&linked, &token).await
    }

    /// Refreshes with the user's refresh token; the caller holds the user's lock.
    async fn refresh_locked(
        &self,
        linked: &Linked,
        token: &Token,
    ) -> Result<SecretString, OAuthError> {
        let Some(refresh) = token.refresh() else {
            self.refresh_failures.fetch_add(1, Ordering::Relaxed);
            return Err(OAuthError::Link(format!(
                "{}'s link to {} expired and cannot be refreshed; link again",
                linked.user, self.cfg.target
            )));
        };
        let response = match self
            .cfg
            .endpoint
            .refresh(&self.http, self.clock.as_ref(), refresh)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // Another instance sharing the database may have refreshed first: the
                // provider then refuses the rotated-away refresh token, and that
                // instance stores the new pair moments after its answer.
                let name = self.link_name(&linked.user);
                for _ in 0..ROTATION_WAIT_STEPS {
                    if let Some((_, stored)) = self.load(&name).await?
                        && stored.refresh().map(ExposeSecret::expose_secret)
                            != Some(refresh.expose_secret())
                    {
                        return Ok(stored.access().clone());
                    }
                    if !matches!(e, OAuthError::Refused { .. }) {
                        break;
                    }
                    tokio::time::sleep(ROTATION_WAIT_STEP).await;
                }
                self.refresh_failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let now = self.clock.now();
        let fresh = Token::from_response(&response, now, Some(refresh));
        self.save(&linked.user, &fresh, linked.linked, Some(now))
            .await?;
        tracing::info!(target_name = %self.cfg.target, user = %linked.user, "linked account's tokens refreshed");
        Ok(fresh.access().clone())
    }

    /// Every linked account of this target.
    pub async fn list(&self) -> Result<Vec<LinkStatus>, OAuthError> {
        let prefix = format!("link.{}.", self.cfg.target);
        let mut out = Vec::new();
        for name in self.store.names(&prefix).await.map_err(Self::vault)? {
            if let Some(found) = self.load(&name).await? {
                out.push(self.shown(&found));
            }
        }
        Ok(out)
    }

    /// How many accounts are linked to this target, from the vault's names alone
    /// (nothing decrypted): read at every `/metrics` scrape.
    pub async fn linked_count(&self) -> Result<usize, OAuthError> {
        let prefix = format!("link.{}.", self.cfg.target);
        Ok(self.store.names(&prefix).await.map_err(Self::vault)?.len())
    }

    /// Refreshes of linked accounts' tokens that failed since start.
    pub fn refresh_failures(&self) -> u64 {
        self.refresh_failures.load(Ordering::Relaxed)
    }

    /// Whether `user` has a link, from the vault's names alone (nothing decrypted):
    /// asked on every request made for a person.
    pub async fn is_linked(&self, user: &str) -> Result<bool, OAuthError> {
        let name = self.link_name(user);
        Ok(self
            .store
            .names(&name)
            .await
            .map_err(Self::vault)?
            .contains(&name))
    }

    /// `user`'s link, if any: when linked, token expiry and last refresh.
    pub async fn status(&self, user: &str) -> Result<Option<LinkStatus>, OAuthError> {
        Ok(self
            .load(&self.link_name(user))
            .await?
            .map(|found| self.shown(&found)))
    }

    /// A stored link as people see it.
    fn shown(&self, (linked, token): &(Linked, Token)) -> LinkStatus {
        LinkStatus {
            target: self.cfg.target.clone(),
            user: linked.user.clone(),
            linked: linked.linked,
            expires: token.expires_at(),
            refreshable: token.refresh().is_some(),
            refreshed: linked.refreshed,
        }
    }

    /// Ends `user`'s link: its tokens are revoked at the provider (RFC 7009) where a
    /// revocation endpoint is configured, then forgotten. A revocation the provider
    /// refuses or cannot take keeps the link, so it can be tried again.
    pub async fn revoke(&self, user: &str) -> Result<Revoked, OAuthError> {
        let name = self.link_name(user);
        let lock = self.user_lock(&name);
        let _one_at_a_time = lock.lock().await;
        let Some((_, token)) = self.load(&name).await? else {
            return Ok(Revoked::NoLink);
        };
        let at_provider = self.revoke_at_provider(&token).await?;
        self.store.remove(&name).await.map_err(Self::vault)?;
        Ok(if at_provider {
            Revoked::AtProvider
        } else {
            Revoked::LocallyOnly
        })
    }

    /// The URL that starts linking `user` (an admin opens it, or sends it to them).
    pub fn link_url(&self, public_url: &str, user: &str) -> String {
        let mut url = format!(
            "{}/link/{}",
            public_url.trim_end_matches('/'),
            self.cfg.target
        );
        url.push_str("?user=");
        url.push_str(&url::form_urlencoded::byte_serialize(user.as_bytes()).collect::<String>());
        url
    }

    pub fn target(&self) -> &str {
        &self.cfg.target
    }
}

//! A cached, single-flight token source for one target.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::error::OAuthError;
use super::exchange::TokenEndpoint;
use super::persist::TokenStore;
use super::token::{Freshness, Token};
use crate::clock::Clock;
use crate::delivery::Pacer;

/// How the bridge proves who it is at the token endpoint.
#[derive(Clone)]
pub enum Grant {
    /// RFC 6749 section 4.4.
    ClientCredentials,
    /// RFC 6749 section 4.3: a service account, as some iManage deployments require.
    Password {
        /// The account.
        username: String,
        /// Its password.
        password: SecretString,
    },
}

/// Everything a [`TokenSource`] needs to know about its token endpoint.
#[derive(Clone)]
pub struct SourceConfig {
    /// The target's name: used for the vault entry and in messages.
    pub target: String,
    pub endpoint: TokenEndpoint,
    pub grant: Grant,
    /// A token this close to expiry is refreshed before use.
    pub refresh_ahead: Duration,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("target", &self.target)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// What `/readyz` and `status` show about a target's credentials.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuthHealth {
    /// `pending` (no token requested yet), `ok` or `error`.
    pub state: &'static str,
    /// The last failure, with the server's error code and description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the state last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Expiry of the current token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_expires: Option<DateTime<Utc>>,
    /// Token requests sent since start.
    pub token_requests: u64,
}

/// The outcome of the last refresh, shared with callers that waited for it.
struct Attempt {
    last_error: Option<OAuthError>,
    /// The token endpoint's `Retry-After` as an instant: until then `last_error` is
    /// the answer and no request is sent.
    not_before: Option<DateTime<Utc>>,
}

impl Attempt {
    /// Whether the token endpoint's `Retry-After` has not passed yet.
    fn resting(&self, now: DateTime<Utc>) -> bool {
        self.not_before.is_some_and(|until| now < until)
    }
}

/// Hands out access tokens for one target.
///
/// The token is cached until `refresh_ahead` before its expiry. Inside that window
/// one caller refreshes while the others keep using the still-valid token; once it
/// has expired, callers queue behind a single refresh and share its outcome, so 100
/// concurrent callers cause one token request. A refresh token, when issued, is used
/// before the primary grant.
pub struct TokenSource {
    cfg: SourceConfig,
    binding: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    store: Option<Arc<dyn TokenStore>>,
    cached: RwLock<Option<Arc<Token>>>,
    refresh: tokio::sync::Mutex<Attempt>,
    /// Bumped when a refresh finishes; tells a waiter whether one finished meanwhile.
    generation: AtomicU64,
    loaded: tokio::sync::OnceCell<()>,
    health: Mutex<AuthHealth>,
    requests: AtomicU64,
    /// Token requests that failed, for `/metrics` (an alert watches its increase).
    failures: AtomicU64,
    /// The target's pacer, when the token endpoint counts against the target's rate
    /// limit (same host): each token request waits for a slot like any other request.
    pacer: Option<Arc<Pacer>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("target", &self.cfg.target)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source that persists its token through `store` (normally the vault).
    pub fn new(
        cfg: SourceConfig,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        store: Option<Arc<dyn TokenStore>>,
    ) -> Self {
        Self {
            binding: binding(&cfg),
            cfg,
            http,
            clock,
            store,
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(Attempt {
                last_error: None,
                not_before: None,
            }),
            generation: AtomicU64::new(0),
            loaded: tokio::sync::OnceCell::new(),
            health: Mutex::new(AuthHealth {
                state: "pending",
                error: None,
                since: None,
                token_expires: None,
                token_requests: 0,
            }),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            pacer: None,
        }
    }

    /// Token requests wait for `pacer`: for a token endpoint on the target's own host,
    /// whose rate limit counts them.
    pub fn with_pacer(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = Some(pacer);
        self
    }

    /// The target this source serves.
    pub fn target(&self) -> &str {
        &self.cfg.target
    }

    /// The vault entry holding this source's token.
    pub fn vault_name(&self) -> String {
        format!("oauth.{}", self.cfg.target)
    }

    /// Token requests sent since start.
    pub fn token_requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Token requests (refresh or grant) that failed since start.
    pub fn token_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// State for `/readyz`.
    pub fn health(&self) -> AuthHealth {
        let mut h = match self.health.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        };
        h.token_requests = self.token_requests();
        h.token_expires = self.current().and_then(|t| t.expires_at());
        h
    }

    fn current(&self) -> Option<Arc<Token>> {
        match self.cached.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_current(&self, token: Option<Arc<Token>>) {
        match self.cached.write() {
            Ok(mut c) => *c = token,
            Err(p) => *p.into_inner() = token,
        }
    }

    /// A usable access token: cached, loaded from the vault, refreshed or newly issued.
    pub async fn get(&self) -> Result<Arc<Token>, OAuthError> {
        self.loaded.get_or_init(|| self.load_persisted()).await;
        let current = self.current();
        if let Some(token) = &current {
            match token.freshness(self.clock.now(), self.cfg.refresh_ahead) {
                Freshness::Fresh => return Ok(Arc::clone(token)),
                Freshness::Ahead => {
                    // Another caller is refreshing: this token is still good.
                    let Ok(mut attempt) = self.refresh.try_lock() else {
                        return Ok(Arc::clone(token));
                    };
                    if let Some(newer) = self.current()
                        && !Arc::ptr_eq(&newer, token)
                    {
                        return Ok(newer);
                    }
                    if attempt.resting(self.clock.now()) {
                        return Ok(Arc::clone(token));
                    }
                    // A failed early refresh is not the caller's problem yet.
                    return Ok(self
                        .fetch(&mut attempt, Some(token))
                        .await
                        .unwrap_or_else(|_| Arc::clone(token)));
                }
                Freshness::Expired => {}
            }
        }
        let seen = self.generation.load(Ordering::Acquire);
        let mut attempt = self.refresh.lock().await;
        if let Some(token) = self.current()
            && token.freshness(self.clock.now(), self.cfg.refresh_ahead) != Freshness::Expired
        {
            return Ok(token);
        }
        // A refresh finished while we waited and failed: share its answer rather than
        // sending one more request per waiter to an endpoint that just refused.
        if self.generation.load(Ordering::Acquire) != seen
            && let Some(e) = &attempt.last_error
        {
            return Err(e.clone());
        }
        // The endpoint asked to be left alone for a while: its last answer stands, with
        // the time still to wait, so a delivery backs off by that and not by less.
        let now = self.clock.now();
        if attempt.resting(now)
            && let (Some(e), Some(until)) = (&attempt.last_error, attempt.not_before)
        {
            return Err(e.waiting((until - now).to_std().unwrap_or_default()));
        }
        let previous = self.current();
        self.fetch(&mut attempt, previous.as_ref()).await
    }

    /// Called with the token a target answered 401 to: the next [`TokenSource::get`]
    /// obtains a new one. Tokens other than the cached one are ignored, so a burst of
    /// 401s for the same token causes one refresh.
    pub fn invalidate(&self, used: &Arc<Token>) {
        let mut cached = match self.cached.write() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if let Some(current) = cached.as_ref()
            && Arc::ptr_eq(current, used)
        {
            *cached = Some(Arc::new(current.expired_copy()));
        }
    }

    async fn fetch(
        &self,
        attempt: &mut Attempt,
        previous: Option<&Arc<Token>>,
    ) -> Result<Arc<Token>, OAuthError> {
        let result = self.request(previous).await.map(Arc::new);
        let now = self.clock.now();
        self.generation.fetch_add(1, Ordering::AcqRel);
        match &result {
            Ok(token) => {
                self.set_current(Some(Arc::clone(token)));
                attempt.last_error = None;
                attempt.not_before = None;
                self.record(now, None);
                self.persist(token).await;
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                attempt.last_error = Some(e.clone());
                attempt.not_before = e
                    .retry_after()
                    .and_then(|r| chrono::Duration::from_std(r).ok())
                    .map(|r| now + r);
                self.record(now, Some(e.to_string()));
            }
        }
        result
    }

    /// Updates the health state, logging only changes so a dead endpoint does not
    /// flood the journal.
    fn record(&self, now: DateTime<Utc>, error: Option<String>) {
        let mut health = match self.health.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        match error {
            None if health.state == "ok" => {}
            None => {
                if health.state == "error" {
                    tracing::info!(target_name = %self.cfg.target, "token endpoint works again");
                }
                health.state = "ok";
                health.error = None;
                health.since = Some(now);
            }
            Some(message) => {
                if health.error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(target_name = %self.cfg.target, error = %message, "cannot obtain an access token");
                    health.state = "error";
                    health.error = Some(message);
                    health.since = Some(now);
                }
            }
        }
    }

    async fn request(&self, previous: Option<&Arc<Token>>) -> Result<Token, OAuthError> {
        if let Some(refresh) = previous.and_then(|p| p.refresh()) {
            self.pace().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            match self
                .cfg
                .endpoint
                .refresh(&self.http, self.clock.as_ref(), refresh)
                .await
            {
                Ok(r) => return Ok(Token::from_response(&r, self.clock.now(), Some(refresh))),
                // The refresh token expired or was revoked: start over with the grant.
                Err(OAuthError::Refused { code, .. }) if code == "invalid_grant" => {
                    tracing::info!(target_name = %self.cfg.target, "refresh token refused; requesting a new token");
                }
                Err(e) => return Err(e),
            }
        }
        self.pace().await;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = match &self.cfg.grant {
            Grant::ClientCredentials => {
                self.cfg
                    .endpoint
                    .client_credentials(&self.http, self.clock.as_ref())
                    .await?
            }
            Grant::Password { username, password } => {
                self.cfg
                    .endpoint
                    .password(&self.http, self.clock.as_ref(), username, password)
                    .await?
            }
        };
        Ok(Token::from_response(&response, self.clock.now(), None))
    }

    async fn pace(&self) {
        if let Some(p) = &self.pacer {
            p.wait().await;
        }
    }

    async fn load_persisted(&self) {
        let Some(store) = &self.store else { return };
        match store.load(&self.vault_name()).await {
            Ok(Some(json)) => match Token::from_stored(&json, &self.binding) {
                Some(token) => {
                    tracing::debug!(target_name = %self.cfg.target, "reusing the access token kept in the vault");
                    self.set_current(Some(Arc::new(token)));
                    self.record(self.clock.now(), None);
                }
                None => {
                    tracing::info!(target_name = %self.cfg.target, "the stored access token was issued for other settings; requesting a new one")
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target_name = %self.cfg.target, error = %e, "cannot read the stored access token")
            }
        }
    }

    async fn persist(&self, token: &Token) {
        let Some(store) = &self.store else { return };
        let saved = match token.to_stored(&self.binding) {
            Ok(json) => store.save(&self.vault_name(), &json).await,
            Err(e) => Err(e),
        };
        if let Err(e) = saved {
            // The token still works from memory; the cost is one more request after a restart.
            tracing::warn!(target_name = %self.cfg.target, error = %e, "cannot keep the access token in the vault");
        }
    }

    /// Keeps the token fresh in the background so deliveries rarely wait for one, and
    /// so a broken token endpoint shows on `/readyz` before a change needs it.
    pub async fn keep_fresh(self: Arc<Self>) {
        let mut failures: u32 = 0;
        loop {
            let wait = match self.get().await {
                Ok(token) => {
                    failures = 0;
                    let ahead =
                        chrono::Duration::from_std(self.cfg.refresh_ahead).unwrap_or_default();
                    token
                        .expires_at()
                        .map(|e| e - ahead - self.clock.now())
                        .and_then(|d| d.to_std().ok())
                        .unwrap_or(Duration::from_secs(3600))
                        .clamp(Duration::from_secs(1), Duration::from_secs(3600))
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    Duration::from_secs(5u64.saturating_mul(1 << failures.min(6)))
                        .min(Duration::from_secs(300))
                        // Never sooner than the endpoint asked.
                        .max(e.retry_after().unwrap_or_default())
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Identifies the settings a token was obtained with, so a changed client id, token
/// URL, scope or account does not reuse a token kept from before.
fn binding(cfg: &SourceConfig) -> String {
    let mut h = Sha256::new();
    for part in [
        cfg.endpoint.token_url.as_str(),
        cfg.endpoint.client_id.as_str(),
        &cfg.endpoint.scopes.join(" "),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    if let Grant::Password { username, .. } = &cfg.grant {
        h.update(b"password\0");
        h.update(username.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

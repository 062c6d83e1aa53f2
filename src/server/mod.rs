//! The HTTP face of the daemon (axum): per-provider SCIM bases, health, metrics.
//! Handlers are thin: they authenticate, decode, call [`Directory`] and encode.

mod audit_routes;
mod auth;
mod body;
mod call;
mod conn;
mod health;
pub mod heap;
mod link_routes;
mod live;
mod log_routes;
mod netpolicy;
mod respond;
mod scim_routes;
mod store_counts;
mod target_metrics;
mod tls;
mod workspace_routes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tracing::Instrument;

use crate::clock::Clock;
use crate::delivery::{DeliveryCounters, Pacer, ReconcileReport};
use crate::directory::Directory;
use crate::entropy::{Entropy, RequestIds};
use crate::metrics::Metrics;
use crate::oauth::{Linker, TokenSource};
use crate::resolver::Resolver;
use crate::scim::ScimError;

pub use conn::{ConnectionLimits, Encrypted, Listener, PeerAddr, serve};
pub use live::Live;
pub use netpolicy::NetworkPolicy;
pub use respond::SCIM_JSON;
pub use tls::{CertStore, TlsError};

/// HTTP settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Externally visible base URL (`https://bridge.example.com`), for `meta.location`.
    pub public_url: String,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Longest a request may take before 503.
    pub request_timeout: Duration,
}

impl Settings {
    /// The absolute SCIM base URL of `provider`, for `meta.location`.
    pub fn scim_base(&self, provider: &str) -> String {
        format!("{}/scim/v2/{}", self.public_url, provider)
    }
}

/// Shared state of every request.
pub struct AppState {
    /// The SCIM resource service.
    pub directory: Arc<Directory>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Randomness (console sessions and their CSRF tokens).
    pub entropy: Arc<dyn Entropy>,
    /// Ids for requests that come without an `X-Request-Id`.
    request_ids: RequestIds,
    /// HTTP settings.
    pub settings: Settings,
    /// Which client networks may call the SCIM bases and the admin API; a reload
    /// replaces it.
    pub network: Live<NetworkPolicy>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Set when shutdown starts, so `/readyz` turns 503 and load balancers drain us.
    pub shutting_down: AtomicBool,
    /// Vault state for `/readyz` (`"not configured"`, `"unlocked"`).
    pub vault_state: String,
    /// Downstream targets' credentials, for `/readyz` and `/link`; a reload that
    /// rebuilds targets replaces them.
    pub targets: Live<Vec<TargetHandle>>,
    /// Workspace resolution, when repositories are configured; rebuilt on reload.
    pub resolver: Live<Option<Arc<Resolver>>>,
    /// The provisioning log's audit chain: its export and its state for `/metrics`.
    pub audit: Option<Arc<crate::journal::Journal>>,
    /// When this state was made (the daemon's start), on its clock: the console's
    /// per-minute counts begin here.
    pub started_at: DateTime<Utc>,
    started: Instant,
    token_use: Mutex<HashMap<String, DateTime<Utc>>>,
    /// The store's counts as `/readyz` and `/metrics` last took them.
    counts: store_counts::RecentCounts,
    /// /Bulk requests processed at once; see [`BULK_AT_ONCE`].
    pub(crate) bulk_gate: tokio::sync::Semaphore,
}

/// /Bulk requests read and processed at once; the others wait their turn, their
/// bodies still unread. Each holds up to `bulk_max_operations` parsed operations and
/// their results: 32 clients each sending 1,000 at once took the daemon to 410 MB
/// resident while they ran. Their writes go through the one writer in any case, so
/// a few at a time still share its commits.
pub(crate) const BULK_AT_ONCE: usize = 8;

/// What the server shows and serves of a target: its token source, user-link flow
/// and delivery counters, when it has them.
#[derive(Debug, Clone)]
pub struct TargetHandle {
    /// The target's name.
    pub name: String,
    /// Its OAuth2 token source.
    pub source: Option<Arc<TokenSource>>,
    /// Its authorization-code flow for linking user accounts.
    pub linker: Option<Arc<Linker>>,
    /// Its delivery engine's counters, when changes are delivered to it.
    pub delivery: Option<Arc<DeliveryCounters>>,
    /// Its scheduled reconciliation, when it has a schedule.
    pub reconcile: Option<Arc<Mutex<ReconcileReport>>>,
    /// Deliveries held until the admin removes `paused` from its config.
    pub paused: bool,
    /// Its delivery engine, for a delivery an operator asks for now; none while
    /// paused or when nothing is delivered to it.
    pub engine: Option<Arc<crate::delivery::Engine>>,
    /// Its reconciliation, for a dry run or an apply an operator asks for.
    pub reconciler: Option<Arc<crate::delivery::Reconciler>>,
    /// Its request-rate ceiling, shared by its client and, when the token endpoint is
    /// on the target's host, its token source.
    pub pacer: Arc<Pacer>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for a server over `directory`.
    pub fn new(
        directory: Arc<Directory>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        settings: Settings,
        vault_state: String,
    ) -> Self {
        AppState {
            started_at: clock.now(),
            directory,
            clock,
            request_ids: RequestIds::new(entropy.as_ref()),
            entropy,
            settings,
            network: Live::default(),
            metrics: Metrics::default(),
            shutting_down: AtomicBool::new(false),
            vault_state,
            targets: Live::default(),
            resolver: Live::default(),
            audit: None,
            started: Instant::now(),
            token_use: Mutex::new(HashMap::new()),
            counts: store_counts::RecentCounts::default(),
            bulk_gate: tokio::sync::Semaphore::new(BULK_AT_ONCE),
        }
    }

    /// The same state with workspace resolution.
    pub fn with_resolver(self, resolver: Option<Arc<Resolver>>) -> Self {
        self.resolver.set(resolver);
        self
    }

    /// The same state with the audit chain.
    pub fn with_audit(mut self, journal: Arc<crate::journal::Journal>) -> Self {
        self.audit = Some(journal);
        self
    }

    /// The same state with client-network allow-lists.
    pub fn with_network(self, network: NetworkPolicy) -> Self {
        self.network.set(network);
        self
    }

    /// The same state with downstream targets' credentials.
    pub fn with_targets(self, targets: Vec<TargetHandle>) -> Self {
        self.targets.set(targets);
        self
    }

    /// Writes buffered token last-use times to the store. Called periodically and at
    /// shutdown; losing a few seconds of "last used" on a crash is acceptable, a write
    /// per request is not.
    pub async fn flush_token_use(&self) {
        let used: Vec<_> = match self.token_use.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => return,
        };
        if let Err(e) = self.directory.record_token_use(used).await {
            tracing::warn!(error = %e, "could not record token use");
        }
    }

    /// Notes that token `id` was used at `at` (written with the next flush), for
    /// sign-ins that check a token outside [`check_bearer`](auth::check_bearer).
    pub fn note_token_use(&self, id: String, at: DateTime<Utc>) {
        if let Ok(mut m) = self.token_use.lock() {
            m.insert(id, at);
        }
    }

    /// Marks shutdown: `/readyz` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}

/// Identifies a request in logs, responses (`X-Request-Id`) and change events.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, None)
}

/// The whole application, with `extra` (a path prefix and what serves it, such as
/// the console under `/ui`) served beside it under the same network policy, request
/// ids, timeout and access log.
pub fn router_with(state: Arc<AppState>, extra: Option<(&str, Router)>) -> Router {
    let mut app = Router::new()
        .merge(health::routes())
        .merge(link_routes::routes())
        .merge(workspace_routes::routes())
        .merge(log_routes::routes())
        .merge(audit_routes::routes())
        .nest(
            "/scim/v2/{provider}",
            scim_routes::routes(Arc::clone(&state)),
        );
    if let Some((prefix, service)) = extra {
        app = app.nest_service(prefix, service);
    }
    let app = app.fallback(|| async {
        ScimError::not_found("no such endpoint; SCIM bases are /scim/v2/{provider}")
    });
    layered(state, app)
}

/// `app` behind the network policy, with request ids, timeout and access log: what
/// every listener of the daemon serves through, its own or the console's.
pub fn layered(state: Arc<AppState>, app: Router<Arc<AppState>>) -> Router {
    app.layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state)
}

/// Request id, span, timeout, access log and metrics around every request, and
/// inside them the network policy ([`netpolicy::refusal`]).
async fn observe(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| state.request_ids.next());
    req.extensions_mut().insert(RequestId(id.clone()));
    // Cloned, not turned into strings: a standard method and a matched path are
    // shared, so neither allocates on each request.
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let path = req.uri().path().to_owned();
    // Reads are the bulk of IdP traffic (Entra looks every user up before each change)
    // and change nothing: their request line is debug unless they fail. Writes and
    // failures are always logged; the request id ties them to change events.
    let is_read = req.method() == axum::http::Method::GET;
    let span = if is_read {
        tracing::debug_span!("request", request_id = %id, %method, %path)
    } else {
        tracing::info_span!("request", request_id = %id, %method, %path)
    };
    let timeout = state.settings.request_timeout;
    let mut resp = async {
        if let Some(refused) = netpolicy::refusal(&state, &req) {
            return refused;
        }
        match tokio::time::timeout(timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(?timeout, "request timed out");
                ScimError::new(
                    503,
                    None,
                    format!("the request took longer than {timeout:?}"),
                )
                .into_response()
            }
        }
    }
    .instrument(span)
    .await;
    let took = started.elapsed();
    let status = resp.status();
    // Microsecond precision is all a reader can use; the raw float prints as
    // `ms=0.45750100000000005`.
    let ms = (took.as_secs_f64() * 1e6).round() / 1e3;
    let code = status.as_u16();
    if status.is_server_error() {
        tracing::warn!(request_id = %id, %method, %path, status = code, ms, "request");
    } else if !is_read || status.is_client_error() {
        tracing::info!(request_id = %id, %method, %path, status = code, ms, "request");
    } else {
        tracing::debug!(request_id = %id, %method, %path, status = code, ms, "request");
    }
    state.metrics.request(
        method.as_str(),
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        status.as_u16(),
        took,
    );
    if let Some(provider) = scim_provider(&path)
        && state.directory.provider(provider).is_some()
    {
        state
            .metrics
            .scim_request(provider, code, state.clock.now());
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The provider a SCIM base path names (`/scim/v2/{provider}/…`).
fn scim_provider(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/scim/v2/")?;
    rest.split('/').next().filter(|p| !p.is_empty())
}

/// 405 with a SCIM body, for every route's unsupported methods.
async fn method_not_allowed() -> ScimError {
    ScimError::new(
        StatusCode::METHOD_NOT_ALLOWED.as_u16(),
        None,
        "method not allowed on this endpoint",
    )
}

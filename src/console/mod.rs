//! The operator's console: server-rendered pages under `/ui` where an admin sees each
//! provider and target, finds a person, and steers delivery (dead letters, the
//! mass-deprovisioning guard, provision on demand, reconciliation runs). Templates (`templates/`) are compiled into the binary
//! and HTML-escape what they print; the pages carry no script and a strict
//! Content-Security-Policy, so the read pages need nothing but HTML and CSS.
//!
//! Sign-in exchanges an `admin` or `viewer` API token for a session cookie
//! (`session.rs`, `signin.rs`), or goes through the firm's OpenID Connect provider
//! (`oidc/`), the role coming from the person's groups; sessions live in the store.
//! Every form carries the session's CSRF token, and
//! only an admin session may act (`access.rs`). Pages read what `/readyz` and the
//! CLI read: the store through its traits, the targets' handles in [`AppState`].

mod access;
mod act;
mod assets;
mod delivered;
mod oidc;
mod ondemand;
mod overview;
mod page;
mod people;
mod plot;
mod reconcile;
mod session;
mod signin;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;

use crate::config::{Config, TargetConfig};
use crate::identity::Scope;
use crate::server::{AppState, Live};

pub use session::Role;

/// What the console needs of a configured target beyond its running handle: who it
/// receives, its scope and its guard's window, and its whole table for what it gets.
#[derive(Debug, Clone)]
pub struct ConsoleTarget {
    pub name: String,
    /// As configured: what a person's page explains (mapping, roles, matching).
    pub config: TargetConfig,
    /// Providers it receives; empty: all.
    pub providers: Vec<String>,
    pub scope: Option<Scope>,
    /// How long an approval of its guard lets deprovisioning go ahead uncounted.
    pub guard_window: Duration,
}

impl ConsoleTarget {
    fn from_config(t: &TargetConfig) -> Self {
        ConsoleTarget {
            name: t.name.clone(),
            config: t.clone(),
            providers: t.providers.clone(),
            scope: t.scope.clone(),
            guard_window: t.guard.window,
        }
    }

    /// Whether it receives `provider`'s changes.
    fn receives(&self, provider: &str) -> bool {
        self.providers.is_empty() || self.providers.iter().any(|p| p == provider)
    }
}

/// The console's state: the daemon's, its sessions and the targets as configured.
pub struct Console {
    state: Arc<AppState>,
    sessions: session::Sessions,
    targets: Live<Vec<ConsoleTarget>>,
    /// Served on `console.listen` rather than beside the SCIM front.
    own_listener: bool,
    /// Sign-in through the identity provider, when `[console.oidc]` is configured.
    oidc: Option<oidc::Oidc>,
    /// Targets with a reconciliation running from the console (one at a time each).
    reconciling: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Held by the SCIM apps' handles a person's page asks what they would send;
    /// never used to send.
    http: reqwest::Client,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("sessions", &self.sessions)
            .field("own_listener", &self.own_listener)
            .field("oidc", &self.oidc)
            .finish_non_exhaustive()
    }
}

/// Where the console lives, in links and redirects.
pub const PREFIX: &str = "/ui";

impl Console {
    /// The console of the daemon whose state is `state`, as `cfg` configures it;
    /// `oidc_secret` is `console.oidc.client_secret` resolved (sign-in through the
    /// identity provider is offered only with it).
    pub fn new(
        state: Arc<AppState>,
        cfg: &Config,
        oidc_secret: Option<SecretString>,
    ) -> Result<Arc<Console>, String> {
        let oidc = match (&cfg.console.oidc, oidc_secret) {
            (Some(o), Some(secret)) => {
                Some(oidc::Oidc::new(o, secret, &state.settings.public_url)?)
            }
            _ => None,
        };
        let sessions = session::Sessions::new(
            Arc::clone(state.directory.store()),
            cfg.console.session_lifetime,
        );
        let console = Console {
            state,
            sessions,
            targets: Live::default(),
            own_listener: cfg.console.listen.is_some(),
            oidc,
            reconciling: Default::default(),
            http: crate::oauth::build_client(Duration::from_secs(30))?,
        };
        console.set_targets(cfg);
        Ok(Arc::new(console))
    }

    /// Takes the targets of `cfg` (at start, and on a reload).
    pub fn set_targets(&self, cfg: &Config) {
        self.targets
            .set(cfg.targets.iter().map(ConsoleTarget::from_config).collect());
    }

    /// The console's routes, relative to [`PREFIX`]; nest them there.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(overview::show))
            .route("/signin", get(signin::form).post(signin::sign_in))
            .route("/signout", post(signin::sign_out))
            .route("/signin/oidc", get(oidc::start))
            .route("/signin/oidc/callback", get(oidc::callback))
            .route("/people", get(people::search))
            .route("/people/{provider}/{kind}/{id}", get(people::show))
            .route(
                "/people/{provider}/{kind}/{id}/provision/{target}",
                post(ondemand::provision),
            )
            .route("/reconcile", get(reconcile::targets))
            .route("/reconcile/{target}/dry-run", post(reconcile::dry_run))
            .route("/reconcile/{target}/apply", post(reconcile::apply))
            .route("/dead-letters", get(act::dead_letters))
            .route("/dead-letters/{id}/retry", post(act::retry))
            .route("/dead-letters/{id}/drop", post(act::drop_letter))
            .route("/guard", get(act::guards))
            .route("/guard/{target}/approve", post(act::approve))
            .route("/guard/{target}/reject", post(act::reject))
            .route("/assets/console.css", get(assets::css))
            .fallback(page::not_found)
            .layer(axum::middleware::map_response(page::secure_headers))
            .with_state(Arc::clone(self))
    }

    /// Everything its own listener serves: the console under [`PREFIX`], `/` sent
    /// there, behind the daemon's network policy, request ids and access log.
    pub fn standalone(self: &Arc<Self>) -> Router {
        let app = Router::new()
            .nest_service(PREFIX, self.router())
            .route("/", get(|| async { axum::response::Redirect::to("/ui/") }))
            .fallback(page::not_found_plain);
        crate::server::layered(Arc::clone(&self.state), app)
    }
}

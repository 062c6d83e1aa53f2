//! The composition root: builds the whole daemon from its configuration and the
//! dependencies the process injects (clock, randomness, environment), and serves it on
//! listeners the caller binds. `scim-bridge serve` and the in-process test harness
//! both start the daemon here, so what the tests run is what production runs.

mod delivering;
mod error;
mod handle;
pub mod reload;
pub mod setup;
pub mod targets;
mod tasks;
pub mod vault;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use error::AppError;
pub use handle::{AppHandle, TaskKind};
pub use tasks::notify;

use crate::clock::Clock;
use crate::config::{Config, Environment};
use crate::console::{Console, PREFIX};
use crate::directory::Directory;
use crate::entropy::Entropy;
use crate::journal::{Journal, JournalError};
use crate::server::{self, AppState, CertStore, Settings};
use crate::store::Store;
use crate::vault::Secrets;

/// What the daemon takes from the process rather than from its configuration, so a
/// test can hand it a manual clock, seeded randomness and a made-up environment.
#[derive(Clone)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// Where secrets named `{ env = "…" }` and credentials are read from.
    pub env: Environment,
}

/// The listeners the caller bound: plain HTTP always, HTTPS when `[server.tls]` is
/// configured. Binding belongs to the caller so tests can bind port 0 and know the
/// address before the daemon starts, with no free-port race.
pub struct Listeners {
    pub http: TcpListener,
    pub https: Option<TcpListener>,
    /// `console.listen`, when the console has its own address; without it the
    /// console is served under `/ui` on the listeners above.
    pub console: Option<TcpListener>,
}

/// The daemon, built and not yet serving.
pub struct App {
    cfg: Config,
    state: Arc<AppState>,
    store: Arc<dyn Store>,
    secrets: Option<Arc<Secrets>>,
    /// The HTTPS certificate, reloadable (SIGHUP, renewal on disk).
    certs: Option<Arc<CertStore>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Each target with its engine and schedule, not started yet.
    targets: Vec<delivering::RunningTarget>,
    owner: String,
    journal: Arc<Journal>,
    /// The operator's console, when enabled (its sign-in secret resolved).
    console: Option<Arc<Console>>,
}

impl App {
    /// Builds everything the daemon runs from `cfg`: providers, the store (migrated),
    /// the vault (unlocked), targets with their credentials and engines, schedules,
    /// the workspace resolver and the HTTP state. Links handed out and
    /// `meta.location` use `server.public_url`, else `http://{server.listen}`: the
    /// caller sets `server.listen` to the address it bound.
    pub async fn build(cfg: Config, deps: Deps) -> Result<App, AppError> {
        let Deps {
            clock,
            entropy,
            env,
        } = deps;
        let (_, secret_errors) = crate::config::check_secret_files(&cfg, &env);
        if !secret_errors.is_empty() {
            return Err(AppError::Config(secret_errors.join("\n")));
        }
        let providers = setup::build_providers(&cfg)?;
        let store: Arc<dyn Store> = setup::open_store(&cfg).await?;
        // A wrong passphrase stops the daemon here, before anything is written.
        let vault_key = match &cfg.vault {
            Some(_) => vault::unlock(store.as_ref(), &cfg, &env).await?,
            None => None,
        };
        let vault_state = match (&cfg.vault, &vault_key) {
            (Some(_), Some(_)) => "unlocked".to_owned(),
            (Some(_), None) => "not initialised (run `scim-bridge vault init`)".to_owned(),
            (None, _) => "not configured".to_owned(),
        };
        let (certs, tls) = match &cfg.server.tls {
            Some(t) => {
                let certs =
                    CertStore::load(t, &env).map_err(|e| AppError::Config(e.to_string()))?;
                let acceptor = certs
                    .server_config()
                    .map(tokio_rustls::TlsAcceptor::from)
                    .map_err(|e| AppError::Config(e.to_string()))?;
                (Some(certs), Some(acceptor))
            }
            None => (None, None),
        };
        let public_url = targets::public_url(&cfg);
        let secrets = vault_key.map(|(key, header)| {
            Arc::new(Secrets::new(
                Arc::clone(&store),
                key,
                header,
                Arc::clone(&entropy),
                Arc::clone(&clock),
            ))
        });
        let journal = crate::journal::open_for_daemon(
            Arc::clone(&store),
            Arc::clone(&clock),
            Arc::clone(&entropy),
            secrets.as_deref(),
        )
        .await
        .map_err(|e| match e {
            JournalError::Key(_) => AppError::Vault(e.to_string()),
            _ => AppError::Store(e.to_string()),
        })?;
        if journal.key().is_none() {
            tracing::warn!(
                "the provisioning log is chained but not sealed: the audit signing key lives in the vault, which is not configured or not initialised"
            );
        }
        let target_ctx = targets::Context {
            env: &env,
            secrets: secrets.clone(),
            clock: Arc::clone(&clock),
            entropy: Arc::clone(&entropy),
            public_url: &public_url,
            store: Arc::clone(&store),
        };
        // Engines carry this instance's name on the delivery leases they take.
        let owner = tasks::instance_id(&cfg.server.data_dir, entropy.as_ref())?;
        let running = delivering::build(&cfg, &target_ctx, &owner).await?;
        let resolver = delivering::resolver(&cfg, &running, &public_url, Arc::clone(&clock));
        let dropped = store
            .set_delivery_routes(delivering::routes(&running))
            .await
            .map_err(|e| AppError::Store(e.to_string()))?;
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "removed queued changes for targets or routes no longer in the configuration"
            );
        }
        let released = store
            .release_leases(&owner)
            .await
            .map_err(|e| AppError::Store(e.to_string()))?;
        if released > 0 {
            tracing::info!(
                released,
                "taking back deliveries that were in flight when this instance stopped"
            );
        }
        let directory = Arc::new(Directory::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            Arc::clone(&entropy),
            providers,
            setup::limits(&cfg),
        ));
        // Sign-in through the identity provider: its client secret, read at start
        // like the targets' (a vault entry that is missing stops the daemon here).
        let console_secret = match cfg.console.oidc.as_ref().filter(|_| cfg.console.enabled) {
            Some(o) => Some(
                targets::resolve(&o.client_secret, &target_ctx, "console.oidc.client_secret")
                    .await?,
            ),
            None => None,
        };
        let state = Arc::new(
            AppState::new(
                directory,
                clock,
                entropy,
                Settings {
                    public_url,
                    max_body_bytes: cfg.server.max_body_bytes,
                    request_timeout: cfg.server.request_timeout,
                },
                vault_state,
            )
            .with_network(delivering::network_policy(&cfg))
            .with_targets(running.iter().map(|t| t.handle.clone()).collect())
            .with_resolver(resolver)
            .with_audit(Arc::clone(&journal)),
        );
        let console = match cfg.console.enabled {
            true => Some(
                Console::new(Arc::clone(&state), &cfg, console_secret).map_err(AppError::Config)?,
            ),
            false => None,
        };
        Ok(App {
            cfg,
            state,
            console,
            store,
            secrets,
            certs,
            tls,
            targets: running,
            owner,
            journal,
        })
    }

    /// What every request sees: the directory, targets, metrics, settings.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The store the daemon opened.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// [`App::serve`] until `shutdown` resolves, then the handle's orderly shutdown:
    /// for a caller with nothing to reload and one reason to stop.
    pub async fn serve_until(self, listeners: Listeners, shutdown: impl Future<Output = ()>) {
        let handle = self.serve(listeners);
        shutdown.await;
        handle.shutdown().await;
    }

    /// Starts delivery, schedules and upkeep, and serves HTTP on `listeners` (HTTPS on
    /// `listeners.https` when TLS is configured). Everything started is named in the
    /// handle, which stops it in order.
    pub fn serve(self, listeners: Listeners) -> AppHandle {
        let App {
            cfg,
            state,
            console,
            store,
            secrets,
            certs,
            tls,
            targets,
            owner,
            journal,
        } = self;
        let clock = Arc::clone(&state.clock);
        let limits = server::ConnectionLimits {
            header_read_timeout: cfg.server.header_read_timeout,
            idle_timeout: cfg.server.idle_timeout,
            max_connections: tasks::max_connections(cfg.server.max_connections),
        };
        let retention = tasks::Retention {
            events: chrono::Duration::from_std(cfg.database.event_retention).ok(),
        };
        let console_has_own_address = cfg.console.listen.is_some();
        let log_retention = chrono::Duration::from_std(cfg.database.log_retention).ok();
        let mut handle = AppHandle::new(
            Arc::clone(&state),
            Arc::clone(&store),
            secrets,
            certs.clone(),
            cfg,
            owner,
        );
        for target in targets {
            handle.start_target(target);
        }
        handle.spawn(
            TaskKind::Upkeep,
            "watchdog".into(),
            tasks::watchdog(Arc::clone(&store)),
        );
        handle.spawn(
            TaskKind::Upkeep,
            "pruner".into(),
            tasks::prune(Arc::clone(&store), Arc::clone(&clock), retention),
        );
        handle.spawn(
            TaskKind::Upkeep,
            "audit chainer".into(),
            crate::journal::chainer::run(
                Arc::clone(&journal),
                log_retention,
                crate::journal::SealPolicy::default(),
            ),
        );
        handle.journal = Some(journal);
        handle.spawn(
            TaskKind::Upkeep,
            "token-use flusher".into(),
            tasks::flush_token_use(Arc::clone(&state)),
        );
        if let Some(certs) = certs {
            handle.spawn(
                TaskKind::Upkeep,
                "certificate watcher".into(),
                tasks::watch_certificate(certs),
            );
        }
        let mut bound = vec![server::Listener {
            tcp: listeners.http,
            tls: None,
        }];
        // An HTTPS listener is served only with a certificate to serve it with.
        if let (Some(tcp), Some(acceptor)) = (listeners.https, tls) {
            bound.push(server::Listener {
                tcp,
                tls: Some(acceptor),
            });
        }
        // The console beside the SCIM front, or on its own listener (never both:
        // an address of its own is there so the SCIM front's port does not serve it).
        let (beside, own) = match (&console, listeners.console) {
            (Some(c), Some(tcp)) => (None, Some((c.standalone(), tcp))),
            (Some(c), None) if !console_has_own_address => (Some((PREFIX, c.router())), None),
            _ => (None, None),
        };
        handle.serve_http(
            bound,
            server::router_with(Arc::clone(&state), beside),
            limits,
        );
        if let Some((router, tcp)) = own {
            handle.serve_http(vec![server::Listener { tcp, tls: None }], router, limits);
        }
        handle.console = console;
        handle
    }
}

/// Binds `addr` for the daemon, saying what to do when another process holds it.
/// `what` names the setting the address came from, when it is not `server.listen`.
pub async fn bind(addr: SocketAddr, what: Option<&str>) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = match what {
            Some(_) => String::new(),
            None if e.kind() == std::io::ErrorKind::AddrInUse => {
                " (another process is listening there; stop it or choose --listen ADDR)".into()
            }
            None => String::new(),
        };
        let setting = what.map_or_else(String::new, |w| format!(" ({w})"));
        AppError::Listen(format!("cannot listen on {addr}{setting}: {e}{hint}"))
    })
}

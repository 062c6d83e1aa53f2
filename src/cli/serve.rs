//! `scim-bridge serve`: the daemon's life cycle.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Failure;
use super::setup;
use crate::clock::SystemClock;
use crate::config::Environment;
use std::str::FromStr;

use crate::delivery::{Engine, ReconcileReport, run_scheduled};
use crate::directory::Directory;
use crate::entropy::OsEntropy;
use crate::server::{self, AppState, Settings};
use crate::store::Store;
use crate::vault::Secrets;

/// How often expired pending account links are removed.
const PENDING_SWEEP: Duration = Duration::from_secs(60);

/// How often buffered token last-use times reach the database.
const TOKEN_FLUSH: Duration = Duration::from_secs(15);

pub async fn serve(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    env: &Environment,
) -> Result<(), Failure> {
    let loaded = setup::load_config(config, data_dir, listen, env)?;
    let cfg = loaded.config;
    setup::init_logging(&cfg, env);
    OsEntropy::probe()
        .map_err(|e| Failure::runtime(format!("the OS random generator does not work: {e}")))?;
    let (_, secret_errors) = crate::config::check_secret_files(&cfg, env);
    if !secret_errors.is_empty() {
        return Err(Failure::config(secret_errors.join("\n")));
    }
    let providers = setup::build_providers(&cfg)?;
    let store: Arc<dyn Store> = setup::open_store(&cfg).await?;
    // A wrong passphrase stops the daemon here, before anything is written.
    let vault_key = match &cfg.vault {
        Some(_) => super::vault::unlock(store.as_ref(), &cfg, env).await?,
        None => None,
    };
    let vault_state = match (&cfg.vault, &vault_key) {
        (Some(_), Some(_)) => "unlocked".to_owned(),
        (Some(_), None) => "not initialised (run `scim-bridge vault init`)".to_owned(),
        (None, _) => "not configured".to_owned(),
    };
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another process is listening there; stop it or choose --listen ADDR)"
            } else {
                ""
            };
            Failure::listen(format!("cannot listen on {}: {e}{hint}", cfg.server.listen))
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::listen(format!("cannot read the listening address: {e}")))?;
    let tls = match &cfg.server.tls {
        Some(t) => Some(tls_listener(t, env).await?),
        None => None,
    };
    let public_url = cfg
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(SystemClock);
    let entropy: Arc<dyn crate::entropy::Entropy> = Arc::new(OsEntropy);
    let secrets = vault_key.map(|(key, header)| {
        Arc::new(Secrets::new(
            Arc::clone(&store),
            key,
            header,
            Arc::clone(&entropy),
            Arc::clone(&clock),
        ))
    });
    let target_ctx = super::targets::Context {
        env,
        secrets: secrets.clone(),
        clock: Arc::clone(&clock),
        entropy: Arc::clone(&entropy),
        public_url: &public_url,
        store: Arc::clone(&store),
    };
    let mut targets = super::targets::build(&cfg, &target_ctx).await?;
    let deliverables = super::targets::deliverables(&cfg, &mut targets, &target_ctx).await?;
    let resolver = super::targets::resolver(
        &cfg,
        &deliverables,
        &targets,
        &public_url,
        Arc::clone(&clock),
    );
    let routes = deliverables
        .iter()
        .flat_map(|d| {
            d.providers
                .iter()
                .map(|p| (d.target.name().to_owned(), p.clone()))
        })
        .collect();
    let dropped = store
        .set_delivery_routes(routes)
        .await
        .map_err(|e| Failure::store(e.to_string()))?;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "removed queued changes for targets or routes no longer in the configuration"
        );
    }
    let (stop_engines, engines_stop) = tokio::sync::watch::channel(false);
    let owner = instance_id(&cfg.server.data_dir, entropy.as_ref())?;
    let released = store
        .release_leases(&owner)
        .await
        .map_err(|e| Failure::store(e.to_string()))?;
    if released > 0 {
        tracing::info!(
            released,
            "taking back deliveries that were in flight when this instance stopped"
        );
    }
    let mut engines = Vec::new();
    // Abandoned account links (the person never came back from the provider's consent
    // page) expire on their own, not only when the next link starts.
    for linker in targets.iter().filter_map(|t| t.linker.clone()) {
        let mut stop = engines_stop.clone();
        engines.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(PENDING_SWEEP) => {}
                    _ = stop.changed() => return,
                }
                let swept = linker.sweep_pending().await;
                if swept > 0 {
                    tracing::info!(target_name = %linker.target(), swept, "expired account links removed");
                }
            }
        }));
    }
    for d in deliverables {
        let paused = cfg.targets.get(d.index).is_some_and(|t| t.paused);
        if paused {
            // Queued, not delivered: the admin reviews `sync --dry-run` first.
            let name = d.target.name().to_owned();
            tracing::warn!(target_name = %name, "target is paused: changes are queued but not delivered and reconciliation does not run; review `scim-bridge sync --target {name} --dry-run`, then remove `paused` and restart");
            if let Some(handle) = targets.get_mut(d.index) {
                handle.paused = true;
                handle.delivery = Some(Arc::new(crate::delivery::DeliveryCounters::default()));
            }
            continue;
        }
        if let Some(expr) = cfg.targets.get(d.index).and_then(|t| t.schedule.clone()) {
            let schedule = cron::Schedule::from_str(&expr)
                .map_err(|e| Failure::config(format!("targets[{}].schedule: {e}", d.index)))?;
            let report = Arc::new(std::sync::Mutex::new(ReconcileReport::default()));
            if let Some(handle) = targets.get_mut(d.index) {
                handle.reconcile = Some(Arc::clone(&report));
            }
            engines.push(tokio::spawn(run_scheduled(
                Arc::clone(&store),
                Arc::clone(&d.target),
                d.providers.clone(),
                d.policy.clone(),
                schedule,
                d.engine.guard.clone(),
                Arc::clone(&clock),
                report,
                owner.clone(),
                engines_stop.clone(),
            )));
        }
        let engine = Arc::new(Engine::new(
            Arc::clone(&store),
            d.target,
            d.engine,
            Arc::clone(&clock),
            Arc::clone(&entropy),
            owner.clone(),
        ));
        if let Some(handle) = targets.get_mut(d.index) {
            handle.delivery = Some(Arc::clone(&engine.counters));
        }
        engines.push(tokio::spawn(engine.run(engines_stop.clone())));
    }
    let directory = Arc::new(Directory::new(
        Arc::clone(&store),
        clock.clone(),
        entropy.clone(),
        providers,
        setup::limits(&cfg),
    ));
    let state = Arc::new(
        AppState::new(
            directory,
            clock,
            entropy,
            Settings {
                public_url: public_url.clone(),
                max_body_bytes: cfg.server.max_body_bytes,
                request_timeout: cfg.server.request_timeout,
                network: server::NetworkPolicy {
                    providers: cfg
                        .providers
                        .iter()
                        .filter_map(|p| p.allow.clone().map(|a| (p.name.clone(), a)))
                        .collect(),
                    admin: cfg.server.admin_allow.clone(),
                    trusted_proxies: cfg.server.trusted_proxies.clone(),
                },
            },
            vault_state,
        )
        .with_targets(targets)
        .with_resolver(resolver),
    );

    print_next_steps(&state, &public_url, local, &cfg).await;
    tracing::info!(listen = %local, public_url = %public_url, "scim-bridge ready");
    notify(&[sd_notify::NotifyState::Ready, status_line("serving")]);

    let watchdog = tokio::spawn(watchdog(Arc::clone(&state)));
    let keepers: Vec<_> = state
        .targets
        .iter()
        .filter_map(|t| t.source.clone())
        .map(|source| tokio::spawn(source.keep_fresh()))
        .collect();
    // Delivery attempts are kept for `scim-bridge trace`, change events for delivery and
    // `trace`; one task prunes both for all targets.
    let pruner = tokio::spawn({
        let store = Arc::clone(&store);
        let clock = Arc::clone(&state.clock);
        let retention = chrono::Duration::from_std(cfg.database.event_retention).ok();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let before = clock.now() - chrono::Duration::days(DELIVERY_LOG_DAYS);
                if let Err(e) = store.prune_delivery_log(before).await {
                    tracing::warn!(error = %e, "cannot prune the delivery log");
                }
                if let Some(keep) = retention.filter(|r| !r.is_zero()) {
                    prune_events(store.as_ref(), clock.now() - keep).await;
                }
            }
        }
    });
    let flusher = tokio::spawn({
        let state = Arc::clone(&state);
        async move {
            let mut tick = tokio::time::interval(TOKEN_FLUSH);
            loop {
                tick.tick().await;
                state.flush_token_use().await;
            }
        }
    });

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = server::router(Arc::clone(&state));
    let grace = cfg.server.shutdown_timeout;
    let limits = server::ConnectionLimits {
        header_read_timeout: cfg.server.header_read_timeout,
        idle_timeout: cfg.server.idle_timeout,
        max_connections: max_connections(cfg.server.max_connections),
    };
    let mut listeners = vec![server::Listener {
        tcp: listener,
        tls: None,
    }];
    let mut reload_tls = None;
    if let Some((tcp, certs)) = tls {
        let acceptor = certs
            .server_config()
            .map(tokio_rustls::TlsAcceptor::from)
            .map_err(|e| Failure::config(e.to_string()))?;
        listeners.push(server::Listener {
            tcp,
            tls: Some(acceptor),
        });
        reload_tls = Some(certs);
    }
    let cert_watch = reload_tls
        .clone()
        .map(|certs| tokio::spawn(watch_certificate(certs)));
    let server_task = tokio::spawn(server::serve(
        listeners,
        app,
        limits,
        Arc::clone(&state),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let signal = loop {
        match next_signal().await {
            Signal::Reload => reload(reload_tls.as_deref()),
            Signal::Stop(name) => break name,
        }
    };
    tracing::info!(
        signal,
        "shutting down: no new connections, finishing requests"
    );
    state.begin_shutdown();
    notify(&[sd_notify::NotifyState::Stopping, status_line("stopping")]);
    let _ = stop_tx.send(());
    match tokio::time::timeout(grace, server_task).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
        Err(_) => tracing::warn!(
            ?grace,
            "requests still running after the grace period; closing"
        ),
    }
    // Deliveries in flight finish and record their outcome; the rest stay queued.
    let _ = stop_engines.send(true);
    let drained = tokio::time::timeout(grace, async {
        for engine in engines {
            let _ = engine.await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("deliveries still running at shutdown; they will be retried after restart");
    }
    watchdog.abort();
    if let Some(w) = cert_watch {
        w.abort();
    }
    flusher.abort();
    pruner.abort();
    for keeper in keepers {
        keeper.abort();
    }
    state.flush_token_use().await;
    store.close().await;
    drop(secrets);
    tracing::info!("stopped");
    Ok(())
}

/// How long delivery attempts are kept for `scim-bridge trace`.
const DELIVERY_LOG_DAYS: i64 = 30;

/// File descriptors kept back from client connections: the database files, logs and
/// outbound connections to targets need them too.
const RESERVED_FDS: usize = 128;

/// The most connections served by default, however high the open-file limit.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// `[server] max_connections`, or by default the open-file limit less what the rest of
/// the daemon needs (at most 10,000). A configured value above that limit would fail
/// with "too many open files" before the bound is reached, so it is warned about.
fn max_connections(configured: Option<usize>) -> usize {
    let files = open_file_limit();
    let room = files.map(|n| n.saturating_sub(RESERVED_FDS).max(16));
    match (configured, room) {
        (Some(n), Some(room)) if n > room => {
            tracing::warn!(
                max_connections = n,
                open_file_limit = files,
                "max_connections is above what the open-file limit allows; raise the limit (systemd: LimitNOFILE=) or lower max_connections"
            );
            n
        }
        (Some(n), _) => n,
        (None, Some(room)) => room.min(DEFAULT_MAX_CONNECTIONS),
        (None, None) => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The process's soft limit on open files, when it can be read.
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !ok || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(limit.rlim_cur).ok()
}

/// What a signal asks of the daemon.
enum Signal {
    /// SIGHUP (`systemctl reload`).
    Reload,
    /// SIGTERM or SIGINT, by name.
    Stop(&'static str),
}

async fn next_signal() -> Signal {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        // Without signal handlers the daemon could never stop cleanly; ctrl_c is the
        // portable fallback.
        let _ = tokio::signal::ctrl_c().await;
        return Signal::Stop("SIGINT");
    };
    tokio::select! {
        _ = term.recv() => Signal::Stop("SIGTERM"),
        _ = int.recv() => Signal::Stop("SIGINT"),
        _ = hup.recv() => Signal::Reload,
    }
}

/// SIGHUP: reads the TLS certificate again. A certificate that cannot be used is
/// reported and the one in use stays.
fn reload(certs: Option<&server::CertStore>) {
    let Some(certs) = certs else {
        tracing::info!("SIGHUP: nothing to reload");
        return;
    };
    match certs.reload() {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the one in use stays")
        }
    }
}

/// How often the certificate files are checked for a renewal.
const CERT_POLL: Duration = Duration::from_secs(5);

/// Reloads the certificate when its files change (a renewal by certbot or an ACME
/// client), so HTTPS follows without a restart or a SIGHUP.
async fn watch_certificate(certs: Arc<server::CertStore>) {
    loop {
        tokio::time::sleep(CERT_POLL).await;
        if !certs.changed_on_disk() {
            continue;
        }
        match certs.reload() {
            Ok(()) => tracing::info!("TLS certificate files changed: reloaded"),
            // A renewal half written (certificate before key) fails here; the next
            // poll tries again, and the old certificate serves meanwhile.
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate files changed but cannot be used yet; the one in use stays")
            }
        }
    }
}

/// Binds the HTTPS listener and loads its certificate.
async fn tls_listener(
    t: &crate::config::TlsConfig,
    env: &Environment,
) -> Result<(tokio::net::TcpListener, Arc<server::CertStore>), Failure> {
    let certs = server::CertStore::load(t, env).map_err(|e| Failure::config(e.to_string()))?;
    let tcp = tokio::net::TcpListener::bind(t.listen).await.map_err(|e| {
        Failure::listen(format!(
            "cannot listen on {} (server.tls.listen): {e}",
            t.listen
        ))
    })?;
    Ok((tcp, certs))
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    // Outside systemd NOTIFY_SOCKET is unset and this is a no-op.
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

fn status_line(s: &str) -> sd_notify::NotifyState<'_> {
    sd_notify::NotifyState::Status(s)
}

/// Pings systemd's watchdog only while the store answers, so a wedged database gets
/// the service restarted instead of silently failing requests.
async fn watchdog(state: Arc<AppState>) {
    let Some(timeout) = sd_notify::watchdog_enabled().filter(|d| !d.is_zero()) else {
        return;
    };
    let period = timeout / 2;
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        match tokio::time::timeout(period, state.directory.store().status()).await {
            Ok(Ok(s)) => {
                let line = format!(
                    "serving; {} users, {} groups, {} change events",
                    s.users, s.groups, s.events
                );
                notify(&[
                    sd_notify::NotifyState::Watchdog,
                    sd_notify::NotifyState::Status(&line),
                ]);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "store check failed; withholding watchdog ping")
            }
            Err(_) => tracing::error!("store check timed out; withholding watchdog ping"),
        }
    }
}

/// The quickstart's promise: tell the operator exactly what to do next.
async fn print_next_steps(
    state: &AppState,
    public_url: &str,
    local: SocketAddr,
    cfg: &crate::config::Config,
) {
    let tokens = state
        .directory
        .store()
        .list_tokens()
        .await
        .unwrap_or_default();
    let config_arg = cfg
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .filter(|p| p != setup::REPO_CONFIG)
        .map_or_else(String::new, |p| format!(" --config {p}"));
    let mut lines = vec![format!("scim-bridge is listening on http://{local}")];
    for p in state.directory.providers() {
        let has = tokens
            .iter()
            .any(|t| t.provider.as_deref() == Some(&p.name) && t.revoked.is_none());
        lines.push(format!(
            "  {:<8} tenant URL: {public_url}/scim/v2/{}{}",
            p.name,
            p.name,
            if has { "" } else { "   (no token yet)" }
        ));
    }
    lines.push(format!(
        "Create a secret token for a provider in another terminal:\n  cargo run --release --{config_arg} token create --provider {}\nPaste the tenant URL and the token into the IdP's provisioning settings (see README: Entra ID / Okta setup).\nHealth: http://{local}/healthz  readiness: http://{local}/readyz  metrics: http://{local}/metrics",
        state
            .directory
            .providers()
            .next()
            .map_or("NAME", |p| p.name.as_str())
    ));
    eprintln!("{}", lines.join("\n"));
}

/// This instance's stable name, kept in the data directory: delivery leases carry it, so
/// after a crash the restarted instance reclaims its own leases instead of waiting for
/// them to run out, while other instances sharing a database keep theirs.
fn instance_id(data_dir: &Path, entropy: &dyn crate::entropy::Entropy) -> Result<String, Failure> {
    let path = data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Failure::store(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    }
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = match host.trim() {
        "" => "instance",
        h => h,
    };
    let id = format!("{host}-{}", &crate::entropy::uuid_v4(entropy)[..8]);
    // With PostgreSQL nothing else creates the data directory.
    std::fs::create_dir_all(data_dir)
        .map_err(|e| Failure::store(format!("cannot create {}: {e}", data_dir.display())))?;
    std::fs::write(&path, &id)
        .map_err(|e| Failure::store(format!("cannot write {}: {e}", path.display())))?;
    Ok(id)
}

/// Change events pruned per write transaction, so SCIM writes never wait long behind it.
const PRUNE_BATCH: usize = 5000;

/// Deletes change events older than `before` that no delivery needs, a batch at a time.
async fn prune_events(store: &dyn crate::store::Store, before: chrono::DateTime<chrono::Utc>) {
    let mut total = 0;
    loop {
        match store.prune_change_events(before, PRUNE_BATCH).await {
            Ok(n) => {
                total += n;
                if n < PRUNE_BATCH {
                    break;
                }
                // Let waiting SCIM writes in between batches.
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot prune change events");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(pruned = total, "change events past their retention removed");
    }
}

//! `scim-bridge serve`: the daemon's life cycle as a process — load the config, bind
//! the listeners, build and serve the app, and follow signals and systemd.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Failure;
use super::reload::Reloader;
use super::setup;
use crate::app::{self, App, Deps, Listeners};
use crate::clock::SystemClock;
use crate::config::Environment;
use crate::entropy::OsEntropy;
use crate::server::CertStore;

pub async fn serve(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    env: &Environment,
) -> Result<(), Failure> {
    let loaded = setup::load_config(config, data_dir.clone(), listen, env)?;
    // As configured, for telling what a reload changes (`server.listen` may say port 0).
    let configured = loaded.config.clone();
    let mut cfg = loaded.config;
    let log = setup::init_logging(&cfg, env);
    OsEntropy::probe()
        .map_err(|e| Failure::runtime(format!("the OS random generator does not work: {e}")))?;
    let http = app::bind(cfg.server.listen, None).await?;
    let local = http
        .local_addr()
        .map_err(|e| Failure::listen(format!("cannot read the listening address: {e}")))?;
    let https = match &cfg.server.tls {
        Some(t) => Some(app::bind(t.listen, Some("server.tls.listen")).await?),
        None => None,
    };
    let console = match cfg.console.listen.filter(|_| cfg.console.enabled) {
        Some(addr) => Some(app::bind(addr, Some("console.listen")).await?),
        None => None,
    };
    // Links and `meta.location` name the address actually bound (port 0 included).
    cfg.server.listen = local;
    let deps = Deps {
        clock: Arc::new(SystemClock),
        entropy: Arc::new(OsEntropy),
        env: env.clone(),
    };
    let app = App::build(cfg, deps).await?;
    print_next_steps(&app, local).await;
    tracing::info!(listen = %local, public_url = %app.state().settings.public_url, "scim-bridge ready");
    app::notify(&[sd_notify::NotifyState::Ready, status_line("serving")]);
    if let Some(addr) = console.as_ref().and_then(|l| l.local_addr().ok()) {
        tracing::info!(listen = %addr, "console served on its own listener under /ui/");
    }
    let mut handle = app.serve(Listeners {
        http,
        https,
        console,
    });
    let mut reloader = Reloader {
        given: config,
        data_dir,
        listen,
        env,
        bound: local,
        log,
        configured,
    };
    let mut signals = Signals::new();
    let signal = loop {
        match signals.next().await {
            Signal::Reload => {
                let mut reloading = vec![sd_notify::NotifyState::Reloading];
                // systemd's Type=notify-reload wants the time the reload started.
                reloading.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
                reloading.push(status_line("reloading the configuration"));
                app::notify(&reloading);
                reload_certificate(handle.certificates().map(Arc::as_ref));
                reloader.reload(&mut handle).await;
                app::notify(&[sd_notify::NotifyState::Ready, status_line("serving")]);
            }
            Signal::Stop(name) => break name,
        }
    };
    tracing::info!(
        signal,
        "shutting down: no new connections, finishing requests"
    );
    app::notify(&[sd_notify::NotifyState::Stopping, status_line("stopping")]);
    handle.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// What a signal asks of the daemon.
enum Signal {
    /// SIGHUP (`systemctl reload`).
    Reload,
    /// SIGTERM or SIGINT, by name.
    Stop(&'static str),
}

/// The signals the daemon follows, registered once so none is missed while a reload
/// runs.
struct Signals {
    handlers: Option<(
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    )>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Some((term, int, hup)),
            _ => None,
        };
        Signals { handlers }
    }

    async fn next(&mut self) -> Signal {
        let Some((term, int, hup)) = &mut self.handlers else {
            // Without signal handlers the daemon could never stop cleanly; ctrl_c is
            // the portable fallback.
            let _ = tokio::signal::ctrl_c().await;
            return Signal::Stop("SIGINT");
        };
        tokio::select! {
            _ = term.recv() => Signal::Stop("SIGTERM"),
            _ = int.recv() => Signal::Stop("SIGINT"),
            _ = hup.recv() => Signal::Reload,
        }
    }
}

/// SIGHUP: reads the TLS certificate again. A certificate that cannot be used is
/// reported and the one in use stays.
fn reload_certificate(certs: Option<&CertStore>) {
    let Some(certs) = certs else {
        return;
    };
    match certs.reload() {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the one in use stays")
        }
    }
}

fn status_line(s: &str) -> sd_notify::NotifyState<'_> {
    sd_notify::NotifyState::Status(s)
}

/// The quickstart's promise: tell the operator exactly what to do next.
async fn print_next_steps(app: &App, local: SocketAddr) {
    let state = app.state();
    let public_url = &state.settings.public_url;
    let tokens = app.store().list_tokens().await.unwrap_or_default();
    let config_arg = app
        .config()
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

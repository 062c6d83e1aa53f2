//! SIGHUP's configuration reload, as the process sees it: read the same file with the
//! same command-line overrides, check it as startup does, refuse it whole when broken,
//! otherwise hand it to the running app and change the log level. One line at info
//! says what was applied and what needs a restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::setup::{self, LevelNotChanged, LogLevel};
use crate::app::{self, AppHandle};
use crate::config::{Config, Environment};
use crate::metrics::Reload;

/// Where the configuration came from and what is in effect.
pub struct Reloader<'a> {
    pub given: Option<&'a Path>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub env: &'a Environment,
    /// The address `server.listen` was bound to (port 0 resolved).
    pub bound: SocketAddr,
    pub log: LogLevel,
    /// The configuration in effect as configured (before `server.listen` was bound).
    pub configured: Config,
}

impl Reloader<'_> {
    /// Reloads, logs the outcome and counts it in
    /// `scim_bridge_config_reloads_total{outcome}`.
    pub async fn reload(&mut self, handle: &mut AppHandle) {
        let now = handle.state().clock.now().timestamp();
        match self.apply(handle).await {
            Ok(()) => handle.state().metrics.config_reload(Reload::Applied, now),
            Err(errors) => {
                for e in &errors {
                    tracing::error!("configuration reload: {e}");
                }
                tracing::error!(
                    errors = errors.len(),
                    "configuration reload refused: the configuration in use stays; fix the errors above (`scim-bridge check-config` shows them too) and reload again"
                );
                handle.state().metrics.config_reload(Reload::Refused, now);
            }
        }
    }

    async fn apply(&mut self, handle: &mut AppHandle) -> Result<(), Vec<String>> {
        let loaded = setup::read_config(self.given, self.data_dir.clone(), self.listen, self.env)
            .map_err(|e| e.errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        for w in &loaded.warnings {
            tracing::warn!("configuration: {w}");
        }
        let (warnings, errors) = app::setup::check(&loaded.config, self.env);
        for w in &warnings {
            tracing::warn!("configuration: {w}");
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (settled, restart) = app::reload::settle(&self.configured, loaded.config);
        let mut bound = settled.clone();
        bound.server.listen = self.bound;
        let mut applied = handle
            .reload(bound, self.env)
            .await
            .map_err(|e| vec![e.to_string()])?;
        let (old, new) = (&self.configured.logging.level, &settled.logging.level);
        if old != new {
            match self.log.set(new) {
                Ok(()) => applied.push(format!("logging.level ({old} → {new})")),
                Err(LevelNotChanged::Overridden(rust_log)) => tracing::warn!(
                    "logging.level changed ({old} → {new}) but RUST_LOG={rust_log} overrides it: unset RUST_LOG and restart to use it"
                ),
                Err(LevelNotChanged::Failed(e)) => {
                    tracing::error!(error = %e, "logging.level not changed")
                }
            }
        }
        for r in &restart {
            tracing::warn!("{r}");
        }
        self.configured = settled;
        tracing::info!("{}", summary(&applied, &restart));
        Ok(())
    }
}

/// The one line that says what a reload did.
fn summary(applied: &[String], restart: &[String]) -> String {
    let applied = match applied {
        [] => "nothing changed that can change live".to_owned(),
        a => format!("applied {}", a.join("; ")),
    };
    let restart = restart
        .iter()
        .map(|r| r.split_once(" changed").map_or(r.as_str(), |(key, _)| key))
        .collect::<Vec<_>>();
    if restart.is_empty() {
        format!("configuration reloaded: {applied}")
    } else {
        format!(
            "configuration reloaded: {applied}; needs a restart: {}",
            restart.join(", ")
        )
    }
}

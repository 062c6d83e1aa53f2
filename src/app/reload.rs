//! A configuration reload (SIGHUP, `systemctl reload`): what may change while the
//! daemon serves is applied, what is bound at start keeps its old value and is named
//! for a restart.
//!
//! Live: the client-network allow-lists (`[server] admin_allow`, `trusted_proxies`,
//! providers' `allow`), the shutdown grace period, targets (everything about them:
//! mappings, scopes, roles, rate limits, schedules, credentials), repositories and the
//! resolver; the log level is the CLI's, which owns the subscriber. Bound at start:
//! the listeners, the public URL links were handed out with, the data directory and
//! database, the vault, HTTP limits and timeouts, the `[scim]` limits, the log format
//! and the providers' dialects and schemas (the directory serving them is built once).

use std::fmt::Debug;
use std::time::Duration;

use super::delivering::{self, RunningTarget};
use super::targets::Context;
use super::{AppError, AppHandle};
use crate::config::{Config, Environment};

/// `new` with every setting that cannot change while serving put back to its value in
/// `running`, and one message per such setting that changed.
pub fn settle(running: &Config, mut new: Config) -> (Config, Vec<String>) {
    let mut s = Settle(Vec::new());
    let (old, server) = (&running.server, &mut new.server);
    s.shown("server.listen", &old.listen, &mut server.listen);
    s.debug("server.public_url", &old.public_url, &mut server.public_url);
    s.debug("server.data_dir", &old.data_dir, &mut server.data_dir);
    s.shown(
        "server.max_body_bytes",
        &old.max_body_bytes,
        &mut server.max_body_bytes,
    );
    s.duration(
        "server.request_timeout",
        &old.request_timeout,
        &mut server.request_timeout,
    );
    s.duration(
        "server.header_read_timeout",
        &old.header_read_timeout,
        &mut server.header_read_timeout,
    );
    s.duration(
        "server.idle_timeout",
        &old.idle_timeout,
        &mut server.idle_timeout,
    );
    s.debug(
        "server.max_connections",
        &old.max_connections,
        &mut server.max_connections,
    );
    // Where the certificate is read from; its files' contents reload on SIGHUP anyway.
    s.hidden("server.tls", &old.tls, &mut server.tls);
    // Credentials may be part of a database URL: never shown.
    s.hidden("database.url", &running.database.url, &mut new.database.url);
    s.duration(
        "database.event_retention",
        &running.database.event_retention,
        &mut new.database.event_retention,
    );
    s.duration(
        "database.log_retention",
        &running.database.log_retention,
        &mut new.database.log_retention,
    );
    s.shown(
        "database.max_connections",
        &running.database.max_connections,
        &mut new.database.max_connections,
    );
    s.debug(
        "logging.format",
        &running.logging.format,
        &mut new.logging.format,
    );
    s.hidden("vault", &running.vault, &mut new.vault);
    s.hidden("scim", &running.scim, &mut new.scim);
    // The console's router and listener are built at start; sessions live in it.
    s.debug("console", &running.console, &mut new.console);
    // A provider's allow-list is live; the rest of it built the directory.
    let strip = |c: &Config| {
        c.providers
            .iter()
            .map(|p| crate::config::ProviderConfig {
                allow: None,
                ..p.clone()
            })
            .collect::<Vec<_>>()
    };
    if strip(running) != strip(&new) {
        let names = |c: &Config| {
            c.providers
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.0.push(format!(
            "providers changed (names, dialects or schemas; {} → {}): restart to apply",
            names(running),
            names(&new)
        ));
        let allow: Vec<_> = new
            .providers
            .iter()
            .map(|p| (p.name.clone(), p.allow.clone()))
            .collect();
        new.providers = running.providers.clone();
        for p in &mut new.providers {
            p.allow = allow
                .iter()
                .find(|(n, _)| *n == p.name)
                .and_then(|(_, a)| a.clone());
        }
    }
    (new, s.0)
}

/// Collects what needs a restart while putting the old values back.
struct Settle(Vec<String>);

impl Settle {
    fn shown<T: PartialEq + Clone + std::fmt::Display>(&mut self, key: &str, old: &T, new: &mut T) {
        self.keep(key, old, new, |v| v.to_string());
    }

    fn debug<T: PartialEq + Clone + Debug>(&mut self, key: &str, old: &T, new: &mut T) {
        self.keep(key, old, new, |v| format!("{v:?}"));
    }

    fn duration(&mut self, key: &str, old: &Duration, new: &mut Duration) {
        self.keep(key, old, new, |d| crate::config::show_duration(*d));
    }

    fn hidden<T: PartialEq + Clone>(&mut self, key: &str, old: &T, new: &mut T) {
        if old != new {
            self.0.push(format!("{key} changed: restart to apply"));
            *new = old.clone();
        }
    }

    fn keep<T: PartialEq + Clone>(
        &mut self,
        key: &str,
        old: &T,
        new: &mut T,
        show: impl Fn(&T) -> String,
    ) {
        if old != new {
            self.0.push(format!(
                "{key} changed ({} → {}): restart to apply",
                show(old),
                show(new)
            ));
            *new = old.clone();
        }
    }
}

impl AppHandle {
    /// Applies `cfg` (already [`settle`]d, `server.listen` the address bound) to the
    /// running daemon and says what changed. Targets whose settings or secrets changed
    /// are rebuilt: the old engine drains as at shutdown and the new one continues
    /// from the durable outbox; the others keep running untouched. Everything that
    /// can fail is built before anything running is stopped, so an error leaves the
    /// daemon as it was.
    pub async fn reload(
        &mut self,
        cfg: Config,
        env: &Environment,
    ) -> Result<Vec<String>, AppError> {
        let public_url = self.state.settings.public_url.clone();
        let ctx = Context {
            env,
            secrets: self.secrets.clone(),
            clock: std::sync::Arc::clone(&self.state.clock),
            entropy: std::sync::Arc::clone(&self.state.entropy),
            public_url: &public_url,
            store: std::sync::Arc::clone(&self.store),
        };
        let mut changed = Vec::new();
        for t in &cfg.targets {
            let secrets = delivering::secret_values(t, &ctx).await?;
            let same = self
                .targets
                .iter()
                .any(|r| r.name() == t.name && r.same_as(t, &secrets));
            if !same {
                changed.push(t.clone());
            }
        }
        let removed: Vec<String> = self
            .targets
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|n| !cfg.targets.iter().any(|t| t.name == *n))
            .collect();
        let only_changed = Config {
            targets: changed,
            ..cfg.clone()
        };
        let built = delivering::build(&only_changed, &ctx, &self.owner).await?;

        let mut applied = Vec::new();
        let (mut added, mut rebuilt) = (Vec::new(), Vec::new());
        for t in &built {
            let name = t.name().to_owned();
            if self.targets.iter().any(|r| r.name() == name) {
                self.stop_target(&name).await;
                rebuilt.push(name);
            } else {
                added.push(name);
            }
        }
        for name in &removed {
            self.stop_target(name).await;
        }
        if !(built.is_empty() && removed.is_empty()) {
            // As at startup: queues of targets or routes gone from the configuration go.
            let routes = delivering::routes(self.targets.iter().chain(built.iter()));
            match self.store.set_delivery_routes(routes).await {
                Ok(0) => {}
                Ok(dropped) => tracing::warn!(
                    dropped,
                    "removed queued changes for targets or routes no longer in the configuration"
                ),
                Err(e) => tracing::error!(error = %e, "cannot update the delivery routes"),
            }
        }
        for t in built {
            self.start_target(t);
        }
        let order = |t: &RunningTarget| cfg.targets.iter().position(|c| c.name == t.name());
        self.targets.sort_by_key(order);
        let targets_changed = !(added.is_empty() && rebuilt.is_empty() && removed.is_empty());
        for (what, names) in [
            ("added", &added),
            ("rebuilt", &rebuilt),
            ("removed", &removed),
        ] {
            if !names.is_empty() {
                applied.push(format!("targets {what}: {}", names.join(", ")));
            }
        }
        if targets_changed {
            self.state
                .targets
                .set(self.targets.iter().map(|t| t.handle.clone()).collect());
        }
        if let Some(console) = &self.console {
            console.set_targets(&cfg);
        }
        if targets_changed
            || cfg.repositories != self.cfg.repositories
            || cfg.resolver != self.cfg.resolver
        {
            let clock = std::sync::Arc::clone(&self.state.clock);
            let resolver = delivering::resolver(&cfg, &self.targets, &public_url, clock);
            self.state.resolver.set(resolver);
            if cfg.repositories != self.cfg.repositories || cfg.resolver != self.cfg.resolver {
                applied.push("repositories and resolver".to_owned());
            }
        }
        let network = delivering::network_policy(&cfg);
        if *self.state.network.get() != network {
            self.state.network.set(network);
            applied.push("network policy".to_owned());
        }
        if cfg.server.shutdown_timeout != self.grace {
            self.grace = cfg.server.shutdown_timeout;
            applied.push("server.shutdown_timeout".to_owned());
        }
        self.cfg = cfg;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::settle;

    fn load_str(text: &str) -> Result<crate::config::Loaded, crate::config::ConfigErrors> {
        let env = crate::config::Environment::default();
        crate::config::load_str(text, "test.toml", std::path::Path::new("/tmp"), &env)
    }

    fn config(listen: &str, extra: &str) -> crate::config::Config {
        let text = format!(
            "[server]\nlisten = \"{listen}\"\ndata_dir = \"/tmp/x\"\n{extra}\n[[providers]]\nname = \"entra\"\ndialect = \"entra\"\n"
        );
        load_str(&text).unwrap().config
    }

    #[test]
    fn what_is_bound_at_start_keeps_its_value_and_is_named() {
        let old = config("127.0.0.1:8080", "");
        let new = config(
            "127.0.0.1:9090",
            "admin_allow = [\"10.0.0.0/8\"]\nmax_body_bytes = 2097152\n",
        );
        let (settled, restart) = settle(&old, new);
        assert_eq!(
            restart,
            [
                "server.listen changed (127.0.0.1:8080 → 127.0.0.1:9090): restart to apply",
                "server.max_body_bytes changed (1048576 → 2097152): restart to apply",
            ]
        );
        assert_eq!(settled.server.listen, old.server.listen);
        assert_eq!(settled.server.max_body_bytes, old.server.max_body_bytes);
        // The allow-list is live.
        assert!(settled.server.admin_allow.is_some());
    }

    #[test]
    fn a_provider_allow_list_is_live_and_its_dialect_is_not() {
        let old = config("127.0.0.1:8080", "");
        let text = old_text_with("dialect = \"strict\"\nallow = [\"192.0.2.0/24\"]");
        let new = load_str(&text).unwrap().config;
        let (settled, restart) = settle(&old, new);
        assert_eq!(restart.len(), 1, "{restart:?}");
        assert!(restart[0].starts_with("providers changed"), "{restart:?}");
        assert_eq!(settled.providers[0].dialect, old.providers[0].dialect);
        assert!(settled.providers[0].allow.is_some());
        let unchanged = config("127.0.0.1:8080", "");
        assert!(settle(&old, unchanged).1.is_empty());
    }

    fn old_text_with(provider: &str) -> String {
        format!(
            "[server]\nlisten = \"127.0.0.1:8080\"\ndata_dir = \"/tmp/x\"\n[[providers]]\nname = \"entra\"\n{provider}\n"
        )
    }
}

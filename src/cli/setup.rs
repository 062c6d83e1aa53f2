//! Shared set-up for subcommands: finding and loading the config, opening the store,
//! building providers from it, logging.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Failure;
use crate::config::{self, Config, Environment, Loaded, LogFormat};
use crate::store::Store;

/// Where the config is looked for when `--config` is not given.
pub const REPO_CONFIG: &str = "config/scim-bridge.toml";
/// The packaged location.
pub const SYSTEM_CONFIG: &str = "/etc/scim-bridge/scim-bridge.toml";

/// The config file to use: `--config`, else the repository's, else the system one.
pub fn config_path(given: Option<&Path>) -> PathBuf {
    match given {
        Some(p) => p.to_owned(),
        None if Path::new(REPO_CONFIG).is_file() => PathBuf::from(REPO_CONFIG),
        None => PathBuf::from(SYSTEM_CONFIG),
    }
}

/// Loads and validates the config, applies CLI overrides, prints warnings.
pub fn load_config(
    given: Option<&Path>,
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    env: &Environment,
) -> Result<Loaded, Failure> {
    let loaded =
        read_config(given, data_dir, listen, env).map_err(|e| Failure::config(e.to_string()))?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded)
}

/// Loads and validates the config and applies CLI overrides, leaving its warnings to
/// the caller (a reload logs them).
pub fn read_config(
    given: Option<&Path>,
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    env: &Environment,
) -> Result<Loaded, config::ConfigErrors> {
    let mut loaded = config::load(&config_path(given), env)?;
    loaded.config.apply_overrides(listen, data_dir);
    Ok(loaded)
}

/// `check-config`: everything `serve` would check before starting, and nothing else.
pub async fn check_config(
    given: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
) -> Result<(), Failure> {
    let loaded = load_config(given, data_dir, None, env)?;
    let cfg = &loaded.config;
    let (warnings, mut errors) = crate::app::setup::check(cfg, env);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if errors.is_empty() {
        let (more_warnings, more_errors) = check_vault_refs(cfg, env).await;
        for w in &more_warnings {
            eprintln!("warning: {w}");
        }
        errors.extend(more_errors);
    }
    if !errors.is_empty() {
        return Err(Failure::config(errors.join("\n")));
    }
    let source = cfg
        .source
        .as_ref()
        .map_or_else(|| "<none>".to_owned(), |p| p.display().to_string());
    println!(
        "{source}: configuration is valid ({} provider(s), {} warning(s))",
        cfg.providers.len(),
        loaded.warnings.len() + warnings.len()
    );
    Ok(())
}

/// Every `{ vault = "NAME" }` reference must name a secret the vault holds, or `serve`
/// stops at start (under systemd, after ExecStartPre said all was well). When the
/// passphrase is at hand the vault is opened and each secret is decrypted; when the
/// database cannot be opened, the references left unchecked are named. Never creates
/// a database.
async fn check_vault_refs(cfg: &Config, env: &Environment) -> (Vec<String>, Vec<String>) {
    let refs: Vec<(String, String)> = cfg
        .secret_refs()
        .into_iter()
        .filter_map(|(key, r)| match r {
            crate::config::SecretRef::Vault(name) => Some((key, name.clone())),
            _ => None,
        })
        .collect();
    let (mut warnings, mut errors) = (Vec::new(), Vec::new());
    if refs.is_empty() {
        return (warnings, errors);
    }
    let keys = refs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if cfg.vault.is_none() {
        errors.push(format!(
            "{keys}: refer to the vault, but there is no [vault] section: add one with passphrase = {{ credential = \"…\" }} or {{ file = \"…\" }}"
        ));
        return (warnings, errors);
    }
    if let Some(path) = cfg.sqlite_path()
        && !path.exists()
    {
        errors.push(format!(
            "{keys}: refer to the vault, but the database {} does not exist yet, so the vault is not initialised: run `scim-bridge vault init`, then `scim-bridge secret set NAME` for each",
            path.display()
        ));
        return (warnings, errors);
    }
    let store = match crate::app::setup::open_store(cfg).await {
        Ok(s) => s,
        Err(e) => {
            warnings.push(format!(
                "{keys}: not checked, the database cannot be opened: {}",
                e.message()
            ));
            return (warnings, errors);
        }
    };
    match super::vault::unlock(store.as_ref(), cfg, env).await {
        Ok(None) => errors.push(format!(
            "{keys}: refer to the vault, but it is not initialised: run `scim-bridge vault init`, then `scim-bridge secret set NAME` for each"
        )),
        // A missing passphrase file or credential was reported above; what is left is
        // a passphrase that is too short or wrong.
        Err(e) => errors.push(e.to_string()),
        Ok(Some((key, _))) => {
            for (k, name) in &refs {
                match store.secret(name).await {
                    Ok(Some(row)) => {
                        if key
                            .open(&crate::vault::secret_aad(name), &row.sealed)
                            .is_err()
                        {
                            errors.push(format!(
                                "{k}: the vault's secret {name:?} does not open with this passphrase; store it again with `scim-bridge secret set {name}`"
                            ));
                        }
                    }
                    Ok(None) => errors.push(format!(
                        "{k}: the vault holds no secret named {name:?}; store it with `scim-bridge secret set {name}`"
                    )),
                    Err(e) => warnings.push(format!("{k}: not checked: {e}")),
                }
            }
        }
    }
    store.close().await;
    (warnings, errors)
}

/// For commands that read or change what exists: the SQLite database must be there
/// already. Creating one here would show an empty bridge (a wrong data_dir, say) and,
/// run as root, leave files the service user cannot write.
pub async fn open_existing_store(cfg: &Config) -> Result<Arc<dyn Store>, Failure> {
    if let Some(path) = cfg.sqlite_path()
        && !path.exists()
    {
        return Err(Failure::store(format!(
            "no database at {}: the daemon creates it when it first starts. If it runs with another data directory, point this command there with --data-dir (the systemd unit keeps it in /var/lib/scim-bridge) or set [server] data_dir",
            path.display()
        )));
    }
    Ok(crate::app::setup::open_store(cfg).await?)
}

/// Changes the running subscriber's filter, for a reload of `[logging] level`.
type SetFilter = Box<dyn Fn(tracing_subscriber::EnvFilter) -> Result<(), String> + Send + Sync>;

/// The log level of the running daemon, changeable on reload.
pub struct LogLevel {
    set: Option<SetFilter>,
    /// `RUST_LOG`, which overrides `[logging] level` when set.
    rust_log: Option<String>,
}

/// Why a new `[logging] level` did not take effect.
#[derive(Debug)]
pub enum LevelNotChanged {
    /// `RUST_LOG` is set and wins over the configuration.
    Overridden(String),
    /// The subscriber could not be changed (another one was installed first).
    Failed(String),
}

impl LogLevel {
    /// Puts the directive list `level` in effect.
    pub fn set(&self, level: &str) -> Result<(), LevelNotChanged> {
        if let Some(rust_log) = &self.rust_log {
            return Err(LevelNotChanged::Overridden(rust_log.clone()));
        }
        let filter = tracing_subscriber::EnvFilter::try_new(level)
            .map_err(|e| LevelNotChanged::Failed(e.to_string()))?;
        match &self.set {
            Some(set) => set(filter).map_err(LevelNotChanged::Failed),
            None => Err(LevelNotChanged::Failed(
                "another logger was installed first".to_owned(),
            )),
        }
    }
}

/// Installs the tracing subscriber the config asks for; `RUST_LOG` wins when set.
/// The level it returns changes the filter on reload.
pub fn init_logging(cfg: &Config, env: &Environment) -> LogLevel {
    use tracing_subscriber::EnvFilter;
    let rust_log = env.vars.get("RUST_LOG").cloned();
    let directive = rust_log
        .clone()
        .unwrap_or_else(|| cfg.logging.level.clone());
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: a file, a pipe or journald would keep
    // the escape codes as text. NO_COLOR (https://no-color.org) turns it off anyway.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && env.vars.get("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let set: Option<SetFilter> = match cfg.logging.format {
        LogFormat::Json => {
            let builder = builder.json().flatten_event(true).with_filter_reloading();
            let handle = builder.reload_handle();
            builder.try_init().ok().map(|()| {
                Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())) as SetFilter
            })
        }
        LogFormat::Text => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            builder.try_init().ok().map(|()| {
                Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())) as SetFilter
            })
        }
    };
    LogLevel { set, rust_log }
}

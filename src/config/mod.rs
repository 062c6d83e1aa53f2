//! Configuration: a TOML file, overridden by `SCIM_BRIDGE__SECTION__KEY`
//! environment variables, overridden by command-line flags
//! ([`Config::apply_overrides`]).
//!
//! # Errors
//!
//! Loading never stops at the first problem: syntax errors, unknown keys
//! (with a "did you mean" suggestion), wrong types and invalid values are all
//! collected into [`ConfigErrors`], each as
//! `file:line:column: key.path: message`, or `env VARIABLE: key.path: message`
//! for environment overrides.
//!
//! # Paths
//!
//! Relative paths in the file (`server.data_dir`, `{ file = ... }` secrets)
//! are taken relative to the directory holding the config file, not the
//! working directory, which under systemd is `/`. A relative
//! `sqlite://` database path is relative to `server.data_dir`.
//!
//! # Environment overrides
//!
//! `SCIM_BRIDGE__SERVER__LISTEN=0.0.0.0:9000` sets `server.listen`: the
//! prefix is matched case-insensitively, parts are separated by `__` and
//! lowercased. Values are read as TOML when they parse (`8080`, `true`,
//! `{ credential = "db" }`) and as plain strings otherwise. Entries of arrays
//! of tables (`[[providers]]`) cannot be overridden.
//!
//! # Secrets
//!
//! Secrets are never written inline: the file names a file, a systemd
//! credential (`$CREDENTIALS_DIRECTORY`), an environment variable or a vault
//! entry, see [`SecretRef`]. [`check_secret_files`] inspects them for
//! `check-config`.

mod check;
mod defaults;
mod error;
mod known_attrs;
mod network;
mod oidc;
mod reader;
mod repositories;
mod roles;
mod schedule;
mod schema;
mod secret;
mod targets;
mod tree;
mod values;
mod walk;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use toml::de::DeTable;

pub use check::check_secret_files;
pub use error::{ConfigError, ConfigErrors};
pub use network::{IpNetwork, allowed};
pub use oidc::{CALLBACK_PATH as OIDC_CALLBACK_PATH, OidcConfig};
pub use repositories::is_search_field;
pub use schedule::normalise as normalise_cron;
pub use schema::{
    AttrKind, AuthConfig, AuthHeader, AuthMethod, ClientAuth, Config, ConsoleConfig,
    CustomAttribute, CustomSchema, DatabaseConfig, DatabaseUrl, DeliverySettings, DialectSetting,
    FieldMapping, GuardSettings, LogFormat, LoggingConfig, MatchRules, MutabilitySetting, OnDelete,
    ProviderConfig, RepositoryConfig, ResolverConfig, ResourceSetting, ReturnedSetting, ScimConfig,
    ServerConfig, TargetConfig, TargetKind, TargetSpec, TlsConfig, UniquenessSetting, Unmanaged,
    VaultConfig, WorkTypeConfig, WorkspaceSearch,
};
pub use secret::{Environment, SecretError, SecretRef, SecretValue, credential_path};
/// Durations as the config writes them (`"3s"`), for command-line flags too.
pub use values::duration as parse_duration;
pub use values::show_duration;

/// A valid configuration and the warnings found while loading it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// Suspicious but workable settings, each naming the key concerned.
    pub warnings: Vec<String>,
}

/// Loads and validates the file at `path`, applying overrides from `env`.
pub fn load(path: &Path, env: &Environment) -> Result<Loaded, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        origin: origin.clone(),
        errors: vec![ConfigError {
            origin: origin.clone(),
            line: None,
            column: None,
            key_path: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        }],
    })?;
    // Resolved now, so a later change of working directory cannot move
    // relative paths.
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base_dir = source
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut loaded = load_str(&text, &origin, &base_dir, env)?;
    loaded.config.source = Some(source);
    Ok(loaded)
}

/// Loads configuration text; `origin` names it in messages and `base_dir`
/// stands in for the config file's directory when resolving relative paths.
pub fn load_str(
    text: &str,
    origin: &str,
    base_dir: &Path,
    env: &Environment,
) -> Result<Loaded, ConfigErrors> {
    let mut ctx = reader::Ctx::new(origin);
    let index = tree::LineIndex::new(text);
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    for error in &syntax_errors {
        let span = error.span();
        let loc = span.as_ref().map(|s| index.loc(s.start));
        ctx.syntax_error(span, loc, error.message());
    }
    let mut root = tree::convert_document(&document, &index, &mut ctx);
    tree::apply_env_overrides(&mut root, env, &mut ctx);
    let config = walk::read_config(&mut ctx, &root, base_dir);
    let origin = ctx.origin().to_owned();
    let (errors, warnings) = ctx.finish();
    if errors.is_empty() {
        Ok(Loaded { config, warnings })
    } else {
        Err(ConfigErrors { origin, errors })
    }
}

//! Shared set-up for subcommands: finding and loading the config, opening the store,
//! building providers from it, logging.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Failure;
use crate::config::{
    self, AttrKind, Config, CustomAttribute, DatabaseUrl, DialectSetting, Environment, Loaded,
    LogFormat, MutabilitySetting, ResourceSetting, ReturnedSetting, UniquenessSetting,
};
use crate::directory::{BulkLimits, Limits, Provider};
use crate::scim::{
    AttrType, Attribute, Dialect, FilterLimits, Mutability, ResourceKind, Returned, Schema,
    SchemaRegistry, Uniqueness,
};
use crate::store::Store;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;

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
    let path = config_path(given);
    let mut loaded = config::load(&path, env).map_err(|e| Failure::config(e.to_string()))?;
    loaded.config.apply_overrides(listen, data_dir);
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded)
}

/// `check-config`: everything `serve` would check before starting, and nothing else.
pub fn check_config(
    given: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
) -> Result<(), Failure> {
    let loaded = load_config(given, data_dir, None, env)?;
    let cfg = &loaded.config;
    let (warnings, mut errors) = config::check_secret_files(cfg, env);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Err(e) = build_providers(cfg) {
        errors.push(e.message);
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

/// Opens the store the config names (SQLite or PostgreSQL), migrating its schema.
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Store>, Failure> {
    Ok(open_store_migrating(cfg).await?.0)
}

/// [`open_store`], also returning the schema version found before migrating.
pub async fn open_store_migrating(cfg: &Config) -> Result<(Arc<dyn Store>, i64), Failure> {
    match &cfg.database.url {
        DatabaseUrl::Postgres(url) => {
            let store = PgStore::open(url, cfg.database.max_connections)
                .await
                .map_err(|e| Failure::store(e.to_string()))?;
            let from = store.migrated_from();
            Ok((Arc::new(store), from))
        }
        DatabaseUrl::Sqlite(_) => {
            let path = cfg
                .sqlite_path()
                .ok_or_else(|| Failure::store("database.url names no SQLite file".to_owned()))?;
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                .await
                .map_err(|e| Failure::runtime(format!("store task failed: {e}")))?
                .map_err(|e| Failure::store(e.to_string()))?;
            let from = store.migrated_from();
            Ok((Arc::new(store), from))
        }
    }
}

/// Service limits from the `[scim]` section.
pub fn limits(cfg: &Config) -> Limits {
    Limits {
        filter: FilterLimits {
            max_len: cfg.scim.max_filter_length,
            max_depth: cfg.scim.max_filter_depth,
        },
        default_page_size: cfg.scim.default_page_size,
        max_page_size: cfg.scim.max_page_size,
        bulk: BulkLimits {
            max_operations: cfg.scim.bulk_max_operations,
            max_payload_bytes: cfg.scim.bulk_max_payload_bytes,
        },
    }
}

/// Providers with their schema registries (core + enterprise + custom schemas).
pub fn build_providers(cfg: &Config) -> Result<Vec<Provider>, Failure> {
    let mut out = Vec::new();
    for (i, p) in cfg.providers.iter().enumerate() {
        let mut registry = SchemaRegistry::new();
        for (j, s) in p.schemas.iter().enumerate() {
            let kind = match s.resource {
                ResourceSetting::User => ResourceKind::User,
                ResourceSetting::Group => ResourceKind::Group,
            };
            let schema = Schema {
                id: s.id.clone(),
                name: s.name.clone(),
                description: s.description.clone().unwrap_or_default(),
                attributes: s.attributes.iter().map(attribute).collect(),
            };
            registry.add_extension(kind, schema).map_err(|e| {
                Failure::config(format!("providers[{i}].schemas[{j}] ({}): {e}", s.id))
            })?;
        }
        out.push(Provider {
            name: p.name.clone(),
            dialect: match p.dialect {
                DialectSetting::Strict => Dialect::Strict,
                DialectSetting::Entra => Dialect::Entra,
                DialectSetting::Okta => Dialect::Okta,
            },
            registry,
        });
    }
    Ok(out)
}

fn attribute(a: &CustomAttribute) -> Attribute {
    let mut out = Attribute::new(
        &a.name,
        match a.kind {
            AttrKind::String => AttrType::String,
            AttrKind::Boolean => AttrType::Boolean,
            AttrKind::Decimal => AttrType::Decimal,
            AttrKind::Integer => AttrType::Integer,
            AttrKind::DateTime => AttrType::DateTime,
            AttrKind::Reference => AttrType::Reference,
            AttrKind::Binary => AttrType::Binary,
            AttrKind::Complex => AttrType::Complex,
        },
    );
    out.description = a.description.clone().unwrap_or_default();
    out.multi_valued = a.multi_valued;
    out.required = a.required;
    out.case_exact = a.case_exact;
    out.mutability = match a.mutability {
        MutabilitySetting::ReadWrite => Mutability::ReadWrite,
        MutabilitySetting::ReadOnly => Mutability::ReadOnly,
        MutabilitySetting::Immutable => Mutability::Immutable,
        MutabilitySetting::WriteOnly => Mutability::WriteOnly,
    };
    out.returned = match a.returned {
        ReturnedSetting::Default => Returned::Default,
        ReturnedSetting::Always => Returned::Always,
        ReturnedSetting::Never => Returned::Never,
        ReturnedSetting::Request => Returned::Request,
    };
    out.uniqueness = match a.uniqueness {
        UniquenessSetting::None => Uniqueness::None,
        UniquenessSetting::Server => Uniqueness::Server,
        UniquenessSetting::Global => Uniqueness::Global,
    };
    // Canonical values declared in the config are the only values the target accepts
    // (DiliTrust's role UUIDs): enforce them rather than merely suggest.
    out.enforce_canonical = !a.canonical_values.is_empty();
    out.canonical_values = a.canonical_values.clone();
    out.sub_attributes = a.sub_attributes.iter().map(attribute).collect();
    out
}

/// Installs the tracing subscriber the config asks for; `RUST_LOG` wins when set.
pub fn init_logging(cfg: &Config, env: &Environment) {
    use tracing_subscriber::EnvFilter;
    let directive = env
        .vars
        .get("RUST_LOG")
        .cloned()
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
    let _ = match cfg.logging.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

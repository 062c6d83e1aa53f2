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
pub async fn check_config(
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
    // The certificate and key must parse and belong together, or `serve` stops at start.
    if let Some(tls) = &cfg.server.tls
        && let Err(e) = crate::server::CertStore::load(tls, env)
    {
        errors.push(e.to_string());
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
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(e) => {
            warnings.push(format!(
                "{keys}: not checked, the database cannot be opened: {}",
                e.message
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
        Err(e) => errors.push(e.message),
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
    open_store(cfg).await
}

/// Opens the store the config names (SQLite or PostgreSQL), migrating its schema;
/// creates an SQLite database that does not exist yet (`serve`, `migrate`, `vault
/// init`, `token create`).
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
            if s.id.eq_ignore_ascii_case(kind.core_schema()) {
                // Attributes a vendor's guide maps under the core schema
                // (`urn:…:core:2.0:User:roleId`) join it, as /Schemas then shows.
                for a in &s.attributes {
                    registry.add_attribute(&s.id, attribute(a)).map_err(|e| {
                        Failure::config(format!("providers[{i}].schemas[{j}] ({}): {e}", s.id))
                    })?;
                }
                continue;
            }
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
        out.push(Provider::new(
            p.name.clone(),
            match p.dialect {
                DialectSetting::Strict => Dialect::Strict,
                DialectSetting::Entra => Dialect::Entra,
                DialectSetting::Okta => Dialect::Okta,
            },
            registry,
        ));
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

//! What the daemon and the one-shot commands build first from the config: the store
//! it names and the providers with their schemas and limits.

use std::sync::Arc;

use super::AppError;
use crate::config::{
    AttrKind, Config, CustomAttribute, DatabaseUrl, DialectSetting, MutabilitySetting,
    ResourceSetting, ReturnedSetting, UniquenessSetting,
};
use crate::directory::{BulkLimits, Limits, Provider};
use crate::scim::{
    AttrType, Attribute, Dialect, FilterLimits, Mutability, ResourceKind, Returned, Schema,
    SchemaRegistry, Uniqueness,
};
use crate::store::Store;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;

/// Opens the store the config names (SQLite or PostgreSQL), migrating its schema;
/// creates an SQLite database that does not exist yet (`serve`, `migrate`, `vault
/// init`, `token create`).
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Store>, AppError> {
    Ok(open_store_migrating(cfg).await?.0)
}

/// [`open_store`], also returning the schema version found before migrating.
pub async fn open_store_migrating(cfg: &Config) -> Result<(Arc<dyn Store>, i64), AppError> {
    match &cfg.database.url {
        DatabaseUrl::Postgres(url) => {
            let store = PgStore::open(url, cfg.database.max_connections)
                .await
                .map_err(|e| AppError::Store(e.to_string()))?;
            let from = store.migrated_from();
            Ok((Arc::new(store), from))
        }
        DatabaseUrl::Sqlite(_) => {
            let path = cfg
                .sqlite_path()
                .ok_or_else(|| AppError::Store("database.url names no SQLite file".to_owned()))?;
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                .await
                .map_err(|e| AppError::Runtime(format!("store task failed: {e}")))?
                .map_err(|e| AppError::Store(e.to_string()))?;
            let from = store.migrated_from();
            Ok((Arc::new(store), from))
        }
    }
}

/// What `check-config`, startup and a reload check of a loaded configuration before
/// using it, beyond what loading checked: secret files readable and private, the
/// providers' schemas, the TLS certificate and key. Warnings, then errors.
pub fn check(cfg: &Config, env: &crate::config::Environment) -> (Vec<String>, Vec<String>) {
    let (warnings, mut errors) = crate::config::check_secret_files(cfg, env);
    if let Err(e) = build_providers(cfg) {
        errors.push(e.to_string());
    }
    // The certificate and key must parse and belong together, or `serve` stops at start.
    if let Some(tls) = &cfg.server.tls
        && let Err(e) = crate::server::CertStore::load(tls, env)
    {
        errors.push(e.to_string());
    }
    (warnings, errors)
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
pub fn build_providers(cfg: &Config) -> Result<Vec<Provider>, AppError> {
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
                        AppError::Config(format!("providers[{i}].schemas[{j}] ({}): {e}", s.id))
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
                AppError::Config(format!("providers[{i}].schemas[{j}] ({}): {e}", s.id))
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

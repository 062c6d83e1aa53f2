//! Walks the tree section by section into a [`Config`].
//!
//! Every reader returns a value even when input is wrong (falling back to
//! defaults) so that later sections are still checked; the caller discards
//! the config when any error was recorded.

use std::collections::BTreeMap;
use std::path::Path;

use super::network::IpNetwork;
use super::reader::{Ctx, Field, Fields, Keyword, quote};
use super::schema::{
    AttrKind, Config, ConsoleConfig, CustomAttribute, CustomSchema, DatabaseConfig, DatabaseUrl,
    LoggingConfig, ProviderConfig, ResourceSetting, ScimConfig, ServerConfig, TlsConfig,
    VaultConfig,
};
use super::secret::SecretRef;
use super::tree::{Loc, Node, Val};
use super::values;
use crate::scim::ResourceKind;

/// Positions needed by checks that span sections.
#[derive(Default)]
struct Spots {
    max_body_bytes: Option<Loc>,
    bulk_max_payload_bytes: Option<Loc>,
}

pub(super) fn read_config(ctx: &mut Ctx, root: &Node, base_dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = base_dir.join(&config.server.data_dir);
    let Some(mut top) = Fields::root(root) else {
        return config;
    };
    let server = top.get("server");
    let database = top.get("database");
    let logging = top.get("logging");
    let vault = top.get("vault");
    let scim = top.get("scim");
    let providers = top.get("providers");
    let targets = top.get("targets");
    let repositories = top.get("repositories");
    let resolver = top.get("resolver");
    let console = top.get("console");
    top.finish(ctx);

    let mut spots = Spots::default();
    if let Some(f) = server {
        read_server(ctx, &f, base_dir, &mut config.server, &mut spots);
    }
    if let Some(f) = database {
        config.database = read_database(ctx, &f);
    }
    if let Some(f) = logging {
        config.logging = read_logging(ctx, &f);
    }
    if let Some(f) = vault {
        config.vault = read_vault(ctx, &f, base_dir);
    }
    if let Some(f) = scim {
        config.scim = read_scim(ctx, &f, &mut spots);
    }
    if let Some(f) = providers {
        config.providers = read_providers(ctx, &f);
    }
    if let Some(f) = targets {
        config.targets = super::targets::read_targets(
            ctx,
            &f,
            base_dir,
            config.database.event_retention,
            &config.providers,
        );
    }
    if let Some(f) = repositories {
        config.repositories = super::repositories::read_repositories(ctx, &f, &config.targets);
    }
    if let Some(f) = resolver {
        config.resolver = super::repositories::read_resolver(ctx, &f);
    }
    if let Some(f) = console {
        config.console = read_console(ctx, &f, &config.server, base_dir);
    }
    check_limits(ctx, &config, &spots);
    add_warnings(ctx, &config);
    config
}

fn read_server(
    ctx: &mut Ctx,
    f: &Field<'_>,
    base_dir: &Path,
    out: &mut ServerConfig,
    spots: &mut Spots,
) {
    let Some(mut t) = ctx.table(f) else {
        return;
    };
    let listen = t.get("listen");
    let public_url = t.get("public_url");
    let data_dir = t.get("data_dir");
    let max_body_bytes = t.get("max_body_bytes");
    let request_timeout = t.get("request_timeout");
    let header_read_timeout = t.get("header_read_timeout");
    let idle_timeout = t.get("idle_timeout");
    let max_connections = t.get("max_connections");
    let shutdown_timeout = t.get("shutdown_timeout");
    let tls = t.get("tls");
    let trusted_proxies = t.get("trusted_proxies");
    let admin_allow = t.get("admin_allow");
    t.finish(ctx);
    out.tls = tls.and_then(|f| read_tls(ctx, &f, base_dir));
    if let Some(list) = trusted_proxies.and_then(|f| networks(ctx, &f)) {
        out.trusted_proxies = list;
    }
    out.admin_allow = admin_allow.and_then(|f| networks(ctx, &f));

    if let Some(v) =
        listen.and_then(|f| ctx.parse(&f, values::LISTEN_EXPECTED, values::socket_addr))
    {
        out.listen = v;
    }
    out.public_url =
        public_url.and_then(|f| ctx.parse(&f, values::PUBLIC_URL_EXPECTED, values::public_url));
    if let Some(dir) = data_dir.and_then(|f| ctx.non_empty_string(&f)) {
        out.data_dir = base_dir.join(dir);
    }
    if let Some(f) = max_body_bytes {
        spots.max_body_bytes = Some(f.loc().clone());
        if let Some(v) = byte_size(ctx, &f) {
            out.max_body_bytes = v;
        }
    }
    if let Some(v) = request_timeout.and_then(|f| timeout(ctx, &f)) {
        out.request_timeout = v;
    }
    if let Some(v) = header_read_timeout.and_then(|f| timeout(ctx, &f)) {
        out.header_read_timeout = v;
    }
    if let Some(v) = idle_timeout.and_then(|f| timeout(ctx, &f)) {
        out.idle_timeout = v;
    }
    if let Some(v) = max_connections.and_then(|f| ctx.usize(&f, 1)) {
        out.max_connections = Some(v);
    }
    if let Some(v) =
        shutdown_timeout.and_then(|f| ctx.parse(&f, values::DURATION_EXPECTED, values::duration))
    {
        out.shutdown_timeout = v;
    }
}

/// `[console]`: `enabled`, `listen` (not an address the daemon already serves),
/// `session_lifetime` and `[console.oidc]`.
fn read_console(
    ctx: &mut Ctx,
    f: &Field<'_>,
    server: &ServerConfig,
    base_dir: &Path,
) -> ConsoleConfig {
    let mut out = ConsoleConfig::default();
    let Some(mut t) = ctx.table(f) else {
        return out;
    };
    let enabled = t.get("enabled");
    let listen = t.get("listen");
    let lifetime = t.get("session_lifetime");
    let oidc = t.get("oidc");
    t.finish(ctx);
    if let Some(v) = enabled.and_then(|f| ctx.bool(&f)) {
        out.enabled = v;
    }
    if let Some(f) = listen
        && let Some(addr) = ctx.parse(&f, values::LISTEN_EXPECTED, values::socket_addr)
    {
        let taken = [
            ("server.listen", Some(server.listen)),
            ("server.tls.listen", server.tls.as_ref().map(|t| t.listen)),
        ];
        match taken.iter().find(|(_, a)| *a == Some(addr)) {
            Some((key, _)) => ctx.error(
                f.loc(),
                &f.path,
                format!(
                    "{addr} is also {key}; the console needs its own address (or leave listen out to serve it under /ui there)"
                ),
            ),
            None => out.listen = Some(addr),
        }
    }
    if let Some(f) = lifetime
        && let Some(v) = timeout(ctx, &f)
    {
        out.session_lifetime = v;
    }
    out.oidc = oidc.and_then(|f| super::oidc::read_oidc(ctx, &f, base_dir, out.listen.is_some()));
    out
}

/// `[server.tls]`: `listen`, `certificate` and `private_key`, all required.
fn read_tls(ctx: &mut Ctx, f: &Field<'_>, base_dir: &Path) -> Option<TlsConfig> {
    let mut t = ctx.table(f)?;
    let listen = t.require(
        ctx,
        "listen",
        "expected the HTTPS address, e.g. \"0.0.0.0:8443\"",
    );
    let certificate = t.require(
        ctx,
        "certificate",
        "expected the PEM certificate chain, e.g. { file = \"/etc/scim-bridge/tls/fullchain.pem\" } or { credential = \"tls.crt\" }",
    );
    let private_key = t.require(
        ctx,
        "private_key",
        "expected the PEM private key, e.g. { file = \"/etc/scim-bridge/tls/privkey.pem\" } or { credential = \"tls.key\" }",
    );
    t.finish(ctx);
    let listen = listen.and_then(|f| ctx.parse(&f, values::LISTEN_EXPECTED, values::socket_addr));
    let certificate = certificate.and_then(|f| read_secret_ref(ctx, &f, base_dir));
    let private_key = private_key.and_then(|f| read_secret_ref(ctx, &f, base_dir));
    Some(TlsConfig {
        listen: listen?,
        certificate: certificate?,
        private_key: private_key?,
    })
}

/// An allow-list: `["10.0.0.0/8", "2603:1000::/24", "192.0.2.7"]`.
pub(super) fn networks(ctx: &mut Ctx, f: &Field<'_>) -> Option<Vec<IpNetwork>> {
    let items = ctx.array(f, "an array of networks such as [\"10.0.0.0/8\"]")?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(n) = ctx.parse(&item, "a network such as \"10.0.0.0/8\"", IpNetwork::parse) {
            out.push(n);
        }
    }
    Some(out)
}

/// A zero request, header or idle timeout would fail every request, so it is refused; a zero
/// shutdown timeout is a legitimate "do not wait".
fn timeout(ctx: &mut Ctx, f: &Field<'_>) -> Option<std::time::Duration> {
    let v = ctx.parse(f, values::DURATION_EXPECTED, values::duration)?;
    if v.is_zero() {
        ctx.error(
            f.loc(),
            &f.path,
            "expected a duration greater than zero, like \"30s\"",
        );
        return None;
    }
    Some(v)
}

/// Sizes may be written as a plain integer or as a string with a unit.
fn byte_size(ctx: &mut Ctx, f: &Field<'_>) -> Option<usize> {
    let bytes = match &f.node.val {
        Val::Int(_) => u64::try_from(ctx.int(f, 1, None)?).ok()?,
        _ => ctx.parse(f, values::BYTE_SIZE_EXPECTED, values::byte_size)?,
    };
    if bytes == 0 {
        ctx.error(
            f.loc(),
            &f.path,
            format!("expected {} greater than zero", values::BYTE_SIZE_EXPECTED),
        );
        return None;
    }
    match usize::try_from(bytes) {
        Ok(v) => Some(v),
        Err(_) => {
            ctx.error(f.loc(), &f.path, "size is too large for this platform");
            None
        }
    }
}

fn read_database(ctx: &mut Ctx, f: &Field<'_>) -> DatabaseConfig {
    let mut out = DatabaseConfig::default();
    let Some(mut t) = ctx.table(f) else {
        return out;
    };
    let url = t.get("url");
    let retention = t.get("event_retention");
    let log_retention = t.get("log_retention");
    let max_connections = t.get("max_connections");
    t.finish(ctx);
    if let Some(v) = max_connections.and_then(|f| ctx.usize(&f, 1)) {
        out.max_connections = v;
    }
    if let Some(v) =
        retention.and_then(|f| ctx.parse(&f, values::DURATION_EXPECTED, values::duration))
    {
        out.event_retention = v;
    }
    if let Some(v) =
        log_retention.and_then(|f| ctx.parse(&f, values::DURATION_EXPECTED, values::duration))
    {
        out.log_retention = v;
    }
    if let Some(f) = url
        && let Some(url) = ctx.parse(&f, values::DATABASE_URL_EXPECTED, values::database_url)
    {
        if let DatabaseUrl::Postgres(text) = &url
            && values::redact_url(text) != *text
        {
            ctx.warn(
                &f.path,
                "the URL carries a password inline; keep this file private (chmod 600) or move the password to a PGPASSFILE",
            );
        }
        out.url = url;
    }
    out
}

fn read_logging(ctx: &mut Ctx, f: &Field<'_>) -> LoggingConfig {
    let mut out = LoggingConfig::default();
    let Some(mut t) = ctx.table(f) else {
        return out;
    };
    let format = t.get("format");
    let level = t.get("level");
    t.finish(ctx);
    if let Some(v) = format.and_then(|f| ctx.keyword(&f)) {
        out.format = v;
    }
    if let Some(v) =
        level.and_then(|f| ctx.parse(&f, values::LOG_LEVEL_EXPECTED, values::log_level))
    {
        out.level = v;
    }
    out
}

fn read_vault(ctx: &mut Ctx, f: &Field<'_>, base_dir: &Path) -> Option<VaultConfig> {
    let mut t = ctx.table(f)?;
    let passphrase = t.require(
        ctx,
        "passphrase",
        "expected a secret reference like { credential = \"vault-passphrase\" }",
    );
    let memory_kib = t.get("memory_kib");
    let iterations = t.get("iterations");
    let parallelism = t.get("parallelism");
    t.finish(ctx);

    let passphrase = passphrase.and_then(|f| {
        let secret = read_secret_ref(ctx, &f, base_dir)?;
        if let SecretRef::Vault(_) = secret {
            ctx.error(
                f.loc(),
                &f.path,
                "the vault passphrase cannot come from the vault it unlocks; use { file = ... }, { credential = ... } or { env = ... }",
            );
            return None;
        }
        Some(secret)
    });
    let memory_kib_value = memory_kib
        .as_ref()
        .and_then(|f| ctx.u32(f, 8, u32::MAX))
        .unwrap_or(VaultConfig::DEFAULT_MEMORY_KIB);
    let iterations = iterations
        .and_then(|f| ctx.u32(&f, 1, u32::MAX))
        .unwrap_or(VaultConfig::DEFAULT_ITERATIONS);
    let parallelism_value = parallelism
        .as_ref()
        .and_then(|f| ctx.u32(f, 1, 16))
        .unwrap_or(VaultConfig::DEFAULT_PARALLELISM);
    // Argon2 needs 8 KiB of memory per lane.
    if u64::from(memory_kib_value) < 8 * u64::from(parallelism_value)
        && let Some(at) = memory_kib.as_ref().or(parallelism.as_ref())
    {
        ctx.error(
            at.loc(),
            &at.path,
            format!(
                "vault.memory_kib ({memory_kib_value}) must be at least 8 × vault.parallelism ({parallelism_value}) = {}",
                8 * u64::from(parallelism_value)
            ),
        );
    }
    Some(VaultConfig {
        passphrase: passphrase?,
        memory_kib: memory_kib_value,
        iterations,
        parallelism: parallelism_value,
    })
}

const SECRET_EXAMPLES: &str = "{ file = \"/etc/scim-bridge/vault-passphrase\" }, { credential = \"vault-passphrase\" } (systemd LoadCredential=) or { env = \"VAULT_PASSPHRASE\" }";

/// Reads `{ file | credential | env | vault = "..." }`. Scalars are refused
/// without echoing them, since they are most likely the secret itself.
pub(super) fn read_secret_ref(ctx: &mut Ctx, f: &Field<'_>, base_dir: &Path) -> Option<SecretRef> {
    match &f.node.val {
        Val::Table(_) => {}
        Val::Invalid => return None,
        Val::Array(_) => {
            ctx.error(
                f.loc(),
                &f.path,
                format!("expected a secret reference such as {SECRET_EXAMPLES}, found an array"),
            );
            return None;
        }
        other => {
            ctx.error(
                f.loc(),
                &f.path,
                format!(
                    "expected a secret reference, found {} (value not shown); secrets are never taken inline so they stay out of config files, backups and diffs. Use {SECRET_EXAMPLES}",
                    other.describe()
                ),
            );
            return None;
        }
    }
    let mut t = ctx.table(f)?;
    let file = t.get("file");
    let credential = t.get("credential");
    let env = t.get("env");
    let vault = t.get("vault");
    t.finish(ctx);

    let present: Vec<(&str, Field<'_>)> = [
        ("file", file),
        ("credential", credential),
        ("env", env),
        ("vault", vault),
    ]
    .into_iter()
    .filter_map(|(k, f)| Some((k, f?)))
    .collect();
    let mut present = present.into_iter();
    let Some((kind, value)) = present.next() else {
        ctx.error(
            f.loc(),
            &f.path,
            format!(
                "expected exactly one of file, credential, env or vault, as in {SECRET_EXAMPLES}"
            ),
        );
        return None;
    };
    if let Some((other, _)) = present.next() {
        ctx.error(
            f.loc(),
            &f.path,
            format!("expected exactly one of file, credential, env or vault, found both {kind} and {other}"),
        );
        return None;
    }
    match kind {
        "file" => {
            let path = ctx.non_empty_string(&value)?;
            Some(SecretRef::File(base_dir.join(path)))
        }
        "credential" => ctx
            .parse(&value, "a systemd credential name", values::credential_name)
            .map(SecretRef::Credential),
        "env" => ctx
            .parse(&value, "an environment variable name", values::env_name)
            .map(SecretRef::Env),
        _ => ctx.non_empty_string(&value).map(SecretRef::Vault),
    }
}

fn read_scim(ctx: &mut Ctx, f: &Field<'_>, spots: &mut Spots) -> ScimConfig {
    let mut out = ScimConfig::default();
    let Some(mut t) = ctx.table(f) else {
        return out;
    };
    let max_filter_length = t.get("max_filter_length");
    let max_filter_depth = t.get("max_filter_depth");
    let default_page_size = t.get("default_page_size");
    let max_page_size = t.get("max_page_size");
    let bulk_max_operations = t.get("bulk_max_operations");
    let bulk_max_payload_bytes = t.get("bulk_max_payload_bytes");
    t.finish(ctx);

    for (field, slot) in [
        (max_filter_length, &mut out.max_filter_length),
        (max_filter_depth, &mut out.max_filter_depth),
        (bulk_max_operations, &mut out.bulk_max_operations),
        (max_page_size, &mut out.max_page_size),
    ] {
        if let Some(v) = field.and_then(|f| ctx.usize(&f, 1)) {
            *slot = v;
        }
    }
    if let Some(f) = &default_page_size
        && let Some(v) = ctx.usize(f, 1)
    {
        if v > out.max_page_size {
            ctx.error(
                f.loc(),
                &f.path,
                format!(
                    "scim.default_page_size ({v}) must not exceed scim.max_page_size ({})",
                    out.max_page_size
                ),
            );
        }
        out.default_page_size = v;
    } else if out.default_page_size > out.max_page_size {
        // Only max_page_size was lowered: clamp the default rather than
        // force users to set both.
        out.default_page_size = out.max_page_size;
    }
    if let Some(f) = bulk_max_payload_bytes {
        spots.bulk_max_payload_bytes = Some(f.loc().clone());
        if let Some(v) = byte_size(ctx, &f) {
            out.bulk_max_payload_bytes = v;
        }
    }
    out
}

/// A bulk request is a request body first, so a bulk limit above the body
/// limit could never be reached.
fn check_limits(ctx: &mut Ctx, config: &Config, spots: &Spots) {
    let bulk = config.scim.bulk_max_payload_bytes;
    let body = config.server.max_body_bytes;
    if bulk <= body {
        return;
    }
    let (loc, path) = match (&spots.bulk_max_payload_bytes, &spots.max_body_bytes) {
        (Some(loc), _) => (loc, "scim.bulk_max_payload_bytes"),
        (None, Some(loc)) => (loc, "server.max_body_bytes"),
        (None, None) => return,
    };
    ctx.error(
        loc,
        path,
        format!(
            "scim.bulk_max_payload_bytes ({bulk}) must not exceed server.max_body_bytes ({body}); raise server.max_body_bytes or lower scim.bulk_max_payload_bytes"
        ),
    );
}

pub(super) fn describe_loc(loc: &Loc) -> String {
    match loc {
        Loc::File { line, .. } => format!("line {line}"),
        Loc::Env(var) => format!("env {var}"),
    }
}

fn read_providers(ctx: &mut Ctx, f: &Field<'_>) -> Vec<ProviderConfig> {
    let Some(items) = ctx.array(f, "an array of tables ([[providers]])") else {
        return Vec::new();
    };
    let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
    let mut out = Vec::new();
    for item in items {
        let Some(mut t) = ctx.table(&item) else {
            continue;
        };
        let name = t.require(ctx, "name", "expected a provider name like \"entra\"");
        let dialect = t.get("dialect");
        let schemas = t.get("schemas");
        let allow = t.get("allow");
        t.finish(ctx);
        let allow = allow.and_then(|f| networks(ctx, &f));

        let name = name.and_then(|f| {
            unique_name(
                ctx,
                &f,
                &mut seen,
                "provider",
                values::PROVIDER_NAME_EXPECTED,
            )
        });
        let dialect = dialect.and_then(|f| ctx.keyword(&f)).unwrap_or_default();
        let schemas = schemas.map(|f| read_schemas(ctx, &f)).unwrap_or_default();
        out.push(ProviderConfig {
            name: name.unwrap_or_default(),
            dialect,
            schemas,
            allow,
        });
    }
    out
}

/// A `[a-z0-9][a-z0-9_-]*` name that must not repeat among its siblings; a repeat
/// points at the first definition.
pub(super) fn unique_name(
    ctx: &mut Ctx,
    f: &Field<'_>,
    seen: &mut BTreeMap<String, Loc>,
    what: &str,
    expected: &str,
) -> Option<String> {
    let name = ctx.parse(f, expected, values::provider_name)?;
    if let Some(first) = seen.get(&name) {
        let first = describe_loc(first);
        ctx.error(
            f.loc(),
            &f.path,
            format!(
                "duplicate {what} name {} (first defined at {first})",
                quote(&name)
            ),
        );
    } else {
        seen.insert(name.clone(), f.loc().clone());
    }
    Some(name)
}

fn read_schemas(ctx: &mut Ctx, f: &Field<'_>) -> Vec<CustomSchema> {
    let Some(items) = ctx.array(f, "an array of tables ([[providers.schemas]])") else {
        return Vec::new();
    };
    let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
    let mut out = Vec::new();
    for item in items {
        let Some(mut t) = ctx.table(&item) else {
            continue;
        };
        let id = t.require(ctx, "id", values::SCHEMA_ID_EXPECTED);
        let name = t.get("name");
        let description = t.get("description");
        let resource = t.get("resource");
        let attributes = t.require(
            ctx,
            "attributes",
            "expected at least one [[providers.schemas.attributes]]",
        );
        let table_loc = t.loc().clone();
        t.finish(ctx);

        let id = id.and_then(|f| {
            let id = ctx.parse(&f, values::SCHEMA_ID_EXPECTED, values::schema_id)?;
            let key = id.to_ascii_lowercase();
            if let Some(first) = seen.get(&key) {
                let first = describe_loc(first);
                ctx.error(
                    f.loc(),
                    &f.path,
                    format!(
                        "duplicate schema id {} in this provider (first defined at {first})",
                        quote(&id)
                    ),
                );
            } else {
                seen.insert(key, f.loc().clone());
            }
            Some(id)
        });
        // Attributes added to a core schema are served under it: it keeps its name.
        let core = id.as_deref().and_then(values::core_schema);
        if name.is_none() && core.is_none() {
            ctx.missing(
                &table_loc,
                &super::reader::join(&item.path, "name"),
                "missing required key \"name\" (expected a display name like \"DiliTrust User\")",
            );
        }
        let name = name.and_then(|f| ctx.non_empty_string(&f));
        let description = description.and_then(|f| ctx.string(&f));
        let resource = match (resource, core) {
            (None, Some(ResourceKind::Group)) => ResourceSetting::Group,
            (None, _) => ResourceSetting::default(),
            (Some(f), core) => {
                let r: ResourceSetting = ctx.keyword(&f).unwrap_or_default();
                if let Some(kind) = core
                    && r != resource_setting(kind)
                {
                    ctx.error(
                        f.loc(),
                        &f.path,
                        format!(
                            "the core {} schema belongs to {}s, not {}s",
                            kind.name(),
                            kind.name(),
                            r.keyword()
                        ),
                    );
                }
                r
            }
        };
        let attributes = match attributes {
            Some(f) => {
                let attributes = read_attributes(ctx, &f, 0);
                if let Some(kind) = core {
                    refuse_standard_names(ctx, &f, kind);
                }
                if matches!(&f.node.val, Val::Array(items) if items.is_empty()) {
                    ctx.error(
                        f.loc(),
                        &f.path,
                        "expected at least one attribute, found an empty array",
                    );
                }
                attributes
            }
            None => Vec::new(),
        };
        out.push(CustomSchema {
            id: id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            description,
            resource,
            attributes,
        });
    }
    out
}

fn resource_setting(kind: ResourceKind) -> ResourceSetting {
    match kind {
        ResourceKind::User => ResourceSetting::User,
        ResourceKind::Group => ResourceSetting::Group,
    }
}

/// An attribute added to a core schema must not shadow one RFC 7643 defines there
/// (or `id`, `externalId`, `meta`): the SCIM front would not know which one a value is.
fn refuse_standard_names(ctx: &mut Ctx, f: &Field<'_>, kind: ResourceKind) {
    let Some(items) = (match &f.node.val {
        Val::Array(items) => Some(items),
        _ => None,
    }) else {
        return;
    };
    let registry = crate::scim::SchemaRegistry::new();
    for (i, item) in items.iter().enumerate() {
        let Val::Table(entries) = &item.val else {
            continue;
        };
        let Some(name) = entries.iter().find(|e| e.key == "name") else {
            continue;
        };
        let Val::Str(n) = &name.node.val else {
            continue;
        };
        let standard = registry.core(kind).attr(n).is_some()
            || registry
                .common()
                .iter()
                .any(|a| a.name.eq_ignore_ascii_case(n));
        if standard {
            ctx.error(
                &name.node.loc,
                &format!("{}[{i}].name", f.path),
                format!(
                    "{} is a standard attribute of the core {} schema; name the added attribute differently",
                    quote(n),
                    kind.name()
                ),
            );
        }
    }
}

/// `depth` 0 reads schema attributes, 1 reads sub-attributes of a complex
/// attribute; SCIM allows no deeper nesting.
fn read_attributes(ctx: &mut Ctx, f: &Field<'_>, depth: usize) -> Vec<CustomAttribute> {
    let expected = if depth == 0 {
        "an array of tables ([[providers.schemas.attributes]])"
    } else {
        "an array of tables ([[providers.schemas.attributes.sub_attributes]])"
    };
    let Some(items) = ctx.array(f, expected) else {
        return Vec::new();
    };
    // Attribute names are case-insensitive in SCIM (RFC 7643 section 2.1).
    let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
    let mut out = Vec::new();
    for item in items {
        let Some(attribute) = read_attribute(ctx, &item, depth, &mut seen) else {
            continue;
        };
        out.push(attribute);
    }
    out
}

fn read_attribute(
    ctx: &mut Ctx,
    item: &Field<'_>,
    depth: usize,
    seen: &mut BTreeMap<String, Loc>,
) -> Option<CustomAttribute> {
    let mut t = ctx.table(item)?;
    let name = t.require(ctx, "name", values::ATTRIBUTE_NAME_EXPECTED);
    let kind = t.get("type");
    let multi_valued = t.get("multi_valued");
    let required = t.get("required");
    let case_exact = t.get("case_exact");
    let mutability = t.get("mutability");
    let returned = t.get("returned");
    let uniqueness = t.get("uniqueness");
    let canonical_values = t.get("canonical_values");
    let description = t.get("description");
    let sub_attributes = t.get("sub_attributes");
    let table_loc = t.loc().clone();
    t.finish(ctx);

    let name = name.and_then(|f| {
        let name = ctx.parse(&f, values::ATTRIBUTE_NAME_EXPECTED, values::attribute_name)?;
        let key = name.to_ascii_lowercase();
        if let Some(first) = seen.get(&key) {
            let first = describe_loc(first);
            ctx.error(
                f.loc(),
                &f.path,
                format!(
                    "duplicate attribute name {} (names are case-insensitive; first defined at {first})",
                    quote(&name)
                ),
            );
        } else {
            seen.insert(key, f.loc().clone());
        }
        Some(name)
    });
    let kind_value: AttrKind = kind
        .as_ref()
        .and_then(|f| ctx.keyword(f))
        .unwrap_or_default();
    if depth > 0
        && kind_value == AttrKind::Complex
        && let Some(f) = &kind
    {
        ctx.error(
            f.loc(),
            &f.path,
            "a sub-attribute cannot be complex: SCIM allows only one level of nesting",
        );
    }
    let bool_of =
        |ctx: &mut Ctx, f: Option<Field<'_>>| f.and_then(|f| ctx.bool(&f)).unwrap_or(false);
    let multi_valued = bool_of(ctx, multi_valued);
    let required = bool_of(ctx, required);
    let case_exact = bool_of(ctx, case_exact);
    let mutability = mutability.and_then(|f| ctx.keyword(&f)).unwrap_or_default();
    let returned = returned.and_then(|f| ctx.keyword(&f)).unwrap_or_default();
    let uniqueness = uniqueness.and_then(|f| ctx.keyword(&f)).unwrap_or_default();
    let canonical_values = canonical_values
        .and_then(|f| ctx.array(&f, "an array of strings"))
        .map(|items| items.iter().filter_map(|f| ctx.string(f)).collect())
        .unwrap_or_default();
    let description = description.and_then(|f| ctx.string(&f));

    let sub_attributes = match sub_attributes {
        Some(f) if depth > 0 => {
            ctx.error(
                f.loc(),
                &f.path,
                "sub-attributes cannot have sub_attributes of their own: SCIM allows only one level of nesting",
            );
            Vec::new()
        }
        Some(f) if kind_value != AttrKind::Complex => {
            ctx.error(
                f.loc(),
                &f.path,
                format!(
                    "sub_attributes are only allowed when type = \"complex\" (type is \"{}\")",
                    kind_value.as_str()
                ),
            );
            Vec::new()
        }
        Some(f) => {
            let subs = read_attributes(ctx, &f, depth + 1);
            if matches!(&f.node.val, Val::Array(items) if items.is_empty()) {
                ctx.error(
                    f.loc(),
                    &f.path,
                    "expected at least one sub-attribute, found an empty array",
                );
            }
            subs
        }
        None if kind_value == AttrKind::Complex && depth == 0 => {
            ctx.missing(
                &table_loc,
                &super::reader::join(&item.path, "sub_attributes"),
                "missing required key \"sub_attributes\" (a complex attribute needs at least one [[...sub_attributes]] entry)",
            );
            Vec::new()
        }
        None => Vec::new(),
    };

    Some(CustomAttribute {
        name: name.unwrap_or_default(),
        kind: kind_value,
        multi_valued,
        required,
        case_exact,
        mutability,
        returned,
        uniqueness,
        canonical_values,
        description,
        sub_attributes,
    })
}

fn add_warnings(ctx: &mut Ctx, config: &Config) {
    let server = &config.server;
    let listen = server.listen;
    match &server.public_url {
        None => ctx.warn(
            "server.public_url",
            format!(
                "not set; meta.location and other absolute URLs will use the listen address http://{listen}, which clients behind a proxy cannot reach"
            ),
        ),
        Some(url) if !listen.ip().is_loopback() && !url.to_ascii_lowercase().starts_with("https://") => ctx.warn(
            "server.listen",
            format!(
                "{listen} is reachable from the network but server.public_url is not https://; bearer tokens and identity data would cross the network unencrypted unless a TLS proxy sits in front"
            ),
        ),
        Some(_) => {}
    }
    let console = &config.console;
    if console.enabled && console.listen.is_none() && !listen.ip().is_loopback() {
        ctx.warn(
            "console.listen",
            format!(
                "not set; the console is served under /ui on {listen}, beside the SCIM front that identity providers reach; give it its own address (console.listen) reachable only from the admins' network"
            ),
        );
    }
    if server.public_url.is_none() && !listen.ip().is_loopback() {
        ctx.warn(
            "server.listen",
            format!(
                "{listen} is reachable from the network and no https:// server.public_url is set; bearer tokens and identity data would cross the network unencrypted unless a TLS proxy sits in front"
            ),
        );
    }
}

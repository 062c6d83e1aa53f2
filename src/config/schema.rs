//! The validated configuration. Defaults live in `defaults.rs`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::reader::Keyword;
use super::secret::SecretRef;
use super::values::redact_url;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// The file the configuration came from; `None` for [`super::load_str`].
    pub source: Option<PathBuf>,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub logging: LoggingConfig,
    /// `[vault]` is optional; without it nothing can be stored encrypted.
    pub vault: Option<VaultConfig>,
    pub scim: ScimConfig,
    pub providers: Vec<ProviderConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// `http(s)://host[:port][/prefix]` without a trailing slash; the base of
    /// `meta.location`.
    pub public_url: Option<String>,
    /// Already resolved: a relative `data_dir` in the file is taken relative
    /// to the directory holding the file, not the working directory, because
    /// under systemd the working directory is `/` unless configured.
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
}

#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// The path as written after `sqlite://`; a relative one is taken relative
    /// to `server.data_dir` (see [`Config::sqlite_path`]) so that moving the
    /// data directory moves the database with it.
    Sqlite(PathBuf),
    /// `postgres://` or `postgresql://` URL, verbatim.
    Postgres(String),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            DatabaseUrl::Postgres(url) => {
                f.debug_tuple("Postgres").field(&redact_url(url)).finish()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoggingConfig {
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive list such as
    /// `info,scim_bridge=debug`, checked for shape and level names only.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VaultConfig {
    pub passphrase: SecretRef,
    /// Argon2id parameters for deriving the vault key from the passphrase.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScimConfig {
    pub max_filter_length: usize,
    pub max_filter_depth: usize,
    pub default_page_size: usize,
    pub max_page_size: usize,
    pub bulk_max_operations: usize,
    pub bulk_max_payload_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub name: String,
    pub dialect: DialectSetting,
    pub schemas: Vec<CustomSchema>,
}

/// Which identity provider's SCIM quirks to tolerate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DialectSetting {
    #[default]
    Strict,
    Entra,
    Okta,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomSchema {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub resource: ResourceSetting,
    pub attributes: Vec<CustomAttribute>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResourceSetting {
    #[default]
    User,
    Group,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomAttribute {
    pub name: String,
    pub kind: AttrKind,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: MutabilitySetting,
    pub returned: ReturnedSetting,
    pub uniqueness: UniquenessSetting,
    pub canonical_values: Vec<String>,
    pub description: Option<String>,
    /// Non-empty exactly when `kind` is [`AttrKind::Complex`].
    pub sub_attributes: Vec<CustomAttribute>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AttrKind {
    #[default]
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Reference,
    Binary,
    Complex,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MutabilitySetting {
    #[default]
    ReadWrite,
    ReadOnly,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReturnedSetting {
    #[default]
    Default,
    Always,
    Never,
    Request,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UniquenessSetting {
    #[default]
    None,
    Server,
    Global,
}

/// Implements [`Keyword`] and a public `as_str` giving the spelling used in
/// the file, which is also the RFC 7643 spelling where one exists.
macro_rules! keywords {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl Keyword for $ty {
            const ALL: &'static [Self] = &[$($ty::$variant),+];
            fn keyword(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl $ty {
            pub fn as_str(self) -> &'static str {
                self.keyword()
            }
        }
    };
}

keywords!(LogFormat { Text => "text", Json => "json" });
keywords!(DialectSetting { Strict => "strict", Entra => "entra", Okta => "okta" });
keywords!(ResourceSetting { User => "User", Group => "Group" });
keywords!(AttrKind {
    String => "string",
    Boolean => "boolean",
    Decimal => "decimal",
    Integer => "integer",
    DateTime => "dateTime",
    Reference => "reference",
    Binary => "binary",
    Complex => "complex",
});
keywords!(MutabilitySetting {
    ReadWrite => "readWrite",
    ReadOnly => "readOnly",
    Immutable => "immutable",
    WriteOnly => "writeOnly",
});
keywords!(ReturnedSetting {
    Default => "default",
    Always => "always",
    Never => "never",
    Request => "request",
});
keywords!(UniquenessSetting { None => "none", Server => "server", Global => "global" });

impl Config {
    /// Every secret reference with the key path it was configured under.
    pub fn secret_refs(&self) -> Vec<(String, &SecretRef)> {
        let mut refs = Vec::new();
        if let Some(vault) = &self.vault {
            refs.push(("vault.passphrase".to_owned(), &vault.passphrase));
        }
        refs
    }

    /// Applies `--listen` / `--data-dir` style command-line flags, which win
    /// over both the file and the environment.
    pub fn apply_overrides(&mut self, listen: Option<SocketAddr>, data_dir: Option<PathBuf>) {
        if let Some(listen) = listen {
            self.server.listen = listen;
        }
        if let Some(data_dir) = data_dir {
            self.server.data_dir = data_dir;
        }
    }

    /// The SQLite database file, a relative `sqlite://` path joined onto the
    /// data directory; `None` when the database is PostgreSQL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match &self.database.url {
            DatabaseUrl::Sqlite(path) => Some(self.server.data_dir.join(path)),
            DatabaseUrl::Postgres(_) => None,
        }
    }
}

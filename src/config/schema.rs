//! The validated configuration. Defaults live in `defaults.rs`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::network::IpNetwork;
use super::reader::Keyword;
use super::secret::SecretRef;
use super::values::redact_url;
use crate::identity::Unmatched;
use crate::scim::ResourceKind;
use crate::template::{Assignment, Template};

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
    pub targets: Vec<TargetConfig>,
    /// `[[repositories]]`: where documents of each kind of work live in iManage.
    pub repositories: Vec<RepositoryConfig>,
    pub resolver: ResolverConfig,
    /// `[console]`: the operator's web console under `/ui`.
    pub console: ConsoleConfig,
}

/// `[console]`: the operator's web console.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleConfig {
    /// Off unless asked for: a console is one more thing that can be attacked.
    pub enabled: bool,
    /// Its own plain-HTTP listener, so it never shares a port with the SCIM front
    /// that identity providers reach over the internet; `None`: served on the
    /// daemon's listeners under `/ui`.
    pub listen: Option<SocketAddr>,
    /// How long a sign-in lasts, on the daemon's clock.
    pub session_lifetime: Duration,
    /// `[console.oidc]`: sign-in through the firm's OpenID Connect provider, beside
    /// the API token form.
    pub oidc: Option<super::oidc::OidcConfig>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: false,
            listen: None,
            session_lifetime: Duration::from_secs(8 * 3600),
            oidc: None,
        }
    }
}

/// How a repository finds its workspace.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkspaceSearch {
    /// Default search: the first workspace whose title is this, trimmed and ignoring case.
    Title(Template),
    /// Advanced search: profile fields such as `custom1=[workitem.client.reference]`.
    Fields(Vec<Assignment>),
}

/// A functional area (Document Templates, Inbound Email, matters …) mapped to an
/// iManage workspace and folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryConfig {
    pub name: String,
    /// The iManage target searched.
    pub target: String,
    pub search: WorkspaceSearch,
    /// Folder path under the workspace, `/`-separated; `None` is the workspace itself.
    pub folder: Option<String>,
    /// Libraries searched, in order; empty means the target's library.
    pub libraries: Vec<String>,
    /// Overrides for particular work types, matched ignoring case.
    pub work_types: Vec<WorkTypeConfig>,
}

/// A work type's own search, folder or libraries within a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkTypeConfig {
    pub name: String,
    pub search: Option<WorkspaceSearch>,
    pub folder: Option<String>,
    pub libraries: Option<Vec<String>>,
}

/// `[resolver]`: the workspace resolution cache.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolverConfig {
    /// How long a resolution is reused; zero turns the cache off.
    pub cache_ttl: Duration,
    /// Most resolutions kept.
    pub cache_size: usize,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            cache_ttl: Duration::from_secs(300),
            cache_size: 10_000,
        }
    }
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
    /// From the first byte of a request to the end of its header (slowloris bound).
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its next request before it is closed.
    pub idle_timeout: Duration,
    /// Client connections open at once; `None`: from the open-file limit (see
    /// `cli::serve::max_connections`).
    pub max_connections: Option<usize>,
    /// `[server.tls]`: an HTTPS listener beside the plain one.
    pub tls: Option<TlsConfig>,
    /// Reverse proxies whose `X-Forwarded-For` names the client; from anyone else
    /// the header is ignored.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Networks the admin API answers (`None`: any).
    pub admin_allow: Option<Vec<IpNetwork>>,
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    /// How long change events are kept once every target has them; zero keeps them
    /// for ever.
    pub event_retention: Duration,
    /// How long the provisioning log keeps its records; zero keeps them for ever.
    pub log_retention: Duration,
    /// PostgreSQL connections this instance may open (its pool size); unused for SQLite.
    pub max_connections: usize,
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
    /// Networks this provider's SCIM base answers (`None`: any).
    pub allow: Option<Vec<IpNetwork>>,
}

/// `[server.tls]`: where HTTPS is served and the certificate it presents.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    /// PEM: the certificate, then its chain.
    pub certificate: SecretRef,
    /// PEM: PKCS#8, PKCS#1 or SEC1.
    pub private_key: SecretRef,
}

/// A downstream system changes are pushed to.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// `[a-z0-9][a-z0-9_-]*`: used in secret names, URLs and metric labels.
    pub name: String,
    /// What kind of system it is, with the settings only that kind takes.
    pub spec: TargetSpec,
    pub auth: Option<AuthConfig>,
    /// Providers whose changes this target receives; empty means all.
    pub providers: Vec<String>,
    pub delivery: DeliverySettings,
    pub guard: GuardSettings,
    /// Reconciliation schedule, parsed from the five standard cron fields the file
    /// holds (normalised to the `cron` crate's six, seconds first).
    pub schedule: Option<cron::Schedule>,
    /// `[targets.user_mapping]`: target field → template over `user`.
    pub user_mapping: Vec<FieldMapping>,
    /// `[targets.group_mapping]`: target field → template over `group`.
    pub group_mapping: Vec<FieldMapping>,
    /// `[targets.matching]`: how an existing account or group is found before one is
    /// created (adopted when exactly one matches).
    pub matching: MatchRules,
    /// What reconciliation does with accounts at the target the bridge does not manage.
    pub unmanaged: Unmanaged,
    /// `[targets.scope]`: which users and groups this target receives; `None`: all of
    /// its providers'.
    pub scope: Option<crate::identity::Scope>,
    /// Changes are queued but not delivered (and no scheduled reconciliation runs)
    /// until the admin has reviewed `sync --dry-run` and removed `paused`.
    pub paused: bool,
}

impl TargetConfig {
    /// Its kind, as `kind = "…"` names it.
    pub fn kind(&self) -> TargetKind {
        match self.spec {
            TargetSpec::Imanage { .. } => TargetKind::Imanage,
            TargetSpec::Scim { .. } => TargetKind::Scim,
            TargetSpec::Webhook { .. } => TargetKind::Webhook,
        }
    }

    /// The API's base URL (for webhooks, the URL posted to), without a trailing slash.
    pub fn url(&self) -> &str {
        match &self.spec {
            TargetSpec::Imanage { url, .. }
            | TargetSpec::Scim { url, .. }
            | TargetSpec::Webhook { url, .. } => url,
        }
    }

    /// The identity rules of a SCIM app; none for other kinds.
    pub fn roles(&self) -> &[crate::identity::RoleRules] {
        match &self.spec {
            TargetSpec::Scim { roles, .. } => roles,
            _ => &[],
        }
    }
}

/// What each kind of target needs, checked when the config is loaded: a spec that
/// exists has every key its kind requires.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    Imanage {
        /// The iManage host, e.g. `https://imanage.example.com`.
        url: String,
        /// The library groups are created in (default: the preferred library that
        /// `GET /api` names).
        library: Option<String>,
    },
    Scim {
        /// The SCIM base URL, e.g. `https://app.example.com/scim/v2`.
        url: String,
        /// What a user deleted in the IdP becomes at the app.
        on_delete: OnDelete,
        /// How long a user deleted in the IdP stays deactivated before reconciliation
        /// deletes the account; `None` keeps it for ever.
        delete_after: Option<Duration>,
        /// The single role each user gets (`[targets.roles]`).
        roles: Vec<crate::identity::RoleRules>,
        /// Contact types renamed on the way out, per multi-valued attribute
        /// (`emails = { work = "email" }`) or in all of them (`work = "email"`).
        contact_types: crate::identity::ContactTypes,
        /// A group's members include the users of groups nested in it, for its member
        /// list at the app and for role rules; otherwise direct membership only.
        expand_nested: bool,
    },
    Webhook {
        /// Where events are posted.
        url: String,
        /// The HMAC-SHA256 key that signs every request.
        signing_secret: SecretRef,
    },
}

/// `[targets.matching]`: ordered matching rules per resource kind. The first rule
/// that finds anything decides (see `delivery::matching`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchRules {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl MatchRules {
    /// The rules a target of `kind` may use for `resource`.
    pub fn allowed(kind: TargetKind, resource: ResourceKind) -> &'static [&'static str] {
        match (kind, resource) {
            (TargetKind::Imanage, ResourceKind::User) => &["id", "email"],
            (TargetKind::Imanage, ResourceKind::Group) => &["id", "displayName"],
            (TargetKind::Scim, ResourceKind::User) => &["externalId", "userName", "email"],
            (TargetKind::Scim, ResourceKind::Group) => &["externalId", "displayName"],
            (TargetKind::Webhook, _) => &[],
        }
    }

    /// Entra's safety by default: every rule the target offers, in the order above
    /// (iManage: the login id, then the email; SCIM apps: externalId, userName, email).
    pub fn default_for(kind: TargetKind) -> Self {
        let all = |r| {
            Self::allowed(kind, r)
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        };
        Self {
            users: all(ResourceKind::User),
            groups: all(ResourceKind::Group),
        }
    }

    pub fn of(&self, kind: ResourceKind) -> &[String] {
        match kind {
            ResourceKind::User => &self.users,
            ResourceKind::Group => &self.groups,
        }
    }
}

/// What reconciliation does with an active account at the target that the bridge
/// neither created nor adopted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unmanaged {
    /// Reported in the plan's own section and left alone.
    #[default]
    Ignore,
    /// Deactivated (the target opted in: every account there must come from the IdP).
    Deactivate,
}

/// What a user deleted (or unassigned) in the identity provider becomes downstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnDelete {
    /// Deactivated (`active = false`); the account and its data stay, and a user
    /// assigned again gets the same account back.
    #[default]
    Deactivate,
    /// Deleted at the app.
    Delete,
}

/// One mapped field: what the target calls it, and the template that fills it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMapping {
    pub field: String,
    pub template: Template,
}

/// The mass-deprovisioning guard of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardSettings {
    /// Deactivations and deletions allowed per window before the rest pause.
    pub max_deprovisions: Option<u64>,
    /// The same as a share of the accounts the bridge manages at the target, in percent.
    pub max_deprovision_percent: Option<f64>,
    pub window: Duration,
    /// userNames never deactivated or deleted (break-glass admins), compared by their
    /// comparison key (`scim::username`).
    pub protected: Vec<String>,
}

impl Default for GuardSettings {
    /// Relative to what the bridge manages at the target: more than 10% of its accounts
    /// in an hour pauses the rest (a percentage never trips for fewer than
    /// `delivery::guard::PERCENT_FLOOR` in a window).
    fn default() -> Self {
        Self {
            max_deprovisions: None,
            max_deprovision_percent: Some(10.0),
            window: Duration::from_secs(3600),
            protected: Vec::new(),
        }
    }
}

/// How changes are pushed to one target.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    pub concurrency: usize,
    pub rate_limit_per_second: Option<f64>,
    pub max_attempts: u32,
    pub timeout: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            rate_limit_per_second: None,
            max_attempts: 10,
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TargetKind {
    #[default]
    Imanage,
    Scim,
    Webhook,
}

/// How the bridge authenticates to a target.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub method: AuthMethod,
    pub token_url: Option<String>,
    /// Enables linking user accounts (authorization code + PKCE) when set.
    pub authorize_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretRef>,
    pub client_auth: ClientAuth,
    /// Service account for the password grant.
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    /// Static token for `method = "bearer"`.
    pub token: Option<SecretRef>,
    pub scopes: Vec<String>,
    pub header: AuthHeader,
    /// A token this close to expiry is refreshed before use.
    pub refresh_ahead: Duration,
    /// The provider's RFC 7009 token revocation endpoint (iManage:
    /// `{host}/auth/oauth2/revoke-token`): linked accounts' tokens are revoked there
    /// when a link ends.
    pub revoke_url: Option<String>,
    /// Whether a request made on behalf of a person without a linked account may use
    /// the service account instead; default no, so iManage's security (matter access,
    /// ethical walls) always applies to people.
    pub service_fallback: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthMethod {
    #[default]
    ClientCredentials,
    Password,
    Bearer,
}

/// Where the client secret goes in a token request (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    #[default]
    Basic,
    Post,
}

/// The request header that carries the access token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthHeader {
    /// `Authorization: Bearer …` (RFC 6750).
    #[default]
    Bearer,
    /// `X-Auth-Token: …`, as iManage Work expects.
    XAuthToken,
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
keywords!(TargetKind { Imanage => "imanage", Scim => "scim", Webhook => "webhook" });
keywords!(OnDelete { Deactivate => "deactivate", Delete => "delete" });
keywords!(Unmanaged { Ignore => "ignore", Deactivate => "deactivate" });
keywords!(Unmatched { Keep => "keep", Reset => "reset" });
keywords!(AuthMethod {
    ClientCredentials => "client_credentials",
    Password => "password",
    Bearer => "bearer",
});
keywords!(ClientAuth { Basic => "client_secret_basic", Post => "client_secret_post" });
keywords!(AuthHeader { Bearer => "bearer", XAuthToken => "x-auth-token" });
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
        for (i, target) in self.targets.iter().enumerate() {
            let Some(auth) = &target.auth else {
                continue;
            };
            for (key, secret) in [
                ("client_secret", &auth.client_secret),
                ("password", &auth.password),
                ("token", &auth.token),
            ] {
                if let Some(secret) = secret {
                    refs.push((format!("targets[{i}].auth.{key}"), secret));
                }
            }
        }
        for (i, target) in self.targets.iter().enumerate() {
            if let TargetSpec::Webhook {
                signing_secret: secret,
                ..
            } = &target.spec
            {
                refs.push((format!("targets[{i}].signing_secret"), secret));
            }
        }
        if let Some(oidc) = &self.console.oidc {
            refs.push(("console.oidc.client_secret".to_owned(), &oidc.client_secret));
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

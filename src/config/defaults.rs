//! Every default value, so the documentation and the shipped config file have
//! one place to agree with. (`Config` derives `Default` from these, and the
//! keyword enums mark their default variant with `#[default]` in `schema.rs`,
//! where clippy wants it.)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::schema::{
    DatabaseConfig, DatabaseUrl, LogFormat, LoggingConfig, ScimConfig, ServerConfig, VaultConfig,
};

const MIB: usize = 1024 * 1024;

impl Default for ServerConfig {
    /// `data_dir` here is still relative; loading joins it onto the config
    /// file's directory.
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            public_url: None,
            data_dir: PathBuf::from("data"),
            max_body_bytes: MIB,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: None,
            tls: None,
            trusted_proxies: Vec::new(),
            admin_allow: None,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::Sqlite(PathBuf::from("scim-bridge.db")),
            event_retention: Duration::from_secs(90 * 86_400),
            // Long enough for an annual audit, with a month to spare.
            log_retention: Duration::from_secs(400 * 86_400),
            max_connections: crate::store::postgres::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: "info".to_owned(),
        }
    }
}

impl Default for ScimConfig {
    fn default() -> Self {
        Self {
            max_filter_length: 8192,
            max_filter_depth: 64,
            default_page_size: 100,
            max_page_size: 1000,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: MIB,
        }
    }
}

impl VaultConfig {
    /// OWASP's Argon2id baseline (64 MiB, 3 passes, 1 lane): costly enough to
    /// slow offline guessing, cheap enough for a once-per-start derivation.
    pub const DEFAULT_MEMORY_KIB: u32 = 65536;
    pub const DEFAULT_ITERATIONS: u32 = 3;
    pub const DEFAULT_PARALLELISM: u32 = 1;
}

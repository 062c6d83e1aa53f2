use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tempfile::TempDir;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Environment {
    pairs.iter().copied().collect()
}

fn write_config(text: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim-bridge.toml");
    fs::write(&path, text).unwrap();
    (dir, path)
}

fn load_ok(text: &str, env: &Environment) -> (TempDir, PathBuf, Loaded) {
    let (dir, path) = write_config(text);
    match load(&path, env) {
        Ok(loaded) => (dir, path, loaded),
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn load_err(text: &str, env: &Environment) -> (TempDir, PathBuf, ConfigErrors) {
    let (dir, path) = write_config(text);
    match load(&path, env) {
        Ok(loaded) => panic!("expected errors, got {loaded:?}"),
        Err(e) => (dir, path, e),
    }
}

fn only_error(errors: &ConfigErrors) -> &ConfigError {
    assert_eq!(errors.errors.len(), 1, "expected one error, got:\n{errors}");
    &errors.errors[0]
}

fn write_secret(dir: &Path, name: &str, contents: &[u8], mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn vault_with(passphrase: SecretRef) -> Config {
    Config {
        vault: Some(VaultConfig {
            passphrase,
            memory_kib: VaultConfig::DEFAULT_MEMORY_KIB,
            iterations: VaultConfig::DEFAULT_ITERATIONS,
            parallelism: VaultConfig::DEFAULT_PARALLELISM,
        }),
        ..Config::default()
    }
}

const FULL: &str = r#"
[server]
listen = "0.0.0.0:9000"
public_url = "https://scim.example.com/base/"
data_dir = "state"
max_body_bytes = "2MiB"
request_timeout = "500ms"
header_read_timeout = "5s"
idle_timeout = "2m"
max_connections = 5000
shutdown_timeout = "2m"

[database]
url = "postgres://bridge@db.internal/scim"
max_connections = 24

[logging]
format = "json"
level = "warn,scim_bridge=debug"

[vault]
passphrase = { file = "secrets/vault" }
memory_kib = 131072
iterations = 4
parallelism = 2

[scim]
max_filter_length = 4096
max_filter_depth = 16
default_page_size = 50
max_page_size = 500
bulk_max_operations = 200
bulk_max_payload_bytes = 1048576

[[providers]]
name = "entra"
dialect = "entra"

[[providers.schemas]]
id = "urn:ietf:params:scim:schemas:extension:dilitrust:2.0:User"
name = "DiliTrust User"
description = "Roles"
resource = "User"

[[providers.schemas.attributes]]
name = "roleId"
type = "string"
multi_valued = true
required = true
case_exact = true
mutability = "immutable"
returned = "always"
uniqueness = "server"
canonical_values = ["0b8e7f4c-3f2a-4d6e-9c1b-2a5d8e7f6a10", "6f1d2c3b-4a5e-4f70-8b9c-0d1e2f3a4b5c"]
description = "Role"

[[providers.schemas.attributes]]
name = "manager"
type = "complex"

[[providers.schemas.attributes.sub_attributes]]
name = "value"
type = "reference"
mutability = "readOnly"
returned = "request"
uniqueness = "global"

[[providers]]
name = "okta"
dialect = "okta"

[[providers.schemas]]
id = "urn:example:groups"
name = "Group extras"
resource = "Group"

[[providers.schemas.attributes]]
name = "costCenter"
type = "integer"

[[targets]]
name = "imanage"
kind = "imanage"
url = "https://dms.example.com/"
schedule = "0 */6 * * *"
library = "ACTIVE"

[targets.auth]
method = "password"
token_url = "https://dms.example.com/auth/oauth2/token"
authorize_url = "https://dms.example.com/auth/oauth2/authorize"
client_id = "scim-bridge"
client_secret = { vault = "imanage.client_secret" }
client_auth = "client_secret_post"
username = "svc-bridge"
password = { file = "imanage.pass" }
scopes = ["user", "admin"]
refresh_ahead = "2m"

[[targets]]
name = "hooks"
kind = "webhook"
url = "https://hooks.example.com/scim"
providers = ["okta"]
concurrency = 4
rate_limit_per_second = 2.5
max_attempts = 5
timeout = "10s"
signing_secret = { vault = "hooks.signing" }

[targets.guard]
max_deprovisions = 0
max_deprovision_percent = 5
window = "30m"
protected = ["breakglass@firm.example"]
"#;

#[test]
fn full_config_with_every_key() {
    let (dir, path, loaded) = load_ok(FULL, &Environment::new());
    let base = dir.path();
    let sub_attribute = CustomAttribute {
        name: "value".into(),
        kind: AttrKind::Reference,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: MutabilitySetting::ReadOnly,
        returned: ReturnedSetting::Request,
        uniqueness: UniquenessSetting::Global,
        canonical_values: vec![],
        description: None,
        sub_attributes: vec![],
    };
    let expected = Config {
        source: Some(path.clone()),
        server: ServerConfig {
            listen: "0.0.0.0:9000".parse().unwrap(),
            public_url: Some("https://scim.example.com/base".into()),
            data_dir: base.join("state"),
            max_body_bytes: 2 * 1024 * 1024,
            request_timeout: Duration::from_millis(500),
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            max_connections: Some(5000),
            tls: None,
            trusted_proxies: Vec::new(),
            admin_allow: None,
            shutdown_timeout: Duration::from_secs(120),
        },
        database: DatabaseConfig {
            url: DatabaseUrl::Postgres("postgres://bridge@db.internal/scim".into()),
            event_retention: Duration::from_secs(90 * 86_400),
            log_retention: Duration::from_secs(400 * 86_400),
            max_connections: 24,
        },
        logging: LoggingConfig {
            format: LogFormat::Json,
            level: "warn,scim_bridge=debug".into(),
        },
        vault: Some(VaultConfig {
            passphrase: SecretRef::File(base.join("secrets/vault")),
            memory_kib: 131072,
            iterations: 4,
            parallelism: 2,
        }),
        scim: ScimConfig {
            max_filter_length: 4096,
            max_filter_depth: 16,
            default_page_size: 50,
            max_page_size: 500,
            bulk_max_operations: 200,
            bulk_max_payload_bytes: 1048576,
        },
        providers: vec![
            ProviderConfig {
                allow: None,
                name: "entra".into(),
                dialect: DialectSetting::Entra,
                schemas: vec![CustomSchema {
                    id: "urn:ietf:params:scim:schemas:extension:dilitrust:2.0:User".into(),
                    name: "DiliTrust User".into(),
                    description: Some("Roles".into()),
                    resource: ResourceSetting::User,
                    attributes: vec![
                        CustomAttribute {
                            name: "roleId".into(),
                            kind: AttrKind::String,
                            multi_valued: true,
                            required: true,
                            case_exact: true,
                            mutability: MutabilitySetting::Immutable,
                            returned: ReturnedSetting::Always,
                            uniqueness: UniquenessSetting::Server,
                            canonical_values: vec![
                                "0b8e7f4c-3f2a-4d6e-9c1b-2a5d8e7f6a10".into(),
                                "6f1d2c3b-4a5e-4f70-8b9c-0d1e2f3a4b5c".into(),
                            ],
                            description: Some("Role".into()),
                            sub_attributes: vec![],
                        },
                        CustomAttribute {
                            name: "manager".into(),
                            kind: AttrKind::Complex,
                            multi_valued: false,
                            required: false,
                            case_exact: false,
                            mutability: MutabilitySetting::ReadWrite,
                            returned: ReturnedSetting::Default,
                            uniqueness: UniquenessSetting::None,
                            canonical_values: vec![],
                            description: None,
                            sub_attributes: vec![sub_attribute],
                        },
                    ],
                }],
            },
            ProviderConfig {
                allow: None,
                name: "okta".into(),
                dialect: DialectSetting::Okta,
                schemas: vec![CustomSchema {
                    id: "urn:example:groups".into(),
                    name: "Group extras".into(),
                    description: None,
                    resource: ResourceSetting::Group,
                    attributes: vec![CustomAttribute {
                        name: "costCenter".into(),
                        kind: AttrKind::Integer,
                        multi_valued: false,
                        required: false,
                        case_exact: false,
                        mutability: MutabilitySetting::ReadWrite,
                        returned: ReturnedSetting::Default,
                        uniqueness: UniquenessSetting::None,
                        canonical_values: vec![],
                        description: None,
                        sub_attributes: vec![],
                    }],
                }],
            },
        ],
        targets: vec![
            TargetConfig {
                name: "imanage".into(),
                spec: TargetSpec::Imanage {
                    url: "https://dms.example.com".into(),
                    library: Some("ACTIVE".into()),
                },
                auth: Some(AuthConfig {
                    method: AuthMethod::Password,
                    token_url: Some("https://dms.example.com/auth/oauth2/token".into()),
                    authorize_url: Some("https://dms.example.com/auth/oauth2/authorize".into()),
                    client_id: Some("scim-bridge".into()),
                    client_secret: Some(SecretRef::Vault("imanage.client_secret".into())),
                    client_auth: ClientAuth::Post,
                    username: Some("svc-bridge".into()),
                    password: Some(SecretRef::File(base.join("imanage.pass"))),
                    token: None,
                    scopes: vec!["user".into(), "admin".into()],
                    // iManage's own header unless configured otherwise.
                    header: AuthHeader::XAuthToken,
                    refresh_ahead: Duration::from_secs(120),
                    revoke_url: None,
                    service_fallback: false,
                }),
                providers: vec![],
                delivery: DeliverySettings::default(),
                guard: GuardSettings::default(),
                schedule: Some(cron::Schedule::from_str("0 0 */6 * * *").expect("cron")),
                user_mapping: Vec::new(),
                group_mapping: Vec::new(),
                matching: MatchRules::default_for(TargetKind::Imanage),
                unmanaged: Unmanaged::Ignore,
                scope: None,
                paused: false,
            },
            TargetConfig {
                name: "hooks".into(),
                spec: TargetSpec::Webhook {
                    url: "https://hooks.example.com/scim".into(),
                    signing_secret: SecretRef::Vault("hooks.signing".into()),
                },
                auth: None,
                providers: vec!["okta".into()],
                delivery: DeliverySettings {
                    concurrency: 4,
                    rate_limit_per_second: Some(2.5),
                    max_attempts: 5,
                    timeout: Duration::from_secs(10),
                },
                guard: GuardSettings {
                    max_deprovisions: None,
                    max_deprovision_percent: Some(5.0),
                    window: Duration::from_secs(1800),
                    protected: vec!["breakglass@firm.example".into()],
                },
                schedule: None,
                user_mapping: Vec::new(),
                group_mapping: Vec::new(),
                matching: MatchRules::default_for(TargetKind::Webhook),
                unmanaged: Unmanaged::Ignore,
                scope: None,
                paused: false,
            },
        ],
        repositories: Vec::new(),
        resolver: ResolverConfig::default(),
        console: Default::default(),
    };
    assert_eq!(loaded.config, expected);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.sqlite_path(), None);
}

#[test]
fn empty_file_gives_defaults() {
    let (dir, path, loaded) = load_ok("", &Environment::new());
    let expected = Config {
        source: Some(path),
        server: ServerConfig {
            data_dir: dir.path().join("data"),
            ..ServerConfig::default()
        },
        ..Config::default()
    };
    assert_eq!(loaded.config, expected);
    let server = &loaded.config.server;
    assert_eq!(
        server.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(server.max_body_bytes, 1_048_576);
    assert_eq!(server.request_timeout, Duration::from_secs(30));
    assert_eq!(server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(server.idle_timeout, Duration::from_secs(60));
    assert_eq!(server.max_connections, None);
    assert_eq!(server.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(loaded.config.logging.level, "info");
    assert_eq!(loaded.config.logging.format, LogFormat::Text);
    assert_eq!(loaded.config.scim.max_filter_length, 8192);
    assert_eq!(loaded.config.scim.max_filter_depth, 64);
    assert_eq!(loaded.config.scim.default_page_size, 100);
    assert_eq!(loaded.config.scim.max_page_size, 1000);
    assert_eq!(loaded.config.scim.bulk_max_operations, 1000);
    assert_eq!(loaded.config.scim.bulk_max_payload_bytes, 1_048_576);
    assert_eq!(
        loaded.config.sqlite_path(),
        Some(dir.path().join("data").join("scim-bridge.db"))
    );
    // Only the public_url warning: 127.0.0.1 is loopback.
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("server.public_url"));
    assert!(loaded.warnings[0].contains("meta.location"));
}

#[test]
fn malformed_toml_reports_line_and_column() {
    let (_dir, path, errors) = load_err("[server]\nlisten = 127.0.0.1:8080\n", &Environment::new());
    let error = only_error(&errors);
    assert_eq!(error.origin, path.display().to_string());
    assert_eq!(error.line, Some(2));
    assert!(error.column.is_some());
    assert_eq!(error.key_path, "server.listen");
    assert!(error.message.starts_with("invalid TOML"), "{error}");
    assert!(error.message.contains("quoted"), "{error}");
    let shown = errors.to_string();
    assert!(
        shown.starts_with(&format!("{}:2:", path.display())),
        "{shown}"
    );
    assert!(
        shown.ends_with(&format!("1 error in {}", path.display())),
        "{shown}"
    );

    let (_dir, _path, errors) =
        load_err("[server\nlisten = \"127.0.0.1:1\"\n", &Environment::new());
    assert_eq!(errors.errors[0].line, Some(1), "{errors}");
    assert!(
        errors.errors[0].message.contains("invalid TOML"),
        "{errors}"
    );

    let (_dir, _path, errors) = load_err(
        "[logging]\nlevel = \"info\nformat = \"text\"\n",
        &Environment::new(),
    );
    assert_eq!(errors.errors[0].line, Some(2), "{errors}");
}

#[test]
fn wrong_types_say_what_was_expected() {
    let text = "[scim]\nmax_page_size = \"big\"\n\n[logging]\nlevel = 5\n\n[[providers]]\nname = \"a\"\n[[providers.schemas]]\nid = \"urn:x:y\"\nname = \"X\"\ndescription = 5\n[[providers.schemas.attributes]]\nname = \"n\"\nrequired = \"yes\"\n";
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    let messages: Vec<(Option<usize>, &str, &str)> = errors
        .errors
        .iter()
        .map(|e| (e.line, e.key_path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        vec![
            (
                Some(2),
                "scim.max_page_size",
                "expected an integer, found \"big\""
            ),
            (
                Some(5),
                "logging.level",
                "expected a log filter like \"info\" or \"info,scim_bridge=debug\", found an integer"
            ),
            (
                Some(12),
                "providers[0].schemas[0].description",
                "expected a string, found an integer"
            ),
            (
                Some(15),
                "providers[0].schemas[0].attributes[0].required",
                "expected true or false, found \"yes\""
            ),
        ],
        "{errors}"
    );
}

#[test]
fn unknown_key_gets_a_suggestion() {
    let (_dir, path, errors) = load_err("[server]\nlistn = \"127.0.0.1:1\"\n", &Environment::new());
    let error = only_error(&errors);
    assert_eq!(
        error.to_string(),
        format!(
            "{}:2:1: server.listn: unknown key \"listn\" (did you mean \"listen\"?)",
            path.display()
        )
    );

    let (_dir, _path, errors) = load_err("[server]\nmaxBodyBytes = 5\n", &Environment::new());
    assert!(
        only_error(&errors)
            .message
            .contains("did you mean \"max_body_bytes\"")
    );

    let (_dir, _path, errors) = load_err("[logging]\nzzzzzz = 1\n", &Environment::new());
    assert_eq!(
        only_error(&errors).message,
        "unknown key \"zzzzzz\"; expected one of: format, level"
    );

    let (_dir, _path, errors) = load_err("[sever]\n", &Environment::new());
    assert!(
        only_error(&errors)
            .message
            .contains("did you mean \"server\"")
    );
}

#[test]
fn unknown_key_in_nested_array_table_has_full_path() {
    let text = r#"
[[providers]]
name = "entra"

[[providers.schemas]]
id = "urn:example:ext"
name = "Ext"

[[providers.schemas.attributes]]
name = "a"

[[providers.schemas.attributes]]
name = "b"
typo = true
"#;
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    let error = only_error(&errors);
    assert_eq!(error.key_path, "providers[0].schemas[0].attributes[1].typo");
    assert_eq!(error.line, Some(14));
    assert_eq!(error.column, Some(1));
    assert!(error.message.contains("did you mean \"type\""), "{error}");
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = r#"
[server]
listen = "localhost"
max_body_bytes = "lots"
request_timeout = "5y"

[logging]
format = "xml"
levle = "info"

[[providers]]
dialect = "azure"
"#;
    let (_dir, path, errors) = load_err(text, &Environment::new());
    assert_eq!(errors.errors.len(), 7, "{errors}");
    let lines: Vec<Option<usize>> = errors.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 4, 5, 8, 9, 11, 12].map(Some));
    let shown = errors.to_string();
    assert!(shown.contains("expected a socket address like \"127.0.0.1:8080\""));
    assert!(shown.contains("found \"localhost\""));
    assert!(shown.contains("expected a duration like \"30s\""));
    assert!(shown.contains("found \"5y\""));
    assert!(shown.contains("expected one of \"text\" or \"json\", found \"xml\""));
    assert!(shown.contains("unknown key \"levle\" (did you mean \"level\"?)"));
    assert!(shown.contains("providers[0].name: missing required key \"name\""));
    assert!(
        shown.contains("providers[0].dialect: expected one of \"strict\", \"entra\" or \"okta\"")
    );
    assert!(
        shown.ends_with(&format!("7 errors in {}", path.display())),
        "{shown}"
    );
}

#[test]
fn env_overrides_are_applied() {
    let env = env(&[
        ("SCIM_BRIDGE__SERVER__LISTEN", "0.0.0.0:9000"),
        (
            "scim_bridge__server__public_url",
            "https://scim.example.com",
        ),
        ("SCIM_BRIDGE__DATABASE__URL", "postgres://bridge@db/scim"),
        ("SCIM_BRIDGE__SCIM__MAX_PAGE_SIZE", "50"),
        ("SCIM_BRIDGE__LOGGING__LEVEL", "debug"),
        (
            "SCIM_BRIDGE__VAULT__PASSPHRASE",
            "{ credential = \"vault\" }",
        ),
        ("SCIM_BRIDGE__SERVER__MAX_BODY_BYTES", "4MiB"),
        // Not overrides: single underscore, unrelated.
        ("SCIM_BRIDGE_CONFIG", "/etc/scim-bridge.toml"),
        ("PATH", "/usr/bin"),
    ]);
    let (_dir, _path, loaded) = load_ok("[server]\nlisten = \"127.0.0.1:1\"\n", &env);
    let config = &loaded.config;
    assert_eq!(
        config.server.listen,
        "0.0.0.0:9000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.server.public_url.as_deref(),
        Some("https://scim.example.com")
    );
    assert_eq!(config.server.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(
        config.database.url,
        DatabaseUrl::Postgres("postgres://bridge@db/scim".into())
    );
    assert_eq!(config.scim.max_page_size, 50);
    // Lowering only the maximum clamps the default page size.
    assert_eq!(config.scim.default_page_size, 50);
    assert_eq!(config.logging.level, "debug");
    assert_eq!(
        config.vault.as_ref().map(|v| &v.passphrase),
        Some(&SecretRef::Credential("vault".into()))
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn env_override_errors_name_the_variable() {
    let env = env(&[
        ("SCIM_BRIDGE__SERVER__LISTEN", "localhost"),
        ("SCIM_BRIDGE__SERVER__LISTN", "0.0.0.0:1"),
        ("SCIM_BRIDGE__PROVIDERS__NAME", "x"),
        ("SCIM_BRIDGE__SERVER____LISTEN", "x"),
    ]);
    let (_dir, _path, errors) = load_err("[[providers]]\nname = \"entra\"\n", &env);
    let shown: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 4, "{errors}");
    assert!(errors.errors.iter().all(|e| e.line.is_none()));
    assert!(shown.contains(&"env SCIM_BRIDGE__SERVER__LISTEN: server.listen: expected a socket address like \"127.0.0.1:8080\" or \"[::1]:8080\" (an IP address and a port; host names are not resolved), found \"localhost\"".to_owned()), "{shown:#?}");
    assert!(shown.contains(&"env SCIM_BRIDGE__SERVER__LISTN: server.listn: unknown key \"listn\" (did you mean \"listen\"?)".to_owned()), "{shown:#?}");
    assert!(
        shown.iter().any(|s| s.starts_with(
            "env SCIM_BRIDGE__PROVIDERS__NAME: providers: entries of an array of tables"
        )),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.starts_with("env SCIM_BRIDGE__SERVER____LISTEN: expected a name like")),
        "{shown:#?}"
    );
}

#[test]
fn env_strings_that_look_like_toml_stay_strings() {
    // `1.0` parses as a TOML float, but a string setting takes it verbatim.
    let env = env(&[("SCIM_BRIDGE__DATABASE__URL", "sqlite://1.0")]);
    let (_dir, _path, loaded) = load_ok("", &env);
    assert_eq!(
        loaded.config.database.url,
        DatabaseUrl::Sqlite("1.0".into())
    );
}

#[test]
fn inline_secrets_are_refused_without_echoing_them() {
    let (_dir, _path, errors) = load_err(
        "[vault]\npassphrase = \"hunter2-secret\"\n",
        &Environment::new(),
    );
    let error = only_error(&errors);
    assert_eq!(error.key_path, "vault.passphrase");
    assert!(error.message.contains("never taken inline"), "{error}");
    assert!(error.message.contains("credential"), "{error}");
    assert!(error.message.contains("file"), "{error}");
    assert!(!errors.to_string().contains("hunter2"));

    let env = env(&[("SCIM_BRIDGE__VAULT__PASSPHRASE", "hunter2-secret")]);
    let (_dir, _path, errors) = load_err("", &env);
    let error = only_error(&errors);
    assert_eq!(error.origin, "env SCIM_BRIDGE__VAULT__PASSPHRASE");
    assert!(!errors.to_string().contains("hunter2"));
}

#[test]
fn secret_ref_needs_exactly_one_source() {
    let text = "[vault]\npassphrase = { file = \"a\", env = \"B\" }\n";
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    assert!(
        only_error(&errors)
            .message
            .contains("found both file and env")
    );

    let (_dir, _path, errors) = load_err("[vault]\npassphrase = {}\n", &Environment::new());
    assert!(only_error(&errors).message.contains("exactly one of"));

    let text = "[vault]\npassphrase = { credential = \"../etc/shadow\" }\n";
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    assert!(
        only_error(&errors)
            .message
            .contains("systemd credential name")
    );

    let text = "[vault]\npassphrase = { vault = \"x\" }\n";
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    assert!(
        only_error(&errors)
            .message
            .contains("cannot come from the vault")
    );

    let (_dir, _path, errors) = load_err("[vault]\n", &Environment::new());
    let error = only_error(&errors);
    assert_eq!(error.key_path, "vault.passphrase");
    assert_eq!(error.line, Some(1));
}

#[test]
fn file_secret_is_resolved() {
    let dir = tempfile::tempdir().unwrap();
    write_secret(dir.path(), "vault", b"correct horse\n", 0o600);
    let text = "[vault]\npassphrase = { file = \"vault\" }\n";
    let loaded = load_str(text, "inline.toml", dir.path(), &Environment::new()).unwrap();
    let vault = loaded.config.vault.as_ref().unwrap();
    assert_eq!(vault.passphrase, SecretRef::File(dir.path().join("vault")));
    let secret = vault.passphrase.resolve(&Environment::new()).unwrap();
    assert_eq!(secret.expose(), "correct horse");
    let (warnings, errors) = check_secret_files(&loaded.config, &Environment::new());
    assert!(
        warnings.is_empty() && errors.is_empty(),
        "{warnings:?} {errors:?}"
    );

    // Only one newline is trimmed; the rest may be deliberate.
    let path = write_secret(dir.path(), "crlf", b"pass \r\n", 0o600);
    assert_eq!(
        SecretRef::File(path)
            .resolve(&Environment::new())
            .unwrap()
            .expose(),
        "pass "
    );
    let path = write_secret(dir.path(), "two", b"pass\n\n", 0o600);
    assert_eq!(
        SecretRef::File(path)
            .resolve(&Environment::new())
            .unwrap()
            .expose(),
        "pass\n"
    );
}

#[test]
fn missing_or_empty_secret_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let config = vault_with(SecretRef::File(missing.clone()));
    let error = config
        .vault
        .as_ref()
        .unwrap()
        .passphrase
        .resolve(&Environment::new())
        .unwrap_err();
    assert!(matches!(error, SecretError::FileMissing { .. }));
    assert_eq!(
        error.to_string(),
        format!("secret file {} does not exist", missing.display())
    );
    let (warnings, errors) = check_secret_files(&config, &Environment::new());
    assert!(warnings.is_empty());
    assert_eq!(
        errors,
        vec![format!(
            "vault.passphrase: secret file {} does not exist",
            missing.display()
        )]
    );

    let empty = write_secret(dir.path(), "empty", b"\n", 0o600);
    let error = SecretRef::File(empty.clone())
        .resolve(&Environment::new())
        .unwrap_err();
    assert!(matches!(error, SecretError::FileEmpty { .. }), "{error}");
    let (_, errors) = check_secret_files(
        &vault_with(SecretRef::File(dir.path().into())),
        &Environment::new(),
    );
    assert!(errors[0].contains("not a regular file"), "{errors:?}");

    let big = write_secret(dir.path(), "big", &vec![b'x'; 70 * 1024], 0o600);
    let error = SecretRef::File(big)
        .resolve(&Environment::new())
        .unwrap_err();
    assert!(matches!(error, SecretError::FileTooLarge { .. }), "{error}");
}

#[test]
fn credential_comes_from_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_secret(dir.path(), "vault-passphrase", b"from systemd\n", 0o400);
    let secret = SecretRef::Credential("vault-passphrase".into());
    let env = env(&[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())]);
    assert_eq!(secret.resolve(&env).unwrap().expose(), "from systemd");
    let (warnings, errors) = check_secret_files(&vault_with(secret.clone()), &env);
    assert!(
        warnings.is_empty() && errors.is_empty(),
        "{warnings:?} {errors:?}"
    );

    let error = secret.resolve(&Environment::new()).unwrap_err();
    assert!(matches!(error, SecretError::NoCredentialsDirectory { .. }));
    let message = error.to_string();
    assert!(
        message.contains("CREDENTIALS_DIRECTORY") && message.contains("LoadCredential"),
        "{message}"
    );
    assert!(message.contains("{ file = "), "{message}");
    let (_, errors) = check_secret_files(&vault_with(secret), &Environment::new());
    assert_eq!(errors.len(), 1);

    let other = SecretRef::Credential("other".into());
    let error = other.resolve(&env).unwrap_err();
    assert!(
        matches!(error, SecretError::CredentialMissing { .. }),
        "{error}"
    );
    let (_, errors) = check_secret_files(&vault_with(other), &env);
    assert!(errors[0].contains("LoadCredential=other"), "{errors:?}");
}

#[test]
fn readable_secret_file_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_secret(dir.path(), "vault", b"s3cret", 0o644);
    let config = vault_with(SecretRef::File(path.clone()));
    let (warnings, errors) = check_secret_files(&config, &Environment::new());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains(&path.display().to_string()));
    assert!(warnings[0].contains("0644"), "{}", warnings[0]);
    assert!(warnings[0].contains("chmod 600"), "{}", warnings[0]);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o620)).unwrap();
    assert_eq!(check_secret_files(&config, &Environment::new()).0.len(), 1);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(
        check_secret_files(&config, &Environment::new())
            .0
            .is_empty()
    );
}

#[test]
fn env_secrets_warn_and_must_be_set() {
    let config = vault_with(SecretRef::Env("VAULT_PASSPHRASE".into()));
    let (warnings, errors) = check_secret_files(&config, &env(&[("VAULT_PASSPHRASE", "x")]));
    assert!(errors.is_empty());
    assert!(warnings[0].contains("/proc"), "{warnings:?}");
    let (_, errors) = check_secret_files(&config, &Environment::new());
    assert_eq!(
        errors,
        vec!["vault.passphrase: environment variable VAULT_PASSPHRASE is not set".to_owned()]
    );
    let secret = config
        .vault
        .as_ref()
        .unwrap()
        .passphrase
        .resolve(&env(&[("VAULT_PASSPHRASE", "pw")]));
    assert_eq!(secret.unwrap().expose(), "pw");
    assert!(matches!(
        SecretRef::Vault("db".into()).resolve(&Environment::new()),
        Err(SecretError::NeedsVault(name)) if name == "db"
    ));

    let text = "[vault]\npassphrase = { env = \"SCIM_BRIDGE__X\" }\n";
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    assert!(only_error(&errors).message.contains("reserved"));
}

#[test]
fn duplicate_provider_name_points_at_both() {
    let text = "[[providers]]\nname = \"entra\"\n\n[[providers]]\nname = \"okta\"\n\n[[providers]]\nname = \"entra\"\n";
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    let error = only_error(&errors);
    assert_eq!(error.line, Some(8));
    assert_eq!(error.key_path, "providers[2].name");
    assert_eq!(
        error.message,
        "duplicate provider name \"entra\" (first defined at line 2)"
    );

    let (_dir, _path, errors) =
        load_err("[[providers]]\nname = \"Entra ID\"\n", &Environment::new());
    assert!(only_error(&errors).message.contains("found \"Entra ID\""));
}

#[test]
fn custom_attribute_names_and_nesting_are_checked() {
    let text = r#"
[[providers]]
name = "p"
[[providers.schemas]]
id = "urn:example:ext"
name = "Ext"
[[providers.schemas.attributes]]
name = "2fa"
[[providers.schemas.attributes]]
name = "role id"
[[providers.schemas.attributes]]
name = "Role"
[[providers.schemas.attributes]]
name = "role"
[[providers.schemas.attributes]]
name = "plain"
[[providers.schemas.attributes.sub_attributes]]
name = "x"
[[providers.schemas.attributes]]
name = "outer"
type = "complex"
[[providers.schemas.attributes.sub_attributes]]
name = "inner"
type = "complex"
[[providers.schemas.attributes]]
name = "lonely"
type = "complex"
[[providers.schemas.attributes]]
name = "kind"
type = "datetime"
"#;
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    let found: Vec<(&str, &str)> = errors
        .errors
        .iter()
        .map(|e| (e.key_path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(found.len(), 7, "{errors}");
    assert!(found[0].0.ends_with("attributes[0].name") && found[0].1.contains("RFC 7643 ATTRNAME"));
    assert!(found[1].0.ends_with("attributes[1].name") && found[1].1.contains("found \"role id\""));
    assert!(
        found[2].0.ends_with("attributes[3].name")
            && found[2].1.contains("duplicate attribute name \"role\"")
    );
    assert!(
        found[3].0.ends_with("attributes[4].sub_attributes")
            && found[3].1.contains("only allowed when type = \"complex\"")
    );
    assert!(
        found[4].0.ends_with("attributes[5].sub_attributes[0].type")
            && found[4].1.contains("cannot be complex")
    );
    assert!(
        found[5].0.ends_with("attributes[6].sub_attributes")
            && found[5].1.contains("missing required key")
    );
    assert!(
        found[6].1.contains("(did you mean \"dateTime\"?)"),
        "{errors}"
    );
}

#[test]
fn schema_ids_are_checked() {
    let text = "[[providers]]\nname = \"p\"\n[[providers.schemas]]\nid = \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"\nname = \"U\"\nattributes = []\n[[providers.schemas]]\nid = \"acme\"\nname = \"A\"\n[[providers.schemas.attributes]]\nname = \"a\"\n";
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    assert_eq!(errors.errors.len(), 3, "{errors}");
    assert!(
        errors.errors[0]
            .message
            .contains("built-in enterprise extension")
    );
    assert!(errors.errors[1].message.contains("at least one attribute"));
    assert!(errors.errors[2].message.contains("expected a schema URN"));
}

/// DiliTrust's guide maps `urn:ietf:params:scim:schemas:core:2.0:User:roleId`: the
/// core schemas take added attributes, never ones RFC 7643 already defines there.
#[test]
fn core_schemas_take_added_attributes_but_not_standard_names() {
    let ok = r#"
[[providers]]
name = "entra"
[[providers.schemas]]
id = "urn:ietf:params:scim:schemas:core:2.0:user"
[[providers.schemas.attributes]]
name = "roleId"
case_exact = true
[[providers.schemas]]
id = "urn:ietf:params:scim:schemas:core:2.0:Group"
[[providers.schemas.attributes]]
name = "costCenter"
"#;
    let (_dir, _path, loaded) = load_ok(ok, &Environment::new());
    let schemas = &loaded.config.providers[0].schemas;
    assert_eq!(schemas[0].id, "urn:ietf:params:scim:schemas:core:2.0:User");
    assert_eq!(schemas[0].resource, ResourceSetting::User);
    assert_eq!(schemas[1].resource, ResourceSetting::Group);

    let bad = r#"
[[providers]]
name = "entra"
[[providers.schemas]]
id = "urn:ietf:params:scim:schemas:core:2.0:User"
resource = "Group"
[[providers.schemas.attributes]]
name = "roleId"
[[providers.schemas.attributes]]
name = "UserName"
[[providers.schemas.attributes]]
name = "externalId"
[[providers.schemas]]
id = "urn:example:acme:2.0:User"
[[providers.schemas.attributes]]
name = "a"
"#;
    let (_dir, _path, errors) = load_err(bad, &Environment::new());
    let found: Vec<(&str, &str)> = errors
        .errors
        .iter()
        .map(|e| (e.key_path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(found.len(), 4, "{errors}");
    assert!(found[0].0.ends_with("schemas[0].resource") && found[0].1.contains("belongs to Users"));
    assert!(
        found[1].0.ends_with("attributes[1].name")
            && found[1]
                .1
                .contains("\"UserName\" is a standard attribute of the core User schema")
    );
    assert!(found[2].0.ends_with("attributes[2].name"));
    assert!(found[3].0.ends_with("schemas[1].name") && found[3].1.contains("missing required key"));
}

#[test]
fn postgres_password_is_redacted_in_debug() {
    let url = DatabaseUrl::Postgres("postgres://bridge:hunter2@db.internal:5432/scim".into());
    assert_eq!(
        format!("{url:?}"),
        "Postgres(\"postgres://bridge:***@db.internal:5432/scim\")"
    );
    let url = DatabaseUrl::Postgres("postgresql://db/scim?sslmode=require&password=hunter2".into());
    assert_eq!(
        format!("{url:?}"),
        "Postgres(\"postgresql://db/scim?sslmode=require&password=***\")"
    );
    let url = DatabaseUrl::Postgres("postgres://u:hun/ter2@db/scim".into());
    assert!(!format!("{url:?}").contains("ter2"));

    let text = "[database]\nurl = \"postgres://bridge:hunter2@db/scim\"\n";
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    assert!(!format!("{:?}", loaded.config).contains("hunter2"));
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("password inline"))
    );

    let (_dir, _path, errors) = load_err(
        "[database]\nurl = \"mysql://root:hunter2@db/x\"\n",
        &Environment::new(),
    );
    assert!(
        only_error(&errors)
            .message
            .contains("mysql://root:***@db/x")
    );
    assert!(!errors.to_string().contains("hunter2"));
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_secret(dir.path(), "s", b"hunter2", 0o600);
    let secret = SecretRef::File(path).resolve(&Environment::new()).unwrap();
    assert_eq!(format!("{secret:?}"), "SecretValue(***)");

    let path = write_secret(dir.path(), "bad", b"hunter2\xff", 0o600);
    let error = SecretRef::File(path)
        .resolve(&Environment::new())
        .unwrap_err();
    assert!(matches!(error, SecretError::FileNotUtf8 { .. }));
    assert!(!error.to_string().contains("hunter2"));
    assert!(!format!("{error:?}").contains("hunter2"));

    let env = env(&[("VAULT_PASSPHRASE", "hunter2")]);
    assert!(!format!("{env:?}").contains("hunter2"));
    assert!(format!("{env:?}").contains("VAULT_PASSPHRASE"));
}

#[test]
fn bulk_payload_cannot_exceed_body_limit() {
    let (_dir, _path, errors) = load_err(
        "[server]\nmax_body_bytes = \"512KiB\"\n",
        &Environment::new(),
    );
    let error = only_error(&errors);
    assert_eq!(error.key_path, "server.max_body_bytes");
    assert!(
        error
            .message
            .contains("scim.bulk_max_payload_bytes (1048576)"),
        "{error}"
    );
    assert!(
        error.message.contains("server.max_body_bytes (524288)"),
        "{error}"
    );

    let (_dir, _path, errors) = load_err(
        "[scim]\nbulk_max_payload_bytes = \"2MiB\"\n",
        &Environment::new(),
    );
    assert_eq!(only_error(&errors).key_path, "scim.bulk_max_payload_bytes");

    let text = "[server]\nmax_body_bytes = 4194304\n[scim]\nbulk_max_payload_bytes = \"4MiB\"\n";
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    assert_eq!(loaded.config.scim.bulk_max_payload_bytes, 4 << 20);
}

#[test]
fn cli_overrides_rebase_relative_sqlite_path() {
    let text = "[server]\ndata_dir = \"/srv/scim\"\n[database]\nurl = \"sqlite://db/bridge.db\"\n";
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    let mut config = loaded.config;
    assert_eq!(
        config.database.url,
        DatabaseUrl::Sqlite("db/bridge.db".into())
    );
    assert_eq!(
        config.sqlite_path(),
        Some(PathBuf::from("/srv/scim/db/bridge.db"))
    );
    let listen: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    config.apply_overrides(Some(listen), Some(PathBuf::from("/var/lib/scim-bridge")));
    assert_eq!(config.server.listen, listen);
    assert_eq!(
        config.sqlite_path(),
        Some(PathBuf::from("/var/lib/scim-bridge/db/bridge.db"))
    );
    config.apply_overrides(None, None);
    assert_eq!(config.server.listen, listen);

    let (_dir, _path, loaded) = load_ok(
        "[database]\nurl = \"sqlite:///abs/x.db\"\n",
        &Environment::new(),
    );
    assert_eq!(
        loaded.config.sqlite_path(),
        Some(PathBuf::from("/abs/x.db"))
    );
}

#[test]
fn exposure_warnings() {
    let (_dir, _path, loaded) =
        load_ok("[server]\nlisten = \"0.0.0.0:8080\"\n", &Environment::new());
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    let text = "[server]\nlisten = \"0.0.0.0:8080\"\npublic_url = \"http://scim.example.com\"\n";
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("https://"));
    let text = "[server]\nlisten = \"[::]:8080\"\npublic_url = \"https://scim.example.com/\"\n";
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded.config.server.public_url.as_deref(),
        Some("https://scim.example.com")
    );
}

#[test]
fn vault_parameters_are_checked() {
    let text =
        "[vault]\npassphrase = { env = \"P\" }\nmemory_kib = 8\nparallelism = 2\niterations = 0\n";
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    assert_eq!(errors.errors.len(), 2, "{errors}");
    assert!(
        errors.errors[0]
            .message
            .contains("at least 8 × vault.parallelism"),
        "{errors}"
    );
    assert_eq!(
        errors.errors[1].message,
        "expected an integer from 1 to 4294967295, found 0"
    );

    let text = "[vault]\npassphrase = { env = \"P\" }\nparallelism = 17\n";
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    assert_eq!(
        only_error(&errors).message,
        "expected an integer from 1 to 16, found 17"
    );
}

#[test]
fn value_parsers() {
    assert_eq!(values::byte_size("1MiB"), Ok(1 << 20));
    assert_eq!(values::byte_size("512 KiB"), Ok(512 << 10));
    assert_eq!(values::byte_size("10"), Ok(10));
    assert_eq!(values::byte_size("2MB"), Ok(2_000_000));
    assert!(values::byte_size("1.5MiB").is_err());
    assert!(values::byte_size("99999999999GiB").is_err());
    assert_eq!(values::duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(values::duration("1h"), Ok(Duration::from_secs(3600)));
    assert!(values::duration("30").is_err());
    assert!(values::duration("s").is_err());
    assert!(values::log_level("info,scim_bridge::server=trace,tower_http=off").is_ok());
    assert!(values::log_level("WARN").is_ok());
    assert!(values::log_level("inof").is_err());
    assert!(values::log_level("info,").is_err());
    assert!(values::log_level("=debug").is_err());
    assert!(values::public_url("ftp://x").is_err());
    assert!(values::public_url("https://").is_err());
    assert!(values::public_url("https://x/?a=b").is_err());
    assert!(values::credential_name("..").is_err());
    assert!(values::credential_name("a/b").is_err());
    assert_eq!(
        reader::suggest("listn", &["listen", "public_url"]),
        Some("listen")
    );
    assert_eq!(reader::suggest("xy", &["id"]), None);
}

#[test]
fn unreadable_config_file_is_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let errors = load(&path, &Environment::new()).unwrap_err();
    let error = only_error(&errors);
    assert_eq!(error.origin, path.display().to_string());
    assert!(
        error.message.contains("cannot read the configuration file"),
        "{error}"
    );
}

#[test]
fn hostile_input_never_panics() {
    let deep = format!("a = {}", "[".repeat(100_000));
    let inputs = [
        "\0",
        "[[[",
        "a = {",
        "= 1",
        "[server]\nlisten = [1, 2, {}]\n",
        "server = 5\nproviders = 5\n",
        "providers = [1, \"x\", []]\n",
        "[[providers]]\n[[providers.schemas]]\n[[providers.schemas.attributes]]\n[[providers.schemas.attributes.sub_attributes]]\n[[providers.schemas.attributes.sub_attributes.sub_attributes]]\n",
        "[scim]\nmax_page_size = 99999999999999999999999999999999999999999\n",
        "[scim]\nmax_page_size = -1\n",
        "[server]\nmax_body_bytes = 0\nrequest_timeout = \"0s\"\n",
        "[server.listen]\nx = 1\n",
        "\u{feff}[server]\n",
        "[server]\nlisten = \"é\"\npublic_url = \"https://é\"\n",
        &deep,
    ];
    let env = env(&[
        ("SCIM_BRIDGE__", "1"),
        ("SCIM_BRIDGE__SERVER__LISTEN__X", "1"),
        ("SCIM_BRIDGE__A__B__C", "{ d = [1, { e = 2 }] }"),
    ]);
    for input in inputs {
        let result = load_str(input, "hostile.toml", Path::new("/tmp"), &env);
        assert!(result.is_err(), "{input:?} was accepted");
        if let Err(errors) = result {
            assert!(!errors.errors.is_empty());
        }
    }
}

/// Turns `# key = value` back into `key = value` (and `# # note` into a
/// comment) so the commented examples in the shipped file are tested too.
fn uncomment(block: &str) -> String {
    block
        .lines()
        .map(|line| {
            line.strip_prefix("# ")
                .or_else(|| line.strip_prefix('#'))
                .unwrap_or(line)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shipped_default_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scim-bridge.toml");
    let loaded = match load(&path, &Environment::new()) {
        Ok(loaded) => loaded,
        Err(e) => panic!("{e}"),
    };
    let config = &loaded.config;
    let names: Vec<(&str, DialectSetting)> = config
        .providers
        .iter()
        .map(|p| (p.name.as_str(), p.dialect))
        .collect();
    assert_eq!(
        names,
        [
            ("entra", DialectSetting::Entra),
            ("okta", DialectSetting::Okta)
        ]
    );
    assert!(
        config.server.data_dir.ends_with("config/../data"),
        "{:?}",
        config.server.data_dir
    );
    assert_eq!(config.server.listen, ServerConfig::default().listen);
    assert_eq!(config.scim, ScimConfig::default());
    assert_eq!(config.logging, LoggingConfig::default());
    assert_eq!(config.database, DatabaseConfig::default());
    assert_eq!(config.vault, None);

    // The commented-out examples must be valid once uncommented.
    let text = fs::read_to_string(&path).unwrap();
    let vault_start = text.find("# [vault]").unwrap();
    let vault_len = text[vault_start..].find("\n\n").unwrap();
    let schema_start = text.find("# [[providers.schemas]]").unwrap();
    let repos_start = text.find("# --- Workspace resolution").unwrap();
    let with_examples = format!(
        "{}\n{}\n{}\n[[targets]]\nname = \"imanage\"\nkind = \"imanage\"\nurl = \"https://dms.example.com\"\n{}",
        text,
        uncomment(&text[schema_start..repos_start]),
        uncomment(&text[vault_start..vault_start + vault_len]),
        uncomment(&text[text.find("# [[repositories]]").unwrap()..]),
    );
    let base = path.parent().unwrap();
    let loaded = match load_str(&with_examples, "examples", base, &Environment::new()) {
        Ok(loaded) => loaded,
        Err(e) => panic!("{e}"),
    };
    let okta = &loaded.config.providers[1];
    assert_eq!(okta.schemas.len(), 1);
    let schema = &okta.schemas[0];
    assert_eq!(
        schema.id,
        "urn:ietf:params:scim:schemas:extension:dilitrust:2.0:User"
    );
    assert_eq!(schema.attributes[0].name, "roleId");
    assert_eq!(schema.attributes[0].canonical_values.len(), 2);
    let matters = &loaded.config.repositories[0];
    assert!(matches!(matters.search, WorkspaceSearch::Fields(_)));
    assert_eq!(matters.work_types[0].name, "Instructions");
    assert_eq!(loaded.config.resolver, ResolverConfig::default());
    assert_eq!(
        loaded.config.vault.map(|v| v.passphrase),
        Some(SecretRef::Credential("vault-passphrase".into()))
    );
}

#[test]
fn env_override_can_reach_into_nested_tables() {
    let env = env(&[("SCIM_BRIDGE__VAULT__PASSPHRASE__FILE", "/run/secrets/vault")]);
    let (_dir, _path, loaded) = load_ok("[vault]\niterations = 5\n", &env);
    let vault = loaded.config.vault.unwrap();
    assert_eq!(
        vault.passphrase,
        SecretRef::File("/run/secrets/vault".into())
    );
    assert_eq!(vault.iterations, 5);
}

#[test]
fn target_auth_errors_name_the_missing_keys() {
    let text = r#"
[[targets]]
name = "imanage"
kind = "imanage"
[targets.auth]
method = "client_credentials"
scopes = ["has space"]

[[targets]]
name = "imanage"
kind = "dms"
[targets.auth]
method = "bearer"
token = "inline-secret-value"
"#;
    let (_dir, path) = write_config(text);
    let errors = load(&path, &Environment::new()).unwrap_err();
    let shown = errors.to_string();
    for needle in [
        "targets[0].auth.token_url: missing required key",
        "targets[0].auth.client_id: missing required key",
        "targets[0].auth.scopes[0]: expected a scope token",
        "targets[1].name: duplicate target name \"imanage\"",
        "targets[1].kind: expected one of",
        "targets[1].auth.token: expected a secret reference",
    ] {
        assert!(shown.contains(needle), "{needle:?} not in:\n{shown}");
    }
    assert!(!shown.contains("inline-secret-value"), "{shown}");
}

#[test]
fn plain_http_token_endpoints_off_this_host_are_warned_about() {
    let text = r#"
[[targets]]
name = "a"
kind = "scim"
url = "https://a.example.com/scim/v2"
[targets.auth]
method = "client_credentials"
token_url = "http://login.example.com/token"
client_id = "x"

[[targets]]
name = "b"
kind = "scim"
url = "https://b.example.com/scim/v2"
[targets.auth]
method = "client_credentials"
token_url = "http://127.0.0.1:9000/token"
client_id = "x"
"#;
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    let warned: Vec<_> = loaded
        .warnings
        .iter()
        .filter(|w| w.contains("token_url"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("targets[0].auth.token_url"),
        "{warned:?}"
    );
}

#[test]
fn bad_schedules_are_explained_with_their_line() {
    let text = "[[targets]]\nname = \"app\"\nkind = \"scim\"\nurl = \"https://a.example.com/scim\"\nschedule = \"0 25 * * *\"\n";
    let (_dir, path) = write_config(text);
    let shown = load(&path, &Environment::new()).unwrap_err().to_string();
    assert!(
        shown.contains(":5:")
            && shown.contains("targets[0].schedule")
            && shown.contains("field 2 (hour)"),
        "{shown}"
    );
}

#[test]
fn guard_percentages_are_explained_as_percentages() {
    let text = "[[targets]]\nname = \"app\"\nkind = \"webhook\"\nurl = \"https://h.example.com\"\nsigning_secret = { env = \"S\" }\n[targets.guard]\nmax_deprovision_percent = 0\n";
    let (_dir, path) = write_config(text);
    let shown = load(&path, &Environment::new()).unwrap_err().to_string();
    assert!(
        shown.contains(
            "targets[0].guard.max_deprovision_percent: expected a percentage greater than zero"
        ),
        "{shown}"
    );
    assert!(!shown.contains("requests per second"), "{shown}");
}

const DMS: &str = r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "https://dms.example.com"

[[targets]]
name = "hooks"
kind = "webhook"
url = "https://hooks.example.com"
signing_secret = { vault = "hooks.signing" }
"#;

#[test]
fn repositories_are_read_with_their_searches() {
    let text = format!(
        r#"{DMS}
[resolver]
cache_ttl = "10m"
cache_size = 500

[[repositories]]
name = "document-templates"
target = "dms"
workspace = "Clio Operate Document Templates"
folder = " Document Templates "

[[repositories]]
name = "matters"
target = "dms"
workspace = "custom1=[workitem.client.reference], custom2=[workitem.reference]"
folder = "Correspondence/Inbound"
libraries = ["ACTIVE", "ARCHIVE"]
[[repositories.work_types]]
name = "Instructions"
workspace = "Smith, Jones & Co"
"#
    );
    let (_dir, _path, loaded) = load_ok(&text, &Environment::new());
    let c = loaded.config;
    assert_eq!(c.resolver.cache_ttl, Duration::from_secs(600));
    assert_eq!(c.resolver.cache_size, 500);
    assert_eq!(c.repositories.len(), 2);
    let templates = &c.repositories[0];
    assert!(matches!(&templates.search, WorkspaceSearch::Title(t) if t.is_constant()));
    assert_eq!(templates.folder.as_deref(), Some("Document Templates"));
    let matters = &c.repositories[1];
    match &matters.search {
        WorkspaceSearch::Fields(f) => {
            let keys: Vec<&str> = f.iter().map(|a| a.key.as_str()).collect();
            assert_eq!(keys, ["custom1", "custom2"]);
        }
        other => panic!("expected an advanced search, got {other:?}"),
    }
    assert_eq!(matters.libraries, ["ACTIVE", "ARCHIVE"]);
    // A title with a comma is still a title.
    assert!(matches!(
        &matters.work_types[0].search,
        Some(WorkspaceSearch::Title(_))
    ));
}

#[test]
fn bad_repositories_are_refused_with_positions() {
    let text = format!(
        r#"{DMS}
[[repositories]]
name = "a"
target = "dms"
workspace = "[workitem.title"

[[repositories]]
name = "b"
target = "hooks"
workspace = "custom1=[workitem.client.reference], colour=[workitem.x]"
search = "fields"

[[repositories]]
name = "c"
target = "nowhere"
workspace = "[user.userName | lower]"
folder = "a//b"
libraries = ["HAS SPACE"]
[[repositories.work_types]]
name = "T"
workspace = "custom1=[workitem.a]"
search = "sometimes"
"#
    );
    let (_dir, _path, errors) = load_err(&text, &Environment::new());
    let shown = errors.to_string();
    for needle in [
        ":16:13: repositories[0].workspace: unclosed `[`: the expression has no `]` (column 1)\n[workitem.title\n^",
        "repositories[1].target: target \"hooks\" is not an iManage target",
        "repositories[1].workspace: unknown field `colour`; fields are name, description, custom1 … custom30 (column 38)",
        "repositories[2].target: no target named \"nowhere\" (iManage targets: dms)",
        "repositories[2].workspace: unknown root `user`; here a path starts with `workitem` (column 2)",
        "repositories[2].folder: expected a folder path",
        "repositories[2].libraries[0]: \"HAS SPACE\" is not an iManage library name",
        "repositories[2].work_types[0].search: expected \"title\"",
    ] {
        assert!(shown.contains(needle), "{needle:?} not in:\n{shown}");
    }
}

#[test]
fn target_mappings_are_templates_checked_per_kind() {
    let text = r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "https://dms.example.com"
[targets.user_mapping]
id = "[user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber]"
full_name = "[user.name.familyName], [user.name.givenName]"
[targets.group_mapping]
full_name = "[group.displayName]"

[[targets]]
name = "clm"
kind = "scim"
url = "https://clm.example.com/scim/v2"
on_delete = "delete"
[targets.user_mapping]
title = "[user.title | default(\"Associate\")]"
"urn:example:clm:2.0:User:roleId" = "[user.roles.value]"
"#;
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    let dms = &loaded.config.targets[0];
    let fields: Vec<&str> = dms.user_mapping.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, ["full_name", "id"]);
    assert_eq!(dms.group_mapping.len(), 1);
    assert_eq!(
        loaded.config.targets[1].user_mapping[1].field,
        "urn:example:clm:2.0:User:roleId"
    );

    let bad = r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "https://dms.example.com"
on_delete = "delete"
[targets.user_mapping]
nickname = "[user.nickName]"
email = "[group.displayName]"
full_name = "[user.name"

[[targets]]
name = "hooks"
kind = "webhook"
url = "https://hooks.example.com"
signing_secret = { vault = "hooks.signing" }
[targets.user_mapping]
title = "[user.title]"
"#;
    let (_dir, _path, errors) = load_err(bad, &Environment::new());
    let shown = errors.to_string();
    for needle in [
        "targets[0].user_mapping.nickname: unknown iManage field \"nickname\"; mappable fields are id, full_name, email, location, phone",
        "targets[0].user_mapping.email: unknown root `group`; here a path starts with `user` (column 2)",
        "targets[0].user_mapping.full_name: unclosed `[`",
        "targets[1].user_mapping.title: webhooks carry the SCIM resource as stored",
        "targets[0].on_delete: only SCIM apps take on_delete",
    ] {
        assert!(shown.contains(needle), "{needle:?} not in:\n{shown}");
    }
}

#[test]
fn event_retention_takes_days_and_zero() {
    let (_dir, _path, loaded) = load_ok(
        "[database]\nevent_retention = \"30d\"\n",
        &Environment::new(),
    );
    assert_eq!(
        loaded.config.database.event_retention,
        Duration::from_secs(30 * 86_400)
    );
    let (_dir, _path, loaded) = load_ok(
        "[database]\nevent_retention = \"0s\"\n",
        &Environment::new(),
    );
    assert!(loaded.config.database.event_retention.is_zero());
    let (_dir, _path, errors) = load_err(
        "[database]\nevent_retention = \"a month\"\n",
        &Environment::new(),
    );
    assert!(
        errors
            .to_string()
            .contains("database.event_retention: expected a duration"),
        "{errors}"
    );
}

#[test]
fn database_max_connections_must_be_a_positive_integer() {
    let (_dir, _path, errors) = load_err(
        "[database]\nurl = \"postgres://db/scim\"\nmax_connections = 0\n",
        &Environment::new(),
    );
    let error = only_error(&errors);
    assert_eq!(error.line, Some(3));
    assert_eq!(error.key_path, "database.max_connections");
    let (_dir, _path, errors) = load_err(
        "[database]\nmax_connections = \"many\"\n",
        &Environment::new(),
    );
    assert_eq!(only_error(&errors).key_path, "database.max_connections");
}

#[test]
fn matching_scope_and_ownership_are_read_and_checked() {
    let text = r#"
[[targets]]
name = "dms"
kind = "imanage"
url = "https://dms.example.com"
unmanaged = "deactivate"
paused = true
[targets.matching]
users = ["email"]
groups = []
[targets.scope]
groups = ["DMS Users", "Partners"]
nested = true
users = 'userType eq "Employee"'
"#;
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    let t = &loaded.config.targets[0];
    assert_eq!(t.matching.users, ["email"]);
    assert!(t.matching.groups.is_empty());
    assert_eq!(t.unmanaged, Unmanaged::Deactivate);
    assert!(t.paused);
    let scope = t.scope.as_ref().unwrap();
    assert_eq!(scope.groups, ["DMS Users", "Partners"]);
    assert!(scope.nested);
    assert_eq!(scope.users.as_ref().unwrap().0, "userType eq \"Employee\"");
    assert_eq!(scope.origin, "targets[0].scope");

    // Defaults: every rule the kind offers, unmanaged left alone, no scope, and the
    // guard relative to what the bridge manages.
    let (_dir, _path, loaded) = load_ok(DMS, &Environment::new());
    let t = &loaded.config.targets[0];
    assert_eq!(t.matching.users, ["id", "email"]);
    assert_eq!(t.matching.groups, ["id", "displayName"]);
    assert_eq!(t.unmanaged, Unmanaged::Ignore);
    assert!(t.scope.is_none() && !t.paused);
    assert_eq!(t.guard.max_deprovisions, None);
    assert_eq!(t.guard.max_deprovision_percent, Some(10.0));
}

#[test]
fn bad_matching_and_scope_are_refused_with_line_and_key() {
    let text = r#"
[[targets]]
name = "app"
kind = "scim"
url = "https://app.example.com/scim"
unmanaged = "delete"
[targets.matching]
users = ["userName", "employeeId", "userName"]
[targets.scope]
users = 'userType eq'

[[targets]]
name = "app2"
kind = "scim"
url = "https://app2.example.com/scim"
[targets.scope]
nested = true

[[targets]]
name = "hooks"
kind = "webhook"
url = "https://hooks.example.com"
signing_secret = { vault = "hooks.signing" }
unmanaged = "ignore"
[targets.matching]
users = ["email"]
"#;
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    let shown = errors.to_string();
    for expected in [
        ":6:",
        "targets[0].unmanaged",
        "targets[0].matching.users[1]: unknown matching rule \"employeeId\"; a scim target matches users by externalId, userName, email",
        "targets[0].matching.users[2]: \"userName\" is listed twice",
        "targets[0].scope.users: not a SCIM filter",
        "targets[1].scope: a scope needs `groups`",
        "targets[2].unmanaged: a webhook holds no accounts",
        "targets[2].matching: a webhook holds no accounts to match",
    ] {
        assert!(
            shown.contains(expected),
            "missing {expected:?} in:\n{shown}"
        );
    }
}

#[test]
fn a_written_guard_limit_replaces_the_relative_default() {
    let text = "[[targets]]\nname = \"app\"\nkind = \"scim\"\nurl = \"https://a.example.com/scim\"\n[targets.guard]\nmax_deprovisions = 500\n";
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    let g = &loaded.config.targets[0].guard;
    assert_eq!(
        (g.max_deprovisions, g.max_deprovision_percent),
        (Some(500), None)
    );
}

#[test]
fn what_each_target_kind_requires_is_checked_at_load() {
    // Each kind needs its URL, named for what it is; a target's providers must exist;
    // linking with a static token still needs the token endpoint and client id.
    let text = r#"
[[providers]]
name = "entra"
dialect = "entra"

[[targets]]
name = "app"
kind = "scim"

[[targets]]
name = "dms"
kind = "imanage"
providers = ["entra", "okta"]

[[targets]]
name = "linked"
kind = "scim"
url = "https://app.example.com/scim/v2"
[targets.auth]
method = "bearer"
token = { env = "APP_TOKEN" }
authorize_url = "https://app.example.com/oauth/authorize"
"#;
    let (_dir, _path, errors) = load_err(text, &Environment::new());
    let at = |key: &str| {
        errors
            .errors
            .iter()
            .find(|e| e.key_path == key)
            .unwrap_or_else(|| panic!("no error at {key}:\n{errors}"))
    };
    assert!(at("targets[0].url").message.contains("SCIM base URL"));
    assert!(at("targets[1].url").message.contains("iManage host"));
    let providers = at("targets[1].providers");
    assert!(
        providers.message.contains("no provider named \"okta\"") && providers.line == Some(13),
        "{providers}"
    );
    assert!(at("targets[2].auth.token_url").line.is_some());
    assert!(at("targets[2].auth.client_id").line.is_some());
    assert_eq!(errors.errors.len(), 5, "{errors}");
}

#[test]
fn a_target_schedule_is_parsed_at_load() {
    let text = "[[targets]]\nname = \"app\"\nkind = \"scim\"\nurl = \"https://a.example.com/scim\"\nschedule = \"30 2 * * 1-5\"\n";
    let (_dir, _path, loaded) = load_ok(text, &Environment::new());
    let schedule = loaded.config.targets[0]
        .schedule
        .as_ref()
        .expect("schedule");
    // Standard cron counts Monday as 1; the crate counts Sunday as 1.
    assert_eq!(schedule.to_string(), "0 30 2 * * 2-6");
    assert!(schedule.upcoming(chrono::Utc).next().is_some());
}

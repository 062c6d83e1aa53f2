//! The `scim-bridge` command line: parsing, dispatch and exit codes.
//!
//! Exit codes (documented in the README):
//! 0 success · 1 runtime failure · 2 usage error · 3 invalid configuration ·
//! 4 database cannot be opened (foreign, corrupt, newer, unwritable) ·
//! 5 cannot listen (address in use, permission) ·
//! 6 vault: wrong or too short passphrase, damaged vault, vault missing ·
//! 7 `status`, `healthcheck`: the daemon is not reachable or not ready.

mod approve;
mod audit;
mod dlq;
mod docs;
mod explain;
mod healthcheck;
mod link;
mod log;
mod names;
mod operator;
mod reload;
mod resolve;
mod serve;
mod setup;
mod status;
mod sync;
mod token;
mod trace;
mod vault;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::SystemClock;

/// Why a command failed, and with which exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// One clear message (may span lines).
    pub message: String,
}

impl Failure {
    /// Exit code 2: bad arguments.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    /// Exit code 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
    /// Exit code 3.
    pub fn config(message: impl Into<String>) -> Self {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
    /// Exit code 4.
    pub fn store(message: impl Into<String>) -> Self {
        Failure {
            code: 4,
            message: message.into(),
        }
    }
    /// Exit code 5.
    pub fn listen(message: impl Into<String>) -> Self {
        Failure {
            code: 5,
            message: message.into(),
        }
    }
    /// Exit code 7: `status` or `healthcheck` found the daemon down or not ready.
    pub fn daemon(message: impl Into<String>) -> Self {
        Failure {
            code: 7,
            message: message.into(),
        }
    }
}

impl From<crate::app::AppError> for Failure {
    fn from(e: crate::app::AppError) -> Self {
        use crate::app::AppError;
        let code = match &e {
            AppError::Runtime(_) => 1,
            AppError::Config(_) => 3,
            AppError::Store(_) => 4,
            AppError::Listen(_) => 5,
            AppError::Vault(_) => 6,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// SCIM 2.0 provisioning bridge: Entra ID / Okta in; iManage, SCIM apps and webhooks out.
#[derive(Debug, Parser)]
#[command(name = "scim-bridge", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ./config/scim-bridge.toml when present, else /etc/scim-bridge/scim-bridge.toml]
    #[arg(
        short = 'c',
        long,
        global = true,
        value_name = "PATH",
        env = "SCIM_BRIDGE_CONFIG"
    )]
    pub config: Option<PathBuf>,
    /// Data directory, overriding `server.data_dir`
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve {
        /// Listen address, overriding `server.listen` (e.g. 0.0.0.0:8080)
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate the configuration and secret files without starting anything.
    CheckConfig,
    /// Create the database or bring its schema up to date, then exit; with --from and
    /// --to, copy an SQLite database into PostgreSQL.
    Migrate {
        /// Source to copy from: sqlite://PATH (stop the daemon using it first)
        #[arg(long, value_name = "URL", requires = "to")]
        from: Option<String>,
        /// Destination: postgres://user@host/db (an empty database unless --force)
        #[arg(long, value_name = "URL", requires = "from")]
        to: Option<String>,
        /// Replace whatever scim-bridge data the destination already holds
        #[arg(long)]
        force: bool,
    },
    /// Create, list and revoke API tokens.
    Token {
        /// Token action.
        #[command(subcommand)]
        action: token::TokenCommand,
    },
    /// Initialise, inspect and rotate the secret vault.
    Vault {
        /// Vault action.
        #[command(subcommand)]
        action: vault::VaultCommand,
    },
    /// Store, list and delete encrypted secrets.
    Secret {
        /// Secret action.
        #[command(subcommand)]
        action: vault::SecretCommand,
    },
    /// Release a target's tripped mass-deprovisioning guard: paused deactivations and
    /// deletions go ahead. `--list` shows what it holds; `--reject` refuses it.
    Approve {
        /// Target name
        #[arg(long)]
        target: String,
        /// Show, by name, what the guard holds back; change nothing
        #[arg(long, conflicts_with = "reject")]
        list: bool,
        /// Refuse what the guard holds: the held changes move to the dead-letter queue
        /// (visible, retryable) and the guard resets
        #[arg(long)]
        reject: bool,
    },
    /// Reconcile a target now: read it, compare with the bridge, print the plan, apply it.
    Sync {
        /// Target name
        #[arg(long)]
        target: String,
        /// Print the plan only
        #[arg(long)]
        dry_run: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Apply without asking (for scripts; without it, sync asks on a terminal and
        /// refuses elsewhere)
        #[arg(long, short = 'y', conflicts_with = "dry_run")]
        yes: bool,
    },
    /// Show what a target gets for one user or group: each field, its value and the
    /// default or mapping behind it.
    Explain {
        /// The user or group: id, userName or displayName
        who: String,
        /// Target name; without it, every target: in scope or not and why, and the
        /// account there
        #[arg(long)]
        target: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Find the iManage workspace (and folder) for a workitem, as the API does.
    Resolve {
        /// Repository name, from [[repositories]]
        #[arg(long)]
        repository: String,
        /// JSON file with the workitem, e.g. {"title": "…", "client": {"reference": "12345"}}
        #[arg(long)]
        workitem: PathBuf,
        /// Work type, for repositories with per-work-type searches
        #[arg(long)]
        work_type: Option<String>,
        /// Show the search and every request sent to iManage
        #[arg(long)]
        explain: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Resolve as this person (their userName), with their linked account, so
        /// iManage's security decides what they see
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// Inspect, retry and drop dead letters (changes a target did not take).
    Dlq {
        /// Dead-letter action.
        #[command(subcommand)]
        action: dlq::DlqCommand,
    },
    /// The provisioning log's tamper-evident audit chain: export, verify, key, seal.
    Audit {
        /// Audit action.
        #[command(subcommand)]
        action: audit::AuditCommand,
    },
    /// The provisioning log: what identity providers changed (old and new values) and what
    /// each target was sent and answered, by person, group, target, time and outcome.
    Log(log::LogArgs),
    /// One user's or group's provisioning log: each change from the identity provider
    /// and each delivery attempt to each target, with outcome and timing.
    Trace {
        /// A SCIM id, a userName or a group's displayName
        who: String,
        /// Only this provider
        #[arg(long)]
        provider: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List and revoke user accounts linked to targets (authorization code + PKCE).
    Link {
        /// Link action.
        #[command(subcommand)]
        action: link::LinkCommand,
    },
    /// Show the store's state and, when the daemon runs, its readiness.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 when the daemon's /readyz answers 200 and ready, 7 otherwise (for
    /// container health checks and monitoring).
    Healthcheck {
        /// What to ask [default: http://<server.listen>/readyz, 127.0.0.1 or ::1 for
        /// an unspecified address]; the config is not read when given
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// How long to wait for the answer
        #[arg(long, value_name = "DURATION", default_value = "3s")]
        timeout: String,
    },
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to complete for
        shell: docs::Shell,
    },
    /// Print the manual page (roff) to stdout, or write every page to a directory.
    Manpage {
        /// Write scim-bridge.1 and one page per subcommand here instead
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if matches!(cli.command, Command::Serve { .. }) {
        crate::server::heap::start_background_trim();
    } else {
        end_quietly_on_a_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli));
    // Blocking tasks (store readers) must not keep a finished command alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// glibc gives each thread that allocates under contention its own arena (up to 8 per
/// core), and the blocking pool has many threads: resident memory then grows with
/// thread count rather than with data. Two arenas keep it proportional to the data.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; it is called once, before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Rust ignores SIGPIPE, so a command piped into `head` panics on its next `println!`
/// (exit 101). One-shot commands end the way Unix tools do instead: quietly, by the
/// signal. The daemon keeps ignoring it: a client hanging up must be an error on that
/// socket, not the end of the process.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal, before any other thread
    // exists; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let env = crate::config::Environment::from_process();
    match cli.command {
        Command::Serve { listen } => {
            serve::serve(cli.config.as_deref(), cli.data_dir, listen, &env).await
        }
        Command::CheckConfig => {
            setup::check_config(cli.config.as_deref(), cli.data_dir, &env).await
        }
        Command::Migrate {
            from: Some(from),
            to: Some(to),
            force,
        } => copy_database(&from, &to, force).await,
        Command::Migrate { .. } => {
            let loaded = setup::load_config(cli.config.as_deref(), cli.data_dir, None, &env)?;
            let (store, from) = crate::app::setup::open_store_migrating(&loaded.config).await?;
            let status = store
                .status()
                .await
                .map_err(|e| Failure::store(e.to_string()))?;
            println!(
                "{} database {} is at schema version {} (was {from})",
                status.engine, status.location, status.schema_version
            );
            store.close().await;
            Ok(())
        }
        Command::Token { action } => {
            token::run(
                action,
                cli.config.as_deref(),
                cli.data_dir,
                &env,
                &SystemClock,
            )
            .await
        }
        Command::Vault { action } => {
            vault::run_vault(
                action,
                cli.config.as_deref(),
                cli.data_dir,
                &env,
                &SystemClock,
            )
            .await
        }
        Command::Secret { action } => {
            vault::run_secret(
                action,
                cli.config.as_deref(),
                cli.data_dir,
                &env,
                &SystemClock,
            )
            .await
        }
        Command::Approve {
            target,
            list,
            reject,
        } => {
            let what = match (list, reject) {
                (true, _) => approve::What::List,
                (_, true) => approve::What::Reject,
                _ => approve::What::Approve,
            };
            approve::run(
                &target,
                what,
                cli.config.as_deref(),
                cli.data_dir,
                &env,
                &SystemClock,
            )
            .await
        }
        Command::Sync {
            target,
            dry_run,
            json,
            yes,
        } => {
            sync::run(
                &target,
                sync::Mode::from_flags(dry_run, yes),
                json,
                cli.config.as_deref(),
                cli.data_dir,
                &env,
                &SystemClock,
            )
            .await
        }
        Command::Explain { who, target, json } => {
            explain::run(
                &who,
                target.as_deref(),
                json,
                cli.config.as_deref(),
                cli.data_dir,
                &env,
            )
            .await
        }
        Command::Resolve {
            repository,
            workitem,
            work_type,
            explain,
            json,
            as_user,
        } => {
            resolve::run(
                resolve::Args {
                    repository: &repository,
                    workitem: &workitem,
                    work_type: work_type.as_deref(),
                    explain,
                    as_user: as_user.as_deref(),
                    json,
                },
                cli.config.as_deref(),
                cli.data_dir,
                &env,
            )
            .await
        }
        Command::Dlq { action } => {
            dlq::run(
                action,
                cli.config.as_deref(),
                cli.data_dir,
                &env,
                &SystemClock,
            )
            .await
        }
        Command::Audit { action } => {
            audit::run(action, cli.config.as_deref(), cli.data_dir, &env).await
        }
        Command::Log(args) => {
            log::run(
                args,
                cli.config.as_deref(),
                cli.data_dir,
                &env,
                &SystemClock,
            )
            .await
        }
        Command::Trace {
            who,
            provider,
            json,
        } => {
            trace::run(
                &who,
                provider.as_deref(),
                json,
                cli.config.as_deref(),
                cli.data_dir,
                &env,
            )
            .await
        }
        Command::Link { action } => {
            link::run(action, cli.config.as_deref(), cli.data_dir, &env).await
        }
        Command::Status { json } => {
            status::run(cli.config.as_deref(), cli.data_dir, json, &env).await
        }
        Command::Healthcheck { url, timeout } => {
            healthcheck::run(
                cli.config.as_deref(),
                cli.data_dir,
                url.as_deref(),
                &timeout,
                &env,
            )
            .await
        }
        Command::Completions { shell } => docs::completions(shell),
        Command::Manpage { dir } => docs::manpage(dir.as_deref()),
    }
}

/// `migrate --from sqlite://… --to postgres://…`.
async fn copy_database(from: &str, to: &str, force: bool) -> Result<(), Failure> {
    let path = from.strip_prefix("sqlite://").ok_or_else(|| {
        Failure::usage(format!(
            "--from: expected sqlite://PATH, found {}",
            crate::store::postgres::redact(from)
        ))
    })?;
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(Failure::usage(format!(
            "--to: expected postgres://user@host/db, found {}",
            crate::store::postgres::redact(to)
        )));
    }
    let report = crate::store::copy::sqlite_to_postgres(std::path::Path::new(path), to, force)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(m) => Failure::runtime(m),
            other => Failure::store(other.to_string()),
        })?;
    for (table, n) in &report {
        println!("{table:<16} {n} rows copied, count verified");
    }
    println!(
        "copied {path} into {}; point database.url at it and start the instances",
        crate::store::postgres::redact(to)
    );
    Ok(())
}

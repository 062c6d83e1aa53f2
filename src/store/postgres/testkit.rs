//! A throwaway PostgreSQL cluster for tests, unit and integration alike: `initdb` into
//! a temporary directory, `pg_ctl start` on a free port, one database per test, and
//! stop + delete on drop. Test support, not used by the daemon; it lives in the
//! library so `tests/` and `benches/` can use it too.
//!
//! When no server binaries are installed the cluster is skipped with a printed reason,
//! unless `SCIM_BRIDGE_REQUIRE_POSTGRES=1`, which makes that an error (CI sets it
//! wherever PostgreSQL is installed, so a broken harness cannot pass as a skip).

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio_postgres::NoTls;

/// Set to `1` to fail instead of skipping when PostgreSQL is not installed.
pub const REQUIRE_ENV: &str = "SCIM_BRIDGE_REQUIRE_POSTGRES";
/// Directory of `initdb`/`pg_ctl`, when not under `/usr/lib/postgresql/*/bin`.
pub const BIN_ENV: &str = "SCIM_BRIDGE_PG_BIN";

/// How the cluster runs.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// `fsync = off` makes tests fast; benchmarks keep it on for honest figures.
    pub fsync: bool,
    /// Serve TLS with this certificate, and accept only TLS connections to every
    /// database but `postgres` (which [`TestCluster::create_database`] uses).
    pub tls: Option<ServerTls>,
}

/// A server certificate chain and its private key, PEM.
#[derive(Clone, Default)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

/// A running throwaway cluster; stopped and deleted when dropped.
#[derive(Debug)]
pub struct TestCluster {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    /// Run the server binaries as `postgres` (initdb refuses root).
    as_postgres: bool,
}

/// The server binaries' directory: `$SCIM_BRIDGE_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` holding `initdb`. Test support reads the test run's
/// environment directly; the daemon never does (see clippy.toml).
#[allow(clippy::disallowed_methods)]
pub fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_ENV) {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Whether a missing PostgreSQL is an error rather than a skip.
#[allow(clippy::disallowed_methods)]
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| format!("getrandom: {e}"))?;
    Ok(hex::encode(buf))
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn postgres_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("id {flag} postgres: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "running as root needs a `postgres` user for initdb".to_owned())
    };
    Ok((id("-u")?, id("-g")?))
}

impl TestCluster {
    /// Starts a cluster with default options; see [`TestCluster::start_with`].
    pub fn start() -> Result<Option<Self>, String> {
        Self::start_with(ClusterOptions::default())
    }

    /// Starts a cluster. `Ok(None)` (after printing why) when PostgreSQL is not
    /// installed and not [`required`].
    pub fn start_with(opts: ClusterOptions) -> Result<Option<Self>, String> {
        let Some(bin) = find_bin() else {
            let why = format!(
                "PostgreSQL tests skipped: no server binaries (no /usr/lib/postgresql/*/bin/initdb and {BIN_ENV} unset)"
            );
            if required() {
                return Err(format!("{why}, but {REQUIRE_ENV}=1"));
            }
            eprintln!("{why}");
            return Ok(None);
        };
        let root = std::env::temp_dir().join(format!("scim-bridge-pg-{}", random_hex(6)?));
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let mut cluster = TestCluster {
            root,
            bin,
            port: 0,
            password: random_hex(12)?,
            as_postgres,
        };
        let pwfile = cluster.root.join("pwfile");
        std::fs::write(&pwfile, &cluster.password).map_err(|e| e.to_string())?;
        if as_postgres {
            let (uid, gid) = postgres_ids()?;
            for p in [&cluster.root, &pwfile] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
            }
        }
        let data = cluster.root.join("data");
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "bridge".as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "-A".as_ref(),
                "scram-sha-256".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
                "--no-instructions".as_ref(),
            ],
        )?;
        let tls_opts = match &opts.tls {
            Some(tls) => cluster.serve_tls(tls, &data)?,
            None => String::new(),
        };
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            let server_opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c shared_buffers=32MB -c max_connections=200{tls_opts}",
                cluster.port,
                cluster.root.display(),
                if opts.fsync { "on" } else { "off" }
            );
            let log = cluster.root.join("log");
            match cluster.run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "-o".as_ref(),
                    server_opts.as_ref(),
                    "start".as_ref(),
                ],
            ) {
                Ok(()) => return Ok(Some(cluster)),
                // Most likely the port was taken between probing and starting.
                Err(e) => last = e,
            }
        }
        Err(format!("pg_ctl start failed three times: {last}"))
    }

    /// Writes the certificate and key where the server can read them and an
    /// `pg_hba.conf` that refuses plain TCP to any database but `postgres`; returns
    /// the server options that turn TLS on.
    fn serve_tls(&self, tls: &ServerTls, data: &Path) -> Result<String, String> {
        let cert = self.root.join("server.crt");
        let key = self.root.join("server.key");
        let hba = data.join("pg_hba.conf");
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(&cert, &tls.cert_pem)?;
        write(&key, &tls.key_pem)?;
        write(
            &hba,
            "local all all scram-sha-256\n\
             host postgres all 127.0.0.1/32 scram-sha-256\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n",
        )?;
        // The server refuses a key others can read.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        if self.as_postgres {
            let (uid, gid) = postgres_ids()?;
            for p in [&cert, &key, &hba] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
            }
        }
        Ok(format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert.display(),
            key.display()
        ))
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(&self.root)
            .output()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(self.root.join("log")).unwrap_or_default()
            ))
        }
    }

    /// The cluster's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data, log, socket).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A URL for database `db` (with the password, as a config would carry it).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://bridge:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// The password in [`TestCluster::url`], for tests that check it never leaks.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Creates an empty database and returns its URL.
    pub async fn create_database(&self, db: &str) -> Result<String, String> {
        let (client, conn) = tokio_postgres::connect(&self.url("postgres"), NoTls)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let task = tokio::spawn(conn);
        let quoted = db.replace('"', "\"\"");
        let r = client
            .batch_execute(&format!("CREATE DATABASE \"{quoted}\""))
            .await
            .map_err(|e| format!("CREATE DATABASE {db}: {e}"));
        drop(client);
        let _ = task.await;
        r.map(|()| self.url(db))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let data = self.root.join("data");
        let _ = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

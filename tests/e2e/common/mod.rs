//! Test kit: a scim-bridge daemon with a throwaway config and data directory, driven
//! over real HTTP. [`InProcess`] builds it in this process on a port-0 listener (tests
//! of the daemon's logic); [`Daemon`] runs the real binary (tests of the process: its
//! logs, signals, crashes, exit codes). Both offer the same [`Site`] methods.
#![allow(dead_code)]

pub mod fake_imanage;
pub mod fake_oauth;
pub mod fake_oidc;
pub mod fake_webhook;
pub mod group_churn;
pub mod scim2;
pub mod webdriver;

pub mod in_process;

use std::io::{Read, Write};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use in_process::InProcess;

pub const BIN: &str = env!("CARGO_BIN_EXE_scim-bridge");

/// A config with the two shipped providers, listening on `port`.
pub fn config_text(port: u16, data_dir: &Path, extra: &str) -> String {
    config_text_at(port, data_dir, extra, "info")
}

/// Like [`config_text`] with a log level.
pub fn config_text_at(port: u16, data_dir: &Path, extra: &str, level: &str) -> String {
    config_text_full(port, data_dir, "", extra, level)
}

/// Like [`config_text_at`] with more `[server]` keys (`server` is TOML lines); `extra`
/// comes after every table, so it cannot add keys to `[server]`.
pub fn config_text_full(
    port: u16,
    data_dir: &Path,
    server: &str,
    extra: &str,
    level: &str,
) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:{port}"
data_dir = "{}"
{server}

[logging]
level = "{level}"

[[providers]]
name = "entra"
dialect = "entra"

[[providers]]
name = "okta"
dialect = "okta"
{extra}
"#,
        data_dir.display()
    )
}

/// The value of `series` (name and labels exactly as exported) in a `/metrics` text.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls until `check` holds, for at most `limit`.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check()
}

/// Sends SIGHUP to `d`.
pub fn hup(d: &Daemon) {
    d.hup();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Runs the binary to completion.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("RUST_LOG")
        .env_remove("SCIM_BRIDGE_CONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

/// Where a test daemon lives and answers: its directory, config and port.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
    pub log: PathBuf,
}

impl Site {
    /// A fresh directory with `secrets` (file name, contents; mode 600) and a config
    /// listening on `port`.
    pub fn new(
        port: u16,
        server: &str,
        extra: &str,
        level: &str,
        secrets: &[(&str, &str)],
    ) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, value) in secrets {
            let path = dir.path().join(name);
            std::fs::write(&path, value).expect("write secret");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod secret");
        }
        let config = dir.path().join("scim-bridge.toml");
        std::fs::write(
            &config,
            config_text_full(port, &dir.path().join("data"), server, extra, level),
        )
        .expect("write config");
        Site {
            log: dir.path().join("daemon.log"),
            dir,
            config,
            port,
        }
    }

    /// Whether `/readyz` answers at all (ready or not): the daemon is built and
    /// serving, not merely holding its port.
    pub fn answers(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut head = [0u8; 8];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }
}

pub struct Daemon {
    pub site: Site,
    pub child: Option<Child>,
}

impl Deref for Daemon {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.site
    }
}

impl DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Site {
        &mut self.site
    }
}

impl Daemon {
    /// Starts a daemon with the default test config plus `extra` TOML.
    pub fn start(extra: &str) -> Daemon {
        Self::start_at(extra, "info")
    }

    /// Starts a daemon logging at `level`.
    pub fn start_at(extra: &str, level: &str) -> Daemon {
        Self::start_full(extra, level, &[])
    }

    /// Starts a daemon with more `[server]` keys (TOML lines).
    pub fn start_with_server(server: &str) -> Daemon {
        Self::start_inner(server, "", "info", &[])
    }

    /// Starts a daemon after writing `secrets` (file name, contents) beside its config
    /// with mode 600, for `{ file = "NAME" }` references in `extra`.
    pub fn start_with_secrets(extra: &str, secrets: &[(&str, &str)]) -> Daemon {
        Self::start_full(extra, "info", secrets)
    }

    /// Starts a daemon with more `[server]` keys and `extra` TOML after the tables.
    pub fn start_full_text(server: &str, extra: &str) -> Daemon {
        Self::start_inner(server, extra, "info", &[])
    }

    fn start_full(extra: &str, level: &str, secrets: &[(&str, &str)]) -> Daemon {
        Self::start_inner("", extra, level, secrets)
    }

    /// A daemon for a directory and config the test wrote itself, not started yet
    /// (start it with [`Daemon::spawn`]); it logs to `daemon.log` there.
    pub fn unstarted(dir: tempfile::TempDir, config: PathBuf, port: u16) -> Daemon {
        Daemon {
            site: Site {
                log: dir.path().join("daemon.log"),
                dir,
                config,
                port,
            },
            child: None,
        }
    }

    fn start_inner(server: &str, extra: &str, level: &str, secrets: &[(&str, &str)]) -> Daemon {
        let mut d = Daemon {
            site: Site::new(free_port(), server, extra, level, secrets),
            child: None,
        };
        d.spawn();
        d
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn daemon");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the daemon serves `/readyz`; fails at once if it exited.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.answers() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("daemon exited with {status}; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not start; log:\n{}", self.log_text());
    }
}

impl Site {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn base(&self, provider: &str) -> String {
        self.url(&format!("/scim/v2/{provider}"))
    }

    /// Runs a CLI subcommand against this daemon's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let cfg = self.config.to_str().expect("utf8 path");
        all.extend(["--config", cfg]);
        run(&all, &[])
    }

    /// A fresh SCIM token for `provider`.
    pub fn token(&self, provider: &str) -> String {
        self.new_token(&["token", "create", "--provider", provider])
    }

    /// A new admin-scope API token.
    pub fn admin_token(&self) -> String {
        self.new_token(&["token", "create", "--scope", "admin"])
    }

    /// A new viewer-scope token (the console's read pages only).
    pub fn viewer_token(&self) -> String {
        self.new_token(&["token", "create", "--scope", "viewer"])
    }

    /// Runs `token create …` and returns the token (the last line of its output).
    fn new_token(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

impl Daemon {
    /// Sends SIGHUP, as `systemctl reload` does.
    pub fn hup(&self) {
        let pid = self.child.as_ref().expect("daemon running").id();
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        unsafe_free_sigterm(c.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        None
    }
}

fn unsafe_free_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A client that sends SCIM requests with a bearer token.
#[derive(Clone)]
pub struct Scim {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Scim {
    pub fn new(base: String, token: String) -> Scim {
        Scim {
            // Built like the daemon's own client: reqwest has no default TLS provider here.
            http: scim_bridge::oauth::build_client(Duration::from_secs(60)).expect("HTTP client"),
            base,
            token,
        }
    }

    pub async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, headers, json)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (s, _, j) = self.req(reqwest::Method::GET, path, None).await;
        (s, j)
    }
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (s, _, j) = self.req(reqwest::Method::POST, path, Some(body)).await;
        (s, j)
    }
    pub async fn put(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (s, _, j) = self.req(reqwest::Method::PUT, path, Some(body)).await;
        (s, j)
    }
    pub async fn patch(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (s, _, j) = self.req(reqwest::Method::PATCH, path, Some(body)).await;
        (s, j)
    }
    pub async fn delete(&self, path: &str) -> u16 {
        self.req(reqwest::Method::DELETE, path, None).await.0
    }
}

/// `reqwest::get` with a client built like the daemon's (reqwest has no default TLS
/// provider in this build, so its one-shot helpers panic).
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    scim_bridge::oauth::build_client(Duration::from_secs(60))
        .expect("HTTP client")
        .get(url)
        .send()
        .await
}

impl Site {
    /// `/readyz`'s delivery figures for `target`.
    pub async fn delivery(&self, target: &str) -> serde_json::Value {
        let r: serde_json::Value = get(self.url("/readyz"))
            .await
            .expect("readyz")
            .json()
            .await
            .expect("readyz JSON");
        r["targets"][target]["delivery"].clone()
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        get(self.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// `/readyz` as JSON.
    pub async fn readyz(&self) -> serde_json::Value {
        get(self.url("/readyz"))
            .await
            .expect("readyz")
            .json()
            .await
            .expect("readyz JSON")
    }

    /// `sync --dry-run --json` for `target`: the plan, and its items as (action, name).
    pub fn dry_run(&self, target: &str) -> (serde_json::Value, Vec<(String, String)>) {
        let out = self.cli(&["sync", "--target", target, "--dry-run", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
        let items = plan["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                let text = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
                (text("action"), text("name"))
            })
            .collect();
        (plan, items)
    }

    /// Waits (at most 90 s) until `target` has nothing queued; returns its figures.
    pub async fn wait_drained(&self, target: &str) -> serde_json::Value {
        self.wait_drained_within(target, Duration::from_secs(90))
            .await
    }

    /// [`Site::wait_drained`] with another limit.
    pub async fn wait_drained_within(&self, target: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.delivery(target).await;
            if s["queued"] == 0 {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{target}'s queue never drained in {limit:?}: {s}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

//! The binary's behaviour on bad input, signals and secrets: one clear message and
//! a documented exit code, never a panic.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{BIN, Daemon, Scim, config_text, free_port, run};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let p = dir.join("c.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn version_and_usage() {
    let o = run(&["--version"], &[]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(env!("CARGO_PKG_VERSION")));
    let o = run(&["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn shipped_default_config_is_valid_from_the_repository_root() {
    let o = std::process::Command::new(BIN)
        .arg("check-config")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SCIM_BRIDGE_CONFIG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("configuration is valid"));
}

#[test]
fn config_errors_are_all_reported_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[server]\nlisten = \"nowhere\"\nlistn = 1\n\n[[providers]]\nname = \"entra\"\ndialect = \"azure\"\n",
    );
    let o = run(&["check-config", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(
        e.contains("c.toml:2:") && e.contains("server.listen"),
        "{e}"
    );
    assert!(
        e.contains("c.toml:3:") && e.contains("did you mean \"listen\""),
        "{e}"
    );
    assert!(e.contains("providers[0].dialect"), "{e}");
    assert!(!e.contains("panicked"), "{e}");

    let cfg = write_config(dir.path(), "[server\nlisten = 1\n");
    let o = run(&["check-config", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("c.toml:1:"), "{}", stderr(&o));

    let o = run(&["check-config", "--config", "/nonexistent/x.toml"], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("/nonexistent/x.toml"));

    // Env overrides are validated too, naming the variable.
    let cfg = write_config(dir.path(), "");
    let o = run(
        &["check-config", "--config", &cfg],
        &[("SCIM_BRIDGE__SERVER__LISTEN", "bogus")],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("SCIM_BRIDGE__SERVER__LISTEN"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn secret_files_missing_or_world_readable() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pass");
    let extra = format!(
        "\n[vault]\npassphrase = {{ file = \"{}\" }}\n",
        secret.display()
    );
    let cfg = write_config(
        dir.path(),
        &(config_text(free_port(), &dir.path().join("data"), "") + &extra),
    );
    let o = run(&["check-config", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains(&secret.display().to_string()));

    std::fs::write(&secret, "x".repeat(120)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&["check-config", "--config", &cfg], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains(&"x".repeat(120)),
        "secret value leaked"
    );

    // Inline secrets are refused.
    let cfg = write_config(dir.path(), "[vault]\npassphrase = \"hunter2hunter2\"\n");
    let o = run(&["check-config", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(!stderr(&o).contains("hunter2hunter2"), "{}", stderr(&o));
}

#[test]
fn foreign_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("scim-bridge.db"),
        b"not a database at all, my precious notes",
    )
    .unwrap();
    let cfg = write_config(dir.path(), &config_text(free_port(), &data, ""));
    let o = run(&["serve", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("refusing"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(data.join("scim-bridge.db")).unwrap(),
        b"not a database at all, my precious notes"
    );
}

#[test]
fn unwritable_data_dir_and_port_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let cfg = write_config(
        dir.path(),
        &config_text(free_port(), &blocker.join("sub"), ""),
    );
    let o = run(&["migrate", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot"), "{}", stderr(&o));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = write_config(dir.path(), &config_text(port, &dir.path().join("data"), ""));
    let o = run(&["serve", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("in use") || stderr(&o).contains("another process"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero_and_no_secret_reaches_the_log() {
    let mut d = Daemon::start_at("", "trace");
    let token = d.token("entra");
    let scim = Scim::new(d.base("entra"), token.clone());
    let (s, _) = scim.get("/Users?filter=userName+eq+%22x%22").await;
    assert_eq!(s, 200);
    let bad = Scim::new(d.base("entra"), format!("{token}tampered"));
    assert_eq!(bad.get("/Users").await.0, 401);
    let ready = common::get(d.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let started = Instant::now();
    assert_eq!(d.terminate(), Some(0), "log:\n{}", d.log_text());
    assert!(started.elapsed() < Duration::from_secs(10));
    let log = d.log_text();
    // The secret is everything after `sb_<id>_`; it may itself contain `_`.
    let secret = token.splitn(3, '_').nth(2).unwrap();
    assert!(secret.len() >= 40, "{token}");
    assert!(!log.contains(secret), "token secret in the log:\n{log}");
    assert!(log.contains("shutting down"), "{log}");
}

/// A command whose reader goes away (`scim-bridge … | head`) ends quietly, as Unix tools
/// do, instead of panicking on its next line of output (exit 101).
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    for _ in 0..5 {
        let mut child = std::process::Command::new(BIN)
            .arg("check-config")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("SCIM_BRIDGE_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the first line is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert_ne!(out.status.code(), Some(101), "{err}");
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{:?} {err}",
            out.status
        );
    }
}

/// Commands that read or change what exists never create a database: one run with the
/// wrong data directory (or before the first start) says where it looked instead of
/// showing an empty bridge. The database the daemon creates is private to its owner.
#[test]
fn read_only_commands_never_create_the_database_and_it_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, common::config_text(common::free_port(), &data, "")).unwrap();
    let cfg = config.to_str().unwrap();
    let db = data.join("scim-bridge.db");
    for args in [
        &["token", "list"][..],
        &["dlq", "list"],
        &["secret", "list"],
        &["trace", "someone"],
        &["vault", "status"],
    ] {
        let o = run(&[args, &["--config", cfg]].concat(), &[]);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("no database at"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!db.exists(), "{args:?} created the database");
    }
    // Creating a token may create it (before the first start), readable by its owner only.
    let o = run(
        &["token", "create", "--provider", "entra", "--config", cfg],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "database mode {mode:o}");
    let o = run(&["token", "list", "--config", cfg], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Logs written to a file carry no terminal colour codes, and durations are rounded
/// (#18 item 13).
#[tokio::test]
async fn file_logs_have_no_colour_codes_and_rounded_durations() {
    let mut d = Daemon::start("");
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    for i in 0..5 {
        let (s, body) = scim
            .post(
                "/Users",
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("log.user{i}"),
                }),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    assert_eq!(d.terminate(), Some(0));
    let log = d.log_text();
    assert!(!log.contains("\x1b["), "colour codes in the log:\n{log}");
    let durations: Vec<&str> = log
        .split("ms=")
        .skip(1)
        .map(|rest| rest.split_whitespace().next().unwrap_or_default())
        .collect();
    assert!(durations.len() >= 5, "{log}");
    for ms in durations {
        let decimals = ms.split_once('.').map_or(0, |(_, f)| f.len());
        assert!(decimals <= 3, "ms={ms} in\n{log}");
    }
}

/// `status` says by its exit code whether the daemon answers and is ready, still
/// printing what it knows (#18 item 12).
#[test]
fn status_exits_7_when_the_daemon_is_not_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &config_text(free_port(), &dir.path().join("data"), ""),
    );
    let o = run(&["migrate", "--config", &cfg], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["status", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("database") && out.contains("not reachable"),
        "{out}"
    );
    let o = run(&["status", "--json", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["daemon"].is_null(), "{v}");
    assert!(v["database"]["schema_version"].is_number(), "{v}");

    // With the daemon up and ready: 0.
    let d = Daemon::start("");
    let o = d.cli(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("daemon     ready"));
}

/// Reads from `s` until the server closes it; how long that took, or `None` when it is
/// still open after `limit`. Writes `drip` a byte at a time between reads, as a
/// slowloris client does.
fn time_to_close(s: &mut std::net::TcpStream, drip: &[u8], limit: Duration) -> Option<Duration> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut next = drip.iter().cycle();
    while started.elapsed() < limit {
        if !drip.is_empty() {
            let b = *next.next().unwrap();
            if s.write_all(&[b]).is_err() {
                return Some(started.elapsed());
            }
        }
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

/// Slow-header (slowloris) and idle connections are closed by the server, each after
/// its own configured limit, and counted in `/metrics` (#18 item 3).
#[tokio::test]
async fn slow_header_and_idle_connections_are_closed() {
    use std::io::{Read, Write};
    let d = Daemon::start_with_server("header_read_timeout = \"1s\"\nidle_timeout = \"3s\"\n");
    let connect = || std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();

    // A header that never ends, one byte every 200 ms.
    let slow = std::thread::spawn({
        let mut s = connect();
        move || {
            time_to_close(
                &mut s,
                b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                Duration::from_secs(10),
            )
        }
    });
    // A connection that never sends anything.
    let idle = std::thread::spawn({
        let mut s = connect();
        move || time_to_close(&mut s, b"", Duration::from_secs(10))
    });
    // A keep-alive connection after one request.
    let kept = std::thread::spawn({
        let mut s = connect();
        move || {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&got).contains("\"ok\"") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "closed before the response");
                got.extend_from_slice(&buf[..n]);
            }
            time_to_close(&mut s, b"", Duration::from_secs(10))
        }
    });

    let slow = slow
        .join()
        .unwrap()
        .expect("slow-header connection still open");
    assert!(slow < Duration::from_millis(2500), "{slow:?}");
    let idle = idle.join().unwrap().expect("idle connection still open");
    // The idle limit, not the header one, applies before the first byte.
    assert!(
        idle > Duration::from_millis(2500) && idle < Duration::from_millis(5000),
        "{idle:?}"
    );
    let kept = kept
        .join()
        .unwrap()
        .expect("keep-alive connection still open");
    assert!(
        kept > Duration::from_millis(2500) && kept < Duration::from_millis(5000),
        "{kept:?}"
    );

    // Normal requests still work, and the closes were counted.
    let metrics = common::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("scim_bridge_connections_closed_total{reason=\"header_timeout\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scim_bridge_connections_closed_total{reason=\"idle_timeout\"} 2"),
        "{metrics}"
    );
}

/// At `max_connections` the daemon stops accepting and closes connections idle for a
/// second or more, so a flood of idle connections cannot lock real clients out; the
/// moments at the limit and the closes are counted in `/metrics` (#18 item 3).
#[tokio::test]
async fn at_the_connection_limit_idle_connections_make_room() {
    let d = Daemon::start_with_server("max_connections = 8\n");
    // Eight connections that never send a byte: the whole allowance.
    let idle: Vec<std::net::TcpStream> = (0..8)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // Without room made, this would wait out the 60 s idle timeout.
    let started = Instant::now();
    let client = scim_bridge::oauth::build_client(Duration::from_secs(5)).unwrap();
    let health = client.get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let metrics = client
        .get(d.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
    };
    assert!(
        value("scim_bridge_connection_limit_hits_total") >= 1.0,
        "{metrics}"
    );
    assert!(
        value("scim_bridge_connections_closed_total{reason=\"idle_at_limit\"}") >= 1.0,
        "{metrics}"
    );
    assert!(value("scim_bridge_connections_open") <= 8.0, "{metrics}");
    drop(idle);
}

/// The daemon answers most token checks from memory; `token revoke`, a separate
/// process writing the database file, must still be in force the moment it returns.
#[tokio::test]
async fn a_token_revoked_by_the_cli_is_refused_by_the_running_daemon_at_once() {
    let d = Daemon::start("");
    let token = d.token("entra");
    let scim = Scim::new(d.base("entra"), token.clone());
    assert_eq!(scim.get("/Users").await.0, 200);
    // Past the daemon's first count of revoked tokens, so what follows is answered
    // from its cache of verified tokens.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..5 {
        assert_eq!(scim.get("/Users").await.0, 200);
    }
    let id = token.split('_').nth(1).unwrap();
    let out = d.cli(&["token", "revoke", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = scim.get("/Users").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
}

//! What the packages ship and what containers and monitoring run: shell completions and
//! manual pages generated from the real binary, and `healthcheck`'s exit codes against
//! a real daemon and against servers that answer what a daemon in trouble answers.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Daemon, config_text, free_port, run};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether `program` can be run, for checks that need a shell that may be absent.
fn installed(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Feeds `script` to `shell -n` (parse only) and asserts it is accepted.
fn shell_parses(shell: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("completion");
    std::fs::write(&path, script).unwrap();
    let o = std::process::Command::new(shell)
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{shell} -n: {}", stderr(&o));
}

#[test]
fn completions_for_bash_zsh_and_fish_know_the_subcommands() {
    let o = run(&["completions", "bash"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bash = stdout(&o);
    for word in [
        "serve",
        "check-config",
        "healthcheck",
        "manpage",
        "--config",
        "--dry-run",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}:\n{bash}");
    }
    assert!(bash.contains("complete -F _scim__bridge"), "{bash}");
    shell_parses("bash", &bash);

    // zsh and fish: their own syntax, the same subcommands; parsed where installed.
    for (shell, marker) in [
        ("zsh", "#compdef scim-bridge"),
        ("fish", "complete -c scim-bridge"),
    ] {
        let o = run(&["completions", shell], &[]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("check-config"), "{shell}: {script}");
        if installed(shell) {
            shell_parses(shell, &script);
        }
    }

    let o = run(&["completions", "tcsh"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn the_manual_page_names_every_subcommand_and_the_exit_codes() {
    let o = run(&["manpage"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(page.contains(".TH scim-bridge 1"), "{page}");
    for sub in ["serve", "check\\-config", "healthcheck", "token", "status"] {
        assert!(
            page.contains(&format!("scim\\-bridge\\-{sub}(1)")),
            "no {sub}:\n{page}"
        );
    }
    assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
    assert!(
        page.contains("/etc/scim\\-bridge/scim\\-bridge.toml"),
        "{page}"
    );
    if installed("groff") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scim-bridge.1");
        std::fs::write(&path, &page).unwrap();
        let o = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "groff: {}",
            stderr(&o)
        );
    }

    // With --dir: the pages the SUBCOMMANDS section refers to, nested ones included.
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["manpage", "--dir", dir.path().to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in [
        "scim-bridge.1",
        "scim-bridge-serve.1",
        "scim-bridge-token-create.1",
        "scim-bridge-healthcheck.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
        assert!(text.contains(".TH"), "{name}: {text}");
    }
    assert!(!dir.path().join("scim-bridge-help.1").exists());
}

#[test]
fn healthcheck_exits_0_for_a_ready_daemon_and_7_once_it_stops() {
    let mut d = Daemon::start("");
    let o = d.cli(&["healthcheck"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ready"), "{}", stdout(&o));
    // --url needs no config: a container checks whatever it was told to.
    let o = run(&["healthcheck", "--url", &d.url("/readyz")], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A config listening everywhere is checked on the loopback.
    let everywhere = d.dir.path().join("everywhere.toml");
    std::fs::write(
        &everywhere,
        config_text(d.port, &d.dir.path().join("data"), "").replace("127.0.0.1:", "0.0.0.0:"),
    )
    .unwrap();
    let o = run(
        &["healthcheck", "--config", everywhere.to_str().unwrap()],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    assert_eq!(d.terminate(), Some(0));
    let o = d.cli(&["healthcheck"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("not reachable"), "{}", stderr(&o));
}

/// A one-request HTTP server answering `status` with `body`, on a free port.
fn answer_once(status: &'static str, body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn healthcheck_exits_7_when_readyz_is_not_200_and_ready() {
    // What a draining daemon or one whose database is gone answers.
    let port = answer_once(
        "503 Service Unavailable",
        r#"{"status":"shutting down","database":{"reachable":true}}"#,
    );
    let url = format!("http://127.0.0.1:{port}/readyz");
    let o = run(&["healthcheck", "--url", &url], &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("503") && stderr(&o).contains("shutting down"),
        "{}",
        stderr(&o)
    );

    // 200 is not enough: something else on the port is not this daemon being ready.
    let port = answer_once("200 OK", r#"{"status":"ok"}"#);
    let url = format!("http://127.0.0.1:{port}/readyz");
    let o = run(&["healthcheck", "--url", &url], &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

#[test]
fn healthcheck_gives_up_after_its_timeout() {
    // Accepts and never answers, as a wedged process would.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/readyz", listener.local_addr().unwrap());
    let started = Instant::now();
    let o = run(&["healthcheck", "--url", &url, "--timeout", "500ms"], &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);

    for bad in [
        &["healthcheck", "--timeout", "soon"][..],
        &["healthcheck", "--url", "ftp://127.0.0.1/readyz"],
    ] {
        let o = run(bad, &[]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
    // The port is free: nothing listens there.
    let url = format!("http://127.0.0.1:{}/readyz", free_port());
    let o = run(&["healthcheck", "--url", &url], &[]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

/// The config the Debian package and the container image ship (scripts/package/config.sh):
/// it passes check-config, keeps its database where the unit's StateDirectory and the
/// image's volume are, and the container's listens where a published port reaches it.
#[test]
fn the_packaged_configs_pass_check_config() {
    let dir = tempfile::tempdir().unwrap();
    for (args, listen) in [
        (&[][..], "127.0.0.1:8080"),
        (&["0.0.0.0:8080"][..], "0.0.0.0:8080"),
    ] {
        let o = std::process::Command::new("scripts/package/config.sh")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        assert!(
            text.lines()
                .any(|l| l == r#"data_dir = "/var/lib/scim-bridge""#),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l == format!("listen = \"{listen}\"")),
            "{text}"
        );
        let path = dir.path().join("scim-bridge.toml");
        std::fs::write(&path, &text).unwrap();
        let o = run(&["check-config", "--config", path.to_str().unwrap()], &[]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
}

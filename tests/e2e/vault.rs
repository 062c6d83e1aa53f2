//! The vault through the real binary: init, secrets from stdin, nothing in plaintext
//! on disk, wrong passphrase refused without writing, rotation atomic under SIGKILL.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, config_text, free_port};

struct Setup {
    dir: tempfile::TempDir,
    config: String,
    pass: PathBuf,
}

fn passphrase(tag: char) -> String {
    format!(
        "{}-correct-horse-battery-staple",
        tag.to_string().repeat(110)
    )
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, passphrase('a')).unwrap();
    let extra = format!(
        "\n[vault]\npassphrase = {{ file = \"{}\" }}\nmemory_kib = 8192\niterations = 1\n",
        pass.display()
    );
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        config_text(free_port(), &dir.path().join("data"), "") + &extra,
    )
    .unwrap();
    Setup {
        config: config.to_str().unwrap().to_owned(),
        dir,
        pass,
    }
}

fn cli(s: &Setup, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .args(["--config", &s.config])
        .env_remove("RUST_LOG");
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for f in ["scim-bridge.db", "scim-bridge.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join("data").join(f)) {
            all.extend(b);
        }
    }
    all
}

#[test]
fn short_passphrase_is_refused() {
    let s = setup();
    // Exactly 100 characters: the guide asks for over 100. A configuration error
    // (exit 3), not a wrong passphrase (6): nothing was tried against a vault.
    std::fs::write(&s.pass, "p".repeat(100)).unwrap();
    let o = cli(&s, &["vault", "init"], None);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(err(&o).contains("over 100 characters"), "{}", err(&o));
    assert!(err(&o).contains("has 100"), "{}", err(&o));
    std::fs::write(&s.pass, "p".repeat(101)).unwrap();
    let o = cli(&s, &["vault", "init"], None);
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn secrets_are_never_on_disk_in_plaintext_and_a_wrong_passphrase_changes_nothing() {
    let s = setup();
    let o = cli(&s, &["vault", "init"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        cli(&s, &["vault", "init"], None).status.code(),
        Some(6),
        "init twice is refused"
    );
    let secrets = [
        (
            "imanage.client_secret",
            "imanage-client-secret-PLAINTEXT-4f9a",
        ),
        ("webhook.hmac", "whsec_PLAINTEXT_0123456789abcdef"),
        ("dilitrust.token", "eyJhbGciOi.PLAINTEXT.token-value"),
    ];
    for (name, value) in secrets {
        let o = cli(&s, &["secret", "set", name], Some(&format!("{value}\n")));
        assert!(o.status.success(), "{}", err(&o));
        assert!(!out(&o).contains(value));
    }
    let o = cli(&s, &["secret", "list"], None);
    for (name, value) in secrets {
        assert!(out(&o).contains(name));
        assert!(!out(&o).contains(value), "list never shows values");
    }
    let o = cli(&s, &["vault", "status"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("all 3 secret(s)"), "{}", out(&o));

    let raw = db_bytes(s.dir.path());
    for (_, value) in secrets {
        for needle in [value.as_bytes(), &value.as_bytes()[..12], b"PLAINTEXT"] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle),
                "plaintext {:?} found in the database files",
                String::from_utf8_lossy(needle)
            );
        }
    }
    assert!(
        !raw.windows(20)
            .any(|w| w == &passphrase('a').as_bytes()[..20])
    );

    // Wrong passphrase: serve and status refuse with a clear message and exit 6;
    // the stored vault is untouched and still opens with the right one.
    std::fs::write(&s.pass, passphrase('b')).unwrap();
    let before = std::fs::read(s.dir.path().join("data/scim-bridge.db")).unwrap();
    let o = cli(&s, &["serve"], None);
    assert_eq!(o.status.code(), Some(6), "{}", err(&o));
    assert!(err(&o).contains("wrong vault passphrase"), "{}", err(&o));
    assert_eq!(
        std::fs::read(s.dir.path().join("data/scim-bridge.db")).unwrap(),
        before
    );
    assert_eq!(
        cli(&s, &["secret", "set", "x"], Some("v")).status.code(),
        Some(6)
    );
    // Deleting is changing the vault too: refused with the wrong passphrase, and the
    // secret is still there.
    let o = cli(&s, &["secret", "delete", "imanage.client_secret"], None);
    assert_eq!(o.status.code(), Some(6), "{}", err(&o));
    assert!(err(&o).contains("wrong vault passphrase"), "{}", err(&o));
    assert_eq!(
        std::fs::read(s.dir.path().join("data/scim-bridge.db")).unwrap(),
        before
    );
    std::fs::write(&s.pass, passphrase('a')).unwrap();
    assert!(cli(&s, &["vault", "status"], None).status.success());
    let o = cli(&s, &["secret", "list"], None);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("imanage.client_secret"),
        "the secret survived the refused delete"
    );
}

#[test]
fn a_rotation_killed_at_any_moment_leaves_one_passphrase_that_opens_everything() {
    let s = setup();
    assert!(cli(&s, &["vault", "init"], None).status.success());
    for i in 0..40 {
        let o = cli(
            &s,
            &["secret", "set", &format!("s{i}")],
            Some(&format!("value-{i}")),
        );
        assert!(o.status.success(), "{}", err(&o));
    }
    let new_pass = s.dir.path().join("new-pass");
    std::fs::write(&new_pass, passphrase('n')).unwrap();
    // The config reads s.pass; the two candidate passphrases live in their own files.
    let old_pass = s.dir.path().join("old-pass");
    std::fs::write(&old_pass, passphrase('a')).unwrap();
    let mut current = old_pass.clone();
    let mut other = new_pass.clone();
    let mut rotations = 0;
    for delay_ms in [0u64, 2, 5, 10, 15, 20, 30, 40, 60, 80, 120, 200] {
        let mut child = Command::new(BIN)
            .args([
                "vault",
                "rotate",
                "--new-passphrase-file",
                other.to_str().unwrap(),
                "--config",
                &s.config,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        // Exactly one of the two passphrases opens the vault and every secret.
        let opens = |p: &Path| {
            std::fs::copy(p, &s.pass).unwrap();
            cli(&s, &["vault", "status"], None).status.success()
        };
        let old_ok = opens(&current);
        let new_ok = opens(&other);
        assert!(
            old_ok ^ new_ok,
            "after a kill at {delay_ms} ms: old opens {old_ok}, new opens {new_ok}"
        );
        if finished {
            assert!(new_ok);
        }
        if new_ok {
            rotations += 1;
            std::mem::swap(&mut current, &mut other);
        }
        std::fs::copy(&current, &s.pass).unwrap();
    }
    assert!(rotations >= 1, "no rotation ever completed");
}

/// `secret set` at a terminal asks for the value and does not show what is typed.
#[test]
fn secret_set_at_a_terminal_asks_and_does_not_echo() {
    let s = setup();
    assert!(cli(&s, &["vault", "init"], None).status.success());
    let typed = "typed-secret-Kp3Vw9";
    let command = format!("{BIN} secret set term.secret --config {}", s.config);
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script");
    // Type only once the question is on the screen, as a person does (what is typed
    // ahead of it the terminal echoes before anyone can turn echo off).
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&screen).contains("not shown as you type") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => screen.extend_from_slice(&chunk),
            Err(_) => {
                let _ = child.kill();
                panic!("no prompt: {}", String::from_utf8_lossy(&screen));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{typed}\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    reader.join().unwrap();
    while let Ok(chunk) = rx.try_recv() {
        screen.extend_from_slice(&chunk);
    }
    let screen = String::from_utf8_lossy(&screen).into_owned();
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("value for secret term.secret (not shown as you type)"),
        "{screen}"
    );
    assert!(!screen.contains(typed), "the secret was echoed: {screen}");
    assert!(
        screen.contains(&format!("secret term.secret stored ({} bytes", typed.len())),
        "{screen}"
    );
}

/// `check-config` (the unit's ExecStartPre) verifies every `{ vault = "…" }` reference
/// the way `serve` will need it — vault initialised, secret present, opening with the
/// passphrase — and never creates the database to do so.
#[test]
fn check_config_verifies_vault_references_without_creating_the_database() {
    let s = setup();
    let mut text = std::fs::read_to_string(&s.config).unwrap();
    text.push_str(
        "\n[[targets]]\nname = \"hooks\"\nkind = \"webhook\"\nurl = \"https://hooks.example.com/in\"\nsigning_secret = { vault = \"hooks.signing\" }\n",
    );
    std::fs::write(&s.config, text).unwrap();
    let db = s.dir.path().join("data/scim-bridge.db");

    let o = cli(&s, &["check-config"], None);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(err(&o).contains("targets[0].signing_secret"), "{}", err(&o));
    assert!(err(&o).contains("does not exist yet"), "{}", err(&o));
    assert!(!db.exists(), "check-config created the database");

    assert!(cli(&s, &["vault", "init"], None).status.success());
    let o = cli(&s, &["check-config"], None);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(
        err(&o).contains("the vault holds no secret named \"hooks.signing\"")
            && err(&o).contains("scim-bridge secret set hooks.signing"),
        "{}",
        err(&o)
    );

    let o = cli(
        &s,
        &["secret", "set", "hooks.signing"],
        Some("hmac-key-Zr8Qw"),
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = cli(&s, &["check-config"], None);
    assert!(o.status.success(), "{}", err(&o));

    std::fs::write(&s.pass, passphrase('b')).unwrap();
    let o = cli(&s, &["check-config"], None);
    assert!(!o.status.success());
    assert!(err(&o).contains("wrong vault passphrase"), "{}", err(&o));
}

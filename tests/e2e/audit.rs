//! The provisioning log's audit chain through the real binary: SCIM traffic is
//! chained and sealed by the daemon; `audit export` (and the admin API) write a file
//! `audit verify` accepts, and flipping a byte, deleting, swapping or cutting lines,
//! a wrong key, or a database rolled back below a head witnessed elsewhere each fail
//! naming the record; after pruning the export still verifies from its checkpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common;

use common::{Daemon, Scim};
use serde_json::{Value, json};

const VAULT: &str =
    "\n[vault]\npassphrase = { file = \"vault.pass\" }\nmemory_kib = 1024\niterations = 1\n";

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "active": true, "displayName": format!("Person {name}"),
        "title": "Associate",
    })
}

/// A daemon whose vault is initialised before it starts serving for good, so it
/// holds the audit signing key.
fn sealing_daemon(extra: &str) -> Daemon {
    let pass = "p".repeat(120);
    let mut d = Daemon::start_with_secrets(&format!("{VAULT}{extra}"), &[("vault.pass", &pass)]);
    let init = d.cli(&["vault", "init"]);
    assert!(init.status.success(), "{}", err(&init));
    assert_eq!(d.terminate(), Some(0));
    d.spawn();
    d
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Creates users, renames one and deletes another: every kind of change record.
async fn traffic(d: &Daemon, prefix: &str, n: usize) {
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let mut ids = Vec::new();
    for i in 0..n {
        let (status, body) = scim
            .post("/Users", user(&format!("{prefix}{i}@firm.example")))
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = scim
        .patch(
            &format!("/Users/{}", ids[0]),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "title", "value": "Partner"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(scim.delete(&format!("/Users/{}", ids[n - 1])).await, 204);
}

fn export(d: &Daemon, name: &str, extra: &[&str]) -> PathBuf {
    let path = d.dir.path().join(name);
    let mut args = vec!["audit", "export", "-o", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = d.cli(&args);
    assert!(o.status.success(), "export: {}", err(&o));
    path
}

fn verify(d: &Daemon, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["audit", "verify", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    d.cli(&args)
}

fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write(d: &Daemon, name: &str, lines: &[String]) -> PathBuf {
    let path = d.dir.path().join(name);
    std::fs::write(
        &path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    path
}

/// The index of the record line with this seq.
fn record_at(lines: &[String], seq: u64) -> usize {
    lines
        .iter()
        .position(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["type"] == "record" && v["seq"] == seq
        })
        .unwrap_or_else(|| panic!("no record of seq {seq}"))
}

fn fails_naming(d: &Daemon, file: &Path, key: &str, needle: &str) {
    let o = verify(d, file, &["--key", key]);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", out(&o), err(&o));
    assert!(err(&o).contains("verification FAILED"), "{}", err(&o));
    assert!(err(&o).contains(needle), "wanted {needle:?} in {}", err(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_verifies_and_every_kind_of_tampering_is_named() {
    let d = sealing_daemon("");
    traffic(&d, "ann", 6).await;
    let file = export(&d, "audit.jsonl", &[]);
    let key = out(&d.cli(&["audit", "key"])).trim().to_owned();
    assert!(key.starts_with("ed25519:"), "{key}");

    let ok = verify(&d, &file, &["--key", &key]);
    assert!(ok.status.success(), "{}", err(&ok));
    let report = out(&ok);
    assert!(report.contains("8 records, seq 0..=7"), "{report}");
    assert!(report.contains("genesis"), "{report}");
    assert!(
        report.contains("every record is covered by a seal"),
        "{report}"
    );
    // The key from the vault is the default.
    assert!(verify(&d, &file, &[]).status.success());
    // What is exported is what was received: names and old → new values.
    let all = lines(&file);
    let patched = &all[record_at(&all, 6)];
    assert!(
        patched.contains("Partner") && patched.contains("Associate"),
        "{patched}"
    );

    // One byte flipped inside a record's body.
    let mut flipped = all.clone();
    let at = record_at(&flipped, 3);
    flipped[at] = flipped[at].replacen("ann3", "ann8", 1);
    assert_ne!(flipped[at], all[at]);
    fails_naming(&d, &write(&d, "flipped.jsonl", &flipped), &key, "seq 4");

    // A record deleted.
    let mut deleted = all.clone();
    deleted.remove(record_at(&deleted, 2));
    fails_naming(
        &d,
        &write(&d, "deleted.jsonl", &deleted),
        &key,
        "seq 2 is missing",
    );

    // Two records swapped.
    let mut swapped = all.clone();
    let (a, b) = (record_at(&swapped, 4), record_at(&swapped, 5));
    swapped.swap(a, b);
    fails_naming(&d, &write(&d, "swapped.jsonl", &swapped), &key, "seq 5");

    // The file cut short, mid-line.
    let text = std::fs::read_to_string(&file).unwrap();
    let cut = d.dir.path().join("cut.jsonl");
    std::fs::write(&cut, &text[..text.len() * 2 / 3]).unwrap();
    fails_naming(&d, &cut, &key, "truncated");

    // Another key.
    let other = format!("ed25519:{}", "ab".repeat(32));
    fails_naming(&d, &file, &other, "not with the key given");

    // The admin API streams the same file, which verifies too.
    let admin = d.admin_token();
    let http = scim_bridge::oauth::build_client(Duration::from_secs(30)).unwrap();
    let r = http
        .get(d.url("/api/v1/audit/export?from=0"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let api = d.dir.path().join("api.jsonl");
    std::fs::write(&api, &body).unwrap();
    let o = verify(&d, &api, &["--key", &key]);
    assert!(o.status.success(), "{}", err(&o));
    let anon = common::get(d.url("/api/v1/audit/export")).await.unwrap();
    assert_eq!(anon.status(), 401);

    // `status` and /metrics show nothing unsealed once the daemon has seen the seal.
    assert!(common::eventually(Duration::from_secs(5), || {
        let rt = tokio::runtime::Handle::current();
        let status = tokio::task::block_in_place(|| rt.block_on(d.readyz()));
        status["audit"]["unsealed_records"] == 0 && status["audit"]["head_seq"] == 7
    }));
    let metrics = d.metrics().await;
    assert_eq!(
        common::sample(&metrics, "scim_bridge_audit_unsealed_records"),
        Some(0.0)
    );
    // The daemon seals by itself too (here at shutdown), and logs each seal for a
    // copy outside the database.
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    assert_eq!(scim.post("/Users", user("late@firm.example")).await.0, 201);
    let mut d = d;
    assert_eq!(d.terminate(), Some(0));
    assert!(
        d.log_text().contains("audit seal seq=8 head="),
        "{}",
        d.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_vault_records_are_chained_and_the_unsealed_count_shows() {
    let d = Daemon::start("");
    traffic(&d, "bob", 3).await;
    assert!(common::eventually(Duration::from_secs(5), || {
        let rt = tokio::runtime::Handle::current();
        let m = tokio::task::block_in_place(|| rt.block_on(d.metrics()));
        common::sample(&m, "scim_bridge_audit_unsealed_records") == Some(5.0)
    }));
    let o = d.cli(&["audit", "export"]);
    assert_eq!(o.status.code(), Some(6), "{}", err(&o));
    assert!(err(&o).contains("vault"), "{}", err(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_pruning_the_export_verifies_from_its_checkpoint() {
    let d = sealing_daemon("\n[database]\nlog_retention = \"2s\"\n");
    traffic(&d, "cy", 4).await;
    let sealed = out(&d.cli(&["audit", "seal"]));
    assert!(sealed.starts_with("audit seal seq=5 "), "{sealed}");
    // Newer records, sealed later, stay.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    traffic(&d, "dee", 2).await;
    let key = out(&d.cli(&["audit", "key"])).trim().to_owned();
    let mut file = PathBuf::new();
    assert!(
        common::eventually(Duration::from_secs(10), || {
            file = export(&d, "pruned.jsonl", &[]);
            lines(&file)[0].contains("\"start\":\"checkpoint\"")
        }),
        "no checkpoint; log:\n{}",
        d.log_text()
    );
    let o = verify(&d, &file, &["--key", &key]);
    assert!(o.status.success(), "{}", err(&o));
    let report = out(&o);
    assert!(
        report.contains("starts at a signed checkpoint: records before seq 6 pruned"),
        "{report}"
    );
    assert!(report.contains("seq 6..=9"), "{report}");
    // The rows are gone from the log too, not only from the export.
    let log = out(&d.cli(&["log", "--json", "--limit", "100"]));
    assert_eq!(log.lines().count(), 4, "{log}");
    // Tampering after the checkpoint is still named.
    let mut edited = lines(&file);
    let at = record_at(&edited, 7);
    edited[at] = edited[at].replacen("dee", "dex", 1);
    fails_naming(&d, &write(&d, "edited.jsonl", &edited), &key, "seq 8");
}

/// The database files (SQLite and its WAL), copied aside or back.
fn copy_db(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["scim-bridge.db", "scim-bridge.db-wal", "scim-bridge.db-shm"] {
        let _ = std::fs::remove_file(to.join(name));
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_rolled_back_below_a_witnessed_head_fails_verification() {
    let mut d = sealing_daemon("");
    traffic(&d, "eve", 3).await;
    assert!(out(&d.cli(&["audit", "seal"])).starts_with("audit seal seq=4 "));
    assert_eq!(d.terminate(), Some(0));
    let data = d.dir.path().join("data");
    let backup = d.dir.path().join("backup");
    copy_db(&data, &backup);

    d.spawn();
    traffic(&d, "fay", 3).await;
    let seal = out(&d.cli(&["audit", "seal"]));
    // `audit seal seq=9 head=<hex> key=…`: what journald or a SIEM keeps.
    let witnessed = seal
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| *k == "seq" || *k == "head")
        .map(|(_, v)| v)
        .collect::<Vec<_>>()
        .join(":");
    assert!(witnessed.starts_with("9:"), "{seal}");
    let before = export(&d, "before.jsonl", &[]);
    assert!(
        verify(&d, &before, &["--expect", &witnessed])
            .status
            .success()
    );

    // Someone restores the older database and writes other history after it.
    assert_eq!(d.terminate(), Some(0));
    copy_db(&backup, &data);
    d.spawn();
    traffic(&d, "gus", 3).await;
    let after = export(&d, "after.jsonl", &[]);
    // The file is consistent in itself …
    assert!(verify(&d, &after, &[]).status.success());
    // … but not with the head seen before.
    let o = verify(&d, &after, &["--expect", &witnessed]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(err(&o).contains("seq 9"), "{}", err(&o));
    assert!(err(&o).contains("witnessed"), "{}", err(&o));
}

//! Several instances of the real binary on one PostgreSQL database (a throwaway
//! cluster, see `store::postgres::testkit`): SCIM requests served by any instance,
//! delivery shared through leases, and an instance killed with SIGKILL mid-delivery
//! whose work another instance finishes.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::fake_webhook::{self, SECRET, Shared};
use common::group_churn;
use common::{Daemon, Scim, config_text, free_port};
use scim_bridge::store::postgres::testkit::TestCluster;
use serde_json::{Value, json};

/// A daemon on database `url` (its own port and data directory, as on its own host).
fn instance(url: &str, targets: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("hook.secret"), SECRET).unwrap();
    let extra = format!("\n[database]\nurl = \"{url}\"\n{targets}");
    let config = dir.path().join("scim-bridge.toml");
    std::fs::write(&config, config_text(port, &dir.path().join("data"), &extra)).unwrap();
    for f in [&config, &dir.path().join("hook.secret")] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let mut d = Daemon::unstarted(dir, config, port);
    d.spawn();
    d
}

async fn cluster_db(name: &str) -> Option<(TestCluster, String)> {
    let cluster = TestCluster::start().unwrap()?;
    let url = cluster.create_database(name).await.unwrap();
    Some((cluster, url))
}

fn user(name: &str, title: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "title": title, "active": true
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_is_read_on_the_other() {
    let Some((cluster, url)) = cluster_db("shared").await else {
        return;
    };
    let a = instance(&url, "");
    let b = instance(&url, "");
    // Tokens live in the database: one made through A opens B too.
    let token = a.token("entra");
    let on_a = Scim::new(a.base("entra"), token.clone());
    let on_b = Scim::new(b.base("entra"), token);
    let (status, created) = on_a.post("/Users", user("pat@firm.example", "x")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, read) = on_b.get(&format!("/Users/{id}")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["userName"], "pat@firm.example");
    assert_eq!(read["meta"]["version"], created["meta"]["version"]);
    // A conflicting write through B sees A's row.
    let (status, _) = on_b.post("/Users", user("PAT@firm.example", "y")).await;
    assert_eq!(status, 409);

    let ready: Value = common::get(b.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown = ready.to_string();
    assert!(shown.contains("postgres"), "{shown}");
    let out = b.cli(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["database"]["engine"], "postgres");
    assert_eq!(status["database"]["users"], 1);
    // The password is in the config's URL, and nowhere the operator or a log sees.
    let location = status["database"]["location"].as_str().unwrap();
    assert!(
        location.starts_with("postgres://bridge@127.0.0.1:"),
        "{location}"
    );
    for text in [
        shown,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        a.log_text(),
        b.log_text(),
    ] {
        assert!(
            !text.contains(cluster.password()),
            "password leaked: {text}"
        );
    }
}

/// Both instances answer most token checks from memory; a revocation through one
/// (the CLI with A's configuration) is refused by both the moment it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_is_refused_by_every_instance_at_once() {
    let Some((_cluster, url)) = cluster_db("revoke").await else {
        return;
    };
    let a = instance(&url, "");
    let b = instance(&url, "");
    let token = a.token("entra");
    let on_a = Scim::new(a.base("entra"), token.clone());
    let on_b = Scim::new(b.base("entra"), token.clone());
    assert_eq!(on_a.get("/Users").await.0, 200);
    assert_eq!(on_b.get("/Users").await.0, 200);
    // Past each instance's first heartbeat on its listening connection, so what
    // follows is answered from the instances' caches of verified tokens.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for _ in 0..5 {
        assert_eq!(on_a.get("/Users").await.0, 200);
        assert_eq!(on_b.get("/Users").await.0, 200);
    }
    let id = token.split('_').nth(1).unwrap();
    let out = a.cli(&["token", "revoke", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, scim) in [("A", &on_a), ("B", &on_b)] {
        let (status, body) = scim.get("/Users").await;
        assert_eq!(status, 401, "instance {name}: {body}");
    }
}

/// Every live user's last delivery carries its final title, deliveries of one
/// resource arrived in sequence order, and nothing was refused as badly signed.
/// Returns how many deliveries repeated a sequence number already delivered.
fn check(receiver: &Shared, live: &HashMap<String, String>) -> usize {
    let r = receiver.lock().unwrap();
    assert!(r.rejected.is_empty(), "bad requests: {:?}", r.rejected);
    for (id, title) in live {
        let got = r
            .accepted
            .get(id)
            .unwrap_or_else(|| panic!("{id} never delivered"));
        let last = got.last().unwrap();
        assert_eq!(last.2.as_deref(), Some(title.as_str()), "{id}: {got:?}");
    }
    let mut repeats = 0;
    for (id, got) in &r.accepted {
        assert!(
            got.windows(2).all(|w| w[0].0 <= w[1].0),
            "{id} out of order: {got:?}"
        );
        repeats += got.windows(2).filter(|w| w[0].0 == w[1].0).count();
    }
    repeats
}

async fn delivered(d: &Daemon) -> u64 {
    let text = common::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| {
            l.starts_with("scim_bridge_deliveries_total{target=\"hooks\",outcome=\"delivered\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The webhook target both instances deliver to. `timeout = 1s`: the lease is
/// 2 × timeout + 30 s, the wait for a dead instance's work.
fn hooks_target(hook: &str) -> String {
    format!(
        r#"
[[targets]]
name = "hooks"
kind = "webhook"
url = "{hook}"
providers = ["entra"]
signing_secret = {{ file = "hook.secret" }}
timeout = "1s"
max_attempts = 1000
concurrency = 8
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_delivery_and_one_killed_mid_delivery_loses_nothing() {
    let Some((_cluster, url)) = cluster_db("delivery").await else {
        return;
    };
    let receiver = fake_webhook::new_receiver(0.2, 11);
    receiver.lock().unwrap().hang = Duration::from_millis(1500);
    let hook = fake_webhook::start_blocking(receiver.clone());
    let targets = hooks_target(&hook);
    let mut a = instance(&url, &targets);
    let b = instance(&url, &targets);
    let token = a.token("entra");
    let bases = [a.base("entra"), b.base("entra")];
    let clients = [
        Scim::new(a.base("entra"), token.clone()),
        Scim::new(b.base("entra"), token.clone()),
    ];
    let mut live: HashMap<String, String> = HashMap::new();
    // SCIM load through both instances: creates, then updates of each user through
    // the other instance.
    for round in 0..3 {
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..20 {
            let scim = Scim::new(bases[i % 2].clone(), token.clone());
            let name = format!("r{round}-u{i}@firm.example");
            writes.spawn(async move {
                let (status, body) = scim.post("/Users", user(&name, "a")).await;
                assert_eq!(status, 201, "{body}");
                let id = body["id"].as_str().unwrap().to_owned();
                let (status, body) = scim.put(&format!("/Users/{id}"), user(&name, "b")).await;
                assert_eq!(status, 200, "{body}");
                id
            });
        }
        for id in writes.join_all().await {
            live.insert(id, "b".to_owned());
        }
        let ids: Vec<String> = live.keys().cloned().collect();
        for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 5 == round) {
            let title = format!("k{round}");
            let (status, body) = clients[(n + 1) % 2]
                .patch(
                    &format!("/Users/{id}"),
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                           "Operations": [{"op": "replace", "path": "title", "value": title}]}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            live.insert(id.clone(), title);
        }
    }
    // Both instances deliver (the queue is shared), and A has work in flight when killed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered(&a).await == 0 || delivered(&b).await == 0 {
        assert!(Instant::now() < deadline, "one instance never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = a.delivery("hooks").await;
    assert!(
        before["queued"].as_u64().unwrap() > 0,
        "nothing left to kill mid-delivery: {before}"
    );
    a.kill9();
    // B keeps serving SCIM writes while A's leases run out.
    for (n, id) in live.clone().keys().enumerate().filter(|(n, _)| n % 4 == 0) {
        let (status, body) = clients[1]
            .patch(
                &format!("/Users/{id}"),
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "title", "value": format!("after{n}")}]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        live.insert(id.clone(), format!("after{n}"));
    }
    let after = b.wait_drained("hooks").await;
    assert_eq!(after["dead_letters"], 0, "{after}");
    let repeats = check(&receiver, &live);
    // Only what A had in flight when it died can have reached the receiver twice.
    assert!(repeats <= 8, "{repeats} repeated deliveries");
}

/// Two instances share the queue; membership churn goes through both, one is killed
/// with deliveries in flight and the other takes its work over. A receiver that
/// de-duplicates on event ids and replays `data.members` still derives every group's
/// members exactly, and no change came under a second event id after the takeover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_webhook_membership_survives_an_instance_takeover() {
    let Some((_cluster, url)) = cluster_db("membership").await else {
        return;
    };
    let receiver = fake_webhook::new_receiver(0.15, 29);
    {
        let mut r = receiver.lock().unwrap();
        r.accept_then_fail = 0.2;
        r.hang = Duration::from_millis(1500);
    }
    let hook = fake_webhook::start_blocking(receiver.clone());
    let targets = hooks_target(&hook);
    let mut a = instance(&url, &targets);
    let b = instance(&url, &targets);
    let token = a.token("entra");
    let bases = [a.base("entra"), b.base("entra")];
    let scim_b = Scim::new(b.base("entra"), token.clone());
    let (users, groups) = group_churn::people(&scim_b, "takeover", 24, 6).await;
    group_churn::round("takeover", &bases, &token, &groups, &users, 0, 12).await;
    group_churn::round("takeover", &bases, &token, &groups, &users, 1, 12).await;
    // The receiver stalls, so A dies with requests in flight that the receiver then
    // processes: B must send exactly those spans again, under the same ids, once A's
    // leases run out.
    receiver.lock().unwrap().stall = true;
    group_churn::round("takeover", &bases, &token, &groups, &users, 2, 12).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = a.delivery("hooks").await;
    assert!(
        before["queued"].as_u64().unwrap() > 0,
        "nothing left to kill mid-delivery: {before}"
    );
    a.kill9();
    receiver.lock().unwrap().stall = false;
    // B keeps taking membership changes while A's leases run out.
    group_churn::round("takeover", &bases[1..], &token, &groups, &users, 3, 12).await;
    let after = b.wait_drained("hooks").await;
    assert_eq!(after["dead_letters"], 0, "{after}");
    group_churn::assert_receiver_matches(&receiver, &scim_b, &groups).await;
    assert!(
        receiver.lock().unwrap().duplicates > 0,
        "stable ids not exercised"
    );
}

/// Runs the binary with `stdin`.
fn cli_with_stdin(d: &Daemon, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut c = std::process::Command::new(common::BIN)
        .args(args)
        .arg("--config")
        .arg(&d.config)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_an_sqlite_deployment_and_refuses_a_used_destination() {
    let Some((cluster, url)) = cluster_db("migrated").await else {
        return;
    };
    let pass = "p".repeat(120);
    let vault =
        "\n[vault]\npassphrase = { file = \"vault.pass\" }\nmemory_kib = 1024\niterations = 1\n";
    let mut old = Daemon::start_with_secrets(vault, &[("vault.pass", &pass)]);
    let token = old.token("entra");
    let scim = Scim::new(old.base("entra"), token.clone());
    let mut ids = Vec::new();
    for i in 0..5 {
        let (status, body) = scim
            .post("/Users", user(&format!("m{i}@firm.example"), "t"))
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let members: Vec<Value> = ids.iter().map(|id| json!({ "value": id })).collect();
    let (status, group) = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "Litigation", "members": members}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    assert!(old.cli(&["vault", "init"]).status.success());
    let set = cli_with_stdin(&old, &["secret", "set", "hooks.signing_secret"], "s3cr3t\n");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert_eq!(old.terminate(), Some(0));
    // Sealed on SQLite, so the chain PostgreSQL rebuilds must meet this signature.
    let sealed = old.cli(&["audit", "seal"]);
    assert!(
        sealed.status.success(),
        "{}",
        String::from_utf8_lossy(&sealed.stderr)
    );

    let db = old.dir.path().join("data").join("scim-bridge.db");
    let from = format!("sqlite://{}", db.display());
    let copy = |extra: &[&str]| {
        let mut args = vec!["migrate", "--from", &from, "--to", &url];
        args.extend_from_slice(extra);
        common::run(&args, &[])
    };
    let out = copy(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("resources        6 rows copied"),
        "{stdout}"
    );
    assert!(
        stdout.contains("group_members    5 rows copied"),
        "{stdout}"
    );
    assert!(
        stdout.contains("api_tokens       1 rows copied"),
        "{stdout}"
    );
    // The webhook's signing secret and the audit chain's signing key.
    assert!(
        stdout.contains("secrets          2 rows copied"),
        "{stdout}"
    );
    assert!(
        stdout.contains("audit_seals      1 rows copied"),
        "{stdout}"
    );
    // The provisioning log comes along: six creations received, and its chain.
    assert!(stdout.contains("audit_log"), "{stdout}");
    assert!(stdout.contains("audit_head"), "{stdout}");
    assert!(!stdout.contains(cluster.password()), "{stdout}");
    // Analysed by the copy, so the daemon's first lookups are planned with statistics.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn_task = tokio::spawn(conn);
    let analysed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_user_tables
             WHERE relname IN ('resources', 'resource_emails', 'group_members')
               AND last_analyze IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(analysed, 3);
    drop(client);
    let _ = conn_task.await;
    // A second copy would overwrite a deployment: refused unless forced.
    let again = copy(&[]);
    let stderr = String::from_utf8_lossy(&again.stderr).into_owned();
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(!stderr.contains(cluster.password()), "{stderr}");
    assert!(copy(&["--force"]).status.success());

    // The copy serves: the old token, the users, the group's members, the vault.
    let new = {
        let dir = old.dir.path();
        let config = dir.join("scim-bridge.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{text}\n[database]\nurl = \"{url}\"\n")).unwrap();
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        old.spawn();
        old
    };
    let scim = Scim::new(new.base("entra"), token);
    let (status, read) = scim.get(&format!("/Users/{}", ids[3])).await;
    assert_eq!(status, 200, "{read}");
    let (status, g) = scim
        .get(&format!("/Groups/{}", group["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["members"].as_array().unwrap().len(), 5, "{g}");
    let (status, created) = scim.post("/Users", user("after@firm.example", "t")).await;
    assert_eq!(status, 201, "{created}");
    // The history from before the move is still the person's log.
    let log = new.cli(&[
        "log",
        "--person",
        "m3@firm.example",
        "--only",
        "changes",
        "--json",
    ]);
    let records = String::from_utf8_lossy(&log.stdout).into_owned();
    assert!(records.contains("\"op\":\"create\""), "{records}");
    // The audit chain carries on across the move: PostgreSQL links the copied records
    // again to the hashes SQLite's seals signed, and the export from the genesis on
    // (the creations before the move, the one after) verifies.
    let file = new.dir.path().join("after-the-move.jsonl");
    let out = new.cli(&["audit", "export", "-o", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = new.cli(&["audit", "verify", file.to_str().unwrap()]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(exported.contains("m3@firm.example"), "{exported}");
    assert!(exported.contains("after@firm.example"), "{exported}");
    let seal_before_the_move = exported
        .lines()
        .take_while(|l| !l.contains("after@firm.example"))
        .any(|l| l.contains(r#""type":"seal""#));
    assert!(seal_before_the_move, "{exported}");
    let status: Value = serde_json::from_slice(&new.cli(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["database"]["engine"], "postgres");
    assert_eq!(status["database"]["users"], 6);
    let secrets = new.cli(&["secret", "list"]);
    assert!(
        String::from_utf8_lossy(&secrets.stdout).contains("hooks.signing_secret"),
        "{}",
        String::from_utf8_lossy(&secrets.stderr)
    );
    assert!(new.cli(&["vault", "status"]).status.success());
}

/// A CA and a server certificate for 127.0.0.1 it signed, PEM.
fn certificates() -> (String, scim_bridge::store::postgres::testkit::ServerTls) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "scim-bridge test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca_cert.pem(),
        scim_bridge::store::postgres::testkit::ServerTls {
            cert_pem: server.pem(),
            key_pem: key.serialize_pem(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_and_used_end_to_end() {
    use scim_bridge::store::postgres::testkit::ClusterOptions;
    use scim_bridge::store::postgres::{PgStore, tls};
    let (ca_pem, server_tls) = certificates();
    let (other_ca_pem, _) = certificates();
    let Some(cluster) = TestCluster::start_with(ClusterOptions {
        tls: Some(server_tls),
        ..ClusterOptions::default()
    })
    .unwrap() else {
        return;
    };
    let url = cluster.create_database("secure").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ca, other_ca) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    std::fs::write(&ca, &ca_pem).unwrap();
    std::fs::write(&other_ca, &other_ca_pem).unwrap();
    let with = |mode: &str, root: &std::path::Path| {
        format!("{url}?sslmode={mode}&sslrootcert={}", root.display())
    };

    // Plain TCP is refused by this server; the error says so and hides the password.
    let plain = PgStore::open(&url, 2).await.err().unwrap().to_string();
    assert!(plain.contains("no encryption"), "{plain}");
    assert!(!plain.contains(cluster.password()), "{plain}");
    // A server the configured CA did not sign is refused.
    let wrong = PgStore::open(&with("require", &other_ca), 2)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(wrong.to_lowercase().contains("certificate"), "{wrong}");
    assert!(!wrong.contains(cluster.password()), "{wrong}");
    // libpq's verify-full is accepted and means the same as require here.
    let client = tls::connect_once(&with("verify-full", &ca)).await.unwrap();
    let on_tls: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(on_tls);
    drop(client);

    // The daemon on that URL serves SCIM, and every connection it holds is TLS.
    let d = instance(&with("require", &ca), "");
    let scim = Scim::new(d.base("entra"), d.token("entra"));
    let (status, created) = scim.post("/Users", user("tls@firm.example", "x")).await;
    assert_eq!(status, 201, "{created}");
    let (status, found) = scim
        .get("/Users?filter=userName%20eq%20%22tls@firm.example%22")
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["totalResults"], 1, "{found}");
    let client = tls::connect_once(&with("require", &ca)).await.unwrap();
    let (all, encrypted): (i64, i64) = {
        let r = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE s.ssl)
                 FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
                 WHERE a.application_name = 'scim-bridge' AND a.datname = 'secure'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(all > 0);
    assert_eq!(all, encrypted);
    assert!(!d.log_text().contains(cluster.password()));
}

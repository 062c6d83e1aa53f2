//! Console benchmark (#21, Performance): the release daemon with its console on, over
//! a directory of 100,000 users (and groups, one with many members) and 1,000,000
//! provisioning-log records, seeded as the provisioning-log bench seeds them. Signs
//! in with an admin token and prints p50/p99 of every console page as a browser gets
//! it over loopback HTTP, on SQLite and, when PostgreSQL's server binaries are
//! installed, on PostgreSQL. Targets: every page under 50 ms, a search under 100 ms.
//!
//! Then the SCIM front's POST /Users and GET filter rates, alternately without and
//! with an admin's console polling the overview and a person's page
//! (`CONSOLE_BENCH_POLL_MS` between page views): #21 allows the console to lower them
//! by at most 5%.
//!
//! Run: `cargo bench --bench console`. Knobs (environment): CONSOLE_BENCH_USERS
//! (100000), CONSOLE_BENCH_RECORDS (1000000), CONSOLE_BENCH_GROUPS (1000),
//! CONSOLE_BENCH_MEMBERS (10000, the big group), CONSOLE_BENCH_ROUNDS (200 views per
//! page), CONSOLE_BENCH_LOAD_SECONDS (5 per load run), CONSOLE_BENCH_CONNECTIONS (16),
//! CONSOLE_BENCH_POLL_MS (1000), CONSOLE_BENCH_STORES (sqlite,postgres).

// A bench's knobs are environment variables (see the README); the daemon's own
// environment reads go through config::secret::Environment (clippy.toml).
#![allow(clippy::disallowed_methods)]

#[path = "common/provlog_seed.rs"]
mod seed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scim_bridge::scim::{MemberRef, ResourceKind};
use scim_bridge::store::postgres::PgStore;
use scim_bridge::store::postgres::testkit::{ClusterOptions, TestCluster};
use scim_bridge::store::sqlite::SqliteStore;
use scim_bridge::store::{Mutation, Store};
use seed::{add_users, env_num, pct, user_id, user_name};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_scim-bridge");
/// The big group's id.
const BIG: &str = "g-big";

struct Knobs {
    users: usize,
    records: usize,
    groups: usize,
    members: usize,
    rounds: usize,
    load_seconds: u64,
    connections: usize,
    poll_ms: u64,
    stores: Vec<String>,
}

impl Knobs {
    fn from_env() -> Knobs {
        Knobs {
            users: env_num("CONSOLE_BENCH_USERS", 100_000).max(1),
            records: env_num("CONSOLE_BENCH_RECORDS", 1_000_000),
            groups: env_num("CONSOLE_BENCH_GROUPS", 1_000),
            members: env_num("CONSOLE_BENCH_MEMBERS", 10_000),
            rounds: env_num("CONSOLE_BENCH_ROUNDS", 200).max(1),
            load_seconds: env_num("CONSOLE_BENCH_LOAD_SECONDS", 5) as u64,
            connections: env_num("CONSOLE_BENCH_CONNECTIONS", 16).max(1),
            poll_ms: env_num("CONSOLE_BENCH_POLL_MS", 1000) as u64,
            stores: std::env::var("CONSOLE_BENCH_STORES")
                .unwrap_or_else(|_| "sqlite,postgres".into())
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect(),
        }
    }

    fn command(&self) -> String {
        format!(
            "CONSOLE_BENCH_USERS={} CONSOLE_BENCH_RECORDS={} CONSOLE_BENCH_GROUPS={} CONSOLE_BENCH_MEMBERS={} \
             CONSOLE_BENCH_ROUNDS={} CONSOLE_BENCH_LOAD_SECONDS={} CONSOLE_BENCH_CONNECTIONS={} \
             CONSOLE_BENCH_POLL_MS={} CONSOLE_BENCH_STORES={} cargo bench --bench console",
            self.users,
            self.records,
            self.groups,
            self.members,
            self.rounds,
            self.load_seconds,
            self.connections,
            self.poll_ms,
            self.stores.join(",")
        )
    }
}

fn group(i: usize, members: usize, users: usize) -> Mutation {
    let (id, name, count) = if i == 0 {
        (BIG.to_owned(), "Everyone (big)".to_owned(), members)
    } else {
        (format!("g-{i:05}"), format!("Team {i:05}"), 20)
    };
    let members = (0..count.min(users))
        .map(|k| (k * 7 + i * 131) % users)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|u| MemberRef {
            value: user_id(u),
            kind: Some(ResourceKind::User),
            display: None,
        })
        .collect();
    seed::create(
        ResourceKind::Group,
        id,
        json!({"displayName": name}),
        members,
    )
}

/// Users, groups and the log, written before the daemon starts.
async fn seed_store(store: &Arc<dyn Store>, k: &Knobs) {
    let t = Instant::now();
    add_users(store, k.users).await;
    for i in 0..k.groups.max(1) {
        store
            .apply(group(i, k.members, k.users))
            .await
            .expect("group");
    }
    println!(
        "  seeded {} users and {} groups (one of {} members) in {:.1} s",
        k.users,
        k.groups.max(1),
        k.members.min(k.users),
        t.elapsed().as_secs_f64()
    );
}

/// Dead letters at "hooks", so the dead-letter page has a page of them to name.
const DEAD_LETTERS: usize = 200;

fn dead_letters_sqlite(path: &Path, users: usize) {
    let c = rusqlite::Connection::open(path).expect("raw connection");
    for i in 0..DEAD_LETTERS {
        c.execute(
            "INSERT INTO dead_letters (target, provider, kind, resource_id, from_seq, last_seq, queued_at, attempts, error, at)
             VALUES ('hooks', 'entra', 'User', ?1, 1, 1, '2026-05-28T21:00:00.000Z', 5, 'HTTP 500 from the receiver', '2026-05-28T21:10:00.000Z')",
            [user_id((i * 389) % users)],
        )
        .expect("dead letter");
    }
}

async fn dead_letters_postgres(url: &str, users: usize) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    for i in 0..DEAD_LETTERS {
        client
            .execute(
                "INSERT INTO dead_letters (target, provider, kind, resource_id, from_seq, last_seq, queued_at, attempts, error, at)
                 VALUES ('hooks', 'entra', 'User', $1, 1, 1, now(), 5, 'HTTP 500 from the receiver', now())",
                &[&user_id((i * 389) % users)],
            )
            .await
            .expect("dead letter");
    }
    drop(client);
    let _ = conn.await;
}

/// The daemon under test, stopped (SIGTERM) when dropped.
struct Daemon {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: signalling our own child by its pid.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Daemon {
    fn configure(database_url: Option<&str>) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("scim-bridge-console-bench-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        std::fs::write(
            dir.path().join("hook.secret"),
            "bench-signing-secret-0123456789",
        )
        .expect("secret");
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n[logging]\nlevel = \"warn\"\n\n\
             [console]\nenabled = true\n\n\
             [[providers]]\nname = \"entra\"\ndialect = \"entra\"\n\n\
             [[targets]]\nname = \"hooks\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n\
             providers = [\"entra\"]\nsigning_secret = {{ file = \"hook.secret\" }}\npaused = true\n",
            dir.path().join("data").display()
        );
        if let Some(url) = database_url {
            text = format!("[database]\nurl = \"{url}\"\n\n{text}");
        }
        let config = dir.path().join("scim-bridge.toml");
        std::fs::write(&config, text).expect("config");
        // The URL carries the database password: the daemon refuses a config others can read.
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        Daemon {
            dir,
            config,
            port,
            child: None,
        }
    }

    fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("data").join("scim-bridge.db")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .env_remove("SCIM_BRIDGE_CONFIG")
            .output()
            .expect("run scim-bridge");
        assert!(
            out.status.success(),
            "scim-bridge {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    async fn start(&mut self, http: &reqwest::Client) {
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).expect("log");
        self.child = Some(
            Command::new(BIN)
                .args(["serve", "--config"])
                .arg(&self.config)
                .env_remove("RUST_LOG")
                .env_remove("SCIM_BRIDGE_CONFIG")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn the daemon"),
        );
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Ok(r) = http.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                let log = std::fs::read_to_string(self.dir.path().join("daemon.log"));
                panic!("the daemon exited ({status}): {}", log.unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "the daemon never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An admin's browser: the console's cookies.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            if let Some((name, rest)) = v.to_str().unwrap_or_default().split_once('=') {
                let value = rest.split(';').next().unwrap_or_default();
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn cookie(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn sign_in(d: &Daemon, http: &reqwest::Client, token: &str) -> Browser {
        let mut b = Browser {
            http: http.clone(),
            cookies: BTreeMap::new(),
        };
        let r = http
            .get(d.url("/ui/signin"))
            .send()
            .await
            .expect("sign-in form");
        b.keep(&r);
        let form = r.text().await.expect("form");
        let at = form.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
        let csrf = form[at..at + form[at..].find('"').expect("csrf end")].to_owned();
        let r = http
            .post(d.url("/ui/signin"))
            .header("cookie", b.cookie())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}&csrf={}", enc(token), enc(&csrf)))
            .send()
            .await
            .expect("sign in");
        assert_eq!(r.status(), 303, "sign-in refused");
        b.keep(&r);
        b
    }

    /// One page view; its body.
    async fn view(&self, url: &str) -> String {
        let r = self
            .http
            .get(url)
            .header("cookie", self.cookie())
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), 200, "{url}");
        r.text().await.expect("body")
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A page's path in round `r`, and a text its answer must hold.
type PageOf<'a> = Box<dyn Fn(usize) -> (String, String) + 'a>;

/// Every page, `rounds` views each; a page's person varies by round.
async fn time_pages(engine: &str, d: &Daemon, b: &Browser, k: &Knobs) -> Vec<(String, f64)> {
    let person = |r: usize| (r * 104_729 + 17) % k.users;
    let pages: Vec<(&str, f64, PageOf)> = vec![
        (
            "overview",
            50.0,
            Box::new(|_| ("/ui/".into(), "Targets".into())),
        ),
        (
            "search by userName",
            100.0,
            Box::new(|r| {
                let i = person(r);
                (
                    format!("/ui/people?q={}", enc(&user_name(i).to_uppercase())),
                    user_name(i),
                )
            }),
        ),
        (
            "search by email",
            100.0,
            Box::new(|r| {
                let i = person(r);
                (
                    format!("/ui/people?q={}", enc(&format!("p{i}@mail.example"))),
                    user_name(i),
                )
            }),
        ),
        (
            "search by display name",
            100.0,
            Box::new(|r| {
                let i = person(r);
                (
                    format!("/ui/people?q={}", enc(&format!("person {i}"))),
                    user_name(i),
                )
            }),
        ),
        (
            "person page",
            50.0,
            Box::new(|r| {
                let i = person(r);
                (
                    format!("/ui/people/entra/users/{}", user_id(i)),
                    user_name(i),
                )
            }),
        ),
        (
            "group page (big group)",
            50.0,
            Box::new(|_| (format!("/ui/people/entra/groups/{BIG}"), "Everyone".into())),
        ),
        (
            "dead letters",
            50.0,
            Box::new(|_| ("/ui/dead-letters".into(), "HTTP 500".into())),
        ),
        (
            "guard",
            50.0,
            Box::new(|_| ("/ui/guard".into(), "hooks".into())),
        ),
    ];
    let mut out = Vec::new();
    for (what, budget, page) in pages {
        // Two views first: the first view of a page warms caches a browser would too.
        for r in 0..2 {
            b.view(&d.url(&page(r).0)).await;
        }
        let mut samples = Vec::with_capacity(k.rounds);
        let mut bytes = 0;
        for r in 0..k.rounds {
            let (path, expect) = page(r);
            let t = Instant::now();
            let body = b.view(&d.url(&path)).await;
            samples.push(t.elapsed());
            assert!(body.contains(&expect), "{what}: {path} lacks {expect:?}");
            bytes += body.len();
        }
        let (p50, p99) = (pct(&mut samples, 0.5), pct(&mut samples, 0.99));
        println!(
            "{engine:<9} {what:<24} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  {:>6.0} KB  {}",
            bytes as f64 / k.rounds as f64 / 1024.0,
            if p99 < budget {
                format!("(< {budget} ms)")
            } else {
                format!("OVER {budget} ms")
            }
        );
        out.push((what.to_owned(), p99));
    }
    out
}

/// Requests answered 2xx in `seconds` by `connections` clients sending `make(n)`.
async fn load(d: &Daemon, token: &str, k: &Knobs, next: &Arc<AtomicU64>, post: bool) -> f64 {
    let http = scim_bridge::oauth::build_client(Duration::from_secs(30)).expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let base = d.url("/scim/v2/entra/Users");
    let users = k.users;
    let mut tasks = Vec::new();
    for _ in 0..k.connections {
        let (http, stop, ok, next, base) = (
            http.clone(),
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(next),
            base.clone(),
        );
        let auth = format!("Bearer {token}");
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let req = if post {
                    http.post(&base).json(&json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": format!("load{n:08}@firm.example"),
                        "displayName": format!("Load {n}"), "active": true,
                    }))
                } else {
                    let i = (n as usize * 7919) % users;
                    let filter = format!("userName eq \"{}\"", user_name(i));
                    http.get(format!("{base}?filter={}", enc(&filter)))
                };
                if let Ok(r) = req.header("authorization", &auth).send().await
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(k.load_seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let took = t.elapsed().as_secs_f64();
    let done = ok.load(Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done as f64 / took
}

/// An admin with the console open: the overview and a person's page in turn, a view
/// every `poll_ms`.
fn poller(
    d: &Daemon,
    b: &Browser,
    k: &Knobs,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    let (overview, person) = (
        d.url("/ui/"),
        d.url(&format!("/ui/people/entra/users/{}", user_id(42))),
    );
    let (http, cookie, pause) = (b.http.clone(), b.cookie(), Duration::from_millis(k.poll_ms));
    tokio::spawn(async move {
        let mut views = 0;
        while !stop.load(Ordering::Relaxed) {
            for url in [&overview, &person] {
                if let Ok(r) = http.get(url).header("cookie", &cookie).send().await {
                    let _ = r.bytes().await;
                    views += 1;
                }
                tokio::time::sleep(pause).await;
            }
        }
        views
    })
}

/// POST and GET rates without and with the console in use, two runs of each.
async fn front_rates(engine: &str, d: &Daemon, b: &Browser, token: &str, k: &Knobs) {
    let next = Arc::new(AtomicU64::new(0));
    for post in [true, false] {
        let what = if post { "POST /Users" } else { "GET filter" };
        let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut views = 0;
        // Without, with, with, without: a rate that drifts as the store grows
        // weighs on both sides alike.
        for with in [false, true, true, false] {
            let stop = Arc::new(AtomicBool::new(false));
            let poll = with.then(|| poller(d, b, k, Arc::clone(&stop)));
            let rate = load(d, token, k, &next, post).await;
            stop.store(true, Ordering::Relaxed);
            if let Some(p) = poll {
                views += p.await.unwrap_or(0);
            }
            rates[usize::from(with)].push(rate);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (off, on) = (mean(&rates[0]), mean(&rates[1]));
        println!(
            "{engine:<9} {what:<12} {} conns: {off:>8.0}/s without the console, {on:>8.0}/s with it ({:+.1}%; runs {:.0}, {:.0} / {:.0}, {:.0}; {views} page views)",
            k.connections,
            (on - off) / off * 100.0,
            rates[0][0],
            rates[0][1],
            rates[1][0],
            rates[1][1],
        );
    }
}

async fn measure(engine: &str, mut d: Daemon, k: &Knobs) {
    let http = scim_bridge::oauth::build_client(Duration::from_secs(60)).expect("client");
    // Tokens before the start: the CLI writes to the database the daemon then opens.
    let admin = d.cli(&["token", "create", "--scope", "admin"]);
    let scim = d.cli(&["token", "create", "--provider", "entra"]);
    d.start(&http).await;
    settle(&d, &http, k.records).await;
    let b = Browser::sign_in(&d, &http, &admin).await;
    let pages = time_pages(engine, &d, &b, k).await;
    let worst = pages.iter().map(|(_, p)| *p).fold(0.0, f64::max);
    println!("{engine:<9} slowest page p99 {worst:.2} ms");
    front_rates(engine, &d, &b, &scim, k).await;
}

/// Waits until the daemon has chained the seeded log records (raw inserts are
/// unchained; a daemon chains each record as it is written, so a backlog of a
/// million is the seeding's, not a state worth measuring).
async fn settle(d: &Daemon, http: &reqwest::Client, records: usize) {
    let t = Instant::now();
    let deadline = t + Duration::from_secs(900);
    loop {
        let head = match http.get(d.url("/readyz")).send().await {
            Ok(r) => r.json::<serde_json::Value>().await.ok(),
            Err(_) => None,
        }
        .and_then(|v| v["audit"]["head_seq"].as_u64())
        // `head_seq` is the newest record's seq, counted from 0.
        .map_or(0, |newest| newest + 1);
        if head >= records as u64 || Instant::now() > deadline {
            println!(
                "  the daemon chained {head} seeded records in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sqlite(k: &Knobs) {
    let d = Daemon::configure(None);
    let path = d.sqlite_path();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).expect("open"));
    seed_store(&store, k).await;
    store.close().await;
    let t = Instant::now();
    seed::fill_sqlite(&path, k.records, k.users);
    dead_letters_sqlite(&path, k.users);
    println!(
        "  filled {} log records in {:.1} s",
        k.records,
        t.elapsed().as_secs_f64()
    );
    measure("sqlite", d, k).await;
}

async fn postgres(k: &Knobs) {
    let cluster = match TestCluster::start_with(ClusterOptions {
        fsync: true,
        ..ClusterOptions::default()
    }) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("postgres  skipped: PostgreSQL's server binaries are not installed");
            return;
        }
        Err(e) => {
            println!("postgres  skipped: {e}");
            return;
        }
    };
    let url = cluster.create_database("console").await.expect("database");
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&url, 8).await.expect("open"));
    seed_store(&store, k).await;
    store.close().await;
    let t = Instant::now();
    seed::fill_postgres(&url, k.records, k.users).await;
    dead_letters_postgres(&url, k.users).await;
    println!(
        "  filled {} log records in {:.1} s",
        k.records,
        t.elapsed().as_secs_f64()
    );
    measure("postgres", Daemon::configure(Some(&url)), k).await;
}

fn main() {
    let k = Knobs::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "console pages over {} users and {} log records (targets: page < 50 ms, search < 100 ms; p50/p99 of {} views over loopback HTTP)",
        k.users, k.records, k.rounds
    );
    for store in &k.stores {
        match store.as_str() {
            "sqlite" => rt.block_on(sqlite(&k)),
            "postgres" => rt.block_on(postgres(&k)),
            other => println!("unknown store {other:?} in CONSOLE_BENCH_STORES"),
        }
    }
    println!("command: {}", k.command());
}

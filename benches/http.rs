//! HTTP load benchmark: drives the real release `scim-bridge` binary over
//! loopback HTTP and, for comparison at the same size, its peers `scim2-server` and
//! `scimgateway` (phase 6, in `common/http_peers.rs`).
//!
//! Run with `cargo bench --bench http`: Cargo builds `target/release/scim-bridge`
//! first, because a bench target gets `CARGO_BIN_EXE_scim-bridge`. Scale with the
//! `BENCH_*` variables read by [`Settings::from_env`]; the report ends with the
//! exact command that repeats the run.
//!
//! The load generator is a raw hyper HTTP/1.1 client, one keep-alive connection
//! per simulated client, on a single-threaded Tokio runtime by default. On a small
//! machine the generator shares the CPU with the daemon, so it has to be cheap, and
//! its own CPU use is printed next to the daemon's so that a saturated generator is
//! seen for what it is instead of being mistaken for a slow server.

// A bench's knobs are environment variables (see the README); the daemon's own
// environment reads go through config::secret::Environment (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use scim_bridge::store::postgres::testkit::{ClusterOptions, TestCluster};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

#[path = "common/http_peers.rs"]
mod peers;
use peers::PeerKind;

const BUILT_BIN: &str = env!("CARGO_BIN_EXE_scim-bridge");

/// The daemon binary under test: `BENCH_BIN` names another build (a "before" binary
/// kept aside, for alternating before/after runs from one bench build).
fn bin() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| BUILT_BIN.to_owned())
}
const REPO: &str = env!("CARGO_MANIFEST_DIR");
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// A request slower than this counts as failed, so a wedged server cannot hang the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Members added per PATCH while building the big group.
const MEMBER_CHUNK: usize = 1000;
/// Error messages kept per load, as examples for the report.
const ERROR_SAMPLES: usize = 3;

// ---------------------------------------------------------------------------
// Settings

/// What to run, from `BENCH_*` environment variables; the defaults are the sizes
/// the targets are stated for.
struct Settings {
    /// Length of each timed load (POST, GET filter).
    seconds: f64,
    /// Connections for the POST loads and the bulk loads.
    concurrency: usize,
    /// Connection counts tried for the GET-filter load.
    get_concurrency: Vec<usize>,
    /// Cap on users created by the timed POST load.
    post_users: u64,
    /// Users stored before the GET-filter load and for the memory figure.
    users: u64,
    /// Members of the big group.
    group_members: u64,
    /// Single-member PATCHes timed (each way) on the big group.
    member_patches: u64,
    /// Groups stored (including the big one) for the memory figure.
    groups: u64,
    /// Whether to run phase 6, the bridge beside its peers at the same N.
    peer: bool,
    /// The peers of phase 6, in order.
    peers: Vec<PeerKind>,
    /// Users stored in each server of phase 6 before its GET-filter load.
    peer_users: u64,
    /// Connections for extra phase 6 loads within scim2-server's listen backlog (0: skip).
    peer_low_concurrency: usize,
    /// Members of phase 6's group (a size every peer survives).
    peer_group_members: u64,
    /// Single-member PATCHes timed on phase 6's group.
    peer_member_patches: u64,
    /// A peer that cannot run fails the bench instead of being skipped (`CI=true`
    /// or `BENCH_REQUIRE_PEERS=1`).
    require_peers: bool,
    /// Tokio worker threads of the load generator.
    client_threads: usize,
    /// Whether to run phases 1-5 (the full single-daemon run on SQLite).
    bridge: bool,
    /// Stores compared in phase 7, in order.
    stores: Vec<StoreSetup>,
    /// Users stored before phase 7's GET-filter load, per store.
    store_users: u64,
    /// The daemon's `[logging] level`; "info" is what the shipped config uses.
    log_level: String,
    seed: u64,
    /// Concurrent full reads of the big group (phase 3's memory figure).
    big_readers: usize,
    /// Full reads per reader.
    big_reads: u64,
    /// Whether to run phase 8 (a fresh daemon loaded through /Bulk).
    bulk: bool,
    /// Operations per /Bulk request in phase 8.
    bulk_ops: usize,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let s = Settings {
            seconds: env_num("BENCH_SECONDS", 5.0)?,
            concurrency: env_num("BENCH_CONCURRENCY", 32)?,
            get_concurrency: env_list("BENCH_GET_CONCURRENCY", &[32, 64])?,
            post_users: env_num("BENCH_POST_USERS", 20_000)?,
            users: env_num("BENCH_USERS", 100_000)?,
            group_members: env_num("BENCH_GROUP_MEMBERS", 50_000)?,
            member_patches: env_num("BENCH_MEMBER_PATCHES", 500)?,
            groups: env_num("BENCH_GROUPS", 10_000)?,
            peer: env_num::<u8>("BENCH_PEER", 1)? != 0,
            peers: PeerKind::parse_list(
                &std::env::var("BENCH_PEERS")
                    .unwrap_or_else(|_| "scim2-server,scimgateway".to_owned()),
            )?,
            peer_users: env_num("BENCH_PEER_USERS", 10_000)?,
            peer_low_concurrency: env_num("BENCH_PEER_LOW_CONCURRENCY", 4)?,
            peer_group_members: env_num("BENCH_PEER_GROUP_MEMBERS", 5_000)?,
            peer_member_patches: env_num("BENCH_PEER_MEMBER_PATCHES", 100)?,
            require_peers: std::env::var("CI").is_ok_and(|v| v == "true")
                || env_num::<u8>("BENCH_REQUIRE_PEERS", 0)? != 0,
            client_threads: env_num("BENCH_CLIENT_THREADS", 1)?,
            bridge: env_num::<u8>("BENCH_BRIDGE", 1)? != 0,
            stores: StoreSetup::parse_list(
                &std::env::var("BENCH_STORES")
                    .unwrap_or_else(|_| "sqlite,postgres,postgres2".to_owned()),
            )?,
            store_users: env_num("BENCH_STORE_USERS", 20_000)?,
            log_level: std::env::var("BENCH_LOG_LEVEL").unwrap_or_else(|_| "info".to_owned()),
            seed: env_num("BENCH_SEED", 20_260_523)?,
            big_readers: env_num("BENCH_BIG_READERS", 16)?,
            big_reads: env_num("BENCH_BIG_READS", 2)?,
            bulk: env_num::<u8>("BENCH_BULK", 1)? != 0,
            bulk_ops: env_num("BENCH_BULK_OPS", 1000)?,
        };
        // `Duration::from_secs_f64` panics on these, and zero workers would measure nothing.
        if !(s.seconds.is_finite() && s.seconds > 0.0) {
            return Err("BENCH_SECONDS must be a positive number".into());
        }
        if s.concurrency == 0
            || s.client_threads == 0
            || s.get_concurrency.contains(&0)
            || s.big_readers == 0
            || s.bulk_ops == 0
        {
            return Err("connection and thread counts must be at least 1".into());
        }
        Ok(s)
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    /// The command line that repeats this run with the same settings.
    fn command(&self) -> String {
        let get: Vec<String> = self.get_concurrency.iter().map(|c| c.to_string()).collect();
        let stores: Vec<String> = self.stores.iter().map(|st| st.name()).collect();
        let peers: Vec<&str> = self.peers.iter().map(|p| p.name()).collect();
        format!(
            "BENCH_SECONDS={} BENCH_CONCURRENCY={} BENCH_GET_CONCURRENCY={} BENCH_POST_USERS={} \
             BENCH_USERS={} BENCH_GROUP_MEMBERS={} BENCH_MEMBER_PATCHES={} BENCH_GROUPS={} \
             BENCH_PEER={} BENCH_PEERS={} BENCH_PEER_USERS={} BENCH_PEER_LOW_CONCURRENCY={} \
             BENCH_PEER_GROUP_MEMBERS={} BENCH_PEER_MEMBER_PATCHES={} BENCH_CLIENT_THREADS={} BENCH_LOG_LEVEL={} \
             BENCH_BRIDGE={} BENCH_STORES={} BENCH_STORE_USERS={} BENCH_SEED={} \
             BENCH_BIG_READERS={} BENCH_BIG_READS={} BENCH_BULK={} BENCH_BULK_OPS={} cargo bench --bench http",
            self.seconds,
            self.concurrency,
            get.join(","),
            self.post_users,
            self.users,
            self.group_members,
            self.member_patches,
            self.groups,
            u8::from(self.peer),
            shell_quote(&peers.join(",")),
            self.peer_users,
            self.peer_low_concurrency,
            self.peer_group_members,
            self.peer_member_patches,
            self.client_threads,
            shell_quote(&self.log_level),
            u8::from(self.bridge),
            shell_quote(&stores.join(",")),
            self.store_users,
            self.seed,
            self.big_readers,
            self.big_reads,
            u8::from(self.bulk),
            self.bulk_ops,
        )
    }
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a valid number")),
        Err(_) => Ok(default),
    }
}

fn env_list(name: &str, default: &[usize]) -> Result<Vec<usize>, String> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|x| x.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{name}={v:?} is not a comma-separated list of numbers")),
        Err(_) => Ok(default.to_vec()),
    }
}

// ---------------------------------------------------------------------------
// Orchestration

fn main() -> ExitCode {
    let started = Instant::now();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("http bench: {e}");
            return ExitCode::from(2);
        }
    };
    print_header(&settings);
    let mut report = Report::new(started);
    // Whatever fails, the figures gathered so far are still worth printing.
    let outcome = run(&settings, &mut report);
    report.print();
    println!();
    println!("command   : {}", settings.command());
    println!("load avg  : {} (at the end)", load_average());
    println!("wall time : {:.1} s", started.elapsed().as_secs_f64());
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("ABORTED   : {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(s: &Settings, report: &mut Report) -> Result<(), String> {
    let rt = runtime(s.client_threads)?;
    if s.bridge {
        bench_bridge(s, &rt, report)?;
    } else {
        report.note("1-5: skipped (BENCH_BRIDGE=0)");
    }
    if s.peer {
        peers::bench_peers(s, &rt, report)?;
    } else {
        report.note("6: peer comparison skipped (BENCH_PEER=0)");
    }
    bench_stores(s, &rt, report)?;
    if s.bulk {
        bench_bulk(s, &rt, report)
    } else {
        report.note("8: /Bulk load skipped (BENCH_BULK=0)");
        Ok(())
    }
}

/// A single-threaded runtime by default: it bounds the generator to one core, which
/// leaves the daemon the rest of the machine and makes "generator saturated" a
/// readable 100% in the CPU figures.
fn runtime(threads: usize) -> Result<Runtime, String> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the Tokio runtime: {e}"))
}

fn print_header(s: &Settings) {
    println!("scim-bridge HTTP load benchmark");
    println!("machine   : {}", machine_facts());
    println!("load avg  : {} (at the start)", load_average());
    println!("source    : {}", source_state());
    println!(
        "client    : hyper HTTP/1.1, one keep-alive connection per simulated client, {} Tokio thread(s), seed {}",
        s.client_threads, s.seed
    );
    println!("command   : {}", s.command());
    println!();
}

// ---------------------------------------------------------------------------
// scim-bridge phases (1-5)

/// Everything a phase needs to send load to one server.
struct Bench<'a> {
    s: &'a Settings,
    rt: &'a Runtime,
    /// Connection `i` of a load goes to `targets[i % len]`: several instances share
    /// one load the way a round-robin load balancer would spread it.
    targets: Vec<Arc<Target>>,
    /// The PostgreSQL cluster the instances share, for its CPU figure.
    database: Option<PathBuf>,
    pop: Arc<Population>,
}

impl Bench<'_> {
    fn drive(&self, work: Arc<dyn Workload>, load: Load) -> Outcome {
        let servers = Servers {
            targets: &self.targets,
            database: self.database.as_deref(),
        };
        drive(self.rt, &servers, work, load, self.s.seed)
    }

    /// POSTs new users, `limit` of them or for `duration`, whichever ends first.
    fn create_users(&self, connections: usize, duration: Option<Duration>, limit: u64) -> Outcome {
        let work = Arc::new(CreateUsers {
            first: self.pop.next_index(),
            pop: Arc::clone(&self.pop),
        });
        let out = self.drive(
            work,
            Load {
                connections,
                duration,
                limit,
            },
        );
        self.pop.advance(out.ok + out.failed);
        out
    }

    /// Looks up random existing users by userName for the configured time.
    fn filter_users(&self, connections: usize) -> Outcome {
        let work = Arc::new(FilterUsers {
            users: self.pop.snapshot(),
        });
        self.drive(
            work,
            Load {
                connections,
                duration: Some(self.s.duration()),
                limit: u64::MAX,
            },
        )
    }

    /// Sends a fixed list of requests; each answer's status must be in `accept`.
    fn script(&self, requests: Vec<Req>, accept: &'static [u16], connections: usize) -> Outcome {
        let limit = requests.len() as u64;
        self.drive(
            Arc::new(Script { requests, accept }),
            Load {
                connections,
                duration: None,
                limit,
            },
        )
    }

    /// One request outside any measured load.
    fn call(&self, req: &Req) -> Result<Reply, String> {
        let target = self.targets.first().ok_or("no server to call")?;
        let mut conn = Conn::new(Arc::clone(target));
        self.rt.block_on(conn.send(req))
    }
}

fn bench_bridge(s: &Settings, rt: &Runtime, report: &mut Report) -> Result<(), String> {
    let mut daemon = Daemon::create(&s.log_level)?;
    let token = daemon.token("entra")?;
    let boot = daemon.start()?;
    report.note(format!(
        "scim-bridge: {}; data dir {} ({}); log level \"{}\" to a file; first start (empty store) to /readyz 200 in {}",
        bin(),
        daemon.data_dir().display(),
        filesystem_of(&daemon.data_dir()),
        s.log_level,
        ms(boot)
    ));
    let b = Bench {
        s,
        rt,
        targets: vec![Arc::new(Target::bridge(daemon.port, &token, daemon.pid()))],
        database: None,
        pop: Arc::new(Population::default()),
    };
    phase_post(&b, daemon.addr(), report);
    phase_filter(&b, daemon.addr(), report);
    let big_group = phase_big_group(&b, daemon.addr(), report);
    if let Some((gid, members)) = &big_group {
        phase_big_reads(&b, &daemon, gid, *members, report);
    }
    phase_groups(&b, &daemon, u64::from(big_group.is_some()), report);
    phase_restart(&mut daemon, s, report)?;
    match daemon.stop() {
        Ok(took) => report.note(format!("final SIGTERM shutdown took {}", ms(took))),
        Err(e) => report.note(format!("final shutdown: {e}")),
    }
    Ok(())
}

/// 1: POST /Users for the configured time or user count.
fn phase_post(b: &Bench, addr: SocketAddr, report: &mut Report) {
    let s = b.s;
    report.progress(format!(
        "1: POST /Users with {} connections for {} s or {} users",
        s.concurrency, s.seconds, s.post_users
    ));
    let before = ServerMetrics::scrape(addr);
    let out = b.create_users(s.concurrency, Some(s.duration()), s.post_users);
    let after = ServerMetrics::scrape(addr);
    let label = format!(
        "POST /Users, {} conns, {} s or {} users",
        s.concurrency, s.seconds, s.post_users
    );
    report_rate(report, "1", &label, &out, 5_000.0, None);
    report.check(
        "1",
        "  answers not 201",
        thousands(out.failed),
        "0",
        out.failed == 0,
    );
    report.note(format!("1 POST /Users: {}", out.describe()));
    report.note(format!(
        "1 POST /Users: {}",
        server_note(before, after, out.ok)
    ));
}

/// 2: fill the store to `BENCH_USERS`, then look users up by userName.
fn phase_filter(b: &Bench, addr: SocketAddr, report: &mut Report) {
    let s = b.s;
    let missing = s.users.saturating_sub(b.pop.len());
    report.progress(format!(
        "2: loading {missing} more users with {} connections",
        s.concurrency
    ));
    let before = ServerMetrics::scrape(addr);
    let load = b.create_users(s.concurrency, None, missing);
    let after = ServerMetrics::scrape(addr);
    report.row(
        "2",
        &format!(
            "load to {} users: time ({} POSTs)",
            thousands(s.users),
            thousands(missing)
        ),
        format!(
            "{:.1} s ({}/s)",
            load.elapsed.as_secs_f64(),
            thousands(load.rate() as u64)
        ),
        "",
    );
    report.check(
        "2",
        "  load answers not 201",
        thousands(load.failed),
        "0",
        load.failed == 0,
    );
    report.note(format!("2 load: {}", load.describe()));
    report.note(format!("2 load: {}", server_note(before, after, load.ok)));
    report.note(format!("2 load: users stored {}", thousands(b.pop.len())));

    for &c in &s.get_concurrency {
        report.progress(format!(
            "2: GET /Users?filter=userName eq ... with {c} connections for {} s",
            s.seconds
        ));
        let before = ServerMetrics::scrape(addr);
        let out = b.filter_users(c);
        let after = ServerMetrics::scrape(addr);
        let label = format!(
            "GET filter userName eq, {c} conns, {} users",
            thousands(b.pop.len())
        );
        report_rate(report, "2", &label, &out, 20_000.0, Some(10.0));
        report.check(
            "2",
            "  answers not 200 + totalResults 1",
            thousands(out.failed),
            "0",
            out.failed == 0,
        );
        report.note(format!("2 GET filter c={c}: {}", out.describe()));
        report.note(format!(
            "2 GET filter c={c}: {}",
            server_note(before, after, 0)
        ));
    }
}

/// 3: one group with `BENCH_GROUP_MEMBERS` members, then single-member PATCHes on it.
/// Returns the group's id and member count if it was created (it counts towards
/// `BENCH_GROUPS`).
fn phase_big_group(b: &Bench, addr: SocketAddr, report: &mut Report) -> Option<(String, usize)> {
    let s = b.s;
    let users = b.pop.snapshot();
    let (members, singles) = group_split(users.len(), s.group_members, s.member_patches);
    report.progress(format!(
        "3: group with {members} members, then {singles} + {singles} single PATCHes"
    ));
    let gid = match create_group(b, "bench-big-group") {
        Ok(id) => id,
        Err(e) => {
            report.check(
                "3",
                "create the big group",
                format!("failed: {e}"),
                "201",
                false,
            );
            return None;
        }
    };
    let path = format!("/Groups/{gid}");

    let chunks: Vec<Req> = users[..members]
        .chunks(MEMBER_CHUNK)
        .map(|c| Req::patch(&path, &add_members(c)))
        .collect();
    let before = ServerMetrics::scrape(addr);
    let build = b.script(chunks, &[200, 204], 1);
    let after = ServerMetrics::scrape(addr);
    report.row(
        "3",
        &format!(
            "build: {} members in PATCHes of {MEMBER_CHUNK}",
            thousands(members as u64)
        ),
        format!(
            "{:.1} s; per PATCH p50 {} p99 {}",
            build.elapsed.as_secs_f64(),
            pct(&build, 50.0),
            pct(&build, 99.0)
        ),
        "",
    );
    report.check(
        "3",
        "  build answers not 2xx",
        thousands(build.failed),
        "0",
        build.failed == 0,
    );
    report.note(format!("3 build: {}", build.describe()));
    report.note(format!("3 build: {}", server_note(before, after, build.ok)));

    let extra = &users[members..members + singles];
    let adds = extra
        .iter()
        .map(|u| Req::patch(&path, &add_members(std::slice::from_ref(u))));
    let add = b.script(adds.collect(), &[200, 204], 1);
    report_member_patch(
        report,
        &format!(
            "add 1 member to the {}-member group",
            thousands(members as u64)
        ),
        &add,
    );
    let removes = extra
        .iter()
        .map(|u| Req::patch(&path, &remove_member(&u.id)));
    let remove = b.script(removes.collect(), &[200, 204], 1);
    report_member_patch(
        report,
        "remove 1 member, path members[value eq ...]",
        &remove,
    );
    Some((gid, members))
}

/// Of `users`, how many go into a group of (at most) `members`, and how many stay out
/// of it for (at most) `singles` single-member PATCHes, which need users that are not
/// members yet.
fn group_split(users: usize, members: u64, singles: u64) -> (usize, usize) {
    let singles = singles.min(users as u64) as usize;
    let members = members.min((users - singles) as u64) as usize;
    (members, singles)
}

/// 3: full reads of the big group, members included, one reader and then
/// `BENCH_BIG_READERS` at once, by id and through a filtered list; the daemon's
/// peak RSS during each (sampled every 2 ms: a body held for less may be missed).
fn phase_big_reads(b: &Bench, daemon: &Daemon, gid: &str, members: usize, report: &mut Report) {
    let s = b.s;
    let Some(pid) = daemon.pid() else {
        report.note("3 full reads: no daemon pid, skipped");
        return;
    };
    let filter = "displayName eq \"bench-big-group\"";
    let reads = [
        ("GET /Groups/{id}", format!("/Groups/{gid}"), false),
        (
            "GET /Groups?filter=displayName eq (members included)",
            format!("/Groups?filter={}", percent_encode(filter)),
            true,
        ),
    ];
    for (what, path, listed) in reads {
        for readers in [1, s.big_readers] {
            report.progress(format!("3: {what}, {readers} at once"));
            let requests = (0..s.big_reads * readers as u64)
                .map(|_| Req::get(path.clone()))
                .collect();
            let sampler = RssSampler::start(pid);
            let out = b.drive(
                Arc::new(BigReads {
                    requests,
                    members,
                    listed,
                }),
                Load {
                    connections: readers,
                    duration: None,
                    limit: s.big_reads * readers as u64,
                },
            );
            let peak = sampler.stop();
            report.check(
                "3",
                &format!(
                    "{what}, {readers} reader(s), {} members: peak VmRSS",
                    thousands(members as u64)
                ),
                peak.map_or_else(|| "unreadable".into(), megabytes),
                "< 150 MB",
                peak.is_some_and(|kb| kb * 1024 < 150_000_000) && out.failed == 0,
            );
            report.note(format!(
                "3 {what}, {readers} reader(s): {}; per read p50 {} p99 {}",
                out.describe(),
                pct(&out, 50.0),
                pct(&out, 99.0)
            ));
        }
    }
    report.note(format!(
        "3 after full reads: {}",
        memory_note(pid, &daemon.data_dir())
    ));
}

/// Polls a process's VmRSS on a thread and keeps the largest value seen.
struct RssSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Option<u64>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak = None;
            loop {
                let done = flag.load(Ordering::Acquire);
                if let Some(kb) = proc_status_kb(pid, "VmRSS") {
                    peak = Some(peak.map_or(kb, |p: u64| p.max(kb)));
                }
                if done {
                    return peak;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        RssSampler { stop, thread }
    }

    fn stop(self) -> Option<u64> {
        self.stop.store(true, Ordering::Release);
        self.thread.join().ok().flatten()
    }
}

fn report_member_patch(report: &mut Report, what: &str, out: &Outcome) {
    let p50 = out.percentile(50.0);
    report.check(
        "3",
        &format!("{} sequential PATCHes: {what}", out.ok + out.failed),
        format!("p50 {} p99 {}", pct(out, 50.0), pct(out, 99.0)),
        "p50 < 5 ms",
        p50.is_some_and(|d| d < Duration::from_millis(5)) && out.failed == 0,
    );
    if out.failed > 0 {
        report.row("3", "  answers not 2xx", thousands(out.failed), "0");
    }
    report.note(format!("3 {what}: {}", out.describe()));
}

fn create_group(b: &Bench, name: &str) -> Result<String, String> {
    let reply = b.call(&Req::post("/Groups", &group_body(name)))?;
    if reply.status != 201 {
        return Err(unexpected(&reply));
    }
    serde_json::from_slice::<WithId>(&reply.body)
        .map(|g| g.id)
        .map_err(|e| format!("group answer without an id: {e}"))
}

/// 4: fill up to `BENCH_GROUPS` (empty) groups, then read the daemon's resident memory.
fn phase_groups(b: &Bench, daemon: &Daemon, existing: u64, report: &mut Report) {
    let s = b.s;
    let more = s.groups.saturating_sub(existing);
    report.progress(format!(
        "4: creating {more} groups with {} connections",
        s.concurrency
    ));
    let requests = (0..more)
        .map(|i| Req::post("/Groups", &group_body(&format!("bench-group-{i:06}"))))
        .collect();
    let before = ServerMetrics::scrape(daemon.addr());
    let out = b.script(requests, &[201], s.concurrency);
    let after = ServerMetrics::scrape(daemon.addr());
    report.row(
        "4",
        &format!("create {} groups", thousands(more)),
        format!(
            "{:.1} s ({}/s)",
            out.elapsed.as_secs_f64(),
            thousands(out.rate() as u64)
        ),
        "",
    );
    report.check(
        "4",
        "  answers not 201",
        thousands(out.failed),
        "0",
        out.failed == 0,
    );
    report.note(format!("4 groups: {}", out.describe()));
    report.note(format!("4 groups: {}", server_note(before, after, out.ok)));

    let label = format!(
        "daemon VmRSS, {} users + {} groups",
        thousands(b.pop.len()),
        thousands(existing + out.ok)
    );
    match daemon.pid().and_then(|p| proc_status_kb(p, "VmRSS")) {
        Some(kb) => report.check(
            "4",
            &label,
            megabytes(kb),
            "< 150 MB",
            kb * 1024 < 150_000_000,
        ),
        None => report.check("4", &label, "unreadable", "< 150 MB", false),
    }
    if let Some(pid) = daemon.pid() {
        report.note(format!(
            "4 memory: {}",
            memory_note(pid, &daemon.data_dir())
        ));
    }
}

/// The parts of the daemon's RSS and the size of its database, to tell data the
/// process holds from caches (SQLite's page cache is anonymous memory) and from
/// file pages it maps.
fn memory_note(pid: u32, data_dir: &Path) -> String {
    let kb = |key| proc_status_kb(pid, key).map_or_else(|| "?".into(), megabytes);
    format!(
        "VmRSS = RssAnon {} + RssFile {} + RssShmem {}; peak (VmHWM) {}; database files {}",
        kb("RssAnon"),
        kb("RssFile"),
        kb("RssShmem"),
        kb("VmHWM"),
        megabytes(dir_size(data_dir) / 1024)
    )
}

/// Bytes in the files directly inside `dir`.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// 5: SIGTERM, wait for the exit, start again and time it to `/readyz` 200.
fn phase_restart(daemon: &mut Daemon, s: &Settings, report: &mut Report) -> Result<(), String> {
    report.progress("5: restarting the daemon");
    let shutdown = daemon.stop()?;
    let ready = daemon.start()?;
    report.check(
        "5",
        &format!(
            "restart with {} users stored: start to /readyz 200",
            thousands(s.users)
        ),
        ms(ready),
        "< 1 s",
        ready < Duration::from_secs(1),
    );
    let stored = ServerMetrics::scrape(daemon.addr()).map(|m| (m.users, m.groups));
    let rss = daemon.pid().and_then(|p| proc_status_kb(p, "VmRSS"));
    report.note(format!(
        "5 restart: SIGTERM to exit {}; after start: users/groups stored {}, VmRSS {}",
        ms(shutdown),
        stored.map_or_else(
            || "unknown".into(),
            |(u, g)| format!("{}/{}", thousands(u as u64), thousands(g as u64))
        ),
        rss.map_or_else(|| "unknown".into(), megabytes),
    ));
    Ok(())
}

/// Rows for a timed load: rate against `min_rate`, latency against `max_p99_ms`.
fn report_rate(
    report: &mut Report,
    key: &str,
    label: &str,
    out: &Outcome,
    min_rate: f64,
    max_p99_ms: Option<f64>,
) {
    report.check(
        key,
        &format!("{label}: rate"),
        format!("{}/s", thousands(out.rate() as u64)),
        &format!(">= {}/s", thousands(min_rate as u64)),
        out.rate() >= min_rate,
    );
    report.row(key, "  daemon CPU per request", cpu_per_request(out), "");
    let value = format!("{} / {}", pct(out, 50.0), pct(out, 99.0));
    match max_p99_ms {
        Some(limit) => {
            let p99_ok = out
                .percentile(99.0)
                .is_some_and(|d| d.as_secs_f64() * 1e3 < limit);
            report.check(
                key,
                "  latency p50 / p99",
                value,
                &format!("p99 < {limit} ms"),
                p99_ok,
            );
        }
        None => report.row(key, "  latency p50 / p99", value, ""),
    }
}

// ---------------------------------------------------------------------------
// 7: the same SCIM loads on each store

/// Where phase 7's daemons keep their data.
#[derive(Clone, Copy, PartialEq)]
enum StoreSetup {
    /// One daemon on its embedded SQLite file.
    Sqlite,
    /// This many daemons on one PostgreSQL database.
    Postgres(usize),
}

impl StoreSetup {
    /// `sqlite`, `postgres` (one daemon) and `postgresN` (N daemons), comma-separated.
    fn parse_list(text: &str) -> Result<Vec<StoreSetup>, String> {
        let bad = |t: &str| format!("BENCH_STORES: {t:?} is not sqlite, postgres or postgresN");
        text.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| match t {
                "sqlite" => Ok(StoreSetup::Sqlite),
                "postgres" => Ok(StoreSetup::Postgres(1)),
                _ => match t.strip_prefix("postgres").map(str::parse::<usize>) {
                    Some(Ok(n)) if n >= 1 => Ok(StoreSetup::Postgres(n)),
                    _ => Err(bad(t)),
                },
            })
            .collect()
    }

    fn name(self) -> String {
        match self {
            StoreSetup::Sqlite => "sqlite".into(),
            StoreSetup::Postgres(1) => "postgres".into(),
            StoreSetup::Postgres(n) => format!("postgres{n}"),
        }
    }

    fn label(self) -> String {
        match self {
            StoreSetup::Sqlite => "SQLite, 1 daemon".into(),
            StoreSetup::Postgres(1) => "PostgreSQL, 1 daemon".into(),
            StoreSetup::Postgres(n) => format!("PostgreSQL, {n} daemons"),
        }
    }
}

/// 8: a fresh daemon loaded with `BENCH_USERS` users and `BENCH_GROUPS` groups
/// through /Bulk (`BENCH_BULK_OPS` operations a request, `BENCH_CONCURRENCY`
/// requests at once), then its resident memory: what a load path leaves behind.
fn bench_bulk(s: &Settings, rt: &Runtime, report: &mut Report) -> Result<(), String> {
    let mut daemon = Daemon::create(&s.log_level)?;
    let token = daemon.token("entra")?;
    daemon.start()?;
    let b = Bench {
        s,
        rt,
        targets: vec![Arc::new(Target::bridge(daemon.port, &token, daemon.pid()))],
        database: None,
        pop: Arc::new(Population::default()),
    };
    let users: Vec<Value> = (0..s.users)
        .map(|i| bulk_op("/Users", &format!("u{i}"), user_body(i)))
        .collect();
    let groups: Vec<Value> = (0..s.groups)
        .map(|i| {
            let name = format!("bulk-group-{i:06}");
            bulk_op("/Groups", &format!("g{i}"), group_body(&name))
        })
        .collect();
    for (what, ops) in [("users", users), ("groups", groups)] {
        report.progress(format!(
            "8: /Bulk: {} {what}, {} operations a request, {} connections",
            ops.len(),
            s.bulk_ops,
            s.concurrency
        ));
        let requests: Vec<Req> = ops
            .chunks(s.bulk_ops)
            .map(|c| Req::post("/Bulk", &json!({"schemas": [BULK_SCHEMA], "Operations": c})))
            .collect();
        let total_ops = ops.len() as u64;
        drop(ops);
        let before = ServerMetrics::scrape(daemon.addr());
        let n = requests.len() as u64;
        let out = b.drive(
            Arc::new(BulkCreates { requests }),
            Load {
                connections: s.concurrency,
                duration: None,
                limit: n,
            },
        );
        let after = ServerMetrics::scrape(daemon.addr());
        let created = after
            .as_ref()
            .map(|m| thousands((m.users + m.groups) as u64));
        report.check(
            "8",
            &format!("/Bulk load of {what}: time, requests not all 201"),
            format!(
                "{:.1} s, {} failed",
                out.elapsed.as_secs_f64(),
                thousands(out.failed)
            ),
            "0 failed",
            out.failed == 0,
        );
        report.note(format!("8 /Bulk {what}: {}", out.describe()));
        // Every operation of an answered request was checked to be a 201.
        let acked = if out.failed == 0 { total_ops } else { 0 };
        report.note(format!(
            "8 /Bulk {what}: {}",
            server_note(before, after, acked)
        ));
        if let Some(c) = created {
            report.note(format!("8 /Bulk {what}: users + groups stored {c}"));
        }
    }
    let pid = daemon.pid();
    let label = format!(
        "daemon VmRSS after /Bulk load, {} users + {} groups",
        thousands(s.users),
        thousands(s.groups)
    );
    match pid.and_then(|p| proc_status_kb(p, "VmRSS")) {
        Some(kb) => report.check(
            "8",
            &label,
            megabytes(kb),
            "< 150 MB",
            kb * 1024 < 150_000_000,
        ),
        None => report.check("8", &label, "unreadable", "< 150 MB", false),
    }
    if let Some(p) = pid {
        report.note(format!("8 memory: {}", memory_note(p, &daemon.data_dir())));
        if std::env::var_os("BENCH_TRIM_PROBE").is_some() {
            report.note(format!("8 memory: {}", trim_probe(p)));
        }
    }
    daemon.stop()?;
    Ok(())
}

/// A profiling aid (`BENCH_TRIM_PROBE=1`, needs gdb and ptrace rights): how much of
/// the daemon's RSS is memory glibc's malloc holds free, by asking it to give back
/// what it can (`malloc_trim(0)`) and reading VmRSS again.
fn trim_probe(pid: u32) -> String {
    let before = proc_status_kb(pid, "VmRSS");
    let out = Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "call (int) malloc_trim(0)",
        ])
        .output();
    let after = proc_status_kb(pid, "VmRSS");
    match (out, before, after) {
        (Ok(o), Some(b), Some(a)) if o.status.success() => format!(
            "malloc_trim(0) probe: VmRSS {} -> {}",
            megabytes(b),
            megabytes(a)
        ),
        (Ok(o), ..) => format!(
            "malloc_trim(0) probe failed: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        (Err(e), ..) => format!("malloc_trim(0) probe: cannot run gdb: {e}"),
    }
}

fn bulk_op(path: &str, bulk_id: &str, data: Value) -> Value {
    json!({"method": "POST", "path": path, "bulkId": bulk_id, "data": data})
}

/// 7: for each store, fresh daemons take the POST and GET-filter loads of phases 1
/// and 2, so the rows compare like with like.
fn bench_stores(s: &Settings, rt: &Runtime, report: &mut Report) -> Result<(), String> {
    if s.stores.is_empty() {
        report.note("7: store comparison skipped (BENCH_STORES is empty)");
        return Ok(());
    }
    let cluster = if s.stores.iter().any(|st| *st != StoreSetup::Sqlite) {
        report.progress("7: starting a throwaway PostgreSQL cluster (fsync on)");
        match TestCluster::start_with(ClusterOptions {
            fsync: true,
            ..ClusterOptions::default()
        }) {
            Ok(c) => c,
            Err(e) => {
                report.note(format!("7: cannot start PostgreSQL: {e}"));
                None
            }
        }
    } else {
        None
    };
    report.note(format!(
        "7: per store, fresh daemons; POST /Users with {c} connections for {} s or {} users, then a load to {} users, \
         then GET filter userName eq with {c} connections for {} s. With n daemons connection i goes to daemon i mod n, \
         as a round-robin balancer would send it, and users created through one daemon are looked up through another. \
         The generator, the daemons and PostgreSQL share this machine's cores: a second daemon adds no CPU here, \
         so its row shows what sharing one database costs, not scale-out",
        s.seconds,
        s.post_users,
        thousands(s.store_users),
        s.seconds,
        c = s.concurrency,
    ));
    if let Some(c) = &cluster {
        report.note(format!(
            "7: PostgreSQL {} on 127.0.0.1 (fsync on, synchronous_commit on, shared_buffers 32MB), data in {} ({})",
            postgres_version(),
            c.root().display(),
            filesystem_of(c.root())
        ));
    }
    for (i, setup) in s.stores.iter().copied().enumerate() {
        let label = setup.label();
        let (url, database) = match (setup, &cluster) {
            (StoreSetup::Sqlite, _) => (None, None),
            (StoreSetup::Postgres(_), Some(c)) => (
                Some(rt.block_on(c.create_database(&format!("bench{i}")))?),
                Some(c.root().join("data").join("postmaster.pid")),
            ),
            (StoreSetup::Postgres(_), None) => {
                report.row("7", &label, "not run (no PostgreSQL)", "");
                continue;
            }
        };
        if let Err(e) = store_run(s, rt, report, setup, url.as_deref(), database) {
            report.row("7", &label, "failed", "");
            report.note(format!("7 {label}: {e}"));
        }
    }
    Ok(())
}

fn store_run(
    s: &Settings,
    rt: &Runtime,
    report: &mut Report,
    setup: StoreSetup,
    url: Option<&str>,
    database: Option<PathBuf>,
) -> Result<(), String> {
    let label = setup.label();
    let count = match setup {
        StoreSetup::Sqlite => 1,
        StoreSetup::Postgres(n) => n,
    };
    let mut daemons = (0..count)
        .map(|_| Daemon::create_with(&s.log_level, url))
        .collect::<Result<Vec<_>, _>>()?;
    // On PostgreSQL the token is in the shared database, so every daemon accepts it.
    let token = daemons.first().ok_or("no daemon")?.token("entra")?;
    for d in &mut daemons {
        d.start()?;
    }
    let b = Bench {
        s,
        rt,
        targets: daemons
            .iter()
            .map(|d| Arc::new(Target::bridge(d.port, &token, d.pid())))
            .collect(),
        database,
        pop: Arc::new(Population::default()),
    };
    report.progress(format!("7 {label}: POST /Users for {} s", s.seconds));
    let post = b.create_users(s.concurrency, Some(s.duration()), s.post_users);
    let missing = s.store_users.saturating_sub(b.pop.len());
    report.progress(format!("7 {label}: loading {missing} more users"));
    let load = b.create_users(s.concurrency, None, missing);
    report.progress(format!("7 {label}: GET filter for {} s", s.seconds));
    let get = b.filter_users(s.concurrency);
    report.row(
        "7",
        &format!(
            "{label}: POST / GET filter ({} users), {} conns",
            thousands(b.pop.len()),
            s.concurrency
        ),
        two_rates(&post, &get),
        "",
    );
    let failed = post.failed + load.failed + get.failed;
    report.check(
        "7",
        "  answers not 201 / 200",
        thousands(failed),
        "0",
        failed == 0,
    );
    report.note(format!("7 {label} POST: {}", post.describe()));
    if missing > 0 {
        report.note(format!("7 {label} load: {}", load.describe()));
    }
    report.note(format!("7 {label} GET filter: {}", get.describe()));
    for d in &mut daemons {
        if let Err(e) = d.stop() {
            report.note(format!("7 {label}: shutdown: {e}"));
        }
    }
    Ok(())
}

/// `postgres --version` of the binaries the cluster runs.
fn postgres_version() -> String {
    scim_bridge::store::postgres::testkit::find_bin()
        .and_then(|bin| {
            Command::new(bin.join("postgres"))
                .arg("--version")
                .output()
                .ok()
        })
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "(version unknown)".into())
}

// ---------------------------------------------------------------------------
// Workloads

/// One request, relative to the target's SCIM base. The body is `Bytes` so that
/// replaying a scripted request costs a reference count, not a copy.
#[derive(Clone)]
struct Req {
    method: Method,
    path: String,
    body: Option<Bytes>,
}

impl Req {
    fn get(path: String) -> Req {
        Req {
            method: Method::GET,
            path,
            body: None,
        }
    }
    fn post(path: &str, body: &Value) -> Req {
        Req {
            method: Method::POST,
            path: path.to_owned(),
            body: Some(Bytes::from(body.to_string())),
        }
    }
    fn patch(path: &str, body: &Value) -> Req {
        Req {
            method: Method::PATCH,
            path: path.to_owned(),
            body: Some(Bytes::from(body.to_string())),
        }
    }
}

/// The answer to one request.
struct Reply {
    status: u16,
    body: Bytes,
}

/// What a load sends and how it judges the answers.
trait Workload: Send + Sync + 'static {
    /// The `n`th request of the load (0-based), or `None` when there are no more.
    fn request(&self, n: u64, rng: &mut Rng) -> Option<Req>;
    /// Judges the answer to request `n`; `Err(why)` counts it as failed.
    fn check(&self, n: u64, reply: &Reply) -> Result<(), String>;
}

/// A user the server created: its bench index (which determines its userName) and id.
#[derive(Clone)]
struct Created {
    index: u64,
    id: String,
}

/// The users created on one server, shared by the workers of every phase.
#[derive(Default)]
struct Population {
    /// The next unused user index; indexes are never reused, even after a failed POST.
    next: AtomicU64,
    created: Mutex<Vec<Created>>,
}

impl Population {
    fn next_index(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }
    fn advance(&self, by: u64) {
        self.next.fetch_add(by, Ordering::SeqCst);
    }
    fn add(&self, user: Created) {
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(user);
    }
    fn len(&self) -> u64 {
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len() as u64
    }
    /// A copy workers can read without the lock.
    fn snapshot(&self) -> Arc<Vec<Created>> {
        Arc::new(
            self.created
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// POST /Users with a fresh userName per request, recording the ids.
struct CreateUsers {
    first: u64,
    pop: Arc<Population>,
}

impl Workload for CreateUsers {
    fn request(&self, n: u64, _: &mut Rng) -> Option<Req> {
        Some(Req::post("/Users", &user_body(self.first + n)))
    }
    fn check(&self, n: u64, reply: &Reply) -> Result<(), String> {
        if reply.status != 201 {
            return Err(unexpected(reply));
        }
        let created: WithId =
            serde_json::from_slice(&reply.body).map_err(|e| format!("201 without an id: {e}"))?;
        self.pop.add(Created {
            index: self.first + n,
            id: created.id,
        });
        Ok(())
    }
}

/// GET /Users?filter=userName eq "<random existing user>".
struct FilterUsers {
    users: Arc<Vec<Created>>,
}

impl Workload for FilterUsers {
    fn request(&self, _: u64, rng: &mut Rng) -> Option<Req> {
        let user = self
            .users
            .get(rng.below(self.users.len() as u64) as usize)?;
        let filter = format!("userName eq \"{}\"", user_name(user.index));
        Some(Req::get(format!(
            "/Users?filter={}",
            percent_encode(&filter)
        )))
    }
    fn check(&self, _: u64, reply: &Reply) -> Result<(), String> {
        if reply.status != 200 {
            return Err(unexpected(reply));
        }
        match serde_json::from_slice::<ListTotal>(&reply.body) {
            Ok(ListTotal { total_results: 1 }) => Ok(()),
            Ok(ListTotal { total_results }) => {
                Err(format!("totalResults {total_results}, wanted 1"))
            }
            Err(e) => Err(format!("unreadable list response: {e}")),
        }
    }
}

/// A fixed list of requests, each answered with a status in `accept`.
struct Script {
    requests: Vec<Req>,
    accept: &'static [u16],
}

impl Workload for Script {
    fn request(&self, n: u64, _: &mut Rng) -> Option<Req> {
        self.requests.get(usize::try_from(n).ok()?).cloned()
    }
    fn check(&self, _: u64, reply: &Reply) -> Result<(), String> {
        if self.accept.contains(&reply.status) {
            Ok(())
        } else {
            Err(unexpected(reply))
        }
    }
}

/// Full reads of the big group: each answer must carry all its members (`listed`:
/// inside a ListResponse of one group).
struct BigReads {
    requests: Vec<Req>,
    members: usize,
    listed: bool,
}

#[derive(Deserialize)]
struct MembersOnly {
    #[serde(default)]
    members: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ListOfGroups {
    #[serde(rename = "Resources")]
    resources: Vec<MembersOnly>,
}

impl Workload for BigReads {
    fn request(&self, n: u64, _: &mut Rng) -> Option<Req> {
        self.requests.get(usize::try_from(n).ok()?).cloned()
    }
    fn check(&self, _: u64, reply: &Reply) -> Result<(), String> {
        if reply.status != 200 {
            return Err(unexpected(reply));
        }
        let got = if self.listed {
            let list: ListOfGroups = serde_json::from_slice(&reply.body)
                .map_err(|e| format!("unreadable list response: {e}"))?;
            match list.resources.as_slice() {
                [one] => one.members.len(),
                other => return Err(format!("{} groups listed, wanted 1", other.len())),
            }
        } else {
            serde_json::from_slice::<MembersOnly>(&reply.body)
                .map_err(|e| format!("unreadable group: {e}"))?
                .members
                .len()
        };
        if got == self.members {
            Ok(())
        } else {
            Err(format!("{got} members, wanted {}", self.members))
        }
    }
}

/// /Bulk requests; every operation must have succeeded with `201`.
struct BulkCreates {
    requests: Vec<Req>,
}

#[derive(Deserialize)]
struct BulkAnswer {
    #[serde(rename = "Operations")]
    operations: Vec<BulkOpAnswer>,
}

#[derive(Deserialize)]
struct BulkOpAnswer {
    status: String,
}

impl Workload for BulkCreates {
    fn request(&self, n: u64, _: &mut Rng) -> Option<Req> {
        self.requests.get(usize::try_from(n).ok()?).cloned()
    }
    fn check(&self, _: u64, reply: &Reply) -> Result<(), String> {
        if reply.status != 200 {
            return Err(unexpected(reply));
        }
        let answer: BulkAnswer = serde_json::from_slice(&reply.body)
            .map_err(|e| format!("unreadable BulkResponse: {e}"))?;
        match answer.operations.iter().find(|o| o.status != "201") {
            None => Ok(()),
            Some(o) => Err(format!("a bulk operation answered {}", o.status)),
        }
    }
}

/// Only the field we need from a created resource; serde skips the rest cheaply.
#[derive(Deserialize)]
struct WithId {
    id: String,
}

#[derive(Deserialize)]
struct ListTotal {
    #[serde(rename = "totalResults")]
    total_results: u64,
}

fn user_name(index: u64) -> String {
    format!("bench.user.{index:07}@bench.example")
}

/// A user as Entra ID sends it, minus the attributes scim2-server would not accept.
fn user_body(index: u64) -> Value {
    let name = user_name(index);
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "externalId": format!("ext-{index:07}"),
        "userName": name,
        "active": true,
        "displayName": format!("Bench User {index}"),
        "emails": [{"primary": true, "type": "work", "value": name}],
        "name": {"givenName": "Bench", "familyName": format!("User {index}")},
        ENTERPRISE_SCHEMA: {"department": "Load", "employeeNumber": index.to_string()}
    })
}

fn group_body(name: &str) -> Value {
    json!({"schemas": [GROUP_SCHEMA], "displayName": name})
}

fn add_members(users: &[Created]) -> Value {
    let value: Vec<Value> = users.iter().map(|u| json!({"value": u.id})).collect();
    json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": value}]})
}

fn remove_member(id: &str) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]})
}

/// "HTTP 409: {...}" with the start of the body, for error samples.
fn unexpected(reply: &Reply) -> String {
    let body = String::from_utf8_lossy(&reply.body);
    let snippet: String = body.chars().take(160).collect();
    format!("HTTP {}: {snippet}", reply.status)
}

// ---------------------------------------------------------------------------
// Load driver

/// How hard and how long to push: `connections` workers send back to back until
/// `duration` has passed or `limit` requests were issued.
#[derive(Clone, Copy)]
struct Load {
    connections: usize,
    duration: Option<Duration>,
    limit: u64,
}

/// The servers a load goes to, and the database behind them if it is PostgreSQL.
struct Servers<'a> {
    targets: &'a [Arc<Target>],
    /// `postmaster.pid` of the cluster.
    database: Option<&'a Path>,
}

impl Servers<'_> {
    fn pids(&self) -> Vec<u32> {
        self.targets.iter().filter_map(|t| t.pid).collect()
    }
}

/// Runs a load to completion and measures it, including both sides' CPU time.
fn drive(
    rt: &Runtime,
    servers: &Servers,
    work: Arc<dyn Workload>,
    load: Load,
    seed: u64,
) -> Outcome {
    let pids = servers.pids();
    let before = CpuSnapshot::take(&pids, servers.database);
    let started = Instant::now();
    let tally = rt.block_on(run_workers(servers.targets, work, load, seed));
    let elapsed = started.elapsed();
    let cpu = CpuSnapshot::take(&pids, servers.database).since(&before, elapsed);
    Outcome::new(tally, elapsed, load.duration, cpu)
}

/// CPU seconds used so far by this process (the generator), by the servers (whole
/// and per thread) and by the PostgreSQL cluster they share, if any.
struct CpuSnapshot {
    client: Option<f64>,
    server: Option<f64>,
    /// Thread id -> (name, CPU seconds).
    server_threads: HashMap<u32, (String, f64)>,
    database: Option<f64>,
}

/// CPU time over wall time during a load: 1.0 is one core busy throughout.
#[derive(Default)]
struct CpuUse {
    client: Option<f64>,
    server: Option<f64>,
    database: Option<f64>,
    /// By thread name (threads of one pool share a name), busiest first.
    server_threads: Vec<(String, f64)>,
}

impl CpuSnapshot {
    fn take(servers: &[u32], database: Option<&Path>) -> CpuSnapshot {
        let server = if servers.is_empty() {
            None
        } else {
            servers.iter().map(|&p| cpu_seconds(Some(p))).sum()
        };
        CpuSnapshot {
            client: cpu_seconds(None),
            server,
            server_threads: servers.iter().flat_map(|&p| thread_cpu(p)).collect(),
            database: database.and_then(cluster_cpu_seconds),
        }
    }

    /// What was used between `before` and this snapshot. Threads that exited in
    /// between are missing from the per-thread figures (not from the total).
    fn since(&self, before: &CpuSnapshot, elapsed: Duration) -> CpuUse {
        let secs = elapsed.as_secs_f64();
        let share = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / secs);
        let mut by_name: HashMap<&str, f64> = HashMap::new();
        for (tid, (name, now)) in &self.server_threads {
            let then = before.server_threads.get(tid).map_or(0.0, |t| t.1);
            *by_name.entry(name).or_default() += (now - then) / secs;
        }
        let mut server_threads: Vec<(String, f64)> = by_name
            .into_iter()
            .map(|(name, share)| (name.to_owned(), share))
            .collect();
        server_threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        CpuUse {
            client: share(before.client, self.client),
            server: share(before.server, self.server),
            database: share(before.database, self.database),
            server_threads,
        }
    }
}

async fn run_workers(
    targets: &[Arc<Target>],
    work: Arc<dyn Workload>,
    load: Load,
    seed: u64,
) -> Tally {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = load.duration.map(|d| Instant::now() + d);
    let workers: Vec<_> = (0..load.connections as u64)
        .map(|w| {
            let worker = Worker {
                conn: Conn::new(Arc::clone(&targets[w as usize % targets.len()])),
                work: Arc::clone(&work),
                next: Arc::clone(&next),
                deadline,
                limit: load.limit,
                // Distinct but fixed streams, so a run repeats its choices.
                rng: Rng::new(seed ^ (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            };
            tokio::spawn(worker.run())
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        match w.await {
            Ok(t) => total.merge(t),
            Err(e) => total.fail(format!("load worker died: {e}")),
        }
    }
    total
}

/// One simulated client: a connection sending requests back to back.
struct Worker {
    conn: Conn,
    work: Arc<dyn Workload>,
    /// Shared request counter: the work is split dynamically, so a slow
    /// connection does not leave its share undone.
    next: Arc<AtomicU64>,
    deadline: Option<Instant>,
    limit: u64,
    rng: Rng,
}

impl Worker {
    async fn run(mut self) -> Tally {
        let mut tally = Tally::default();
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            if n >= self.limit {
                break;
            }
            let Some(req) = self.work.request(n, &mut self.rng) else {
                break;
            };
            let sent = Instant::now();
            let verdict = match tokio::time::timeout(REQUEST_TIMEOUT, self.conn.send(&req)).await {
                Ok(Ok(reply)) => self.work.check(n, &reply),
                Ok(Err(e)) => Err(e),
                Err(_) => {
                    // The abandoned exchange leaves the connection in an unknown state.
                    self.conn.reset();
                    Err(format!("no answer within {REQUEST_TIMEOUT:?}"))
                }
            };
            let in_window = self.deadline.is_none_or(|d| Instant::now() <= d);
            tally.record(sent.elapsed(), verdict, in_window);
        }
        tally
    }
}

/// Counts and latencies of one load (or of one worker, before merging).
#[derive(Default)]
struct Tally {
    ok: u64,
    /// Successes answered before the load's deadline (all of them without one).
    ok_in_window: u64,
    failed: u64,
    /// Latencies of successful requests, in microseconds: 4 bytes each keeps
    /// millions of samples cheap.
    latencies_us: Vec<u32>,
    samples: Vec<String>,
}

impl Tally {
    fn record(&mut self, took: Duration, verdict: Result<(), String>, in_window: bool) {
        match verdict {
            Ok(()) => {
                self.ok += 1;
                self.ok_in_window += u64::from(in_window);
                self.latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            }
            Err(why) => self.fail(why),
        }
    }
    fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(why);
        }
    }
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.ok_in_window += other.ok_in_window;
        self.failed += other.failed;
        self.latencies_us.extend(other.latencies_us);
        for s in other.samples {
            if self.samples.len() < ERROR_SAMPLES {
                self.samples.push(s);
            }
        }
    }
}

/// A finished load.
struct Outcome {
    ok: u64,
    ok_in_window: u64,
    failed: u64,
    /// From the first request to the last answer.
    elapsed: Duration,
    /// The load's time limit, if it had one.
    window: Option<Duration>,
    /// Sorted, for percentiles.
    latencies_us: Vec<u32>,
    samples: Vec<String>,
    cpu: CpuUse,
}

impl Outcome {
    fn new(mut tally: Tally, elapsed: Duration, window: Option<Duration>, cpu: CpuUse) -> Outcome {
        tally.latencies_us.sort_unstable();
        Outcome {
            ok: tally.ok,
            ok_in_window: tally.ok_in_window,
            failed: tally.failed,
            elapsed,
            window,
            latencies_us: tally.latencies_us,
            samples: tally.samples,
            cpu,
        }
    }

    /// Successful requests per second.
    /// For a timed load, the answers within the time window over the window: a
    /// few stragglers answered long after it (scim2-server's SYN retransmits)
    /// must not decide the rate. Otherwise all answers over the elapsed time.
    fn rate(&self) -> f64 {
        let (n, secs) = match self.window {
            // A load that ran out of requests before its time is up ended early.
            Some(w) => (self.ok_in_window, w.min(self.elapsed).as_secs_f64()),
            None => (self.ok, self.elapsed.as_secs_f64()),
        };
        if secs > 0.0 { n as f64 / secs } else { 0.0 }
    }

    /// Nearest-rank percentile of the successful requests' latency.
    fn percentile(&self, p: f64) -> Option<Duration> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let us = self.latencies_us[rank.clamp(1, n) - 1];
        Some(Duration::from_micros(u64::from(us)))
    }

    /// Daemon CPU time (all daemons, user + system) per answered request, in µs:
    /// on a machine the generator shares, the figure that does not move with it.
    fn server_us_per_request(&self) -> Option<f64> {
        let answered = self.ok + self.failed;
        let cpu_seconds = self.cpu.server? * self.elapsed.as_secs_f64();
        (answered > 0).then(|| cpu_seconds * 1e6 / answered as f64)
    }

    fn mean(&self) -> Option<Duration> {
        let n = self.latencies_us.len() as u64;
        let sum: u64 = self.latencies_us.iter().map(|&us| u64::from(us)).sum();
        (n > 0).then(|| Duration::from_micros(sum / n))
    }

    /// One line with everything measured, for the details section.
    fn describe(&self) -> String {
        let cpu = |c: Option<f64>| c.map_or_else(|| "?".into(), |c| format!("{:.0}%", c * 100.0));
        let mut line = format!(
            "{} ok, {} failed in {:.2} s{} = {}/s; latency mean {} p50 {} p90 {} p99 {} max {}; CPU (100% = one core): generator {}, server {} ({} per request)",
            thousands(self.ok),
            thousands(self.failed),
            self.elapsed.as_secs_f64(),
            self.window.map_or_else(String::new, |w| format!(
                " ({} answered within the {:.0} s window, the rate's basis)",
                thousands(self.ok_in_window),
                w.as_secs_f64()
            )),
            thousands(self.rate() as u64),
            self.mean().map_or_else(|| "-".into(), ms),
            pct(self, 50.0),
            pct(self, 90.0),
            pct(self, 99.0),
            pct(self, 100.0),
            cpu(self.cpu.client),
            cpu(self.cpu.server),
            cpu_per_request(self),
        );
        if self.cpu.database.is_some() {
            let _ = write!(line, ", PostgreSQL {}", cpu(self.cpu.database));
        }
        // Short-lived threads (scim2-server's thread per request) exit between the
        // snapshots; a breakdown that misses most of the total would mislead.
        let covered: f64 = self.cpu.server_threads.iter().map(|t| t.1).sum();
        let whole = self.cpu.server.unwrap_or(0.0);
        let threads: Vec<String> = (self.cpu.server_threads.iter())
            .filter(|_| covered >= 0.8 * whole)
            .filter(|(_, share)| *share >= 0.01)
            .map(|(name, share)| format!("{name} {:.0}%", share * 100.0))
            .collect();
        if !threads.is_empty() {
            let _ = write!(line, " (by thread: {})", threads.join(", "));
        }
        for s in &self.samples {
            let _ = write!(line, "\n      error sample: {s}");
        }
        line
    }
}

/// "5,000/s (p99 1.23 ms, 61 µs CPU) / 9,000/s (p99 2.34 ms, 40 µs CPU)" for two
/// loads side by side.
fn two_rates(a: &Outcome, b: &Outcome) -> String {
    format!(
        "{}/s (p99 {}, {} CPU) / {}/s (p99 {}, {} CPU)",
        thousands(a.rate() as u64),
        pct(a, 99.0),
        cpu_per_request(a),
        thousands(b.rate() as u64),
        pct(b, 99.0),
        cpu_per_request(b)
    )
}

/// "38.2 µs" of daemon CPU per request, "?" when the daemon's CPU was not read.
fn cpu_per_request(out: &Outcome) -> String {
    out.server_us_per_request()
        .map_or_else(|| "?".into(), |us| format!("{us:.1} µs"))
}

/// "1.23 ms" for a percentile, "-" when nothing succeeded.
fn pct(out: &Outcome, p: f64) -> String {
    out.percentile(p).map_or_else(|| "-".into(), ms)
}

// ---------------------------------------------------------------------------
// HTTP client

/// Where a load goes: the address, the SCIM base path and the credentials.
struct Target {
    addr: SocketAddr,
    host: String,
    base: String,
    authorization: Option<String>,
    /// The server's process, for its CPU time.
    pid: Option<u32>,
}

impl Target {
    /// A server on loopback `port` whose SCIM base path is `base`.
    fn new(port: u16, base: &str, authorization: Option<String>, pid: Option<u32>) -> Target {
        Target {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            host: format!("127.0.0.1:{port}"),
            base: base.into(),
            authorization,
            pid,
        }
    }

    fn bridge(port: u16, token: &str, pid: Option<u32>) -> Target {
        Target::new(port, "/scim/v2/entra", Some(format!("Bearer {token}")), pid)
    }

    fn request(&self, req: &Req) -> Result<Request<Full<Bytes>>, String> {
        let mut b = Request::builder()
            .method(req.method.clone())
            .uri(format!("{}{}", self.base, req.path))
            .header(HOST, &self.host)
            .header(ACCEPT, "application/scim+json");
        if let Some(a) = &self.authorization {
            b = b.header(AUTHORIZATION, a);
        }
        let body = match &req.body {
            Some(bytes) => {
                b = b.header(CONTENT_TYPE, "application/scim+json");
                bytes.clone()
            }
            None => Bytes::new(),
        };
        b.body(Full::new(body))
            .map_err(|e| format!("cannot build {} {}: {e}", req.method, req.path))
    }
}

/// One HTTP/1.1 connection, kept alive across requests and reopened after an
/// error or when the server closes it (scim2-server's wsgiref answers HTTP/1.0
/// and closes after every response).
struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(target: Arc<Target>) -> Conn {
        Conn {
            target,
            sender: None,
        }
    }

    fn reset(&mut self) {
        self.sender = None;
    }

    async fn send(&mut self, req: &Req) -> Result<Reply, String> {
        let request = self.target.request(req)?;
        let sender = self.ready().await?;
        let result = exchange(sender, request).await;
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// The open connection, or a new one if there is none or it was closed.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        let alive = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !alive {
            let mut sender = connect(self.target.addr).await?;
            sender
                .ready()
                .await
                .map_err(|e| format!("new connection unusable: {e}"))?;
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    // Small request/response pairs: Nagle's algorithm would hold them back.
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    // The connection future moves the bytes; it ends when either side closes, and
    // any error surfaces through the sender.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Reply, String> {
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    Ok(Reply { status, body })
}

/// A blocking GET for the control plane (readiness, metrics), never inside a
/// measured load: a plain socket keeps it independent of the runtime.
fn get_plain(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let io = |e: std::io::Error| format!("GET {path}: {e}");
    let mut s = StdTcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(io)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: truncated answer"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {path}: no status line"))?;
    Ok((status, body.to_owned()))
}

/// Gauges and counters of the daemon's `/metrics` that explain where time goes.
#[derive(Clone, Copy, Default)]
struct ServerMetrics {
    users: f64,
    groups: f64,
    write_batches: f64,
    writes: f64,
    /// Sum and count of the SCIM requests' time inside the daemon's handler stack.
    handler_seconds: f64,
    handled: f64,
}

impl ServerMetrics {
    fn scrape(addr: SocketAddr) -> Option<ServerMetrics> {
        let (status, text) = get_plain(addr, "/metrics").ok()?;
        if status != 200 {
            return None;
        }
        let mut m = ServerMetrics {
            users: sample(&text, "scim_bridge_users")?,
            groups: sample(&text, "scim_bridge_groups")?,
            write_batches: sample(&text, "scim_bridge_store_write_batches")?,
            writes: sample(&text, "scim_bridge_store_writes")?,
            ..ServerMetrics::default()
        };
        // Only SCIM routes: the control-plane scrapes are not part of the load.
        for line in text.lines().filter(|l| l.contains("route=\"/scim")) {
            let value = || {
                line.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            if line.starts_with("scim_bridge_http_request_duration_seconds_sum{") {
                m.handler_seconds += value();
            } else if line.starts_with("scim_bridge_http_request_duration_seconds_count{") {
                m.handled += value();
            }
        }
        Some(m)
    }
}

/// The value of an unlabelled sample line `name value`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// What the daemon did during a load: group commit and time inside the handlers.
/// `acked` is the writes the load saw succeed: the commit factor is computed from
/// it as well as from the daemon's own `scim_bridge_store_writes`, so a counter
/// that does not move cannot hide group commit.
fn server_note(before: Option<ServerMetrics>, after: Option<ServerMetrics>, acked: u64) -> String {
    let (Some(b), Some(a)) = (before, after) else {
        return "daemon /metrics unavailable".into();
    };
    let writes = a.writes - b.writes;
    let batches = a.write_batches - b.write_batches;
    let handled = a.handled - b.handled;
    let per_commit = |w: f64| {
        if batches > 0.0 {
            format!("{:.1}", w / batches)
        } else {
            "-".into()
        }
    };
    let in_handler = if handled > 0.0 {
        format!(
            "{:.3} ms",
            (a.handler_seconds - b.handler_seconds) / handled * 1e3
        )
    } else {
        "-".into()
    };
    format!(
        "{} acknowledged writes in {} write transactions = {} writes/commit (daemon's scim_bridge_store_writes rose by {} = {}); mean time inside the daemon's handlers {in_handler} over {} requests",
        thousands(acked),
        thousands(batches as u64),
        per_commit(acked as f64),
        thousands(writes as u64),
        per_commit(writes),
        thousands(handled as u64)
    )
}

// ---------------------------------------------------------------------------
// Processes

/// A spawned server, stopped with a signal (or killed if dropped while running).
struct Process {
    child: Option<Child>,
}

impl Process {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal`, then waits for a clean exit; returns how long it took.
    fn stop(&mut self, signal: libc::c_int) -> Result<Duration, String> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let started = Instant::now();
        send_signal(child.id(), signal);
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(started.elapsed()),
                Ok(Some(status)) => {
                    return Err(format!("exited with {status} after signal {signal}"));
                }
                Ok(None) if started.elapsed() > Duration::from_secs(30) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("ignored signal {signal} for 30 s; killed"));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => return Err(format!("waiting for the exit: {e}")),
            }
        }
    }

    /// Polls `GET path` until it answers 200; fails early if the process exits.
    fn wait_ok(&mut self, addr: SocketAddr, path: &str, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("exited with {status} before it was ready"));
            }
            if matches!(get_plain(addr, path), Ok((200, _))) {
                return Ok(());
            }
            // Fine-grained so the restart figure is not rounded up by the polling.
            std::thread::sleep(Duration::from_millis(2));
        }
        Err(format!("GET {path} did not answer 200 within {limit:?}"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn send_signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory effects; the pid is our own child's, which we
        // have not reaped yet, so it cannot have been reused.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The real `scim-bridge` daemon on a free port with a throwaway data dir, configured
/// as shipped (SQLite, `synchronous = FULL`) with the Entra and Okta providers.
struct Daemon {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    process: Process,
}

impl Daemon {
    fn create(log_level: &str) -> Result<Daemon, String> {
        Daemon::create_with(log_level, None)
    }

    /// A daemon on `database_url` (PostgreSQL) instead of its embedded SQLite.
    fn create_with(log_level: &str, database_url: Option<&str>) -> Result<Daemon, String> {
        let dir = tempfile::Builder::new()
            .prefix("scim-bridge-http-bench-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let port = free_port()?;
        let config = dir.path().join("scim-bridge.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n[logging]\nlevel = \"{log_level}\"\n\n\
             [[providers]]\nname = \"entra\"\ndialect = \"entra\"\n\n[[providers]]\nname = \"okta\"\ndialect = \"okta\"\n",
            dir.path().join("data").display()
        );
        let text = match database_url {
            Some(url) => format!("{text}\n[database]\nurl = \"{url}\"\n"),
            None => text,
        };
        std::fs::write(&config, text)
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        // The URL carries the database password: the daemon refuses a config others can read.
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| format!("chmod {}: {e}", config.display()))?;
        Ok(Daemon {
            dir,
            config,
            port,
            process: Process { child: None },
        })
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// `scim-bridge token create`: the token is the last line of stdout.
    fn token(&self, provider: &str) -> Result<String, String> {
        let out = Command::new(bin())
            .args(["token", "create", "--provider", provider, "--config"])
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .env_remove("SCIM_BRIDGE_CONFIG")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.lines().last().map(str::trim) {
            Some(t) if out.status.success() && !t.is_empty() => Ok(t.to_owned()),
            _ => Err(format!(
                "token create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }

    /// Spawns `serve` and returns the time from spawn to `/readyz` 200.
    fn start(&mut self) -> Result<Duration, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("daemon log: {e}"))?;
        let started = Instant::now();
        let child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .env_remove("SCIM_BRIDGE_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin()))?;
        self.process.child = Some(child);
        match self
            .process
            .wait_ok(self.addr(), "/readyz", Duration::from_secs(120))
        {
            Ok(()) => Ok(started.elapsed()),
            Err(e) => Err(format!(
                "scim-bridge {e}; log tail:\n{}",
                tail(&self.log_path(), 20)
            )),
        }
    }

    fn stop(&mut self) -> Result<Duration, String> {
        self.process
            .stop(libc::SIGTERM)
            .map_err(|e| format!("scim-bridge {e}; log tail:\n{}", tail(&self.log_path(), 20)))
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------
// /proc readings and machine facts

/// CPU seconds (user + system) used so far by `pid`, or by this process for `None`.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    stat_cpu_seconds(&std::fs::read_to_string(path).ok()?)
}

/// utime + stime of a /proc `stat` line, in seconds.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // Field 2, the command name, may hold spaces; the fields after it do not.
    // After the ')' the first field is field 3, so utime (14) and stime (15) are at 11 and 12.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks / hz as f64)
}

/// CPU seconds of a PostgreSQL cluster: the postmaster named by `postmaster.pid`
/// and its children (backends, WAL writer, checkpointer, autovacuum). A backend
/// that exits between two readings takes its time with it; the daemons' pools keep
/// theirs open, so a load's figure is whole.
fn cluster_cpu_seconds(pid_file: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let postmaster: u32 = text.lines().next()?.trim().parse().ok()?;
    let mut total = cpu_seconds(Some(postmaster))?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the ')' closing the command name: state, then the parent's pid.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(postmaster) {
            total += stat_cpu_seconds(&stat).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// CPU seconds and name of each thread of `pid`, by thread id.
fn thread_cpu(pid: u32) -> HashMap<u32, (String, f64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .filter_map(|t| {
            let tid: u32 = t.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
            let name = stat.split_once('(')?.1.rsplit_once(')')?.0.to_owned();
            Some((tid, (name, stat_cpu_seconds(&stat)?)))
        })
        .collect()
}

/// A `kB` line (`VmRSS`, `VmHWM`) of /proc/PID/status.
fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn machine_facts() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "nproc {cpus}, CPU \"{model}\", RAM {:.1} GiB, Linux {}",
        mem_kb as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The commit under test, and whether src/ has uncommitted changes (which the
/// release binary then includes).
fn source_state() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(REPO)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown commit".into());
    match git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "Cargo.toml",
        "Cargo.lock",
    ]) {
        Some(s) if s.is_empty() => format!("{head}, src/ clean; binary {}", bin()),
        Some(s) => format!(
            "{head} plus {} uncommitted file(s) under src/ or Cargo.*; binary {}",
            s.lines().count(),
            bin()
        ),
        None => format!("{head}; binary {}", bin()),
    }
}

/// The mount's filesystem type, so an fsync-free tmpfs data dir would be noticed.
fn filesystem_of(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, kind) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown filesystem".into(), |(_, kind)| kind)
}

// ---------------------------------------------------------------------------
// Report

/// The result table, printed at the end, and the details behind it.
struct Report {
    started: Instant,
    rows: Vec<Row>,
    /// Tables of their own (a title line, then aligned lines), printed after the rows.
    tables: Vec<Vec<String>>,
    notes: Vec<String>,
}

struct Row {
    key: String,
    figure: String,
    value: String,
    target: String,
    /// `None` for figures without a target.
    pass: Option<bool>,
}

impl Report {
    fn new(started: Instant) -> Report {
        Report {
            started,
            rows: Vec::new(),
            tables: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A figure without a target.
    fn row(&mut self, key: &str, figure: &str, value: impl Into<String>, target: &str) {
        self.push(key, figure, value.into(), target, None);
    }

    /// A figure with a target and whether it was met.
    fn check(
        &mut self,
        key: &str,
        figure: &str,
        value: impl Into<String>,
        target: &str,
        pass: bool,
    ) {
        self.push(key, figure, value.into(), target, Some(pass));
    }

    fn push(&mut self, key: &str, figure: &str, value: String, target: &str, pass: Option<bool>) {
        self.progress(format!("   {figure}: {value}"));
        self.rows.push(Row {
            key: key.into(),
            figure: figure.into(),
            value,
            target: target.into(),
            pass,
        });
    }

    /// A table printed as it is, after the rows.
    fn table(&mut self, lines: Vec<String>) {
        for line in &lines {
            self.progress(format!("   {line}"));
        }
        self.tables.push(lines);
    }

    fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.progress(format!("   {text}"));
        self.notes.push(text);
    }

    /// Live progress on stderr; the table goes to stdout at the end.
    fn progress(&self, text: impl AsRef<str>) {
        eprintln!(
            "[{:6.1} s] {}",
            self.started.elapsed().as_secs_f64(),
            text.as_ref()
        );
    }

    fn print(&self) {
        let header = Row {
            key: "#".into(),
            figure: "figure".into(),
            value: "value".into(),
            target: "target".into(),
            pass: None,
        };
        let all: Vec<&Row> = std::iter::once(&header).chain(&self.rows).collect();
        let w_fig = all
            .iter()
            .map(|r| r.figure.chars().count())
            .max()
            .unwrap_or(0);
        let w_val = all
            .iter()
            .map(|r| r.value.chars().count())
            .max()
            .unwrap_or(0);
        let w_tgt = all
            .iter()
            .map(|r| r.target.chars().count())
            .max()
            .unwrap_or(0);
        println!();
        for (i, r) in all.iter().enumerate() {
            let verdict = match (i, r.pass) {
                (0, _) => "result",
                (_, Some(true)) => "PASS",
                (_, Some(false)) => "FAIL",
                (_, None) => "",
            };
            let line = format!(
                "{:<2} {:<w_fig$}  {:<w_val$}  {:<w_tgt$}  {verdict}",
                r.key, r.figure, r.value, r.target
            );
            println!("{}", line.trim_end());
            if i == 0 {
                println!("{}", "-".repeat(w_fig + w_val + w_tgt + 16));
            }
        }
        let checked: Vec<bool> = self.rows.iter().filter_map(|r| r.pass).collect();
        let met = checked.iter().filter(|&&p| p).count();
        println!();
        println!("targets met: {met} of {}", checked.len());
        for table in &self.tables {
            println!();
            for line in table {
                println!("{line}");
            }
        }
        println!();
        println!("details:");
        for n in &self.notes {
            println!("  {n}");
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers

/// SplitMix64: a fixed-seed generator is all the bench needs (no `rand` dependency).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform enough below `n` for picking users (the modulo bias is < n / 2^64).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,=:/".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// 12,345
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio with enough digits to read when it is far below 1.
fn times(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}x")
    } else if x >= 0.1 {
        format!("{x:.2}x")
    } else {
        format!("{x:.4}x")
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

/// "123.4 MB (117.7 MiB)": the target is in MB, tools often show MiB.
fn megabytes(kb: u64) -> String {
    let bytes = kb as f64 * 1024.0;
    format!("{:.1} MB ({:.1} MiB)", bytes / 1e6, bytes / 1024.0 / 1024.0)
}

//! Phase 6 of the HTTP bench: scim-bridge beside the servers a user would pick
//! instead, at the same N (users stored, connections, seconds), as ratios.
//!
//! Each server gets the same sequence on a fresh start: timed POST /Users (capped at
//! `BENCH_PEER_USERS`), a load up to that many users, a timed `filter=userName eq`
//! GET, the same two loads within a small connection count, a group built to
//! `BENCH_PEER_GROUP_MEMBERS` members in PATCHes of 1,000, then single-member PATCH
//! adds into it, and its resident memory after all that. Every answer is checked as in
//! phases 1-3. The peers:
//! - scim2-server (PyPI, pinned in scripts/peer/requirements.txt), in memory;
//! - scimgateway (github.com/jelhub/scimgateway, vendored in scripts/peer/scimgateway)
//!   with its in-memory plugin-loki, on Bun from npm (scripts/peer/install-scimgateway.sh).
//!
//! A peer that cannot be installed or started is noted and skipped, unless peers are
//! required (`CI=true` or `BENCH_REQUIRE_PEERS=1`): then the run fails.

use super::*;

/// A peer server the bridge is compared with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum PeerKind {
    Scim2Server,
    Scimgateway,
}

impl PeerKind {
    /// `BENCH_PEERS`: comma-separated names, in the order they run.
    pub(super) fn parse_list(text: &str) -> Result<Vec<PeerKind>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| match t {
                "scim2-server" => Ok(PeerKind::Scim2Server),
                "scimgateway" => Ok(PeerKind::Scimgateway),
                other => Err(format!(
                    "BENCH_PEERS: {other:?} is not scim2-server or scimgateway"
                )),
            })
            .collect()
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            PeerKind::Scim2Server => "scim2-server",
            PeerKind::Scimgateway => "scimgateway",
        }
    }

    /// The pinned version, read from the files that pin it.
    fn version(self) -> String {
        let read =
            |path: &str| std::fs::read_to_string(Path::new(REPO).join(path)).unwrap_or_default();
        match self {
            PeerKind::Scim2Server => read("scripts/peer/requirements.txt")
                .lines()
                .find_map(|l| l.strip_prefix("scim2-server==").map(str::to_owned))
                .unwrap_or_else(|| "(version unknown)".into()),
            PeerKind::Scimgateway => {
                let tag = read("scripts/peer/scimgateway/UPSTREAM.md")
                    .lines()
                    .find_map(|l| l.strip_prefix("tag: "))
                    .and_then(|t| t.split_whitespace().next())
                    .map_or_else(|| "(version unknown)".into(), str::to_owned);
                let bun = serde_json::from_str::<Value>(&read("scripts/peer/bun/package.json"))
                    .ok()
                    .and_then(|p| p["dependencies"]["bun"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "?".into());
                format!("{tag} on Bun {bun}")
            }
        }
    }

    /// How it runs, for the details: what its figures come from.
    fn description(self) -> &'static str {
        match self {
            PeerKind::Scim2Server => {
                "in memory; Python wsgiref with a thread per request (one core at most, under the GIL); \
                 HTTP/1.0, so a new connection per request; listen backlog 5, so bursts of more connects \
                 than that wait for SYN retransmits (1 s, 3 s, ...): that is where its p99 comes from"
            }
            PeerKind::Scimgateway => {
                "plugin-loki (LokiJS, in memory, no persistence) on Bun.serve, one JavaScript thread; \
                 bearer token; its log file at the bench's log level (at info it logs every request \
                 with its response body)"
            }
        }
    }
}

/// A running server in the comparison.
enum Server {
    Bridge(Daemon),
    Peer(Peer),
}

impl Server {
    fn pid(&self) -> Option<u32> {
        match self {
            Server::Bridge(d) => d.pid(),
            Server::Peer(p) => p.process.pid(),
        }
    }

    fn stop(mut self) -> Result<Duration, String> {
        match &mut self {
            Server::Bridge(d) => d.stop(),
            // SIGINT: Python dies of an unhandled SIGTERM but exits cleanly on
            // KeyboardInterrupt; scimgateway stops its listener on either.
            Server::Peer(p) => p.process.stop(libc::SIGINT),
        }
    }
}

/// What one server measured in phase 6.
struct Measured {
    name: String,
    post: Outcome,
    get: Outcome,
    /// GET filter and POST within `BENCH_PEER_LOW_CONCURRENCY` connections.
    low: Option<(Outcome, Outcome)>,
    /// The group's build (PATCHes of MEMBER_CHUNK members) and the single adds.
    build: Option<Outcome>,
    add: Option<Outcome>,
    rss_kb: Option<u64>,
    peak_kb: Option<u64>,
}

impl Measured {
    fn failed(&self) -> u64 {
        let low = self.low.iter().flat_map(|(a, b)| [a, b]);
        [&self.post, &self.get]
            .into_iter()
            .chain(low)
            .chain(&self.build)
            .chain(&self.add)
            .map(|o| o.failed)
            .sum()
    }
}

/// 6: the bridge, then each peer, through the same sequence; then the table.
pub(super) fn bench_peers(s: &Settings, rt: &Runtime, report: &mut Report) -> Result<(), String> {
    report.progress(format!(
        "6: peers at the same N: scim-bridge, then {}",
        s.peers
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut daemon = Daemon::create(&s.log_level)?;
    let token = daemon.token("entra")?;
    daemon.start()?;
    let target = Target::bridge(daemon.port, &token, daemon.pid());
    let bridge = same_n(s, rt, "scim-bridge", target, Server::Bridge(daemon), report);

    let mut peers = Vec::new();
    for &kind in &s.peers {
        report.progress(format!("6: starting {}", kind.name()));
        match Peer::start(kind, &s.log_level) {
            Ok(peer) => {
                report.note(format!(
                    "6 {} {}: {}",
                    kind.name(),
                    kind.version(),
                    kind.description()
                ));
                let target = peer.target();
                peers.push(same_n(
                    s,
                    rt,
                    kind.name(),
                    target,
                    Server::Peer(peer),
                    report,
                ));
            }
            Err(e) if s.require_peers => {
                return Err(format!(
                    "6: {} could not be run and peers are required (CI=true or BENCH_REQUIRE_PEERS=1): {e}",
                    kind.name()
                ));
            }
            Err(e) => {
                report.row("6", &format!("{} comparison", kind.name()), "not run", "");
                report.note(format!("6: {} could not be run, skipped: {e}", kind.name()));
            }
        }
    }
    for m in std::iter::once(&bridge).chain(&peers) {
        report.check(
            "6",
            &format!("{}: answers not as expected", m.name),
            thousands(m.failed()),
            "0",
            m.failed() == 0,
        );
    }
    report.table(comparison(s, &bridge, &peers));
    Ok(())
}

/// Runs phase 6's sequence on one server and stops it.
fn same_n(
    s: &Settings,
    rt: &Runtime,
    name: &str,
    target: Target,
    server: Server,
    report: &mut Report,
) -> Measured {
    let b = Bench {
        s,
        rt,
        targets: vec![Arc::new(target)],
        database: None,
        pop: Arc::new(Population::default()),
    };
    let c = s.concurrency;
    let cap = s.post_users.min(s.peer_users);
    report.progress(format!(
        "6: {name}: POST /Users with {c} connections for {} s or {cap} users",
        s.seconds
    ));
    let post = b.create_users(c, Some(s.duration()), cap);
    report.note(format!("6 {name} POST c={c}: {}", post.describe()));
    let missing = s.peer_users.saturating_sub(b.pop.len());
    report.progress(format!("6: {name}: loading {missing} more users"));
    let load = b.create_users(c, None, missing);
    report.note(format!(
        "6 {name} load to {} users: {}",
        thousands(b.pop.len()),
        load.describe()
    ));
    report.progress(format!("6: {name}: GET filter with {c} connections"));
    let get = b.filter_users(c);
    report.note(format!("6 {name} GET filter c={c}: {}", get.describe()));

    let low = (s.peer_low_concurrency > 0).then(|| {
        let lc = s.peer_low_concurrency;
        report.progress(format!(
            "6: {name}: GET filter and POST with {lc} connections"
        ));
        let get = b.filter_users(lc);
        let post = b.create_users(lc, Some(s.duration()), s.post_users);
        report.note(format!("6 {name} GET filter c={lc}: {}", get.describe()));
        report.note(format!("6 {name} POST c={lc}: {}", post.describe()));
        (get, post)
    });

    let (build, add) = match member_patches(&b, name, report) {
        Ok((build, add)) => (Some(build), Some(add)),
        Err(e) => {
            report.note(format!("6 {name} group: {e}"));
            (None, None)
        }
    };
    let pid = server.pid();
    let rss_kb = pid.and_then(|p| proc_status_kb(p, "VmRSS"));
    let peak_kb = pid.and_then(|p| proc_status_kb(p, "VmHWM"));
    if let Err(e) = server.stop() {
        report.note(format!("6 {name} shutdown: {e}"));
    }
    Measured {
        name: name.to_owned(),
        post,
        get,
        low,
        build,
        add,
        rss_kb,
        peak_kb,
    }
}

/// A group of `BENCH_PEER_GROUP_MEMBERS` users built in PATCHes of MEMBER_CHUNK, then
/// `BENCH_PEER_MEMBER_PATCHES` single-member adds into it, one at a time.
fn member_patches(
    b: &Bench,
    name: &str,
    report: &mut Report,
) -> Result<(Outcome, Outcome), String> {
    let s = b.s;
    let users = b.pop.snapshot();
    let (members, singles) = group_split(users.len(), s.peer_group_members, s.peer_member_patches);
    report.progress(format!(
        "6: {name}: group of {members} members, then {singles} single-member PATCHes"
    ));
    let gid = create_group(b, "bench-peer-group").map_err(|e| format!("creating it: {e}"))?;
    let path = format!("/Groups/{gid}");
    let chunks = users[..members]
        .chunks(MEMBER_CHUNK)
        .map(|c| Req::patch(&path, &add_members(c)))
        .collect();
    let build = b.script(chunks, &[200, 204], 1);
    report.note(format!(
        "6 {name} group build, {} members: {}",
        thousands(members as u64),
        build.describe()
    ));
    let adds = users[members..members + singles]
        .iter()
        .map(|u| Req::patch(&path, &add_members(std::slice::from_ref(u))))
        .collect();
    let add = b.script(adds, &[200, 204], 1);
    report.note(format!(
        "6 {name} add 1 member to the {}-member group: {}",
        thousands(members as u64),
        add.describe()
    ));
    Ok((build, add))
}

/// One row of the comparison: how to read a figure (for ratios) and its text.
type Figure = Box<dyn Fn(&Measured) -> Option<(f64, String)>>;

/// The comparison table: each figure for the bridge, then per peer its figure and
/// bridge / peer. A value from a load with failed answers is marked with `!`.
fn comparison(s: &Settings, bridge: &Measured, peers: &[Measured]) -> Vec<String> {
    let c = s.concurrency;
    let lc = s.peer_low_concurrency;
    let members = thousands(s.peer_group_members);
    let mut rows: Vec<(String, Figure)> = vec![
        (
            format!("POST /Users, {c} conns"),
            Box::new(|m| rate(&m.post)),
        ),
        ("  p99".into(), Box::new(|m| latency(&m.post, 99.0))),
        (
            "  server CPU per request".into(),
            Box::new(|m| cpu(&m.post)),
        ),
        (
            format!("GET filter userName eq, {c} conns"),
            Box::new(|m| rate(&m.get)),
        ),
        ("  p99".into(), Box::new(|m| latency(&m.get, 99.0))),
        ("  server CPU per request".into(), Box::new(|m| cpu(&m.get))),
    ];
    if lc > 0 {
        rows.push((
            format!("GET filter, {lc} conns"),
            Box::new(|m| rate(&m.low.as_ref()?.0)),
        ));
        rows.push((
            format!("POST /Users, {lc} conns"),
            Box::new(|m| rate(&m.low.as_ref()?.1)),
        ));
    }
    rows.extend::<[(String, Figure); 5]>([
        (
            format!("PATCH add 1 member, {members}-member group, p50"),
            Box::new(|m| latency(m.add.as_ref()?, 50.0)),
        ),
        ("  p99".into(), Box::new(|m| latency(m.add.as_ref()?, 99.0))),
        (
            format!("  building it, PATCHes of {MEMBER_CHUNK} members, p50"),
            Box::new(|m| latency(m.build.as_ref()?, 50.0)),
        ),
        ("RSS after load".into(), Box::new(|m| memory(m.rss_kb))),
        ("  peak RSS".into(), Box::new(|m| memory(m.peak_kb))),
    ]);

    let mut header = vec!["measure".to_owned(), bridge.name.clone()];
    for peer in peers {
        header.push(peer.name.clone());
        header.push("bridge / peer".into());
    }
    let mut cells = vec![header];
    for (label, figure) in &rows {
        let ours = figure(bridge);
        let mut line = vec![label.clone(), text(ours.as_ref())];
        for peer in peers {
            let theirs = figure(peer);
            line.push(text(theirs.as_ref()));
            line.push(match (&ours, &theirs) {
                (Some(o), Some(t)) if t.0 > 0.0 => times(o.0 / t.0),
                _ => "-".into(),
            });
        }
        cells.push(line);
    }
    let mut out = vec![format!(
        "6  peers at the same N: {} users stored, {c} connections, {} s per timed load, \
         single-member PATCHes into a {members}-member group. bridge / peer: above 1 the bridge \
         serves more per second, below 1 it answers sooner or holds less; ! = some answers failed",
        thousands(s.peer_users),
        s.seconds,
    )];
    out.extend(align(&cells));
    out
}

fn rate(o: &Outcome) -> Option<(f64, String)> {
    Some((
        o.rate(),
        mark(o, format!("{}/s", thousands(o.rate() as u64))),
    ))
}

fn latency(o: &Outcome, p: f64) -> Option<(f64, String)> {
    o.percentile(p).map(|d| (d.as_secs_f64(), mark(o, ms(d))))
}

fn cpu(o: &Outcome) -> Option<(f64, String)> {
    o.server_us_per_request()
        .map(|us| (us, format!("{us:.0} µs")))
}

fn memory(kb: Option<u64>) -> Option<(f64, String)> {
    kb.map(|kb| (kb as f64, format!("{:.0} MB", kb as f64 * 1024.0 / 1e6)))
}

fn text(figure: Option<&(f64, String)>) -> String {
    figure.map_or_else(|| "-".into(), |f| f.1.clone())
}

/// The value, marked when some of the load's answers failed.
fn mark(o: &Outcome, value: String) -> String {
    if o.failed > 0 {
        format!("{value} !")
    } else {
        value
    }
}

/// Left-aligned first column, right-aligned figures.
fn align(cells: &[Vec<String>]) -> Vec<String> {
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            cells
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    cells
        .iter()
        .map(|row| {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("{c:<w$}", w = widths[i])
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                })
                .collect();
            line.join("  ").trim_end().to_owned()
        })
        .collect()
}

/// A peer server on a free port, started by its script under scripts/peer.
pub(super) struct Peer {
    kind: PeerKind,
    _dir: tempfile::TempDir,
    port: u16,
    token: String,
    process: Process,
}

impl Peer {
    fn start(kind: PeerKind, log_level: &str) -> Result<Peer, String> {
        install(kind)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-bench-", kind.name()))
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("peer log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("peer log: {e}"))?;
        let port = free_port()?;
        let token = format!("bench-{:016x}", Rng::new(u64::from(port)).next());
        let script = Path::new(REPO).join(format!("scripts/peer/{}.sh", kind.name()));
        let mut command = Command::new(&script);
        command.arg(port.to_string()).current_dir(REPO);
        match kind {
            // No token: the bench compares request handling, and scim2-server's check
            // is a string comparison.
            PeerKind::Scim2Server => command.env_remove("SCIM2_SERVER_TOKEN"),
            PeerKind::Scimgateway => command
                .arg(dir.path().join("run"))
                .env("SCIMGATEWAY_TOKEN", &token)
                .env("SCIMGATEWAY_LOG_LEVEL", log_level),
        };
        // The scripts `exec` the server, so the child's pid is the server's own.
        let child = command
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let mut peer = Peer {
            kind,
            _dir: dir,
            port,
            token,
            process: Process { child: Some(child) },
        };
        // The probe carries the token: scimgateway wants it on discovery endpoints too.
        let probe = runtime(1)?;
        let ready = Req::get("/ServiceProviderConfig".into());
        let started = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = peer.process.child.as_mut().map(Child::try_wait) {
                peer.process.child = None;
                return Err(format!(
                    "{} exited with {status} before it was ready; log tail:\n{}",
                    kind.name(),
                    tail(&log_path, 20)
                ));
            }
            let mut conn = Conn::new(Arc::new(peer.target()));
            let answer = probe.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), conn.send(&ready)).await
            });
            if matches!(answer, Ok(Ok(Reply { status: 200, .. }))) {
                return Ok(peer);
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "{} did not answer GET /ServiceProviderConfig with 200 within 60 s; log tail:\n{}",
                    kind.name(),
                    tail(&log_path, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn target(&self) -> Target {
        let authorization = match self.kind {
            PeerKind::Scim2Server => None,
            PeerKind::Scimgateway => Some(format!("Bearer {}", self.token)),
        };
        Target::new(self.port, "/v2", authorization, self.process.pid())
    }
}

/// Runs the peer's install script: scim2-server's venv only when it is missing (its
/// script resolves from PyPI), scimgateway's always (a no-op when it is current, and it
/// checks the vendored sources against their checksums).
fn install(kind: PeerKind) -> Result<(), String> {
    let script = match kind {
        PeerKind::Scim2Server => {
            let venv = std::env::var("PEER_VENV").unwrap_or_else(|_| "target/peer-venv".into());
            if Path::new(REPO).join(venv).join("bin/scim2-server").exists() {
                return Ok(());
            }
            "scripts/peer/install.sh"
        }
        PeerKind::Scimgateway => "scripts/peer/install-scimgateway.sh",
    };
    // Its output goes to stderr with the bench's progress, not into the report.
    let status = Command::new(Path::new(REPO).join(script))
        .current_dir(REPO)
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{script} failed ({status})"))
    }
}

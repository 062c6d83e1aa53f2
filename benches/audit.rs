//! Audit chain costs: appending (canonical encoding + SHA-256), sealing, and a
//! streaming verify of a 1,000,000-record export read back from disk.
//! `cargo bench --bench audit`; prints figures.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, BufWriter};
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

use scim_bridge::audit::{
    Algorithm, Chain, Exporter, Header, LogId, Seal, SigningKey, Start, verify,
};
use scim_bridge::entropy::SeededEntropy;

/// Records in the verify run, and a seal after every this many (the design's cadence
/// is by count or by time, whichever comes first).
const RECORDS: u64 = 1_000_000;
const SEAL_EVERY: u64 = 1_000;

fn at(i: u64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
        .single()
        .expect("time")
        + Duration::milliseconds(i as i64)
}

/// A change record of the size the provisioning log writes for a user update.
fn body(i: u64) -> Value {
    json!({
        "provider": "entra",
        "requestId": format!("req-{i:012}"),
        "client": "20.190.128.5",
        "token": "tok-7f3a",
        "op": "PATCH",
        "resource": {"type": "User", "id": format!("u-{i}"), "userName": format!("jsmith{i}@firm.example"), "displayName": "Jane Smith"},
        "changes": [
            {"path": "title", "old": "Associate", "new": "Senior Associate"},
            {"path": "department", "old": "Litigation", "new": "Disputes"}
        ]
    })
}

fn main() {
    let entropy = SeededEntropy::new(20);
    let log = LogId::generate(&entropy);
    let (key, _) = SigningKey::generate(Algorithm::Ed25519, &entropy).expect("key");
    let (hmac, _) = SigningKey::generate(Algorithm::HmacSha256, &entropy).expect("key");

    // The 1M-record run first, so its memory figure is not raised by the bodies the
    // append run holds.
    export_and_verify(&log, &key);
    append_and_seal(&log, &key, &hmac);
}

fn append_and_seal(log: &LogId, key: &SigningKey, hmac: &SigningKey) {
    // Appending: what the store's write transaction adds per record.
    let n = 200_000u64;
    let bodies: Vec<Value> = (0..n).map(body).collect();
    let mut chain = Chain::genesis(log);
    let started = Instant::now();
    let mut bytes = 0usize;
    for (i, b) in bodies.into_iter().enumerate() {
        let r = chain
            .append(at(i as u64), "scim.change", b)
            .expect("append");
        bytes += r.line().len();
        black_box(r);
    }
    let took = started.elapsed();
    println!(
        "append (encode + SHA-256): {:.0} records/s, {:.2} µs each, {} B per record ({n} records)",
        n as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / n as f64,
        bytes as u64 / n
    );

    let head = chain.head().expect("head");
    for (what, k) in [("Ed25519", key), ("HMAC-SHA256", hmac)] {
        let runs = 2_000u32;
        let started = Instant::now();
        for i in 0..runs {
            black_box(Seal::sign(k, log, head, at(u64::from(i))).expect("seal"));
        }
        println!(
            "seal ({what}): {:.1} µs each",
            started.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
        );
    }
}

fn export_and_verify(log: &LogId, key: &SigningKey) {
    // Export 1M records with a seal every SEAL_EVERY, then verify from disk.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let header = Header {
        log: log.clone(),
        alg: key.algorithm(),
        key: key.id().clone(),
        start: Start::Genesis,
    };
    let started = Instant::now();
    let mut ex = Exporter::new(
        BufWriter::new(File::create(&path).expect("create")),
        &header,
    )
    .expect("header");
    let mut chain = Chain::genesis(log);
    for i in 0..RECORDS {
        let r = chain.append(at(i), "scim.change", body(i)).expect("append");
        ex.record(&r).expect("write");
        if (i + 1) % SEAL_EVERY == 0 {
            ex.seal(&Seal::sign(key, log, r.head(), at(i)).expect("seal"))
                .expect("write");
        }
    }
    ex.finish().expect("finish");
    let size = std::fs::metadata(&path).expect("size").len();
    println!(
        "export {RECORDS} records + {} seals: {:.1} s, {:.0} MiB",
        RECORDS / SEAL_EVERY,
        started.elapsed().as_secs_f64(),
        size as f64 / (1 << 20) as f64
    );
    let rss_before = peak_rss_kib();
    let started = Instant::now();
    let report = verify(
        BufReader::new(File::open(&path).expect("open")),
        key.verifying_key(),
    )
    .expect("verify");
    let took = started.elapsed();
    assert_eq!(report.records, RECORDS);
    assert_eq!(report.unsealed(), None);
    println!(
        "verify (streaming, from disk): {:.0} records/s, {:.1} s for {RECORDS}; {:.0} MiB/s",
        RECORDS as f64 / took.as_secs_f64(),
        took.as_secs_f64(),
        size as f64 / (1 << 20) as f64 / took.as_secs_f64()
    );
    println!(
        "peak RSS at the start of verify {} MiB, during it {} MiB (the file is {:.0} MiB)",
        rss_before / 1024,
        peak_rss_kib() / 1024,
        size as f64 / (1 << 20) as f64
    );
}

/// The process's peak resident set (VmHWM), in KiB; 0 where /proc is not there.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

//! Every way of tampering with an export that the format claims to catch, each
//! named by sequence number, and a property test over random logs and mutations.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn ed_key() -> SigningKey {
    SigningKey::ed25519_from_seed(&[7; 32]).unwrap()
}

fn log_id() -> LogId {
    LogId::new("test-log").unwrap()
}

fn body(i: u64) -> Value {
    json!({
        "op": "replace",
        "userName": format!("user{i}@firm.example"),
        "changes": [{"path": "title", "old": "Associate", "new": format!("Partner {i}")}],
    })
}

/// A log of `n` records sealed after each seq in `seal_after`, exported as lines.
fn export_lines(key: &SigningKey, n: u64, seal_after: &[u64]) -> Vec<Vec<u8>> {
    let log = log_id();
    let mut chain = Chain::genesis(&log);
    let mut ex = Exporter::new(Vec::new(), &header(key, Start::Genesis)).unwrap();
    for i in 0..n {
        let r = chain.append(at(i as i64), "scim.change", body(i)).unwrap();
        ex.record(&r).unwrap();
        if seal_after.contains(&i) {
            let seal = Seal::sign(key, &log, r.head(), at(i as i64 + 1)).unwrap();
            ex.seal(&seal).unwrap();
        }
    }
    split(&ex.finish().unwrap())
}

fn split(file: &[u8]) -> Vec<Vec<u8>> {
    file.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

fn check(lines: &[Vec<u8>], key: &VerifyingKey) -> Result<Report, AuditError> {
    verify(join(lines).as_slice(), key)
}

fn fails(lines: &[Vec<u8>], key: &VerifyingKey) -> String {
    match check(lines, key) {
        Ok(report) => panic!("tampering not detected:\n{report}"),
        Err(e) => e.to_string(),
    }
}

fn fails_with(lines: &[Vec<u8>], key: &VerifyingKey, needle: &str) {
    let err = fails(lines, key);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

fn header(key: &SigningKey, start: Start) -> Header {
    Header {
        log: log_id(),
        alg: key.algorithm(),
        key: key.id().clone(),
        start,
    }
}

/// Index of the line holding the record `seq`.
fn line_of(lines: &[Vec<u8>], seq: u64) -> usize {
    let needle = format!("\"seq\":{seq},\"time\"");
    lines
        .iter()
        .position(|l| l.starts_with(b"{\"body\"") && String::from_utf8_lossy(l).contains(&needle))
        .unwrap()
}

fn parse(line: &[u8]) -> serde_json::Map<String, Value> {
    serde_json::from_slice::<Value>(line)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// The record on `line`, re-encoded after `edit` changes its parts.
fn rewrite(line: &[u8], edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Record {
    let mut m = parse(line);
    edit(&mut m);
    Record::from_parts(
        m["seq"].as_u64().unwrap(),
        record::parse_time(m["time"].as_str().unwrap()).unwrap(),
        m["kind"].as_str().unwrap(),
        m["body"].clone(),
        Digest::from_hex(m["prev"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
}

#[test]
fn an_untouched_export_verifies_and_reports_its_coverage() {
    let key = ed_key();
    let lines = export_lines(&key, 10, &[4, 9]);
    let report = check(&lines, key.verifying_key()).unwrap();
    assert_eq!(report.anchor, Anchor::Genesis);
    assert_eq!((report.records, report.seals), (10, 2));
    assert_eq!((report.first_seq, report.last_seq), (Some(0), Some(9)));
    assert_eq!(report.sealed_through, Some(9));
    assert_eq!(report.unsealed(), None);
    assert!(report.to_string().contains("every record is covered"));
}

#[test]
fn an_edited_field_is_named() {
    let key = ed_key();
    let mut lines = export_lines(&key, 10, &[9]);
    let i = line_of(&lines, 3);
    lines[i] = rewrite(&lines[i], |m| {
        m["body"]["changes"][0]["new"] = json!("Counsel")
    })
    .line()
    .to_vec();
    fails_with(
        &lines,
        key.verifying_key(),
        "seq 4: its prev is not the hash of seq 3",
    );
}

#[test]
fn an_edit_with_the_chain_recomputed_breaks_the_seal() {
    let key = ed_key();
    let mut lines = export_lines(&key, 10, &[4, 9]);
    // The attacker re-links every later record, but cannot re-sign the seal.
    let mut prev = None;
    for seq in 6..10 {
        let i = line_of(&lines, seq);
        let r = rewrite(&lines[i], |m| {
            if seq == 6 {
                m["kind"] = json!("scim.forged");
            }
            if let Some(p) = prev {
                m["prev"] = json!(Digest::to_hex(p));
            }
        });
        prev = Some(r.hash());
        lines[i] = r.line().to_vec();
    }
    fails_with(
        &lines,
        key.verifying_key(),
        "seq 9: the chain up to seq 9 does not match its seal: a record in seq 5..=9",
    );
}

#[test]
fn a_deleted_record_is_named() {
    let key = ed_key();
    let mut lines = export_lines(&key, 10, &[9]);
    lines.remove(line_of(&lines, 3));
    fails_with(
        &lines,
        key.verifying_key(),
        "seq 4: expected seq 3 here: seq 3 is missing",
    );
}

#[test]
fn an_inserted_record_is_named() {
    let key = ed_key();
    let mut lines = export_lines(&key, 10, &[9]);
    // A forged seq 4 that links correctly to seq 3, placed before the real one.
    let i = line_of(&lines, 4);
    let forged = rewrite(&lines[i], |m| m["body"] = json!({"op": "forged"}));
    lines.insert(i, forged.line().to_vec());
    fails_with(
        &lines,
        key.verifying_key(),
        "seq 4: expected seq 5 here: seq 4 comes again",
    );
}

#[test]
fn swapped_records_are_named() {
    let key = ed_key();
    let mut lines = export_lines(&key, 10, &[9]);
    let (a, b) = (line_of(&lines, 3), line_of(&lines, 4));
    lines.swap(a, b);
    fails_with(
        &lines,
        key.verifying_key(),
        "seq 4: expected seq 3 here: seq 3 is missing (deleted), or records were reordered",
    );
}

#[test]
fn a_truncated_file_names_the_last_record_read() {
    let key = ed_key();
    let lines = export_lines(&key, 10, &[4, 9]);
    let file = join(&lines);
    // Cut inside a line.
    let cut = join(&lines[..line_of(&lines, 7)]).len() + 20;
    let err = verify(&file[..cut], key.verifying_key())
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated (after seq 6)"), "{err}");
    // Cut at a line boundary: the end line is missing.
    fails_with(
        &lines[..=line_of(&lines, 7)],
        key.verifying_key(),
        "truncated (after seq 7): the file has no end line",
    );
}

#[test]
fn a_tail_cut_after_the_last_seal_is_reported_as_uncovered() {
    // What seals cannot prove: records after the last seal. A file cut there with
    // its end line rewritten verifies, and the report says how far seals reach.
    let key = ed_key();
    let lines = export_lines(&key, 10, &[4]);
    let report = check(&lines, key.verifying_key()).unwrap();
    assert_eq!(report.sealed_through, Some(4));
    assert_eq!(report.unsealed(), Some((5, 9)));
    assert!(
        report.to_string().contains("NOT SEALED: seq 5..=9"),
        "{report}"
    );

    let mut cut = lines[..=line_of(&lines, 7)].to_vec();
    cut.push(
        export::Totals {
            records: 8,
            seals: 1,
            last_seq: Some(7),
        }
        .end_line(),
    );
    let report = check(&cut, key.verifying_key()).unwrap();
    assert_eq!(report.unsealed(), Some((5, 7)));
    // The unrewritten end line does catch it.
    let mut cut = lines[..=line_of(&lines, 7)].to_vec();
    cut.push(lines.last().unwrap().clone());
    fails_with(
        &cut,
        key.verifying_key(),
        "seq 9: the end line says the file ends at seq 9, but it ends at seq 7",
    );
}

#[test]
fn a_wrong_key_is_refused() {
    let key = ed_key();
    let lines = export_lines(&key, 5, &[4]);
    let other = SigningKey::ed25519_from_seed(&[8; 32]).unwrap();
    fails_with(&lines, other.verifying_key(), "the file is sealed with key");
    let hmac = SigningKey::hmac_sha256(&[1; 32]).unwrap();
    fails_with(&lines, hmac.verifying_key(), "not with the key given");
}

#[test]
fn a_reseal_with_another_key_is_refused() {
    let key = ed_key();
    let thief = SigningKey::ed25519_from_seed(&[9; 32]).unwrap();
    let mut lines = export_lines(&key, 5, &[4]);
    let i = line_of(&lines, 4);
    let forged = rewrite(&lines[i], |m| m["kind"] = json!("scim.forged"));
    lines[i] = forged.line().to_vec();
    // The thief's own seal, under the thief's key id: refused by key.
    let seal = Seal::sign(&thief, &log_id(), forged.head(), at(9)).unwrap();
    lines[i + 1] = seal.line();
    let err = fails(&lines, key.verifying_key());
    assert!(
        err.contains("seq 4: the file is sealed with key") && err.contains(thief.id().as_str()),
        "{err}"
    );
    // The thief's signature under the real key id: refused by signature.
    let mut seal = seal;
    seal.key = key.id().clone();
    lines[i + 1] = seal.line();
    fails_with(
        &lines,
        key.verifying_key(),
        "seq 4: the seal's signature does not verify",
    );
}

/// Records 0..20 sealed at 9 and 19, pruned before 10 with a checkpoint at seal 9.
fn pruned_lines(key: &SigningKey) -> Vec<Vec<u8>> {
    let log = log_id();
    let mut chain = Chain::genesis(&log);
    let mut records = Vec::new();
    for i in 0..20 {
        records.push(
            chain
                .append(at(i), "delivery.action", body(i as u64))
                .unwrap(),
        );
    }
    let checkpoint = Checkpoint::sign(key, &log, records[9].head(), at(100)).unwrap();
    let mut ex = Exporter::new(Vec::new(), &header(key, Start::Checkpoint)).unwrap();
    ex.checkpoint(&checkpoint).unwrap();
    for r in &records[10..] {
        ex.record(r).unwrap();
    }
    ex.seal(&Seal::sign(key, &log, records[19].head(), at(101)).unwrap())
        .unwrap();
    split(&ex.finish().unwrap())
}

#[test]
fn a_pruned_log_verifies_from_its_checkpoint() {
    let key = ed_key();
    let lines = pruned_lines(&key);
    let report = check(&lines, key.verifying_key()).unwrap();
    assert_eq!(
        report.anchor,
        Anchor::Checkpoint {
            next: 10,
            time: at(100)
        }
    );
    assert_eq!((report.first_seq, report.last_seq), (Some(10), Some(19)));
    assert_eq!(report.unsealed(), None);
}

#[test]
fn tampering_after_a_checkpoint_is_named() {
    let key = ed_key();
    let vk = key.verifying_key();
    let lines = pruned_lines(&key);

    let mut edited = lines.clone();
    let i = line_of(&edited, 12);
    edited[i] = rewrite(&edited[i], |m| m["kind"] = json!("x"))
        .line()
        .to_vec();
    fails_with(&edited, vk, "seq 13: its prev is not the hash of seq 12");

    // Deleting the first retained record: the checkpoint says where history starts.
    let mut deleted = lines.clone();
    deleted.remove(line_of(&deleted, 10));
    fails_with(
        &deleted,
        vk,
        "seq 11: expected seq 10 here: seq 10 is missing",
    );

    // Moving the checkpoint on to hide seq 10 needs the key.
    let mut moved = deleted.clone();
    let mut cp = parse(&moved[1]);
    cp["next"] = json!(11);
    cp["prev"] = parse(&lines[line_of(&lines, 11)])["prev"].clone();
    let mut text = Vec::new();
    canonical::write_value(&mut text, &Value::Object(cp)).unwrap();
    moved[1] = text;
    fails_with(
        &moved,
        vk,
        "seq 11: the checkpoint before seq 11 does not verify",
    );

    // A record before the checkpoint's start slipped back in.
    let mut swapped = lines.clone();
    let (a, b) = (line_of(&swapped, 10), line_of(&swapped, 11));
    swapped.swap(a, b);
    fails_with(&swapped, vk, "seq 11: expected seq 10 here");
}

#[test]
fn hmac_keys_seal_and_verify_too() {
    let key = SigningKey::hmac_sha256(&[3; 32]).unwrap();
    let mut lines = export_lines(&key, 6, &[2, 5]);
    let report = check(&lines, key.verifying_key()).unwrap();
    assert_eq!(report.alg, Algorithm::HmacSha256);
    let text = key.verifying_key().to_text();
    let again = VerifyingKey::from_text(&text).unwrap();
    assert!(check(&lines, &again).is_ok());
    let i = line_of(&lines, 1);
    lines[i] = rewrite(&lines[i], |m| m["kind"] = json!("y"))
        .line()
        .to_vec();
    assert!(
        fails(&lines, key.verifying_key()).contains("seq 2: its prev is not the hash of seq 1")
    );
    assert!(SigningKey::hmac_sha256(&[3; 16]).is_err());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let key = ed_key();
    let vk = key.verifying_key();
    for (input, expect) in [
        (&b""[..], "empty"),
        (b"not json\n", "not JSON"),
        (b"{\"a\":1}\n", "format version"),
        (b"[1]\n", "not a JSON object"),
        (b"{ \"v\":1}\n", "canonical"),
        (b"{\"type\":\"record\",\"v\":1}\n", "no header line"),
        (b"{\"v\":1.5}\n", "not an integer"),
    ] {
        let err = verify(input, vk).unwrap_err().to_string();
        assert!(err.contains(expect), "{input:?}: {err}");
    }
    let lines = export_lines(&key, 3, &[2]);
    let mut extra = lines.clone();
    extra.push(lines[1].clone());
    fails_with(&extra, vk, "a line after the end line");
    let mut upper = lines.clone();
    upper[1] = String::from_utf8(upper[1].clone())
        .unwrap()
        .replacen("\"prev\":\"", "\"prev\":\"A", 1)
        .into_bytes();
    fails_with(&upper, vk, "\"prev\" is not 64 lower-case hex digits");
}

#[test]
fn appending_refuses_what_cannot_be_canonical() {
    let mut chain = Chain::genesis(&log_id());
    assert!(chain.append(at(0), "", json!({})).is_err());
    assert!(chain.append(at(0), "k", json!([1])).is_err());
    assert!(chain.append(at(0), "k", json!({"ratio": 0.5})).is_err());
    // The chain did not move on.
    assert_eq!(chain.next_seq(), 0);
    let r = chain.append(at(0), "k", json!({})).unwrap();
    assert_eq!(r.prev(), log_id().genesis());
    let resumed = Chain::resume(r.head());
    assert_eq!(resumed.next_seq(), 1);
}

#[test]
fn times_keep_microseconds_and_one_spelling() {
    let t = at(0) + Duration::nanoseconds(1_234_567);
    let r = Chain::genesis(&log_id()).append(t, "k", json!({})).unwrap();
    assert_eq!(record::format_time(r.time()), "2026-12-01T09:00:00.001234Z");
    assert!(record::parse_time("2026-12-01T09:00:00.001234+00:00").is_none());
}

#[test]
fn a_range_export_trusts_only_its_first_link() {
    let key = ed_key();
    let mut lines = export_lines(&key, 10, &[9]);
    // Header says range; records before 5 left out.
    lines[0] = header(&key, Start::Range).line();
    lines.drain(1..line_of(&lines, 5));
    let end = lines.len() - 1;
    lines[end] = export::Totals {
        records: 5,
        seals: 1,
        last_seq: Some(9),
    }
    .end_line();
    let report = check(&lines, key.verifying_key()).unwrap();
    assert_eq!(report.anchor, Anchor::Range);
    assert_eq!((report.first_seq, report.unsealed()), (Some(5), None));
}

#[test]
fn a_rollback_below_a_witnessed_head_is_named() {
    // The database is rolled back to the seal of seq 4 and rewritten from there; its
    // own seals verify, but the head of seq 9 was copied to the SIEM earlier.
    let key = ed_key();
    let lines = export_lines(&key, 10, &[4, 9]);
    let witnessed = Head {
        seq: 9,
        hash: Digest::of(&lines[line_of(&lines, 9)]),
    };
    let honest = verify_witnessed(join(&lines).as_slice(), key.verifying_key(), &[witnessed]);
    assert!(honest.is_ok(), "{honest:?}");

    let log = log_id();
    let records: Vec<Record> = (0..10)
        .scan(Chain::genesis(&log), |chain, i| {
            let b = if i < 5 {
                body(i)
            } else {
                json!({"rewritten": i})
            };
            Some(chain.append(at(i as i64), "scim.change", b).unwrap())
        })
        .collect();
    let mut ex = Exporter::new(Vec::new(), &header(&key, Start::Genesis)).unwrap();
    for r in &records {
        ex.record(r).unwrap();
        if r.seq() == 4 || r.seq() == 9 {
            ex.seal(&Seal::sign(&key, &log, r.head(), at(20)).unwrap())
                .unwrap();
        }
    }
    let rewritten = ex.finish().unwrap();
    assert!(verify(rewritten.as_slice(), key.verifying_key()).is_ok());
    let err = verify_witnessed(rewritten.as_slice(), key.verifying_key(), &[witnessed])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("seq 9: its hash is not the witnessed head"),
        "{err}"
    );

    // Cut back to seq 4 instead: the witnessed seq is beyond the end.
    let cut: Vec<Vec<u8>> = lines[..=line_of(&lines, 4) + 1]
        .iter()
        .cloned()
        .chain([export::Totals {
            records: 5,
            seals: 1,
            last_seq: Some(4),
        }
        .end_line()])
        .collect();
    let err = verify_witnessed(join(&cut).as_slice(), key.verifying_key(), &[witnessed])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("seq 9: a witnessed head, but the file ends at seq 4"),
        "{err}"
    );
}

/// One change to an export file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { line: usize, at: usize, mask: u8 },
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Cut(usize),
}

fn apply(lines: &[Vec<u8>], m: &Mutation) -> Option<Vec<u8>> {
    let n = lines.len();
    let mut lines = lines.to_vec();
    match *m {
        Mutation::Flip { line, at, mask } => {
            let l = &mut lines[line % n];
            let at = at % (l.len() + 1);
            // The newline ending the line may flip too.
            if at == l.len() {
                let mut file = join(&lines[..=line % n]);
                let last = file.len() - 1;
                file[last] ^= mask;
                file.extend(join(&lines[line % n + 1..]));
                return Some(file);
            }
            l[at] ^= mask;
        }
        Mutation::Delete(i) => {
            lines.remove(i % n);
        }
        Mutation::Duplicate(i) => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
        }
        Mutation::Swap(a, b) => {
            if lines[a % n] == lines[b % n] {
                return None;
            }
            lines.swap(a % n, b % n);
        }
        Mutation::Cut(at) => {
            let file = join(&lines);
            let at = at % file.len();
            return Some(file[..at].to_vec());
        }
    }
    Some(join(&lines))
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), 1..=255u8)
            .prop_map(|(line, at, mask)| Mutation::Flip { line, at, mask }),
        1 => any::<usize>().prop_map(Mutation::Delete),
        1 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        1 => any::<usize>().prop_map(Mutation::Cut),
    ]
}

fn random_body() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    let tree = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("[a-zA-Z]{1,8}", tree, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// Records with random bodies, a seal after each record where `seals` says so.
fn random_export(
    bodies: &[Value],
    seals: &[bool],
    seal_last: bool,
    key: &SigningKey,
) -> Vec<Vec<u8>> {
    let log = log_id();
    let mut chain = Chain::genesis(&log);
    let mut ex = Exporter::new(Vec::new(), &header(key, Start::Genesis)).unwrap();
    for (i, b) in bodies.iter().enumerate() {
        let r = chain.append(at(i as i64), "k", b.clone()).unwrap();
        ex.record(&r).unwrap();
        let last = i + 1 == bodies.len();
        if (seals[i] && !last) || (last && seal_last) {
            ex.seal(&Seal::sign(key, &log, r.head(), at(i as i64)).unwrap())
                .unwrap();
        }
    }
    split(&ex.finish().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A fully sealed export: every single mutation fails verification.
    #[test]
    fn any_single_mutation_of_a_sealed_export_is_detected(
        bodies in prop::collection::vec(random_body(), 1..12),
        seals in prop::collection::vec(any::<bool>(), 12),
        m in mutation(),
    ) {
        let key = ed_key();
        let lines = random_export(&bodies, &seals, true, &key);
        prop_assert!(check(&lines, key.verifying_key()).is_ok());
        if let Some(file) = apply(&lines, &m) {
            let result = verify(file.as_slice(), key.verifying_key());
            prop_assert!(result.is_err(), "{m:?} not detected: {:?}", result);
        }
    }

    /// With an unsealed tail, what goes undetected is only ever in that tail, and
    /// the report says so.
    #[test]
    fn what_escapes_detection_is_reported_unsealed(
        bodies in prop::collection::vec(random_body(), 1..12),
        seals in prop::collection::vec(any::<bool>(), 12),
        line in any::<usize>(), at in any::<usize>(), mask in 1..=255u8,
    ) {
        let key = ed_key();
        let lines = random_export(&bodies, &seals, false, &key);
        let m = Mutation::Flip { line, at, mask };
        let Some(file) = apply(&lines, &m) else { return Ok(()) };
        if let Ok(report) = verify(file.as_slice(), key.verifying_key()) {
            let (first, last) = report.unsealed().expect("undetected edit with nothing unsealed");
            // Only the newest record can change unseen: every other one is linked
            // from the record after it.
            prop_assert_eq!(last, bodies.len() as u64 - 1);
            prop_assert!(first <= last);
            prop_assert_eq!(line % lines.len(), lines.len() - 2, "{:?}", m);
        }
    }
}

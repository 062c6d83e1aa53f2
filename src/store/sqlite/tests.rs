//! SQLite-only behaviour (files on disk); what both engines share is in
//! `store::conformance`.

use super::*;

#[tokio::test]
async fn refuses_foreign_and_corrupt_files_without_touching_them() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is my thesis, not a database").unwrap();
    let err = SqliteStore::open(&junk).unwrap_err();
    assert!(matches!(err, StoreError::Foreign(_)), "{err}");
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        b"this is my thesis, not a database"
    );

    let other = dir.path().join("other.db");
    {
        let c = Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE invoices (id INTEGER)")
            .unwrap();
    }
    let err = SqliteStore::open(&other).unwrap_err();
    assert!(
        err.to_string().contains("not a scim-bridge database"),
        "{err}"
    );
}

#[tokio::test]
async fn reopening_reports_the_version_it_migrated_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), 0);
    store.close().await;
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), SCHEMA_VERSION);
    store.close().await;
}

/// Requests whose clients hang up are dropped mid-read; the blocking read still holds a
/// connection until it ends. Its permit must be held as long, or other readers are let
/// in to an empty pool ("read pool empty": 500s and failed deliveries under load).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_dropped_mid_read_leave_the_pool_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
    let mut writes = Vec::new();
    for i in 0..3000 {
        let store = Arc::clone(&store);
        writes.push(tokio::spawn(async move {
            store
                .apply(create_user(
                    &format!("u{i}"),
                    serde_json::json!({"userName": format!("user{i}@firm.example"), "title": "x".repeat(200)}),
                ))
                .await
                .unwrap();
        }));
    }
    for w in writes {
        w.await.unwrap();
    }
    for _ in 0..30 {
        // Whole-table scans, each dropped as soon as it has started.
        for _ in 0..READERS * 2 {
            let s = Arc::clone(&store);
            let scan = async move { s.scan("entra", ResourceKind::User, 0, 0, 3000).await };
            let _ = tokio::time::timeout(std::time::Duration::ZERO, scan).await;
        }
        // Everyone else must still be served.
        let mut reads = Vec::new();
        for i in 0..READERS * 2 {
            let s = Arc::clone(&store);
            reads.push(tokio::spawn(async move {
                s.get("entra", ResourceKind::User, &format!("u{i}")).await
            }));
        }
        for r in reads {
            let got = r.await.unwrap();
            assert!(got.is_ok(), "a reader was refused: {:?}", got.err());
        }
    }
}

/// Change events written before the detail was typed read back as they were: the
/// stored JSON shape is the contract, old rows included.
#[tokio::test]
async fn change_events_stored_by_earlier_versions_read_back() {
    use crate::store::{ChangeLog, EventDetail, Lifecycle};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    SqliteStore::open(&path).unwrap().close().await;
    let at = fmt_time(chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap());
    {
        let c = Connection::open(&path).unwrap();
        let old = [
            ("create", r#"{"added":["a","b"]}"#),
            ("update", r#"{"added":["c"],"removed":["a"]}"#),
            ("update", r#"{"replaced":true}"#),
            (
                "delete",
                r#"{"userName":null,"externalId":"x","displayName":"Board","removed":["b","c"]}"#,
            ),
        ];
        for (version, (op, detail)) in old.iter().enumerate() {
            c.execute(
                "INSERT INTO change_events (provider, kind, resource_id, op, version, at, detail)
                 VALUES ('entra', 'Group', 'g', ?1, ?2, ?3, ?4)",
                params![op, version as i64 + 1, at, detail],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let events = store
        .resource_events("entra", ResourceKind::Group, "g", 0, i64::MAX)
        .await
        .unwrap();
    let details: Vec<EventDetail> = events.into_iter().map(|e| e.detail).collect();
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        details,
        [
            EventDetail::Created {
                added: ids(&["a", "b"])
            },
            EventDetail::Updated {
                added: ids(&["c"]),
                removed: ids(&["a"])
            },
            EventDetail::Replaced,
            EventDetail::Deleted {
                user_name: None,
                external_id: Some("x".into()),
                display_name: Some("Board".into()),
                removed: Some(ids(&["b", "c"])),
            },
        ]
    );
    assert_eq!(details[3].name(), Some("Board"));
    store.close().await;
}

fn audit_rows(c: &Connection, from: i64, to: i64) -> Vec<crate::store::audit_chain::Unchained> {
    c.prepare("SELECT id, at, kind, body FROM audit_log WHERE id BETWEEN ?1 AND ?2 ORDER BY id")
        .unwrap()
        .query_map([from, to], |r| {
            Ok(crate::store::audit_chain::Unchained {
                id: r.get(0)?,
                at: r.get(1)?,
                kind: r.get(2)?,
                body: r.get(3)?,
            })
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn insert_audit_row(c: &Connection, n: i64) {
    c.execute(
        "INSERT INTO audit_log (at, kind, body, resource_id, action, outcome)
         VALUES (?1, 'scim.change', ?2, ?3, 'create', 'success')",
        params![
            1_767_322_800_000_000 + n,
            format!(r#"{{"n": {n}}}"#),
            format!("u{n}")
        ],
    )
    .unwrap();
}

/// A database chained by the version that stored seq, hash and line on each row
/// (schema 12) reads back the same lines after the migration, and its chain goes on
/// with the rows it had not linked yet and with new ones, whose ids are never reused.
#[tokio::test]
async fn a_log_chained_on_its_rows_carries_on_after_the_migration() {
    use crate::audit::LogId;
    use crate::store::{AuditChain, AuditHead, ProvisioningLog};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v12.db");
    let log = LogId::new("old-log").unwrap();
    let old_lines = {
        let c = Connection::open(&path).unwrap();
        schema::create_at_version(&c, 12).unwrap();
        for n in 1..=7 {
            insert_audit_row(&c, n);
        }
        // The retention had pruned the first two: the chain starts at seq 2 on row 3.
        let genesis = AuditHead::genesis(log.clone());
        let all = crate::store::audit_chain::plan_links(&genesis, &audit_rows(&c, 1, 7)).unwrap();
        c.execute("DELETE FROM audit_log WHERE id <= 2", [])
            .unwrap();
        // Rows 3..=5 were chained, 6 and 7 were waiting.
        for l in &all.links[2..5] {
            c.execute(
                "UPDATE audit_log SET seq = ?2, prev = ?3, hash = ?4, line = ?5 WHERE id = ?1",
                params![l.id, l.seq as i64, l.prev, l.hash, l.line],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO audit_head (one, log_id, next_seq, prev) VALUES (1, ?1, 5, ?2)",
            params![log.as_str(), all.links[4].hash],
        )
        .unwrap();
        all.links.iter().map(|l| l.line.clone()).collect::<Vec<_>>()
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), 12);
    let lines = |from: u64| {
        let store = &store;
        async move {
            store
                .chained_lines(from, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|l| (l.seq, l.line))
                .collect::<Vec<_>>()
        }
    };
    let expect = |range: std::ops::Range<usize>| {
        range
            .map(|i| (i as u64, old_lines[i].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(2).await, expect(2..5));
    assert_eq!(lines(4).await, expect(4..5));
    assert_eq!(store.chain_pending(10).await.unwrap().linked, 2);
    assert_eq!(
        lines(3).await,
        expect(3..7),
        "the waiting rows link on as before"
    );
    let id = store
        .log_append(crate::provlog::LogRow {
            at: chrono::DateTime::UNIX_EPOCH,
            kind: crate::provlog::CHANGE,
            body: "{}".into(),
            provider: None,
            resource_kind: None,
            resource_id: None,
            user_name_key: None,
            display_name: None,
            target: None,
            action: "create".into(),
            outcome: "success".into(),
            change_seq: None,
            change_seq_last: None,
            request_id: None,
        })
        .await
        .unwrap();
    assert_eq!(id, 8);
    assert_eq!(store.chain_pending(10).await.unwrap().linked, 1);
    assert_eq!(store.log_entry(8).await.unwrap().unwrap().seq, Some(7));
    assert_eq!(store.log_entry(3).await.unwrap().unwrap().seq, Some(2));
    store.close().await;
}

/// Past many marks and a pruning cut between two of them, every record's line, read
/// from any seq, is the one a replay of the whole chain gives, and every row's seq
/// is found by its id.
#[tokio::test]
async fn lines_rebuilt_from_marks_match_the_whole_chain() {
    use crate::audit::LogId;
    use crate::store::{AuditChain, AuditHead, ProvisioningLog};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marks.db");
    let store = SqliteStore::open(&path).unwrap();
    let log = LogId::new("marks").unwrap();
    store.audit_head(&log).await.unwrap();
    let rows = 700;
    {
        let c = Connection::open(&path).unwrap();
        for n in 1..=rows {
            insert_audit_row(&c, n);
        }
    }
    let mut linked = 0;
    while linked < rows as usize {
        linked += store.chain_pending(100).await.unwrap().linked;
    }
    let whole = {
        let c = Connection::open(&path).unwrap();
        crate::store::audit_chain::plan_links(&AuditHead::genesis(log), &audit_rows(&c, 1, rows))
            .unwrap()
            .links
    };
    for from in [0_u64, 1, 255, 256, 257, 511, 600, 699] {
        let got = store.chained_lines(from, 3).await.unwrap();
        let want: Vec<_> = whole[from as usize..].iter().take(3).collect();
        assert_eq!(got.len(), want.len(), "from {from}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.seq, &g.line), (w.seq, &w.line), "from {from}");
        }
    }
    for id in [1_i64, 256, 257, 258, 700] {
        let e = store.log_entry(id).await.unwrap().unwrap();
        assert_eq!(e.seq, Some(id - 1), "row {id}");
    }
    // Cut between marks: the kept records still rebuild, and the seqs still hold.
    while store.prune_chained(300, 64).await.unwrap() > 0 {}
    assert!(store.log_entry(300).await.unwrap().is_none());
    let got = store.chained_lines(300, 2).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|l| (l.seq, l.line.as_str()))
            .collect::<Vec<_>>(),
        whole[300..302]
            .iter()
            .map(|l| (l.seq, l.line.as_str()))
            .collect::<Vec<_>>()
    );
    assert!(store.chained_lines(299, 1).await.unwrap()[0].seq >= 300);
    assert_eq!(store.log_entry(301).await.unwrap().unwrap().seq, Some(300));
    assert_eq!(store.log_entry(700).await.unwrap().unwrap().seq, Some(699));
    // A cut past the head is refused, and leaves the head's records readable.
    assert!(store.prune_chained(701, 64).await.is_err());
    assert_eq!(store.chained_lines(699, 1).await.unwrap()[0].seq, 699);
    store.close().await;
}

/// The provisioning log's target index holds only the rows that have a target
/// (migration 0015); a query by target must still use it.
#[tokio::test]
async fn log_queries_by_target_use_the_partial_index() {
    use super::provlog::ENTRY_COLUMNS;
    use crate::provlog::LogQuery;
    use crate::store::provisioning_log::query_sql;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    SqliteStore::open(&path).unwrap().close().await;
    let c = Connection::open(&path).unwrap();
    c.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO audit_log (at, kind, body, target, action, outcome)
         SELECT i, 'delivery.action', '{}',
                CASE WHEN i % 10 = 0 THEN NULL ELSE 't' || (i % 100) END, 'create', 'ok'
         FROM n;
         ANALYZE;",
    )
    .unwrap();
    let q = LogQuery {
        target: Some("t1".into()),
        limit: 50,
        ..LogQuery::default()
    };
    let (filter, _) = query_sql(&q, |n| format!("?{n}"));
    let plan: Vec<String> = c
        .prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT {ENTRY_COLUMNS} FROM audit_log{filter}"
        ))
        .unwrap()
        .query_map(rusqlite::params!["t1", 50], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter().any(|d| d.contains("audit_log_target")),
        "{plan:?}"
    );
    let def: String = c
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'audit_log_target'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(def.contains("IS NOT NULL"), "{def}");
}

/// A user created with `doc`, as the directory would.
fn create_user(id: &str, doc: serde_json::Value) -> crate::store::Mutation {
    use crate::store::{Mutation, MutationKind};
    Mutation {
        provider: "entra".into(),
        kind: ResourceKind::User,
        id: id.into(),
        expected_version: None,
        at: chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap(),
        request_id: None,
        check_members: false,
        log: None,
        change: MutationKind::Create {
            doc,
            members: vec![],
        },
    }
}

fn user_doc(name: &str) -> serde_json::Value {
    serde_json::json!({ "userName": name })
}

/// A store in a directory of its own (kept alive by the first value) at the path
/// returned, holding one user `id` named `name`.
async fn store_with_user(
    id: &str,
    name: &str,
) -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    store.apply(create_user(id, user_doc(name))).await.unwrap();
    (dir, path, store)
}

/// The creation of user `u{i}`, named `u{i}@firm.example`.
fn numbered_user(i: usize) -> crate::store::Mutation {
    create_user(&format!("u{i}"), user_doc(&format!("u{i}@firm.example")))
}

/// `f` of the reader connections in the pool.
fn with_readers<T>(store: &SqliteStore, f: impl FnOnce(&[Reader]) -> T) -> T {
    f(&store.readers.conns.lock().unwrap())
}

/// Whether any reader connection in the pool keeps a snapshot.
fn any_kept(store: &SqliteStore) -> bool {
    with_readers(store, |rs| rs.iter().any(|r| r.kept.is_some()))
}

/// Point reads keep their read transaction between requests (`snapshot.rs`); a
/// commit by this store or by another connection (the CLI writes the file itself)
/// must still be seen by the very next read, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_snapshots_see_every_commit_at_once() {
    let (_dir, path, store) = store_with_user("u1", "ada@firm.example").await;
    assert!(
        with_readers(&store, |rs| rs.iter().all(|r| r.index.is_some())),
        "every reader reaches its WAL index"
    );
    let other = Connection::open(&path).unwrap();
    for round in 0..50 {
        // Three times: after a change the first read runs on its own, the second
        // begins a snapshot it keeps (the database stood still between them), and
        // the third runs in that kept snapshot.
        for _ in 0..3 {
            let got = store
                .get("entra", ResourceKind::User, "u1")
                .await
                .unwrap()
                .unwrap();
            let want = (round > 0).then(|| serde_json::json!(format!("t{}", round - 1)));
            assert_eq!(got.doc.get("title").cloned(), want, "round {round}");
        }
        other
            .execute(
                "UPDATE resources SET doc = json_set(doc, '$.title', ?1) WHERE id = 'u1'",
                [format!("t{round}")],
            )
            .unwrap();
        let found = store
            .lookup(
                "entra",
                ResourceKind::User,
                Lookup::UserNames(vec!["ada@firm.example".into()]),
            )
            .await
            .unwrap();
        assert_eq!(found[0].doc["title"], format!("t{round}"), "round {round}");
        // And this store's own writes.
        let id = format!("n{round}");
        store
            .apply(create_user(&id, user_doc(&format!("{id}@firm.example"))))
            .await
            .unwrap();
        assert!(
            store
                .get("entra", ResourceKind::User, &id)
                .await
                .unwrap()
                .is_some()
        );
    }
}

/// An idle reader's kept snapshot would hold checkpoints back for good, whether
/// out of date or current (a WAL restart waits for every reader of it); the
/// checkpointer ends idle ones, so another process can still empty the WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_snapshots_do_not_hold_the_wal_back() {
    let (dir, path, store) = store_with_user("u0", "u0@firm.example").await;
    let store = Arc::new(store);
    // Every reader keeps a snapshot.
    let read_all = || async {
        let mut reads = Vec::new();
        for _ in 0..READERS * 4 {
            let s = Arc::clone(&store);
            reads.push(tokio::spawn(async move {
                s.get("entra", ResourceKind::User, "u0").await
            }));
        }
        for r in reads {
            r.await.unwrap().unwrap();
        }
    };
    read_all().await;
    // The database moves on (their snapshots are out of date), and they read
    // again (current snapshots, each holding its mark in the WAL).
    for i in 1..200 {
        store.apply(numbered_user(i)).await.unwrap();
    }
    // Twice: a snapshot is kept once the database stood still between two reads.
    // (The checkpointer may end them between the reads and this look: retried.)
    let mut tries = 0;
    while !any_kept(&store) {
        tries += 1;
        assert!(tries < 20, "readers keep snapshots");
        read_all().await;
        read_all().await;
    }
    tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
    let c = Connection::open(&path).unwrap();
    let (busy, log, done): (i64, i64, i64) = c
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(busy, 0, "no reader held the checkpoint back");
    assert_eq!(log, done);
    let wal = std::fs::metadata(dir.path().join("db.sqlite-wal")).unwrap();
    assert_eq!(wal.len(), 0, "the WAL was emptied");
}

/// The WAL file's checkpoint sequence number (bytes 12..16 of its header): it goes
/// up each time a writer restarts the WAL from its beginning.
fn wal_restarts(dir: &std::path::Path) -> u32 {
    let wal = std::fs::read(dir.join("db.sqlite-wal")).unwrap();
    u32::from_be_bytes(wal[12..16].try_into().unwrap())
}

/// A writer restarts the WAL only if no reader holds a mark in it; point reads that
/// never pause, with a write now and then, must still let it restart once the
/// checkpointer has folded the WAL in, or the WAL grows for as long as the reads go
/// on. (Snapshots kept from before a checkpoint hold such marks: they are ended
/// once the checkpoint has moved, busy or idle.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_restarts_under_steady_reads_and_occasional_writes() {
    let (dir, _path, store) = store_with_user("u0", "u0@firm.example").await;
    let store = Arc::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (s, stop) = (Arc::clone(&store), Arc::clone(&stop));
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                s.get("entra", ResourceKind::User, "u0")
                    .await
                    .unwrap()
                    .unwrap();
            }
        }));
    }
    let before = wal_restarts(dir.path());
    for i in 1..=40 {
        tokio::time::sleep(CHECKPOINT_EVERY / 4).await;
        store.apply(numbered_user(i)).await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let after = wal_restarts(dir.path());
    assert!(
        after >= before + 3,
        "the WAL restarted {} times over 40 writes and 10 checkpoints",
        after - before
    );
}

/// At close, reads that come late keep no snapshot that could stand in the way of
/// the last checkpoint, which empties the WAL.
#[tokio::test]
async fn a_closing_store_keeps_no_snapshot() {
    let (_dir, _path, store) = store_with_user("u0", "u0@firm.example").await;
    // (The checkpointer may end it between the reads and this look: retried.)
    let mut tries = 0;
    while !any_kept(&store) {
        tries += 1;
        assert!(tries < 20, "an open store keeps one");
        for _ in 0..3 {
            store.get("entra", ResourceKind::User, "u0").await.unwrap();
        }
    }
    store.readers.stop_keeping();
    store.readers.release_idle();
    for _ in 0..3 {
        store.get("entra", ResourceKind::User, "u0").await.unwrap();
    }
    assert!(!any_kept(&store), "a closing store keeps none");
}

/// Names the database [`another_process_writes`] opens, in the process that runs it.
const OTHER_PROCESS_DB: &str = "SCIM_BRIDGE_TEST_OTHER_PROCESS_DB";

/// The other process of the test below: opens the database as the CLI would,
/// writes a title and exits.
#[test]
#[ignore = "run as a child process by kept_snapshots_survive_another_process_opening_the_database"]
#[allow(clippy::disallowed_methods)] // what the parent test hands its child, not the daemon's
fn another_process_writes() {
    use std::os::fd::AsRawFd;
    let path = std::env::var(OTHER_PROCESS_DB).expect("run by the test below");
    let title = std::env::var("SCIM_BRIDGE_TEST_TITLE").unwrap();
    // Before SQLite opens it here: the daemon's process must still hold its shared
    // lock on the WAL index's dead-man-switch byte (`UNIX_SHM_DMS` in SQLite's
    // os_unix.c: 128, after the eight lock bytes from 120). Without it, this process
    // takes itself for the first to open the database and truncates the index under
    // the daemon's mapping. Asked with F_GETLK, which reports other processes' locks.
    let shm = std::fs::File::open(format!("{path}-shm")).unwrap();
    // SAFETY: a zeroed `flock` is a valid value; F_GETLK only writes into it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 128;
    lock.l_len = 1;
    // SAFETY: `shm` is open; `lock` is a valid `flock`.
    let rc = unsafe { libc::fcntl(shm.as_raw_fd(), libc::F_GETLK, &raw mut lock) };
    assert_eq!(rc, 0);
    assert_eq!(
        lock.l_type,
        libc::F_RDLCK as libc::c_short,
        "the daemon's process holds its lock on the WAL index"
    );
    drop(shm);
    let c = Connection::open(path).unwrap();
    c.execute(
        "UPDATE resources SET doc = json_set(doc, '$.title', ?1) WHERE id = 'u1'",
        [title],
    )
    .unwrap();
}

/// The first form of kept snapshots read the WAL-index header through a descriptor
/// of its own and closed it, which dropped every POSIX lock this process held on
/// the `-shm` file: another process opening the database then took itself for the
/// first, truncated the file, and this process died of SIGBUS at its next read.
/// Here the CLI's part is played by this test binary, run again as a child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_snapshots_survive_another_process_opening_the_database() {
    let (dir, path, store) = store_with_user("u1", "ada@firm.example").await;
    let exe = std::env::current_exe().unwrap();
    for round in 0..3 {
        // A reader keeps a snapshot: the database stood still between its reads.
        for _ in 0..READERS * 3 {
            store.get("entra", ResourceKind::User, "u1").await.unwrap();
        }
        let title = format!("from another process {round}");
        let status = std::process::Command::new(&exe)
            .args([
                "--exact",
                "store::sqlite::tests::another_process_writes",
                "--ignored",
                "--test-threads=1",
                "--quiet",
            ])
            .env(OTHER_PROCESS_DB, &path)
            .env("SCIM_BRIDGE_TEST_TITLE", &title)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the other process wrote: {status}");
        let shm = std::fs::metadata(dir.path().join("db.sqlite-shm")).unwrap();
        assert!(
            shm.len() >= 32_768,
            "the WAL index was left whole: {} bytes",
            shm.len()
        );
        for _ in 0..READERS * 3 {
            let got = store
                .get("entra", ResourceKind::User, "u1")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.doc["title"], title.as_str(), "round {round}");
        }
    }
}

/// `.cargo/config.toml` builds SQLite without one page-cache group shared by every
/// connection under a process-wide mutex (the daemon's worker threads contended
/// for it on every page of every point read) and without allocation statistics.
#[test]
fn sqlite_is_built_with_unshared_page_caches() {
    let c = Connection::open_in_memory().unwrap();
    let options: Vec<String> = c
        .prepare("PRAGMA compile_options")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "built with ENABLE_MEMORY_MANAGEMENT (a stale target directory? `cargo clean -p libsqlite3-sys`): {options:?}"
    );
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
}

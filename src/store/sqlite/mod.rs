//! The embedded SQLite store: WAL, `synchronous = FULL`, one writer thread with
//! group commit (see [`writer`]), and a small pool of read-only connections.

mod chain;
mod console_sessions;
mod delivery;
mod provlog;
mod rows;
mod schema;
mod snapshot;
mod token_watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Semaphore, mpsc, oneshot};

use self::rows::{RESOURCE_COLUMNS, fmt_time, parse_time, resource};
use self::writer::Job;
use crate::scim::{MemberRef, ResourceKind};
use crate::store::vault_rows::put_secret_sql;
use crate::store::{
    ApiToken, ChangeEvent, ChangeLog, Claim, Committed, DeadLetter, DeliveryAttempt,
    DeliveryOutcome, DeliveryQueue, DeliveryStats, GuardState, Guards, Lifecycle, Lookup, Managed,
    Mutation, Orphan, Page, QueuedDelivery, Resources, Schedules, SecretRow, SecretWrite,
    StoreCounts, StoreError, StoreStatus, StoredResource, StoredText, TargetLink, TargetLinks,
    Tokens, VaultRecord, VaultRows, stored_member_kind,
};

pub use self::schema::SCHEMA_VERSION;

/// Read connections; reads never wait on the writer in WAL mode.
const READERS: usize = 4;
/// Queue in front of the writer; callers wait (backpressure) when it is full.
const QUEUE: usize = 8192;
/// Page cache of the writer connection, KiB: index pages touched by inserts.
const WRITER_CACHE_KIB: u32 = 16 * 1024;
/// Page cache per reader, KiB; the OS page cache holds the rest of the file.
const READER_CACHE_KIB: u32 = 4 * 1024;
/// How often the checkpointer folds the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL pages at which the writer checkpoints by itself: only reached if the
/// checkpointer thread is not keeping up.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 20_000;

/// SQLite behind the [`Store`] trait.
pub struct SqliteStore {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<ReadPool>,
    migrated_from: i64,
    stats: Arc<writer::WriterStats>,
    checkpointer: Mutex<Option<Checkpointer>>,
    /// Revocations by any process, for the daemon's token cache.
    token_watch: token_watch::TokenWatch,
}

/// Background WAL checkpoints. SQLite's automatic checkpoint runs inside the commit
/// of whichever write crosses the threshold, adding a burst of page writes and an
/// fsync of the database file to that batch's latency; a passive checkpoint on its
/// own connection does the same work without holding up the writer.
struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Without `close` (an error path, a test) the thread must still end.
        if let Some(c) = self.checkpointer.get_mut().ok().and_then(Option::take) {
            c.stop.store(true, Ordering::Release);
            c.thread.thread().unpark();
        }
    }
}

impl Checkpointer {
    fn start(conn: Connection, readers: Arc<ReadPool>) -> Result<Self, StoreError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    std::thread::park_timeout(CHECKPOINT_EVERY);
                    // Before: an idle snapshot would keep the checkpoint from
                    // copying what was written after it began. After: snapshots
                    // begun while it ran hold marks in the WAL, which would keep the
                    // next write from restarting it (busy ones end at their next
                    // read, their stamp having moved with the checkpoint).
                    readers.release_idle();
                    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                    readers.release_idle();
                }
                // Writes have stopped: fold everything in and shrink the WAL, with no
                // read that comes late keeping a snapshot in its way.
                readers.stop_keeping();
                readers.release_idle();
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
                    tracing::warn!(error = %e, "final WAL checkpoint failed");
                }
            })
            .map_err(|e| {
                StoreError::Database(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

struct ReadPool {
    conns: Mutex<Vec<Reader>>,
    /// One permit per connection. A permit lives as long as its connection is out of
    /// the pool: a blocking read keeps its own (see [`SqliteStore::read`]).
    permits: Arc<Semaphore>,
    /// Set at close: point reads no longer keep snapshots, so none stands in the
    /// way of the last checkpoint.
    closing: AtomicBool,
}

/// A reader connection and the snapshot it keeps open, if any.
struct Reader {
    conn: Connection,
    /// Its WAL-index header, which point reads keep their snapshots by; `None` when
    /// it cannot be read, and every read then begins its own transaction.
    index: Option<snapshot::WalIndex>,
    /// The WAL-index header read before its open read transaction began.
    kept: Option<snapshot::Stamp>,
    /// The header its last point read found.
    seen: Option<snapshot::Stamp>,
}

impl Reader {
    /// Ends the open read transaction, if there is one: the kept snapshot, or one
    /// a blocking read left open. A reader's transactions have nothing to commit,
    /// and `ROLLBACK`, unlike `COMMIT`, also ends one with a statement still
    /// running. [`ReadPool::point`] checks that it ended before it reads.
    fn release(&mut self) {
        self.kept = None;
        if !self.conn.is_autocommit()
            && let Err(e) = run_cached(&self.conn, "ROLLBACK")
        {
            tracing::warn!(error = %e, "ending a reader's transaction failed");
        }
    }
}

/// Runs a statement without parameters, prepared once per connection: under a
/// stream of writes every point read ends and begins a snapshot, and parsing
/// `BEGIN` and `COMMIT` each time would cost more than the locks they save.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

impl ReadPool {
    /// See [`SqliteStore::read_point`]. The read runs in the connection's kept
    /// snapshot when the database has not changed since it began (see
    /// [`snapshot`]), else in a new one it then keeps.
    async fn point<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let mut reader = self.take()?;
        let now = reader.index.as_ref().and_then(|i| i.stamp(&reader.conn));
        let seen = std::mem::replace(&mut reader.seen, now);
        if now.is_none() || reader.kept != now {
            reader.release();
            if !reader.conn.is_autocommit() {
                // Reading on would read the old snapshot.
                self.put(reader);
                return Err(StoreError::Database(
                    "a reader connection could not end its read transaction".into(),
                ));
            }
            // A snapshot is kept once the database has stood still between two
            // reads: while writes stream in, each read would find its snapshot out
            // of date, and one kept between reads would only hold the WAL back
            // (it cannot restart under a reader). Deferred: the snapshot is taken by
            // `f`'s first read, after `now` was read, so it is never older than the
            // header it is kept by.
            if let Some(stamp) = now
                && seen == now
                && !self.closing.load(Ordering::Acquire)
                && run_cached(&reader.conn, "BEGIN").is_ok()
            {
                reader.kept = Some(stamp);
            }
        }
        let out = f(&reader.conn);
        if out.is_err() {
            reader.release();
        }
        self.put(reader);
        out
    }

    /// Runs `f` on a connection taken out of the pool, in autocommit mode (it may
    /// begin its own transaction); the caller holds a permit.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut reader = self.take()?;
        reader.release();
        let out = f(&reader.conn);
        self.put(reader);
        out
    }

    /// From now on point reads keep no snapshot (the store is closing).
    fn stop_keeping(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Ends the snapshots kept by idle connections. A kept snapshot holds
    /// checkpoints back as any open reader does (the WAL cannot restart or be
    /// truncated under it, by this process or by another), so none is left idle past
    /// a checkpoint tick; a busy connection begins a new one on its next read.
    fn release_idle(&self) {
        if let Ok(mut conns) = self.conns.lock() {
            for r in conns.iter_mut() {
                r.release();
            }
        }
    }

    fn take(&self) -> Result<Reader, StoreError> {
        self.conns
            .lock()
            .map_err(|_| StoreError::Database("read pool poisoned".into()))?
            .pop()
            .ok_or_else(|| StoreError::Database("read pool empty".into()))
    }

    fn put(&self, reader: Reader) {
        if let Ok(mut v) = self.conns.lock() {
            v.push(reader);
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens or creates the database at `path`, refusing foreign or newer files,
    /// applying embedded migrations, and starting the writer thread. Must be called
    /// inside a Tokio runtime only for its later async use; opening itself blocks.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        create_private(path)?;
        schema::refuse_foreign_file(path)?;
        let mut conn = schema::connect(path, false, WRITER_CACHE_KIB)?;
        let migrated_from =
            schema::prepare(&mut conn, path).map_err(|e| explain_readonly(path, e))?;
        schema::rekey_user_names(&mut conn)
            .map_err(|e| explain_readonly(path, e))?
            .report("sqlite");
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}"
        ))?;
        let mut conns = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn = schema::connect(path, true, READER_CACHE_KIB)?;
            conn.execute_batch("PRAGMA query_only = ON")?;
            conns.push(Reader {
                index: snapshot::WalIndex::of(&conn),
                conn,
                kept: None,
                seen: None,
            });
        }
        let readers = Arc::new(ReadPool {
            conns: Mutex::new(conns),
            permits: Arc::new(Semaphore::new(READERS)),
            closing: AtomicBool::new(false),
        });
        let checkpointer =
            Checkpointer::start(schema::connect(path, false, 1024)?, Arc::clone(&readers))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(writer::WriterStats::default());
        let writer_stats = Arc::clone(&stats);
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, rx, writer_stats))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            readers,
            migrated_from,
            stats,
            checkpointer: Mutex::new(Some(checkpointer)),
            token_watch: token_watch::TokenWatch::new(),
        })
    }

    /// The schema version the file had before this open migrated it.
    pub fn migrated_from(&self) -> i64 {
        self.migrated_from
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        let (tx, rx) = oneshot::channel();
        sender
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a point read (one index probe, a handful of rows) on the calling task.
    /// Such a read takes microseconds from the page cache; handing it to a blocking
    /// thread and back costs more than the read itself (futex wake-ups, context
    /// switches), which capped lookup throughput. Anything that can touch many rows
    /// goes through [`Self::read`] instead.
    async fn read_point<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.readers.point(f).await
    }

    async fn exec<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.submit(|tx| writer::exec_job(f, tx)).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = Arc::clone(&self.readers);
        // The permit moves into the blocking task: when the caller goes away (a client
        // hanging up drops its request), the read still runs to its end, and the
        // permit must not come back before the connection does, or another reader
        // would find the pool empty.
        let permit = Arc::clone(&pool.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool2 = Arc::clone(&pool);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            pool2.with_conn(f)
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

/// A new database file is created readable by its owner only (SQLite gives its WAL
/// and shared-memory files the same mode): it holds tokens' hashes and sealed secrets.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Open {
            path: path.display().to_string(),
            reason: format!("cannot create it: {e}"),
        }),
    }
}

/// "attempt to write a readonly database" says nothing about why: most often the
/// files were created by another user (root running a command before the service).
fn explain_readonly(path: &Path, e: StoreError) -> StoreError {
    if !e.to_string().to_lowercase().contains("readonly") {
        return e;
    }
    let dir = path.parent().unwrap_or(path);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    StoreError::Open {
        path: path.display().to_string(),
        reason: format!(
            "it cannot be written by this user (uid {uid}): were the files created by another user, such as root running a command before the service? Give them to the service's user, e.g. `chown -R scim-bridge: {}`",
            dir.display()
        ),
    }
}

fn get_one(
    c: &Connection,
    provider: &str,
    kind: ResourceKind,
    id: &str,
) -> Result<Option<StoredResource>, StoreError> {
    let raw = c
        .prepare_cached(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM resources WHERE provider = ?1 AND kind = ?2 AND id = ?3"
        ))?
        .query_row(params![provider, kind.name(), id], resource)
        .optional()?;
    raw.map(rows::RawResource::into_resource).transpose()
}

fn lookup_by(
    c: &Connection,
    provider: &str,
    kind: ResourceKind,
    lookup: &Lookup,
) -> Result<Vec<StoredText>, StoreError> {
    let sql = match lookup {
        Lookup::Ids(_) => "id = ?3",
        Lookup::UserNames(_) => "user_name_ci = ?3",
        Lookup::ExternalIds(_) => "external_id = ?3",
        Lookup::DisplayNames(_) => "display_name_ci = ?3",
        Lookup::Emails(_) => {
            "seq IN (SELECT resource_seq FROM resource_emails WHERE value_ci = ?3)"
        }
    };
    let mut st = c.prepare_cached(&format!(
        "SELECT {RESOURCE_COLUMNS} FROM resources WHERE provider = ?1 AND kind = ?2 AND {sql}"
    ))?;
    let mut out: Vec<StoredText> = Vec::new();
    for key in lookup.keys() {
        let found = st
            .query_map(params![provider, kind.name(), key], resource)?
            .collect::<Result<Vec<_>, _>>()?;
        for raw in found {
            let r = raw.into_text()?;
            if !out.iter().any(|o| o.seq == r.seq) {
                out.push(r);
            }
        }
    }
    out.sort_by_key(|r| r.seq);
    Ok(out)
}

#[async_trait]
impl Resources for SqliteStore {
    async fn apply(&self, m: Mutation) -> Result<Committed, StoreError> {
        self.submit(|tx| Job::Apply(Box::new(m), tx)).await
    }

    async fn get(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let (p, i) = (provider.to_owned(), id.to_owned());
        self.read_point(move |c| get_one(c, &p, kind, &i)).await
    }

    async fn lookup_text(
        &self,
        provider: &str,
        kind: ResourceKind,
        lookup: Lookup,
    ) -> Result<Vec<StoredText>, StoreError> {
        let p = provider.to_owned();
        self.read_point(move |c| lookup_by(c, &p, kind, &lookup))
            .await
    }

    async fn scan(
        &self,
        provider: &str,
        kind: ResourceKind,
        after_seq: i64,
        skip: usize,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let p = provider.to_owned();
        self.read(move |c| {
            let items = c
                .prepare_cached(&format!(
                    "SELECT {RESOURCE_COLUMNS} FROM resources
                     WHERE provider = ?1 AND kind = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4 OFFSET ?5"
                ))?
                .query_map(
                    params![p, kind.name(), after_seq, limit as i64, skip as i64],
                    resource,
                )?
                .map(|r| r.map_err(StoreError::from).and_then(|r| r.into_resource()))
                .collect::<Result<Vec<_>, _>>()?;
            let next = if items.len() == limit {
                items.last().map(|r| r.seq)
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await
    }

    async fn count(&self, provider: &str, kind: ResourceKind) -> Result<u64, StoreError> {
        let p = provider.to_owned();
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached("SELECT count(*) FROM resources WHERE provider = ?1 AND kind = ?2")?
                .query_row(params![p, kind.name()], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn members(&self, provider: &str, group_id: &str) -> Result<Vec<MemberRef>, StoreError> {
        let (p, g) = (provider.to_owned(), group_id.to_owned());
        self.read(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT m.member_id, m.member_type, m.display FROM group_members m
                     JOIN resources r ON r.seq = m.group_seq
                     WHERE r.provider = ?1 AND r.kind = 'Group' AND r.id = ?2
                     ORDER BY m.pos",
                )?
                .query_map(params![p, g], |r| {
                    Ok(MemberRef {
                        value: r.get(0)?,
                        kind: stored_member_kind(r.get(1)?),
                        display: r.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn members_page(
        &self,
        group_seq: i64,
        version: i64,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<(i64, MemberRef)>>, StoreError> {
        self.read(move |c| {
            // One read transaction: the version check and the page see one snapshot.
            let tx = c.unchecked_transaction()?;
            let current: Option<i64> = tx
                .prepare_cached("SELECT version FROM resources WHERE seq = ?1 AND kind = 'Group'")?
                .query_row(params![group_seq], |r| r.get(0))
                .optional()?;
            if current != Some(version) {
                return Ok(None);
            }
            let rows = tx
                .prepare_cached(
                    "SELECT pos, member_id, member_type, display FROM group_members
                     WHERE group_seq = ?1 AND pos > ?2 ORDER BY pos LIMIT ?3",
                )?
                .query_map(params![group_seq, after.unwrap_or(-1), limit as i64], |r| {
                    Ok((
                        r.get(0)?,
                        MemberRef {
                            value: r.get(1)?,
                            kind: stored_member_kind(r.get(2)?),
                            display: r.get(3)?,
                        },
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(rows))
        })
        .await
    }

    async fn groups_of(
        &self,
        provider: &str,
        member_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let (p, m) = (provider.to_owned(), member_id.to_owned());
        self.read(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT r.id, json_extract(r.doc, '$.displayName') FROM group_members m
                     JOIN resources r ON r.seq = m.group_seq
                     WHERE m.member_id = ?1 AND r.provider = ?2 AND r.kind = 'Group'
                     ORDER BY r.seq",
                )?
                .query_map(params![m, p], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

#[async_trait]
impl ChangeLog for SqliteStore {
    async fn events_after(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT seq, provider, kind, resource_id, op, version, at, detail, request_id
                 FROM change_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = st.query_map(params![after_seq, limit as i64], delivery::raw_event)?;
            rows.map(|r| delivery::event(r?)).collect()
        })
        .await
    }

    async fn resource_events(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        after_seq: i64,
        upto_seq: i64,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let (provider, id) = (provider.to_owned(), id.to_owned());
        self.read(move |c| delivery::resource_events(c, &provider, kind, &id, after_seq, upto_seq))
            .await
    }

    async fn prune_change_events(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize, StoreError> {
        self.exec(move |c| {
            // A delivery reads the events after its `from_seq` (member deltas live
            // there), and a retried dead letter does too: keep everything after the
            // oldest such `from_seq`.
            Ok(c.execute(
                "DELETE FROM change_events WHERE seq IN (
                     SELECT seq FROM change_events
                     WHERE at < ?1 AND seq <= coalesce((SELECT min(s) FROM (
                         SELECT min(from_seq) AS s FROM delivery_queue
                         UNION ALL SELECT min(from_seq) FROM dead_letters)), 9223372036854775807)
                     ORDER BY seq LIMIT ?2)",
                params![fmt_time(before), batch as i64],
            )?)
        })
        .await
    }
}

#[async_trait]
impl Tokens for SqliteStore {
    async fn create_token(&self, token: ApiToken) -> Result<(), StoreError> {
        self.submit(|tx| Job::CreateToken(Box::new(token), tx))
            .await
    }

    async fn find_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        let id = id.to_owned();
        self.read_point(move |c| {
            let raw = c
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?1"
                ))?
                .query_row([id], token_row)
                .optional()?;
            raw.map(RawToken::into_token).transpose()
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|c| {
            let raws = c
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created DESC, id"
                ))?
                .query_map([], token_row)?
                .collect::<Result<Vec<_>, _>>()?;
            raws.into_iter().map(RawToken::into_token).collect()
        })
        .await
    }

    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let found = self.submit(|tx| Job::RevokeToken(id, at, tx)).await?;
        // A running daemon (another process) may hold the token as verified until
        // its watcher has counted this revocation or stopped vouching.
        self.token_watch.lease().outwait().await;
        Ok(found)
    }

    async fn touch_tokens(&self, used: Vec<(String, DateTime<Utc>)>) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        self.submit(|tx| Job::TouchTokens(used, tx)).await
    }

    async fn token_generation(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.token_watch.generation(&self.readers))
    }
}

#[async_trait]
impl VaultRows for SqliteStore {
    async fn vault(&self) -> Result<Option<VaultRecord>, StoreError> {
        self.read_point(|c| {
            let raw: Option<(String, String, Option<String>)> = c
                .prepare_cached("SELECT header, created, rotated FROM vault WHERE id = 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            raw.map(|(header, created, rotated)| {
                Ok(VaultRecord {
                    header,
                    created: parse_time(&created)?,
                    rotated: rotated.as_deref().map(parse_time).transpose()?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn init_vault(&self, header: String, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.exec(move |c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO vault (id, header, created) VALUES (1, ?1, ?2)",
                params![header, fmt_time(at)],
            )?;
            if n == 0 {
                return Err(StoreError::DuplicateId("vault".into()));
            }
            Ok(())
        })
        .await
    }

    async fn put_secret(
        &self,
        name: &str,
        sealed: Vec<u8>,
        sealed_under: &str,
        at: DateTime<Utc>,
        write: SecretWrite,
    ) -> Result<bool, StoreError> {
        let name = name.to_owned();
        let sealed_under = sealed_under.to_owned();
        self.exec(move |c| {
            let current: Option<String> = c
                .prepare_cached("SELECT header FROM vault WHERE id = 1")?
                .query_row([], |r| r.get(0))
                .optional()?;
            if current.as_deref() != Some(sealed_under.as_str()) {
                return Err(StoreError::Conflict(
                    "the vault was rotated or re-created since this process unlocked it; nothing was stored. Restart with the current passphrase".into(),
                ));
            }
            let n = c.execute(
                &put_secret_sql(write, |n| format!("?{n}")),
                params![name, sealed, fmt_time(at)],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn secret(&self, name: &str) -> Result<Option<SecretRow>, StoreError> {
        let name = name.to_owned();
        self.read_point(move |c| {
            let raw = c
                .prepare_cached(
                    "SELECT name, sealed, created, updated FROM secrets WHERE name = ?1",
                )?
                .query_row([name], secret_row)
                .optional()?;
            raw.map(RawSecret::into_row).transpose()
        })
        .await
    }

    async fn secrets(&self) -> Result<Vec<SecretRow>, StoreError> {
        self.read(|c| {
            let raws = c
                .prepare_cached("SELECT name, sealed, created, updated FROM secrets ORDER BY name")?
                .query_map([], secret_row)?
                .collect::<Result<Vec<_>, _>>()?;
            raws.into_iter().map(RawSecret::into_row).collect()
        })
        .await
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.exec(move |c| Ok(c.execute("DELETE FROM secrets WHERE name = ?1", [name])? > 0))
            .await
    }

    async fn rotate_vault(
        &self,
        old_header: String,
        new_header: String,
        rows: Vec<(String, Vec<u8>)>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.exec(move |c| {
            let current: Option<String> = c
                .query_row("SELECT header FROM vault WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            if current.as_deref() != Some(old_header.as_str()) {
                return Err(StoreError::Conflict(
                    "the vault changed during rotation (another rotation or init ran); nothing was changed".into(),
                ));
            }
            let stored: i64 = c.query_row("SELECT count(*) FROM secrets", [], |r| r.get(0))?;
            if stored != rows.len() as i64 {
                return Err(StoreError::Conflict(format!(
                    "{stored} secrets are stored but {} were re-encrypted (one was added or deleted meanwhile); nothing was changed",
                    rows.len()
                )));
            }
            let now = fmt_time(at);
            let mut st = c.prepare_cached("UPDATE secrets SET sealed = ?2, updated = ?3 WHERE name = ?1")?;
            for (name, sealed) in &rows {
                if st.execute(params![name, sealed, now])? != 1 {
                    return Err(StoreError::Conflict(format!(
                        "secret {name:?} disappeared during rotation; nothing was changed"
                    )));
                }
            }
            c.execute(
                "UPDATE vault SET header = ?1, rotated = ?2 WHERE id = 1",
                params![new_header, now],
            )?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl DeliveryQueue for SqliteStore {
    async fn set_delivery_routes(
        &self,
        routes: Vec<(String, String)>,
    ) -> Result<usize, StoreError> {
        self.exec(move |c| delivery::set_routes(c, &routes)).await
    }

    async fn claim_deliveries(
        &self,
        target: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedDelivery>, StoreError> {
        let (target, owner, now, until) = (
            target.to_owned(),
            owner.to_owned(),
            fmt_time(now),
            fmt_time(lease_until),
        );
        let probe = (target.clone(), now.clone());
        if !self
            .read_point(move |c| delivery::any_due(c, &probe.0, &probe.1))
            .await?
        {
            return Ok(Vec::new());
        }
        self.exec(move |c| delivery::claim(c, &target, &owner, &now, &until, limit))
            .await
    }

    async fn claim_delivery(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let (t, p, i, o) = (
            target.to_owned(),
            provider.to_owned(),
            id.to_owned(),
            owner.to_owned(),
        );
        let (now, until) = (fmt_time(now), fmt_time(lease_until));
        self.exec(move |c| delivery::claim_one(c, &t, &p, kind, &i, &o, &now, &until))
            .await
    }

    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError> {
        let owner = owner.to_owned();
        self.exec(move |c| {
            Ok(c.execute(
                "UPDATE delivery_queue SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1",
                [owner],
            )?)
        })
        .await
    }

    async fn finish_delivery_recorded(
        &self,
        d: QueuedDelivery,
        owner: &str,
        outcome: DeliveryOutcome,
        took: std::time::Duration,
        at: DateTime<Utc>,
        record: Option<crate::provlog::LogRow>,
    ) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        self.exec(move |c| {
            delivery::finish(
                c,
                &d,
                &owner,
                &outcome,
                took,
                &fmt_time(at),
                record.as_ref(),
            )
        })
        .await
    }

    async fn delivery_attempts(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let (p, i) = (provider.to_owned(), id.to_owned());
        self.read(move |c| delivery::attempts(c, &p, kind, &i))
            .await
    }

    async fn prune_delivery_log(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        self.exec(move |c| {
            Ok(c.execute("DELETE FROM delivery_log WHERE at < ?1", [fmt_time(before)])?)
        })
        .await
    }

    async fn enqueue_resync(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (t, p, i) = (target.to_owned(), provider.to_owned(), id.to_owned());
        self.exec(move |c| delivery::enqueue_resync(c, &t, &p, kind, &i, &fmt_time(at)))
            .await
    }

    async fn dead_letters(&self, target: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        let target = target.map(str::to_owned);
        self.read(move |c| delivery::dead_letters(c, target.as_deref()))
            .await
    }

    async fn requeue_dead_letter(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.exec(move |c| delivery::requeue_dead_letter(c, id, &fmt_time(at)))
            .await
    }

    async fn drop_dead_letter(&self, id: i64) -> Result<bool, StoreError> {
        self.exec(move |c| delivery::drop_dead_letter(c, id)).await
    }

    async fn delivery_stats(&self, target: &str) -> Result<DeliveryStats, StoreError> {
        let target = target.to_owned();
        self.read(move |c| delivery::stats(c, &target)).await
    }

    async fn await_link(
        &self,
        target: &str,
        provider: &str,
        awaited_id: &str,
        resource_id: &str,
    ) -> Result<(), StoreError> {
        let (t, p, a, r) = (
            target.to_owned(),
            provider.to_owned(),
            awaited_id.to_owned(),
            resource_id.to_owned(),
        );
        self.exec(move |c| delivery::await_link(c, &t, &p, &a, &r))
            .await
    }

    async fn release_waiting(
        &self,
        target: &str,
        provider: &str,
        awaited_id: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let (t, p, a) = (
            target.to_owned(),
            provider.to_owned(),
            awaited_id.to_owned(),
        );
        self.exec(move |c| delivery::release_waiting(c, &t, &p, &a, &fmt_time(at)))
            .await
    }
}

#[async_trait]
impl Guards for SqliteStore {
    async fn guard(&self, target: &str) -> Result<GuardState, StoreError> {
        let target = target.to_owned();
        self.read_point(move |c| delivery::guard(c, &target)).await
    }

    async fn trip_guard(
        &self,
        target: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (target, reason) = (target.to_owned(), reason.to_owned());
        self.exec(move |c| delivery::trip_guard(c, &target, &reason, &fmt_time(at)))
            .await
    }

    async fn approve_guard(
        &self,
        target: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let target = target.to_owned();
        self.exec(move |c| delivery::approve_guard(c, &target, &fmt_time(at), &fmt_time(until)))
            .await
    }

    async fn held_by_guard(&self, target: &str) -> Result<Vec<QueuedDelivery>, StoreError> {
        let t = target.to_owned();
        self.read(move |c| delivery::held(c, &t)).await
    }

    async fn reject_held(
        &self,
        target: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let (t, r) = (target.to_owned(), reason.to_owned());
        self.exec(move |c| delivery::reject_held(c, &t, &r, &fmt_time(at)))
            .await
    }
}

#[async_trait]
impl TargetLinks for SqliteStore {
    async fn target_id(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let (t, p, i) = (target.to_owned(), provider.to_owned(), id.to_owned());
        self.read_point(move |c| delivery::target_id(c, &t, &p, kind, &i))
            .await
    }

    async fn set_target_id(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        link: Option<TargetLink>,
    ) -> Result<(), StoreError> {
        let (t, p, i) = (target.to_owned(), provider.to_owned(), id.to_owned());
        self.exec(move |c| delivery::set_target_id(c, &t, &p, kind, &i, link.as_ref()))
            .await
    }

    async fn managed(&self, target: &str) -> Result<Vec<Managed>, StoreError> {
        let t = target.to_owned();
        self.read(move |c| delivery::managed(c, &t)).await
    }

    async fn target_owner(
        &self,
        target: &str,
        kind: ResourceKind,
        target_id: &str,
    ) -> Result<Option<Managed>, StoreError> {
        let (t, i) = (target.to_owned(), target_id.to_owned());
        self.read_point(move |c| delivery::target_owner(c, &t, kind, &i))
            .await
    }

    async fn count_managed(&self, target: &str, kind: ResourceKind) -> Result<u64, StoreError> {
        let t = target.to_owned();
        self.read_point(move |c| delivery::count_managed(c, &t, kind))
            .await
    }

    async fn orphaned_users(&self, target: &str) -> Result<Vec<Orphan>, StoreError> {
        let t = target.to_owned();
        self.read(move |c| delivery::orphaned_users(c, &t)).await
    }
}

#[async_trait]
impl Schedules for SqliteStore {
    async fn claim_scheduled_run(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let (name, owner, tick) = (name.to_owned(), owner.to_owned(), fmt_time(tick));
        self.exec(move |c| {
            Ok(c.execute(
                "INSERT INTO schedule_runs (name, tick, owner) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET tick = excluded.tick, owner = excluded.owner
                 WHERE schedule_runs.tick < excluded.tick",
                params![name, tick, owner],
            )? == 1)
        })
        .await
    }
}

#[async_trait]
impl Lifecycle for SqliteStore {
    async fn status(&self) -> Result<StoreStatus, StoreError> {
        let location = self.path.display().to_string();
        let write_batches = self.stats.batches.load(Ordering::Relaxed);
        let write_jobs = self.stats.jobs.load(Ordering::Relaxed);
        self.read(move |c| {
            let v: String = c.query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )?;
            // max() of the integer primary key is one step to the B-tree's end.
            let last: Option<i64> =
                c.query_row("SELECT max(seq) FROM change_events", [], |r| r.get(0))?;
            Ok(StoreStatus {
                engine: "sqlite",
                location,
                schema_version: v.parse().unwrap_or(0),
                expected_schema_version: SCHEMA_VERSION,
                last_event_seq: last.unwrap_or(0),
                write_batches,
                write_jobs,
            })
        })
        .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.read(|c| {
            let events: i64 =
                c.query_row("SELECT count(*) FROM change_events", [], |r| r.get(0))?;
            let (users, groups): (i64, i64) = c.query_row(
                "SELECT count(*) FILTER (WHERE kind = 'User'), count(*) FILTER (WHERE kind = 'Group') FROM resources",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(StoreCounts {
                events,
                users,
                groups,
            })
        })
        .await
    }

    async fn close(&self) {
        self.token_watch.stop();
        // Dropping the last sender lets the writer drain its queue, commit and exit.
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut c| c.take());
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(h) = handle {
                let _ = h.join();
            }
            if let Some(c) = checkpointer {
                c.stop();
            }
        })
        .await;
    }
}

struct RawSecret {
    name: String,
    sealed: Vec<u8>,
    created: String,
    updated: String,
}

fn secret_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawSecret> {
    Ok(RawSecret {
        name: r.get(0)?,
        sealed: r.get(1)?,
        created: r.get(2)?,
        updated: r.get(3)?,
    })
}

impl RawSecret {
    fn into_row(self) -> Result<SecretRow, StoreError> {
        Ok(SecretRow {
            name: self.name,
            sealed: self.sealed,
            created: parse_time(&self.created)?,
            updated: parse_time(&self.updated)?,
        })
    }
}

const TOKEN_COLUMNS: &str =
    "id, provider, scope, secret_hash, created, expires, last_used, revoked";

struct RawToken {
    id: String,
    provider: Option<String>,
    scope: String,
    hash: Vec<u8>,
    created: String,
    expires: Option<String>,
    last_used: Option<String>,
    revoked: Option<String>,
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawToken> {
    Ok(RawToken {
        id: r.get(0)?,
        provider: r.get(1)?,
        scope: r.get(2)?,
        hash: r.get(3)?,
        created: r.get(4)?,
        expires: r.get(5)?,
        last_used: r.get(6)?,
        revoked: r.get(7)?,
    })
}

impl RawToken {
    fn into_token(self) -> Result<ApiToken, StoreError> {
        let opt = |s: Option<String>| s.as_deref().map(parse_time).transpose();
        Ok(ApiToken {
            secret_hash: self
                .hash
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Database("bad stored token hash".into()))?,
            id: self.id,
            provider: self.provider,
            scope: self.scope,
            created: parse_time(&self.created)?,
            expires: opt(self.expires)?,
            last_used: opt(self.last_used)?,
            revoked: opt(self.revoked)?,
        })
    }
}

#[cfg(test)]
mod tests;

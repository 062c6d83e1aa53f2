//! The single writer thread and its group commit.
//!
//! SQLite allows one writer at a time and each commit costs an fsync (~1.7 ms here),
//! so one transaction per request would cap durable writes near 600/s. Instead every
//! write is queued to this thread, which drains whatever has queued up, applies each
//! job inside its own SAVEPOINT (one job's failure never undoes another's), commits
//! once, and only then answers every caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::rows::{fmt_time, parse_time};
use crate::scim::{MemberRef, ResourceKind};
use crate::store::plan::{Answer, Current, Event, Step, plan, user_name_taken};
use crate::store::{
    ApiToken, Committed, IndexKeys, Mutation, MutationKind, StoreError, UserNameKey,
};

/// Most jobs folded into one transaction; bounds commit latency under heavy load.
const MAX_BATCH: usize = 1024;

/// Runs inside the batch transaction; returns whether it succeeded and how to answer
/// its caller once the commit's outcome is known.
pub type ExecFn = Box<dyn FnOnce(&Connection) -> (bool, ReplyFn) + Send>;
/// Delivers a job's result; receives the commit error, if the commit failed.
pub type ReplyFn = Box<dyn FnOnce(Option<&str>) + Send>;

/// A unit of work for the writer.
pub enum Job {
    /// Any write, already wrapped with its reply (see [`exec_job`]).
    Exec(ExecFn),
    /// A resource change.
    Apply(
        Box<Mutation>,
        oneshot::Sender<Result<Committed, StoreError>>,
    ),
    /// A new token.
    CreateToken(Box<ApiToken>, oneshot::Sender<Result<(), StoreError>>),
    /// Revoke a token.
    RevokeToken(
        String,
        chrono::DateTime<chrono::Utc>,
        oneshot::Sender<Result<bool, StoreError>>,
    ),
    /// Record token use.
    TouchTokens(
        Vec<(String, chrono::DateTime<chrono::Utc>)>,
        oneshot::Sender<Result<(), StoreError>>,
    ),
}

/// A job's answer, held until the batch commits.
enum Reply {
    Apply(
        oneshot::Sender<Result<Committed, StoreError>>,
        Result<Committed, StoreError>,
    ),
    Unit(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
    Bool(
        oneshot::Sender<Result<bool, StoreError>>,
        Result<bool, StoreError>,
    ),
    Custom(bool, ReplyFn),
}

impl Reply {
    fn is_ok(&self) -> bool {
        match self {
            Reply::Apply(_, r) => r.is_ok(),
            Reply::Unit(_, r) => r.is_ok(),
            Reply::Bool(_, r) => r.is_ok(),
            Reply::Custom(ok, _) => *ok,
        }
    }

    /// Sends the result, or `err` instead of a success when the commit failed.
    fn send(self, commit_err: Option<&str>) {
        let fail = |e: &str| StoreError::Database(format!("commit failed: {e}"));
        // A caller that gave up (timeout, disconnect) drops its receiver; the write is
        // durable either way, so a failed send is not an error.
        match self {
            Reply::Apply(tx, r) => {
                let _ = tx.send(match (commit_err, r) {
                    (Some(e), Ok(_)) => Err(fail(e)),
                    (_, r) => r,
                });
            }
            Reply::Unit(tx, r) => {
                let _ = tx.send(match (commit_err, r) {
                    (Some(e), Ok(_)) => Err(fail(e)),
                    (_, r) => r,
                });
            }
            Reply::Bool(tx, r) => {
                let _ = tx.send(match (commit_err, r) {
                    (Some(e), Ok(_)) => Err(fail(e)),
                    (_, r) => r,
                });
            }
            Reply::Custom(_, reply) => reply(commit_err),
        }
    }
}

/// Counters for `/metrics`: jobs per commit shows group commit at work.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed (or attempted).
    pub batches: AtomicU64,
    /// Jobs run.
    pub jobs: AtomicU64,
}

/// Runs until every sender is dropped and the queue is empty.
pub fn run(mut conn: Connection, mut rx: mpsc::Receiver<Job>, stats: Arc<WriterStats>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let jobs = batch.len() as u64;
        commit_batch(&mut conn, &mut batch);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(jobs, Ordering::Relaxed);
        batch.clear();
    }
}

fn commit_batch(conn: &mut Connection, batch: &mut Vec<Job>) {
    let mut replies = Vec::with_capacity(batch.len());
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for job in batch.drain(..) {
                fail_job(job, &msg);
            }
            return;
        }
    };
    for job in batch.drain(..) {
        replies.push(run_job(&tx, job));
    }
    let commit_err = if replies.iter().any(Reply::is_ok) {
        tx.commit().err().map(|e| e.to_string())
    } else {
        tx.rollback().err().map(|e| e.to_string()).and(None)
    };
    if let Some(e) = &commit_err {
        tracing::error!(error = %e, "store commit failed; the batch was not acknowledged");
    }
    for r in replies {
        r.send(commit_err.as_deref());
    }
}

fn fail_job(job: Job, msg: &str) {
    let err = || StoreError::Database(format!("cannot begin a transaction: {msg}"));
    match job {
        Job::Apply(_, tx) => drop(tx.send(Err(err()))),
        Job::CreateToken(_, tx) | Job::TouchTokens(_, tx) => drop(tx.send(Err(err()))),
        Job::RevokeToken(_, _, tx) => drop(tx.send(Err(err()))),
        Job::Exec(f) => {
            // The job never ran; its reply reports the failed transaction.
            let _ = f;
        }
    }
}

/// Wraps `f` as a writer job answering on `tx` after the commit.
pub fn exec_job<T: Send + 'static>(
    f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    tx: oneshot::Sender<Result<T, StoreError>>,
) -> Job {
    Job::Exec(Box::new(move |conn| {
        let r = guarded(conn, f);
        let ok = r.is_ok();
        let reply: ReplyFn = Box::new(move |commit_err| {
            let _ = tx.send(match (commit_err, r) {
                (Some(e), Ok(_)) => Err(StoreError::Database(format!("commit failed: {e}"))),
                (_, r) => r,
            });
        });
        (ok, reply)
    }))
}

/// Runs `f` inside a savepoint so its failure leaves the rest of the batch intact.
fn guarded<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Err(e)
        }
    }
}

/// Runs one job, each in its own savepoint.
fn run_job(conn: &Connection, job: Job) -> Reply {
    match job {
        Job::Exec(f) => {
            let (ok, reply) = f(conn);
            Reply::Custom(ok, reply)
        }
        Job::Apply(m, tx) => Reply::Apply(tx, guarded(conn, |c| apply(c, &m))),
        Job::CreateToken(t, tx) => Reply::Unit(tx, guarded(conn, |c| create_token(c, &t))),
        Job::RevokeToken(id, at, tx) => Reply::Bool(
            tx,
            guarded(conn, |c| {
                let n = c.execute(
                    "UPDATE api_tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
                    params![id, fmt_time(at)],
                )?;
                let exists: bool = c.query_row(
                    "SELECT count(*) > 0 FROM api_tokens WHERE id = ?1",
                    [&id],
                    |r| r.get(0),
                )?;
                Ok(n > 0 || exists)
            }),
        ),
        Job::TouchTokens(used, tx) => Reply::Unit(
            tx,
            guarded(conn, |c| {
                let mut st = c.prepare_cached(
                    "UPDATE api_tokens SET last_used = ?2
                     WHERE id = ?1 AND (last_used IS NULL OR last_used < ?2)",
                )?;
                for (id, at) in used {
                    st.execute(params![id, fmt_time(at)])?;
                }
                Ok(())
            }),
        ),
    }
}

fn create_token(c: &Connection, t: &ApiToken) -> Result<(), StoreError> {
    let n = c.execute(
        "INSERT OR IGNORE INTO api_tokens (id, provider, scope, secret_hash, created, expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            t.id,
            t.provider,
            t.scope,
            &t.secret_hash[..],
            fmt_time(t.created),
            t.expires.map(fmt_time)
        ],
    )?;
    if n == 0 {
        return Err(StoreError::DuplicateId(t.id.clone()));
    }
    Ok(())
}

/// The row a change applies to, if there is one.
fn current(c: &Connection, m: &Mutation) -> Result<Option<Current>, StoreError> {
    let raw = c
        .prepare_cached(
            "SELECT seq, version, created, doc, user_name_ci, user_name_dup FROM resources
             WHERE provider = ?1 AND kind = ?2 AND id = ?3",
        )?
        .query_row(params![m.provider, m.kind.name(), m.id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                UserNameKey {
                    key: r.get(4)?,
                    dup: r.get(5)?,
                },
            ))
        })
        .optional()?;
    raw.map(|(seq, version, created, doc, user_name)| {
        Ok(Current {
            seq,
            version,
            created: parse_time(&created)?,
            doc,
            user_name,
        })
    })
    .transpose()
}

/// Runs the change's [`plan`] inside the job's savepoint. The writer runs one job at
/// a time, so nothing changes between a step's read and the writes after it.
fn apply(c: &Connection, m: &Mutation) -> Result<Committed, StoreError> {
    let cur = match m.change {
        MutationKind::Create { .. } => None,
        _ => current(c, m)?,
    };
    let mut seq = cur.as_ref().map_or(0, |cur| cur.seq);
    let (steps, mut tally) = plan(m, cur)?;
    let at = fmt_time(m.at);
    for step in &steps {
        let answer = run_step(c, m, &mut seq, &at, step)?;
        tally.record(step, answer)?;
    }
    let ev = tally.event();
    let event_seq = event(c, m, &ev, &at)?;
    if let Some(row) = ev.log_row(m, event_seq) {
        super::provlog::insert(c, &row)?;
    }
    Ok(ev.committed(event_seq))
}

/// One step of a plan, in SQLite's SQL (one statement per row: each is a cached
/// statement on the writer's connection, with no round trip to save).
fn run_step(
    c: &Connection,
    m: &Mutation,
    seq: &mut i64,
    at: &str,
    step: &Step<'_>,
) -> Result<Answer, StoreError> {
    match step {
        Step::Insert { keys, doc } => {
            let inserted = c
                .prepare_cached(
                    "INSERT INTO resources (provider, kind, id, version, created, last_modified,
                   user_name_ci, external_id, display_name_ci, doc)
                 VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    m.provider,
                    m.kind.name(),
                    m.id,
                    at,
                    keys.user_name,
                    keys.external_id,
                    keys.display_name,
                    doc.to_string()
                ]);
            if let Err(e) = inserted {
                return Err(create_conflict(e, m, keys));
            }
            *seq = c.last_insert_rowid();
        }
        Step::FindUserNameHolder { key } => {
            let holder: Option<i64> = c
                .prepare_cached(
                    "SELECT seq FROM resources
                     WHERE provider = ?1 AND kind = ?2 AND user_name_ci = ?3 AND user_name_dup = 0",
                )?
                .query_row(params![m.provider, m.kind.name(), key], |r| r.get(0))
                .optional()?;
            return Ok(Answer::Holder(holder));
        }
        Step::Update {
            version,
            keys,
            doc,
            dup,
        } => {
            c.prepare_cached(
                "UPDATE resources SET version = ?2, last_modified = ?3, user_name_ci = ?4,
                   external_id = ?5, display_name_ci = ?6, doc = ?7, user_name_dup = ?8
                 WHERE seq = ?1",
            )?
            .execute(params![
                *seq,
                version,
                at,
                keys.user_name,
                keys.external_id,
                keys.display_name,
                doc.to_string(),
                dup
            ])?;
        }
        Step::Touch { version } => {
            c.prepare_cached(
                "UPDATE resources SET version = ?2, last_modified = ?3 WHERE seq = ?1",
            )?
            .execute(params![*seq, version, at])?;
        }
        Step::PromoteLookAlike { key } => {
            // A user that shared its key with an older user since a key recomputation
            // takes the name over, so the name stays unique.
            c.prepare_cached(
                "UPDATE resources SET user_name_dup = 0 WHERE seq = (
                   SELECT min(seq) FROM resources
                   WHERE provider = ?1 AND kind = ?2 AND user_name_ci = ?3 AND user_name_dup <> 0)",
            )?
            .execute(params![m.provider, m.kind.name(), key])?;
        }
        Step::DeleteEmails => {
            c.prepare_cached("DELETE FROM resource_emails WHERE resource_seq = ?1")?
                .execute([*seq])?;
        }
        Step::InsertEmails { emails } => {
            let mut st = c.prepare_cached(
                "INSERT OR IGNORE INTO resource_emails (value_ci, resource_seq) VALUES (?1, ?2)",
            )?;
            for e in emails {
                st.execute(params![e, *seq])?;
            }
        }
        Step::LookUpMembers { refs } => return look_up_members(c, m, refs),
        Step::AddMembers { refs } => return add_members(c, *seq, refs),
        Step::RemoveMembers { ids } => {
            let mut st = c.prepare_cached(
                "DELETE FROM group_members WHERE group_seq = ?1 AND member_id = ?2",
            )?;
            let mut gone = Vec::new();
            for id in ids.iter() {
                if st.execute(params![*seq, id])? > 0 {
                    gone.push(id.clone());
                }
            }
            return Ok(Answer::Ids(gone));
        }
        Step::ClearMembers => {
            c.prepare_cached("DELETE FROM group_members WHERE group_seq = ?1")?
                .execute([*seq])?;
        }
        Step::ListMembers => {
            let members: Vec<String> = c
                .prepare_cached(
                    "SELECT member_id FROM group_members WHERE group_seq = ?1 ORDER BY pos",
                )?
                .query_map([*seq], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            return Ok(Answer::Ids(members));
        }
        Step::Delete => {
            c.prepare_cached("DELETE FROM resources WHERE seq = ?1")?
                .execute([*seq])?;
        }
        Step::DropMemberships => {
            c.prepare_cached(
                "DELETE FROM group_members WHERE member_id = ?1 AND group_seq IN
                   (SELECT seq FROM resources WHERE provider = ?2 AND kind = 'Group')",
            )?
            .execute(params![m.id, m.provider])?;
        }
    }
    Ok(Answer::Done)
}

/// Names the conflict a failed resource INSERT ran into.
fn create_conflict(e: rusqlite::Error, m: &Mutation, keys: &IndexKeys) -> StoreError {
    let msg = e.to_string();
    if msg.contains("UNIQUE") && msg.contains("user_name_ci") {
        user_name_taken(m, keys.user_name.as_deref())
    } else if msg.contains("UNIQUE") && msg.contains("resources.id") {
        StoreError::DuplicateId(m.id.clone())
    } else {
        StoreError::from(e)
    }
}

/// Adds members after the group's last position; answers the ids that were not
/// members yet, in order.
fn add_members(
    c: &Connection,
    group_seq: i64,
    members: &[MemberRef],
) -> Result<Answer, StoreError> {
    let max: Option<i64> = c
        .prepare_cached("SELECT max(pos) FROM group_members WHERE group_seq = ?1")?
        .query_row([group_seq], |r| r.get(0))?;
    let mut pos = max.map_or(0, |p| p + 1);
    let mut st = c.prepare_cached(
        "INSERT OR IGNORE INTO group_members (group_seq, member_id, member_type, display, pos)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut added = Vec::new();
    for mr in members {
        let kind = mr.kind.map(ResourceKind::name);
        if st.execute(params![group_seq, mr.value, kind, mr.display, pos])? > 0 {
            added.push(mr.value.clone());
            pos += 1;
        }
    }
    Ok(Answer::Ids(added))
}

/// What each member names: one index probe per member, in the kind its `type` says
/// (else User, what members mostly are); the other kind only when that finds nothing.
fn look_up_members(c: &Connection, m: &Mutation, refs: &[MemberRef]) -> Result<Answer, StoreError> {
    let mut st =
        c.prepare_cached("SELECT 1 FROM resources WHERE provider = ?1 AND kind = ?2 AND id = ?3")?;
    let mut found = Vec::with_capacity(refs.len());
    for r in refs {
        let first = r.kind.unwrap_or(ResourceKind::User);
        let other = match first {
            ResourceKind::User => ResourceKind::Group,
            ResourceKind::Group => ResourceKind::User,
        };
        let mut kind = None;
        for k in [first, other] {
            if st.exists(params![m.provider, k.name(), r.value])? {
                kind = Some(k);
                break;
            }
        }
        found.push(kind);
    }
    Ok(Answer::Found(found))
}

/// Writes the change event and fans it out to every target routed from the
/// provider; answers its seq.
fn event(c: &Connection, m: &Mutation, ev: &Event, at: &str) -> Result<i64, StoreError> {
    c.prepare_cached(
        "INSERT INTO change_events (provider, kind, resource_id, op, version, at, detail, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        m.provider,
        m.kind.name(),
        m.id,
        ev.op.as_str(),
        ev.version,
        at,
        ev.detail.to_json().to_string(),
        m.request_id
    ])?;
    let seq = c.last_insert_rowid();
    // Fan out to every target routed from this provider; a row already queued for the
    // resource absorbs the change (coalescing) and keeps its place and backoff.
    c.prepare_cached(
        "INSERT INTO delivery_queue (target, provider, kind, resource_id, from_seq, last_seq, queued_at, next_at)
         SELECT target, ?1, ?2, ?3, ?4 - 1, ?4, ?5, ?5 FROM delivery_routes WHERE provider = ?1
         ON CONFLICT (target, provider, kind, resource_id) DO UPDATE SET last_seq = excluded.last_seq",
    )?
    .execute(params![m.provider, m.kind.name(), m.id, seq, at])?;
    Ok(seq)
}

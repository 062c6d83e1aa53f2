//! The PostgreSQL store, for several instances on one database: a connection pool,
//! one transaction per change (committed with `synchronous_commit = on` before
//! `apply` returns), migrations of its own, and delivery claims that let instances
//! share the queue (see [`delivery`]).

mod chain;
mod console_sessions;
mod delivery;
mod provlog;
mod rows;
mod schema;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tls;
mod token_watch;
mod write;

#[cfg(test)]
mod plans;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Client, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use self::rows::{
    Failed, RESOURCE_COLUMNS, execute, ms, query, query_one, query_opt, resource, resource_text,
};
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

/// Connections per instance unless `database.max_connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Transient failures (deadlocks between instances, serialization failures) retried.
const RETRIES: u32 = 5;

/// Runs `$attempt` (an expression producing a `Result<_, Failed>` future) again while it
/// fails transiently; every attempt is a fresh transaction.
macro_rules! retrying {
    ($attempt:expr) => {{
        let mut tries = 0u32;
        loop {
            match $attempt.await {
                Err(Failed::Transient(e)) if tries < RETRIES => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "transient database conflict; retrying");
                }
                other => break other.map_err(StoreError::from),
            }
        }
    }};
}

/// PostgreSQL behind the [`Store`] trait.
pub struct PgStore {
    pool: Pool,
    /// The URL without its password, for messages and `status`.
    location: String,
    closed: AtomicBool,
    migrated_from: i64,
    writes: AtomicU64,
    /// Revocations announced by any instance, for the daemon's token cache.
    token_watch: token_watch::TokenWatch,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// `postgres://user@host:port/db` from a parsed config: never the password, whatever
/// form (URL, query parameter, key=value) the operator wrote it in.
fn location(cfg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match cfg.get_ports().get(i).or(cfg.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let user = cfg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    format!(
        "postgres://{user}{}/{}",
        hosts.join(","),
        cfg.get_dbname().unwrap_or_default()
    )
}

impl PgStore {
    /// Connects, checks the schema is ours and migrates it. `url` is a libpq URL or
    /// key=value string; it never appears in an error.
    pub async fn open(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let tls = tls::split(url)?;
        let mut cfg = tokio_postgres::Config::from_str(&tls.url).map_err(|e| StoreError::Open {
            path: "database.url".into(),
            reason: format!("not a PostgreSQL connection URL: {e}"),
        })?;
        let location = location(&cfg);
        // "A 2xx means durable" must not depend on the server's or role's default: a
        // database with synchronous_commit = off would acknowledge before the WAL flush.
        let options = match cfg.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c synchronous_commit=on"),
            _ => "-c synchronous_commit=on".to_owned(),
        };
        cfg.options(&options);
        if cfg.get_application_name().is_none() {
            cfg.application_name("scim-bridge");
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(10));
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let connect = tls::Connect::for_config(&cfg, tls.root_cert.as_deref())?;
        let token_watch = token_watch::TokenWatch::new(cfg.clone(), connect.clone());
        let manager = match connect {
            tls::Connect::Plain(t) => Manager::from_config(cfg, t, manager_config),
            tls::Connect::Tls(t) => Manager::from_config(cfg, t, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| StoreError::Open {
                path: location.clone(),
                reason: e.to_string(),
            })?;
        let mut client = pool.get().await.map_err(|e| StoreError::Open {
            path: location.clone(),
            reason: pool_error(&e),
        })?;
        let migrated_from = schema::prepare(&mut client, &location).await?;
        drop(client);
        Ok(PgStore {
            pool,
            location,
            closed: AtomicBool::new(false),
            migrated_from,
            writes: AtomicU64::new(0),
            token_watch,
        })
    }

    /// The schema version the database had before this open migrated it.
    pub fn migrated_from(&self) -> i64 {
        self.migrated_from
    }

    /// Where the database is, without the password.
    pub fn location(&self) -> &str {
        &self.location
    }

    async fn client(&self) -> Result<Client, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Database(pool_error(&e)))
    }

    /// A connection for a write; refused once `close` has begun.
    async fn writer(&self) -> Result<Client, Failed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Failed::Store(StoreError::Closed));
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(self.client().await?)
    }

    async fn apply_once(&self, m: &Mutation) -> Result<Committed, Failed> {
        let mut c = self.writer().await?;
        if let Some(out) = write::create_at_once(&c, m).await? {
            return Ok(out);
        }
        let tx = c.transaction().await?;
        let out = write::apply(&tx, m).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn routes_once(&self, routes: &[(String, String)]) -> Result<usize, Failed> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await?;
        let n = delivery::set_routes(&tx, routes).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn rotate_once(
        &self,
        old_header: &str,
        new_header: &str,
        rows: &[(String, Vec<u8>)],
        at: DateTime<Utc>,
    ) -> Result<(), Failed> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await?;
        // FOR UPDATE here and FOR SHARE in put_secret: a secret stored under the old key
        // while rotating would otherwise survive rotation unreadable.
        let current: Option<String> =
            query_opt(&tx, "SELECT header FROM vault WHERE id = 1 FOR UPDATE", &[])
                .await?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(StoreError::from)?;
        if current.as_deref() != Some(old_header) {
            return Err(StoreError::Conflict(
                "the vault changed during rotation (another rotation or init ran); nothing was changed".into(),
            )
            .into());
        }
        let stored: i64 = query_one(&tx, "SELECT count(*) FROM secrets", &[])
            .await?
            .try_get(0)
            .map_err(StoreError::from)?;
        if stored != rows.len() as i64 {
            return Err(StoreError::Conflict(format!(
                "{stored} secrets are stored but {} were re-encrypted (one was added or deleted meanwhile); nothing was changed",
                rows.len()
            ))
            .into());
        }
        let now = ms(at);
        for (name, sealed) in rows {
            let n = execute(
                &tx,
                "UPDATE secrets SET sealed = $2, updated = $3 WHERE name = $1",
                &[name, sealed, &now],
            )
            .await?;
            if n != 1 {
                return Err(StoreError::Conflict(format!(
                    "secret {name:?} disappeared during rotation; nothing was changed"
                ))
                .into());
            }
        }
        execute(
            &tx,
            "UPDATE vault SET header = $1, rotated = $2 WHERE id = 1",
            &[&new_header, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_secret_once(
        &self,
        name: &str,
        sealed: &[u8],
        sealed_under: &str,
        at: DateTime<Utc>,
        write: SecretWrite,
    ) -> Result<bool, Failed> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await?;
        let current: Option<String> =
            query_opt(&tx, "SELECT header FROM vault WHERE id = 1 FOR SHARE", &[])
                .await?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(StoreError::from)?;
        if current.as_deref() != Some(sealed_under) {
            return Err(StoreError::Conflict(
                "the vault was rotated or re-created since this process unlocked it; nothing was stored. Restart with the current passphrase".into(),
            )
            .into());
        }
        let sql = put_secret_sql(write, |n| format!("${n}"));
        let n = execute(&tx, &sql, &[&name, &sealed, &ms(at)]).await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}

/// A connection URL without its password, for messages: parsed when it parses,
/// else reduced to its scheme.
pub fn redact(url: &str) -> String {
    let url = tls::split(url).map_or_else(|_| url.to_owned(), |t| t.url);
    match tokio_postgres::Config::from_str(&url) {
        Ok(cfg) => location(&cfg),
        Err(_) => url
            .split("://")
            .next()
            .map_or_else(String::new, |s| format!("{s}://…")),
    }
}

/// A connection error's text: the server's message when it sent one.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match rows::db_error(e) {
        StoreError::Database(m) => m,
        other => other.to_string(),
    }
}

/// A pool error's text: the server's message for database errors, never the config.
fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(b) => match rows::db_error(b) {
            StoreError::Database(m) => m,
            other => other.to_string(),
        },
        other => other.to_string(),
    }
}

const TOKEN_COLUMNS: &str =
    "id, provider, scope, secret_hash, created, expires, last_used, revoked";

fn token(r: &tokio_postgres::Row) -> Result<ApiToken, StoreError> {
    let hash: Vec<u8> = r.try_get(3)?;
    Ok(ApiToken {
        id: r.try_get(0)?,
        provider: r.try_get(1)?,
        scope: r.try_get(2)?,
        secret_hash: hash
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Database("bad stored token hash".into()))?,
        created: r.try_get(4)?,
        expires: r.try_get(5)?,
        last_used: r.try_get(6)?,
        revoked: r.try_get(7)?,
    })
}

fn secret_row(r: &tokio_postgres::Row) -> Result<SecretRow, StoreError> {
    Ok(SecretRow {
        name: r.try_get(0)?,
        sealed: r.try_get(1)?,
        created: r.try_get(2)?,
        updated: r.try_get(3)?,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A lookup's statement: `$1` provider, `$2` kind, `$3` the keys ([`Lookup::keys`]):
/// one key as a scalar (`= $3`), several as an array (`= ANY($3)`). A filter
/// `userName eq "…"` names one key, and the scalar spares both sides building and
/// taking apart an array on every GET.
fn lookup_query(lookup: &Lookup, one: bool) -> String {
    let cond = match (lookup, one) {
        (Lookup::Ids(_), true) => "id = $3",
        (Lookup::Ids(_), false) => "id = ANY($3)",
        (Lookup::UserNames(_), true) => "user_name_ci = $3",
        (Lookup::UserNames(_), false) => "user_name_ci = ANY($3)",
        (Lookup::ExternalIds(_), true) => "external_id = $3",
        (Lookup::ExternalIds(_), false) => "external_id = ANY($3)",
        (Lookup::DisplayNames(_), true) => "display_name_ci = $3",
        (Lookup::DisplayNames(_), false) => "display_name_ci = ANY($3)",
        // An array built first, so the plan starts from the email index: as a
        // semi-join, a generic plan may walk every resource and probe its emails.
        (Lookup::Emails(_), true) => {
            "seq = ANY(ARRAY(SELECT resource_seq FROM resource_emails WHERE value_ci = $3))"
        }
        (Lookup::Emails(_), false) => {
            "seq = ANY(ARRAY(SELECT resource_seq FROM resource_emails WHERE value_ci = ANY($3)))"
        }
    };
    format!(
        "SELECT {RESOURCE_COLUMNS} FROM resources WHERE provider = $1 AND kind = $2 AND {cond} ORDER BY seq"
    )
}

#[async_trait]
impl Resources for PgStore {
    async fn apply(&self, m: Mutation) -> Result<Committed, StoreError> {
        retrying!(self.apply_once(&m))
    }

    async fn get(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let c = self.client().await?;
        query_opt(
            &c,
            &format!(
                "SELECT {RESOURCE_COLUMNS} FROM resources WHERE provider = $1 AND kind = $2 AND id = $3"
            ),
            &[&provider, &kind.name(), &id],
        )
        .await?
        .as_ref()
        .map(resource)
        .transpose()
    }

    async fn lookup_text(
        &self,
        provider: &str,
        kind: ResourceKind,
        lookup: Lookup,
    ) -> Result<Vec<StoredText>, StoreError> {
        let c = self.client().await?;
        let (kind, keys) = (kind.name(), lookup.keys());
        let rows = match keys.as_slice() {
            [key] => query(&c, &lookup_query(&lookup, true), &[&provider, &kind, key]).await?,
            _ => {
                query(
                    &c,
                    &lookup_query(&lookup, false),
                    &[&provider, &kind, &keys],
                )
                .await?
            }
        };
        rows.iter().map(resource_text).collect()
    }

    async fn scan(
        &self,
        provider: &str,
        kind: ResourceKind,
        after_seq: i64,
        skip: usize,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let c = self.client().await?;
        let (lim, off) = (
            i64::try_from(limit).unwrap_or(i64::MAX),
            i64::try_from(skip).unwrap_or(i64::MAX),
        );
        let items = query(
            &c,
            &format!(
                "SELECT {RESOURCE_COLUMNS} FROM resources
                 WHERE provider = $1 AND kind = $2 AND seq > $3 ORDER BY seq LIMIT $4 OFFSET $5"
            ),
            &[&provider, &kind.name(), &after_seq, &lim, &off],
        )
        .await?
        .iter()
        .map(resource)
        .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() == limit {
            items.last().map(|r| r.seq)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn count(&self, provider: &str, kind: ResourceKind) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let n: i64 = query_one(
            &c,
            "SELECT count(*) FROM resources WHERE provider = $1 AND kind = $2",
            &[&provider, &kind.name()],
        )
        .await?
        .try_get(0)?;
        Ok(count(n))
    }

    async fn members(&self, provider: &str, group_id: &str) -> Result<Vec<MemberRef>, StoreError> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT m.member_id, m.member_type, m.display FROM group_members m
             JOIN resources r ON r.seq = m.group_seq
             WHERE r.provider = $1 AND r.kind = 'Group' AND r.id = $2
             ORDER BY m.pos",
            &[&provider, &group_id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(MemberRef {
                value: r.try_get(0)?,
                kind: stored_member_kind(r.try_get(1)?),
                display: r.try_get(2)?,
            })
        })
        .collect()
    }

    async fn members_page(
        &self,
        group_seq: i64,
        version: i64,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<(i64, MemberRef)>>, StoreError> {
        let c = self.client().await?;
        // One statement, one snapshot: the group's version comes with the page (on a
        // row of its own when the page is empty).
        let rows = query(
            &c,
            "SELECT g.version, m.pos, m.member_id, m.member_type, m.display
             FROM resources g
             LEFT JOIN LATERAL (
                 SELECT pos, member_id, member_type, display FROM group_members
                 WHERE group_seq = g.seq AND pos > $2 ORDER BY pos LIMIT $3
             ) m ON true
             WHERE g.seq = $1 AND g.kind = 'Group'",
            &[&group_seq, &after.unwrap_or(-1), &(limit as i64)],
        )
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        if first.try_get::<_, i64>(0)? != version {
            return Ok(None);
        }
        let mut page = Vec::with_capacity(rows.len());
        for r in &rows {
            let Some(pos) = r.try_get::<_, Option<i64>>(1)? else {
                continue;
            };
            page.push((
                pos,
                MemberRef {
                    value: r.try_get(2)?,
                    kind: stored_member_kind(r.try_get(3)?),
                    display: r.try_get(4)?,
                },
            ));
        }
        Ok(Some(page))
    }

    async fn groups_of(
        &self,
        provider: &str,
        member_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT r.id, r.doc::json ->> 'displayName' FROM group_members m
             JOIN resources r ON r.seq = m.group_seq
             WHERE m.member_id = $1 AND r.provider = $2 AND r.kind = 'Group'
             ORDER BY r.seq",
            &[&member_id, &provider],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
    }
}

#[async_trait]
impl ChangeLog for PgStore {
    async fn events_after(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let c = self.client().await?;
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        query(
            &c,
            &format!(
                "SELECT {} FROM change_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                delivery::EVENT_COLUMNS
            ),
            &[&after_seq, &lim],
        )
        .await?
        .iter()
        .map(delivery::event)
        .collect()
    }

    async fn resource_events(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        after_seq: i64,
        upto_seq: i64,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let c = self.client().await?;
        delivery::resource_events(&c, provider, kind, id, after_seq, upto_seq).await
    }

    async fn prune_change_events(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let c = self.writer().await?;
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        // As in SQLite: keep everything after the oldest `from_seq` a queued delivery or
        // dead letter still reads. One statement, one snapshot: a dead letter being
        // re-queued is seen in exactly one of the two tables. Instances pruning at the
        // same time delete the same rows; the loser finds them gone.
        let n = execute(
            &c,
            "DELETE FROM change_events WHERE seq IN (
               SELECT seq FROM change_events
               WHERE at < $1 AND seq <= coalesce((SELECT min(s) FROM (
                   SELECT min(from_seq) AS s FROM delivery_queue
                   UNION ALL SELECT min(from_seq) FROM dead_letters) x), 9223372036854775807)
               ORDER BY seq LIMIT $2)",
            &[&ms(before), &batch],
        )
        .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

#[async_trait]
impl Tokens for PgStore {
    async fn create_token(&self, t: ApiToken) -> Result<(), StoreError> {
        let c = self.writer().await?;
        let n = execute(
            &c,
            "INSERT INTO api_tokens (id, provider, scope, secret_hash, created, expires)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &t.id,
                &t.provider,
                &t.scope,
                &&t.secret_hash[..],
                &ms(t.created),
                &t.expires.map(ms),
            ],
        )
        .await?;
        if n == 0 {
            return Err(StoreError::DuplicateId(t.id));
        }
        Ok(())
    }

    async fn find_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        let c = self.client().await?;
        query_opt(
            &c,
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"),
            &[&id],
        )
        .await?
        .as_ref()
        .map(token)
        .transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let c = self.client().await?;
        query(
            &c,
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created DESC, id"),
            &[],
        )
        .await?
        .iter()
        .map(token)
        .collect()
    }

    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(Failed::from)?;
        // Revoking a revoked token is not an error: true whenever the token exists.
        let row = query_one(
            &tx,
            "WITH upd AS (UPDATE api_tokens SET revoked = $2 WHERE id = $1 AND revoked IS NULL RETURNING 1)
             SELECT (SELECT count(*) FROM upd) > 0 OR EXISTS (SELECT 1 FROM api_tokens WHERE id = $1)",
            &[&id, &ms(at)],
        )
        .await?;
        // Delivered with the commit to every instance's token watch.
        execute(&tx, &format!("NOTIFY {}", token_watch::CHANNEL), &[]).await?;
        tx.commit().await.map_err(Failed::from)?;
        drop(c);
        // An instance that missed the notification stops trusting its cache within
        // the lease; the revocation is in force everywhere once that has passed.
        self.token_watch.lease().outwait().await;
        Ok(row.try_get(0)?)
    }

    async fn touch_tokens(&self, used: Vec<(String, DateTime<Utc>)>) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = used.iter().map(|u| u.0.as_str()).collect();
        let ats: Vec<DateTime<Utc>> = used.iter().map(|u| ms(u.1)).collect();
        let c = self.writer().await?;
        execute(
            &c,
            "UPDATE api_tokens t SET last_used = u.at
             FROM (SELECT id, max(at) AS at FROM unnest($1::text[], $2::timestamptz[]) AS x(id, at) GROUP BY id) u
             WHERE t.id = u.id AND (t.last_used IS NULL OR t.last_used < u.at)",
            &[&ids, &ats],
        )
        .await?;
        Ok(())
    }

    async fn token_generation(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.token_watch.generation())
    }
}

#[async_trait]
impl VaultRows for PgStore {
    async fn vault(&self) -> Result<Option<VaultRecord>, StoreError> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT header, created, rotated FROM vault WHERE id = 1",
            &[],
        )
        .await?
        .map(|r| {
            Ok(VaultRecord {
                header: r.try_get(0)?,
                created: r.try_get(1)?,
                rotated: r.try_get(2)?,
            })
        })
        .transpose()
    }

    async fn init_vault(&self, header: String, at: DateTime<Utc>) -> Result<(), StoreError> {
        let c = self.writer().await?;
        let n = execute(
            &c,
            "INSERT INTO vault (id, header, created) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
            &[&header, &ms(at)],
        )
        .await?;
        if n == 0 {
            return Err(StoreError::DuplicateId("vault".into()));
        }
        Ok(())
    }

    async fn put_secret(
        &self,
        name: &str,
        sealed: Vec<u8>,
        sealed_under: &str,
        at: DateTime<Utc>,
        write: SecretWrite,
    ) -> Result<bool, StoreError> {
        retrying!(self.put_secret_once(name, &sealed, sealed_under, at, write))
    }

    async fn secret(&self, name: &str) -> Result<Option<SecretRow>, StoreError> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT name, sealed, created, updated FROM secrets WHERE name = $1",
            &[&name],
        )
        .await?
        .as_ref()
        .map(secret_row)
        .transpose()
    }

    async fn secrets(&self) -> Result<Vec<SecretRow>, StoreError> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT name, sealed, created, updated FROM secrets ORDER BY name",
            &[],
        )
        .await?
        .iter()
        .map(secret_row)
        .collect()
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let c = self.writer().await?;
        Ok(execute(&c, "DELETE FROM secrets WHERE name = $1", &[&name]).await? > 0)
    }

    async fn rotate_vault(
        &self,
        old_header: String,
        new_header: String,
        rows: Vec<(String, Vec<u8>)>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        retrying!(self.rotate_once(&old_header, &new_header, &rows, at))
    }
}

#[async_trait]
impl DeliveryQueue for PgStore {
    async fn set_delivery_routes(
        &self,
        routes: Vec<(String, String)>,
    ) -> Result<usize, StoreError> {
        retrying!(self.routes_once(&routes))
    }

    async fn claim_deliveries(
        &self,
        target: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedDelivery>, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let c = self.client().await?;
        delivery::claim(&c, target, owner, now, lease_until, limit).await
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
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let c = self.client().await?;
        delivery::claim_one(&c, target, provider, kind, id, owner, now, lease_until).await
    }

    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError> {
        let c = self.writer().await?;
        let n = execute(
            &c,
            "UPDATE delivery_queue SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            &[&owner],
        )
        .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn finish_delivery_recorded(
        &self,
        d: QueuedDelivery,
        owner: &str,
        outcome: DeliveryOutcome,
        took: Duration,
        at: DateTime<Utc>,
        record: Option<crate::provlog::LogRow>,
    ) -> Result<(), StoreError> {
        // Not refused after `close`: a delivery in flight at shutdown records its outcome.
        let attempt = || async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            delivery::finish(&tx, &d, owner, &outcome, took, at, record.as_ref()).await?;
            tx.commit().await?;
            Ok::<(), Failed>(())
        };
        retrying!(attempt())
    }

    async fn delivery_attempts(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let c = self.client().await?;
        delivery::attempts(&c, provider, kind, id).await
    }

    async fn prune_delivery_log(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let c = self.writer().await?;
        let n = execute(&c, "DELETE FROM delivery_log WHERE at < $1", &[&ms(before)]).await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn enqueue_resync(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let c = self.writer().await?;
        delivery::enqueue_resync(&c, target, provider, kind, id, at).await
    }

    async fn dead_letters(&self, target: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        let c = self.client().await?;
        delivery::dead_letters(&c, target).await
    }

    async fn requeue_dead_letter(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let c = self.writer().await?;
        delivery::requeue_dead_letter(&c, id, at).await
    }

    async fn drop_dead_letter(&self, id: i64) -> Result<bool, StoreError> {
        let c = self.writer().await?;
        Ok(execute(&c, "DELETE FROM dead_letters WHERE id = $1", &[&id]).await? == 1)
    }

    async fn delivery_stats(&self, target: &str) -> Result<DeliveryStats, StoreError> {
        let c = self.client().await?;
        delivery::stats(&c, target).await
    }

    async fn await_link(
        &self,
        target: &str,
        provider: &str,
        awaited_id: &str,
        resource_id: &str,
    ) -> Result<(), StoreError> {
        let c = self.writer().await?;
        delivery::await_link(&c, target, provider, awaited_id, resource_id).await
    }

    async fn release_waiting(
        &self,
        target: &str,
        provider: &str,
        awaited_id: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await?;
        let n = delivery::release_waiting(&tx, target, provider, awaited_id, at).await?;
        tx.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl Guards for PgStore {
    async fn guard(&self, target: &str) -> Result<GuardState, StoreError> {
        let c = self.client().await?;
        delivery::guard(&c, target).await
    }

    async fn trip_guard(
        &self,
        target: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let c = self.writer().await?;
        delivery::trip_guard(&c, target, reason, at).await
    }

    async fn approve_guard(
        &self,
        target: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let c = self.writer().await?;
        delivery::approve_guard(&c, target, at, until).await
    }

    async fn held_by_guard(&self, target: &str) -> Result<Vec<QueuedDelivery>, StoreError> {
        let c = self.client().await?;
        delivery::held(&c, target).await
    }

    async fn reject_held(
        &self,
        target: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await?;
        let n = delivery::reject_held(&tx, target, reason, at).await?;
        tx.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl TargetLinks for PgStore {
    async fn target_id(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        delivery::target_id(&c, target, provider, kind, id).await
    }

    async fn set_target_id(
        &self,
        target: &str,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        link: Option<TargetLink>,
    ) -> Result<(), StoreError> {
        let c = self.writer().await?;
        delivery::set_target_id(&c, target, provider, kind, id, link.as_ref()).await
    }

    async fn managed(&self, target: &str) -> Result<Vec<Managed>, StoreError> {
        let c = self.client().await?;
        delivery::managed(&c, target).await
    }

    async fn target_owner(
        &self,
        target: &str,
        kind: ResourceKind,
        target_id: &str,
    ) -> Result<Option<Managed>, StoreError> {
        let c = self.client().await?;
        delivery::target_owner(&c, target, kind, target_id).await
    }

    async fn count_managed(&self, target: &str, kind: ResourceKind) -> Result<u64, StoreError> {
        let c = self.client().await?;
        delivery::count_managed(&c, target, kind).await
    }

    async fn orphaned_users(&self, target: &str) -> Result<Vec<Orphan>, StoreError> {
        let c = self.client().await?;
        delivery::orphaned_users(&c, target).await
    }
}

#[async_trait]
impl Schedules for PgStore {
    async fn claim_scheduled_run(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let c = self.writer().await?;
        let n = execute(
            &c,
            "INSERT INTO schedule_runs (name, tick, owner) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET tick = excluded.tick, owner = excluded.owner
             WHERE schedule_runs.tick < excluded.tick",
            &[&name, &ms(tick), &owner],
        )
        .await?;
        Ok(n == 1)
    }
}

#[async_trait]
impl Lifecycle for PgStore {
    async fn status(&self) -> Result<StoreStatus, StoreError> {
        let c = self.client().await?;
        let r = query_one(
            &c,
            "SELECT (SELECT value FROM meta WHERE key = 'schema_version'),
                    (SELECT coalesce(max(seq), 0) FROM change_events)",
            &[],
        )
        .await?;
        let version: Option<String> = r.try_get(0)?;
        let writes = self.writes.load(Ordering::Relaxed);
        Ok(StoreStatus {
            engine: "postgres",
            location: self.location.clone(),
            schema_version: version.and_then(|v| v.parse().ok()).unwrap_or(0),
            expected_schema_version: SCHEMA_VERSION,
            last_event_seq: r.try_get(1)?,
            // Every write is its own transaction here (PostgreSQL groups the WAL
            // flushes of concurrent commits itself).
            write_batches: writes,
            write_jobs: writes,
        })
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let c = self.client().await?;
        let r = query_one(
            &c,
            "SELECT (SELECT count(*) FROM change_events),
                    (SELECT count(*) FROM resources WHERE kind = 'User'),
                    (SELECT count(*) FROM resources WHERE kind = 'Group')",
            &[],
        )
        .await?;
        Ok(StoreCounts {
            events: r.try_get(0)?,
            users: r.try_get(1)?,
            groups: r.try_get(2)?,
        })
    }

    async fn close(&self) {
        // Every write awaits its own commit, so nothing acknowledged is pending; new
        // writes are refused from here on.
        self.closed.store(true, Ordering::Release);
        self.token_watch.stop();
        self.pool.close();
    }
}

//! The daemon's background upkeep and the runtime policy behind it: pruning, token-use
//! flushing, the systemd watchdog, certificate renewal, link expiry, connection limits
//! and the instance name leases carry.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::AppError;
use crate::clock::Clock;
use crate::oauth::Linker;
use crate::server::{AppState, CertStore};
use crate::store::{Store, StoreError};

/// How often expired pending account links are removed.
const PENDING_SWEEP: Duration = Duration::from_secs(60);

/// How often buffered token last-use times reach the database.
const TOKEN_FLUSH: Duration = Duration::from_secs(15);

/// How long delivery attempts are kept for `scim-bridge trace`.
const DELIVERY_LOG_DAYS: i64 = 30;

/// File descriptors kept back from client connections: the database files, logs and
/// outbound connections to targets need them too.
const RESERVED_FDS: usize = 128;

/// The most connections served by default, however high the open-file limit.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How often the certificate files are checked for a renewal.
const CERT_POLL: Duration = Duration::from_secs(5);

/// Change events pruned per write transaction, so SCIM writes never wait long behind it.
const PRUNE_BATCH: usize = 5000;

/// Removes a target's expired pending account links until `stop` changes.
pub async fn sweep_links(linker: Arc<Linker>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PENDING_SWEEP) => {}
            _ = stop.changed() => return,
        }
        let swept = linker.sweep_pending().await;
        if swept > 0 {
            tracing::info!(target_name = %linker.target(), swept, "expired account links removed");
        }
    }
}

/// How long what the pruner prunes is kept (`None` or zero: for ever).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Change events (`[database] event_retention`).
    pub events: Option<chrono::Duration>,
}

/// Delivery attempts are kept for `scim-bridge trace`, change events for delivery and
/// `trace`; one task prunes them. The provisioning log is the audit chainer's to
/// prune (`journal::chainer`): only behind a signed checkpoint.
pub async fn prune(store: Arc<dyn Store>, clock: Arc<dyn Clock>, retention: Retention) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let before = clock.now() - chrono::Duration::days(DELIVERY_LOG_DAYS);
        if let Err(e) = store.prune_delivery_log(before).await {
            tracing::warn!(error = %e, "cannot prune the delivery log");
        }
        if let Some(keep) = retention.events.filter(|r| !r.is_zero()) {
            prune_batches(store.as_ref(), clock.now() - keep, Pruned::Events).await;
        }
    }
}

/// What [`prune_batches`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pruned {
    /// Change events no delivery needs.
    Events,
}

/// Deletes what is older than `before`, a batch at a time.
async fn prune_batches(store: &dyn Store, before: chrono::DateTime<chrono::Utc>, what: Pruned) {
    let mut total = 0;
    let name = match what {
        Pruned::Events => "change events",
    };
    loop {
        let batch = match what {
            Pruned::Events => store.prune_change_events(before, PRUNE_BATCH).await,
        };
        match batch {
            Ok(n) => {
                total += n;
                if n < PRUNE_BATCH {
                    break;
                }
                // Let waiting SCIM writes in between batches.
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot prune {name}");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(pruned = total, "{name} past their retention removed");
    }
}

/// Writes buffered token last-use times every [`TOKEN_FLUSH`].
pub async fn flush_token_use(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(TOKEN_FLUSH);
    loop {
        tick.tick().await;
        state.flush_token_use().await;
    }
}

/// Reloads the certificate when its files change (a renewal by certbot or an ACME
/// client), so HTTPS follows without a restart or a SIGHUP.
pub async fn watch_certificate(certs: Arc<CertStore>) {
    loop {
        tokio::time::sleep(CERT_POLL).await;
        if !certs.changed_on_disk() {
            continue;
        }
        match certs.reload() {
            Ok(()) => tracing::info!("TLS certificate files changed: reloaded"),
            // A renewal half written (certificate before key) fails here; the next
            // poll tries again, and the old certificate serves meanwhile.
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate files changed but cannot be used yet; the one in use stays")
            }
        }
    }
}

/// Tells systemd about the daemon's state; outside systemd NOTIFY_SOCKET is unset and
/// this is a no-op.
pub fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Pings systemd's watchdog only while the store answers, so a wedged database gets
/// the service restarted instead of silently failing requests.
pub async fn watchdog(store: Arc<dyn Store>) {
    let Some(timeout) = sd_notify::watchdog_enabled().filter(|d| !d.is_zero()) else {
        return;
    };
    let period = timeout / 2;
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let checked = async { Ok::<_, StoreError>((store.status().await?, store.counts().await?)) };
        match tokio::time::timeout(period, checked).await {
            Ok(Ok((_, s))) => {
                let line = format!(
                    "serving; {} users, {} groups, {} change events",
                    s.users, s.groups, s.events
                );
                notify(&[
                    sd_notify::NotifyState::Watchdog,
                    sd_notify::NotifyState::Status(&line),
                ]);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "store check failed; withholding watchdog ping")
            }
            Err(_) => tracing::error!("store check timed out; withholding watchdog ping"),
        }
    }
}

/// `[server] max_connections`, or by default the open-file limit less what the rest of
/// the daemon needs (at most 10,000). A configured value above that limit would fail
/// with "too many open files" before the bound is reached, so it is warned about.
pub fn max_connections(configured: Option<usize>) -> usize {
    let files = open_file_limit();
    let room = files.map(|n| n.saturating_sub(RESERVED_FDS).max(16));
    match (configured, room) {
        (Some(n), Some(room)) if n > room => {
            tracing::warn!(
                max_connections = n,
                open_file_limit = files,
                "max_connections is above what the open-file limit allows; raise the limit (systemd: LimitNOFILE=) or lower max_connections"
            );
            n
        }
        (Some(n), _) => n,
        (None, Some(room)) => room.min(DEFAULT_MAX_CONNECTIONS),
        (None, None) => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The process's soft limit on open files, when it can be read.
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !ok || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(limit.rlim_cur).ok()
}

/// This instance's stable name, kept in the data directory: delivery leases carry it, so
/// after a crash the restarted instance reclaims its own leases instead of waiting for
/// them to run out, while other instances sharing a database keep theirs.
pub fn instance_id(
    data_dir: &Path,
    entropy: &dyn crate::entropy::Entropy,
) -> Result<String, AppError> {
    let path = data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(AppError::Store(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    }
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = match host.trim() {
        "" => "instance",
        h => h,
    };
    let id = format!("{host}-{}", &crate::entropy::uuid_v4(entropy)[..8]);
    // With PostgreSQL nothing else creates the data directory.
    std::fs::create_dir_all(data_dir)
        .map_err(|e| AppError::Store(format!("cannot create {}: {e}", data_dir.display())))?;
    std::fs::write(&path, &id)
        .map_err(|e| AppError::Store(format!("cannot write {}: {e}", path.display())))?;
    Ok(id)
}

//! A serving daemon: its named background tasks, what can be reloaded while it runs,
//! and its orderly shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::delivering::RunningTarget;
use super::tasks;
use crate::config::Config;
use crate::server::{self, AppState, CertStore};
use crate::store::Store;
use crate::vault::Secrets;

/// How long a stop waits for the audit chain to link what is pending (linking runs
/// at tens of thousands of records a second; this bounds only a huge backlog).
const SHUTDOWN_CHAINING: Duration = Duration::from_secs(5);

/// How a task stops at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Told to stop and awaited within the grace period: delivery engines finish the
    /// attempt in flight and record its outcome, schedules and link sweepers return.
    Draining,
    /// Periodic upkeep with nothing in flight worth finishing (pruning, flushing,
    /// watchdog, token keepers, certificate watcher): cancelled.
    Upkeep,
}

struct Task {
    name: String,
    kind: TaskKind,
    /// The target it works for, whose rebuild on reload stops it.
    target: Option<String>,
    join: JoinHandle<()>,
}

/// The running daemon, as [`super::App::serve`] returns it.
pub struct AppHandle {
    pub(super) state: Arc<AppState>,
    pub(super) store: Arc<dyn Store>,
    pub(super) secrets: Option<Arc<Secrets>>,
    certs: Option<Arc<CertStore>>,
    /// Per target, what tells its engine, schedule and link sweeper to stop.
    stop_targets: Vec<(String, watch::Sender<bool>)>,
    /// One per served router (the daemon's, and the console's own listener).
    stop_server: Vec<tokio::sync::oneshot::Sender<()>>,
    server: Vec<JoinHandle<()>>,
    tasks: Vec<Task>,
    pub(super) grace: Duration,
    /// The configuration in effect (with `server.listen` the address bound).
    pub(super) cfg: Config,
    /// The targets running, in `cfg.targets`' order.
    pub(super) targets: Vec<RunningTarget>,
    /// This instance's name on delivery leases.
    pub(super) owner: String,
    /// The console, when enabled: a reload hands it the new targets.
    pub(super) console: Option<Arc<crate::console::Console>>,
    /// The audit chain, sealed once more at shutdown.
    pub(super) journal: Option<Arc<crate::journal::Journal>>,
}

impl AppHandle {
    pub(super) fn new(
        state: Arc<AppState>,
        store: Arc<dyn Store>,
        secrets: Option<Arc<Secrets>>,
        certs: Option<Arc<CertStore>>,
        cfg: Config,
        owner: String,
    ) -> Self {
        AppHandle {
            state,
            store,
            secrets,
            certs,
            stop_targets: Vec::new(),
            stop_server: Vec::new(),
            server: Vec::new(),
            tasks: Vec::new(),
            grace: cfg.server.shutdown_timeout,
            cfg,
            targets: Vec::new(),
            owner,
            console: None,
            journal: None,
        }
    }

    pub(super) fn spawn(
        &mut self,
        kind: TaskKind,
        name: String,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.spawn_for(None, kind, name, task);
    }

    fn spawn_for(
        &mut self,
        target: Option<&str>,
        kind: TaskKind,
        name: String,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.tasks.push(Task {
            name,
            kind,
            target: target.map(str::to_owned),
            join: tokio::spawn(task),
        });
    }

    /// Starts what runs for `target`: its link sweeper, scheduled reconciliation,
    /// delivery engine and token keeper, and keeps it among the running targets.
    pub(super) fn start_target(&mut self, mut target: RunningTarget) {
        let name = target.name().to_owned();
        let (stop, stopped) = watch::channel(false);
        let who = Some(name.as_str());
        // Abandoned account links (the person never came back from the provider's
        // consent page) expire on their own, not only when the next link starts.
        if let Some(linker) = target.handle.linker.clone() {
            self.spawn_for(
                who,
                TaskKind::Draining,
                format!("link sweeper {name}"),
                tasks::sweep_links(linker, stopped.clone()),
            );
        }
        if let Some(s) = target.schedule.take() {
            self.spawn_for(
                who,
                TaskKind::Draining,
                format!("schedule {name}"),
                crate::delivery::run_scheduled(
                    Arc::clone(&self.store),
                    s.reconciler,
                    s.schedule,
                    Arc::clone(&self.state.clock),
                    s.report,
                    self.owner.clone(),
                    stopped.clone(),
                ),
            );
        }
        if let Some(engine) = target.engine.take() {
            self.spawn_for(
                who,
                TaskKind::Draining,
                format!("engine {name}"),
                engine.run(stopped.clone()),
            );
        }
        if let Some(source) = target.handle.source.clone() {
            self.spawn_for(
                who,
                TaskKind::Upkeep,
                format!("token keeper {name}"),
                source.keep_fresh(),
            );
        }
        self.stop_targets.push((name, stop));
        self.targets.push(target);
    }

    /// Stops what runs for the target `name` as shutdown does: the delivery in flight
    /// finishes and records its outcome (within the grace period; after it, the
    /// attempt is abandoned and retried once its lease runs out, as after a restart),
    /// queued changes stay in the outbox for whatever engine comes next.
    pub(super) async fn stop_target(&mut self, name: &str) {
        if let Some(i) = self.stop_targets.iter().position(|(n, _)| n == name) {
            let (_, stop) = self.stop_targets.remove(i);
            let _ = stop.send(true);
        }
        self.targets.retain(|t| t.name() != name);
        let (mine, others): (Vec<Task>, Vec<Task>) = std::mem::take(&mut self.tasks)
            .into_iter()
            .partition(|t| t.target.as_deref() == Some(name));
        self.tasks = others;
        let (draining, upkeep): (Vec<Task>, Vec<Task>) =
            mine.into_iter().partition(|t| t.kind == TaskKind::Draining);
        for task in upkeep {
            task.join.abort();
            let _ = task.join.await;
        }
        for mut task in draining {
            match tokio::time::timeout(self.grace, &mut task.join).await {
                Ok(Err(e)) if e.is_panic() => {
                    tracing::error!(task = %task.name, error = %e, "task failed");
                }
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(task = %task.name, grace = ?self.grace, "still running after the grace period; stopped, its delivery will be retried");
                    task.join.abort();
                    let _ = task.join.await;
                }
            }
        }
    }

    pub(super) fn serve_http(
        &mut self,
        listeners: Vec<server::Listener>,
        router: axum::Router,
        limits: server::ConnectionLimits,
    ) {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        self.stop_server.push(stop_tx);
        self.server.push(tokio::spawn(server::serve(
            listeners,
            router,
            limits,
            Arc::clone(&self.state),
            async move {
                let _ = stop_rx.await;
            },
        )));
    }

    /// What every request sees.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The store the daemon serves from.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The background tasks running, by name (`engine imanage`, `pruner`, …).
    pub fn tasks(&self) -> Vec<(&str, TaskKind)> {
        self.tasks
            .iter()
            .map(|t| (t.name.as_str(), t.kind))
            .collect()
    }

    /// The HTTPS certificate in use, when TLS is configured; reloading it swaps the
    /// certificate for new connections.
    pub fn certificates(&self) -> Option<&Arc<CertStore>> {
        self.certs.as_ref()
    }

    /// Stops in order: no new connections and requests finished (within the grace
    /// period), then deliveries in flight finish and record their outcome (within the
    /// grace period; the rest stay queued), then upkeep is cancelled, buffered token
    /// use is written and the store closed.
    pub async fn shutdown(mut self) {
        self.state.begin_shutdown();
        for stop in self.stop_server.drain(..) {
            let _ = stop.send(());
        }
        let grace = self.grace;
        let servers = std::mem::take(&mut self.server);
        let stopped = tokio::time::timeout(grace, async {
            for server in servers {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "server task failed");
                }
            }
        })
        .await;
        if stopped.is_err() {
            tracing::warn!(
                ?grace,
                "requests still running after the grace period; closing"
            );
        }
        for (_, stop) in &self.stop_targets {
            let _ = stop.send(true);
        }
        let (draining, upkeep): (Vec<Task>, Vec<Task>) = std::mem::take(&mut self.tasks)
            .into_iter()
            .partition(|t| t.kind == TaskKind::Draining);
        let drained = tokio::time::timeout(grace, async {
            for task in draining {
                if let Err(e) = task.join.await
                    && e.is_panic()
                {
                    tracing::error!(task = %task.name, error = %e, "task failed");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "deliveries still running at shutdown; they will be retried after restart"
            );
        }
        for task in &upkeep {
            task.join.abort();
        }
        for task in upkeep {
            let _ = task.join.await;
        }
        self.state.flush_token_use().await;
        // What deliveries recorded while draining is chained and sealed before the
        // store closes, so a clean stop leaves no unsealed tail. A large backlog (an
        // import just before the stop) is not worth missing the service manager's stop
        // timeout for: what is left is linked at the next start.
        if let Some(journal) = &self.journal {
            match tokio::time::timeout(SHUTDOWN_CHAINING, journal.chain()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not chain the audit log at shutdown")
                }
                Err(_) => tracing::warn!(
                    "audit chain: stopping with records still to link; they are linked at the next start"
                ),
            }
            if journal.key().is_some()
                && let Err(e) = journal.seal().await
            {
                tracing::warn!(error = %e, "could not seal the audit chain at shutdown");
            }
        }
        self.store.close().await;
        drop(self.secrets.take());
    }
}

//! A serving daemon: its named background tasks, what can be reloaded while it runs,
//! and its orderly shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::server::{self, AppState, CertStore};
use crate::store::Store;
use crate::vault::Secrets;

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
    join: JoinHandle<()>,
}

/// The running daemon, as [`super::App::serve`] returns it.
pub struct AppHandle {
    state: Arc<AppState>,
    store: Arc<dyn Store>,
    secrets: Option<Arc<Secrets>>,
    certs: Option<Arc<CertStore>>,
    stop_engines: tokio::sync::watch::Sender<bool>,
    stop_server: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    tasks: Vec<Task>,
    grace: Duration,
}

impl AppHandle {
    pub(super) fn new(
        state: Arc<AppState>,
        store: Arc<dyn Store>,
        secrets: Option<Arc<Secrets>>,
        certs: Option<Arc<CertStore>>,
        stop_engines: tokio::sync::watch::Sender<bool>,
        grace: Duration,
    ) -> Self {
        AppHandle {
            state,
            store,
            secrets,
            certs,
            stop_engines,
            stop_server: None,
            server: None,
            tasks: Vec::new(),
            grace,
        }
    }

    pub(super) fn spawn(
        &mut self,
        kind: TaskKind,
        name: String,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.tasks.push(Task {
            name,
            kind,
            join: tokio::spawn(task),
        });
    }

    pub(super) fn serve_http(
        &mut self,
        listeners: Vec<server::Listener>,
        router: axum::Router,
        limits: server::ConnectionLimits,
    ) {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        self.stop_server = Some(stop_tx);
        self.server = Some(tokio::spawn(server::serve(
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
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        let grace = self.grace;
        if let Some(server) = self.server.take() {
            match tokio::time::timeout(grace, server).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
                Err(_) => tracing::warn!(
                    ?grace,
                    "requests still running after the grace period; closing"
                ),
            }
        }
        let _ = self.stop_engines.send(true);
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
        self.store.close().await;
        drop(self.secrets.take());
    }
}

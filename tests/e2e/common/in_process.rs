//! The daemon built in this process by `scim_bridge::app`, on a listener bound to port
//! 0 before it starts: no free-port race, and no wait beyond the build itself.
//!
//! It runs on its own runtime thread, so a test that blocks (a CLI subprocess, a
//! synchronous sleep) never stalls the server it is talking to.

use std::ops::Deref;
use std::sync::Arc;

use scim_bridge::app::{App, Deps, Listeners};
use scim_bridge::clock::{Clock, SystemClock};
use scim_bridge::config::Environment;
use scim_bridge::entropy::OsEntropy;

use super::Site;

pub struct InProcess {
    pub site: Site,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Deref for InProcess {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.site
    }
}

impl InProcess {
    /// The default test config plus `extra` TOML.
    pub fn start(extra: &str) -> InProcess {
        Self::start_inner("", extra, &[])
    }

    /// With more `[server]` keys (TOML lines).
    pub fn start_with_server(server: &str) -> InProcess {
        Self::start_inner(server, "", &[])
    }

    /// After writing `secrets` (file name, contents) beside the config with mode 600.
    pub fn start_with_secrets(extra: &str, secrets: &[(&str, &str)]) -> InProcess {
        Self::start_inner("", extra, secrets)
    }

    /// With the daemon reading time from `clock` (a `ManualClock` the test moves), so
    /// a test of a time-dependent decision waits for nothing.
    pub fn start_with_clock(extra: &str, clock: Arc<dyn Clock>) -> InProcess {
        Self::start_clocked("", extra, &[], clock)
    }

    /// With both: secrets beside the config and the daemon on `clock`.
    pub fn start_with_clock_and_secrets(
        extra: &str,
        secrets: &[(&str, &str)],
        clock: Arc<dyn Clock>,
    ) -> InProcess {
        Self::start_clocked("", extra, secrets, clock)
    }

    fn start_inner(server: &str, extra: &str, secrets: &[(&str, &str)]) -> InProcess {
        Self::start_clocked(server, extra, secrets, Arc::new(SystemClock))
    }

    fn start_clocked(
        server: &str,
        extra: &str,
        secrets: &[(&str, &str)],
        clock: Arc<dyn Clock>,
    ) -> InProcess {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = listener.local_addr().expect("local address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let site = Site::new(port, server, extra, "info", secrets);
        let mut env = Environment::from_process();
        env.vars.remove("RUST_LOG");
        let cfg = scim_bridge::config::load(&site.config, &env)
            .unwrap_or_else(|e| panic!("test config does not load: {e}"))
            .config;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let deps = Deps {
                    clock,
                    entropy: Arc::new(OsEntropy),
                    env,
                };
                let app = match App::build(cfg, deps).await {
                    Ok(app) => app,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let http = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let _ = ready_tx.send(Ok(()));
                app.serve_until(
                    Listeners {
                        http,
                        https: None,
                        console: None,
                    },
                    async {
                        let _ = stop_rx.await;
                    },
                )
                .await;
            });
        });
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the daemon cannot be built: {e}"),
            Err(_) => panic!("the daemon's thread ended before it was built"),
        }
        InProcess {
            site,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Orderly shutdown, awaited: requests finish, deliveries in flight record their
    /// outcome, the store closes.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown();
    }
}

//! Targets as the daemon runs them: each with what it was built from (so a reload can
//! tell whether it changed), what the server shows of it, and the engine and schedule
//! waiting to be started.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::AppError;
use super::targets::{self, Context};
use crate::config::{Config, SecretRef, TargetConfig, TargetSpec};
use crate::delivery::{Engine, ReconcileReport, Reconciler};
use crate::resolver::Resolver;
use crate::server::{NetworkPolicy, TargetHandle};
use crate::targets::ImanageClient;

/// A scheduled reconciliation, built and waiting to be started.
pub(super) struct Scheduled {
    pub reconciler: Arc<Reconciler>,
    pub schedule: cron::Schedule,
    pub report: Arc<std::sync::Mutex<ReconcileReport>>,
}

/// One configured target.
pub(super) struct RunningTarget {
    /// Its settings as configured.
    pub config: TargetConfig,
    /// Its secrets' values as resolved: a file or variable may hold a new token while
    /// the configuration naming it stays the same.
    pub secrets: Vec<SecretString>,
    /// Providers whose changes it receives.
    pub providers: Vec<String>,
    /// What the server shows and serves of it.
    pub handle: TargetHandle,
    /// Its iManage client, which the workspace resolver shares.
    pub imanage: Option<Arc<ImanageClient>>,
    /// Its delivery engine until started; none while paused.
    pub engine: Option<Arc<Engine>>,
    /// Its scheduled reconciliation until started.
    pub schedule: Option<Scheduled>,
}

impl RunningTarget {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether `config`, with secrets resolving to `secrets`, would build this target
    /// again as it is.
    pub fn same_as(&self, config: &TargetConfig, secrets: &[SecretString]) -> bool {
        self.config == *config
            && self.secrets.len() == secrets.len()
            && self
                .secrets
                .iter()
                .zip(secrets)
                .all(|(a, b)| a.expose_secret() == b.expose_secret())
    }
}

/// Every target of `cfg`, built with its credentials, engine and schedule; `owner`
/// names this instance on the delivery leases its engines take.
pub(super) async fn build(
    cfg: &Config,
    ctx: &Context<'_>,
    owner: &str,
) -> Result<Vec<RunningTarget>, AppError> {
    let mut handles = targets::build(cfg, ctx).await?;
    let deliverables = targets::deliverables(cfg, &mut handles, ctx).await?;
    let mut secrets = Vec::with_capacity(cfg.targets.len());
    for t in &cfg.targets {
        secrets.push(secret_values(t, ctx).await?);
    }
    let mut out: Vec<RunningTarget> = cfg
        .targets
        .iter()
        .zip(handles)
        .zip(secrets)
        .map(|((config, handle), secrets)| RunningTarget {
            config: config.clone(),
            secrets,
            providers: Vec::new(),
            handle,
            imanage: None,
            engine: None,
            schedule: None,
        })
        .collect();
    for d in deliverables {
        let Some(running) = out.get_mut(d.index) else {
            continue;
        };
        running.providers = d.providers.clone();
        running.imanage = d.imanage.clone();
        // A paused target is still read: a dry run is how its admin reviews it.
        let reconciler = Arc::new(Reconciler {
            target: Arc::clone(&d.target),
            providers: d.providers.clone(),
            policy: d.policy.clone(),
            guard: d.engine.guard.clone(),
        });
        running.handle.reconciler = Some(Arc::clone(&reconciler));
        if running.config.paused {
            // Queued, not delivered: the admin reviews `sync --dry-run` first.
            let name = d.target.name().to_owned();
            tracing::warn!(target_name = %name, "target is paused: changes are queued but not delivered and reconciliation does not run; review `scim-bridge sync --target {name} --dry-run`, then remove `paused` and reload");
            running.handle.paused = true;
            running.handle.delivery = Some(Arc::new(crate::delivery::DeliveryCounters::default()));
            continue;
        }
        if let Some(schedule) = running.config.schedule.clone() {
            let report = Arc::new(std::sync::Mutex::new(ReconcileReport::default()));
            running.handle.reconcile = Some(Arc::clone(&report));
            running.schedule = Some(Scheduled {
                reconciler,
                schedule,
                report,
            });
        }
        let engine = Arc::new(Engine::new(
            Arc::clone(&ctx.store),
            d.target,
            d.engine,
            Arc::clone(&ctx.clock),
            Arc::clone(&ctx.entropy),
            owner.to_owned(),
        ));
        running.handle.delivery = Some(Arc::clone(&engine.counters));
        running.handle.engine = Some(Arc::clone(&engine));
        running.engine = Some(engine);
    }
    Ok(out)
}

/// The values of the secrets `t` names, in a fixed order, for telling whether a
/// reload changed them. Never logged.
pub(super) async fn secret_values(
    t: &TargetConfig,
    ctx: &Context<'_>,
) -> Result<Vec<SecretString>, AppError> {
    let mut refs: Vec<(&str, &SecretRef)> = Vec::new();
    if let Some(auth) = &t.auth {
        for (key, r) in [
            ("auth.client_secret", &auth.client_secret),
            ("auth.password", &auth.password),
            ("auth.token", &auth.token),
        ] {
            if let Some(r) = r {
                refs.push((key, r));
            }
        }
    }
    if let TargetSpec::Webhook { signing_secret, .. } = &t.spec {
        refs.push(("signing_secret", signing_secret));
    }
    let mut out = Vec::with_capacity(refs.len());
    for (key, r) in refs {
        let key = format!("target {}: {key}", t.name);
        out.push(targets::resolve(r, ctx, &key).await?);
    }
    Ok(out)
}

/// Which delivery routes (target, provider) the store keeps queues for.
pub(super) fn routes<'a>(
    running: impl IntoIterator<Item = &'a RunningTarget>,
) -> Vec<(String, String)> {
    running
        .into_iter()
        .flat_map(|t| t.providers.iter().map(|p| (t.name().to_owned(), p.clone())))
        .collect()
}

/// The workspace resolver over the running targets (in `cfg.targets`' order).
pub(super) fn resolver(
    cfg: &Config,
    running: &[RunningTarget],
    public_url: &str,
    clock: Arc<dyn crate::clock::Clock>,
) -> Option<Arc<Resolver>> {
    let clients = running
        .iter()
        .filter_map(|t| Some((t.name().to_owned(), Arc::clone(t.imanage.as_ref()?))))
        .collect();
    let handles: Vec<TargetHandle> = running.iter().map(|t| t.handle.clone()).collect();
    targets::resolver_over(cfg, clients, &handles, public_url, clock)
}

/// The client-network allow-lists `cfg` sets.
pub(super) fn network_policy(cfg: &Config) -> NetworkPolicy {
    NetworkPolicy {
        providers: cfg
            .providers
            .iter()
            .filter_map(|p| p.allow.clone().map(|a| (p.name.clone(), a)))
            .collect(),
        admin: cfg.server.admin_allow.clone(),
        trusted_proxies: cfg.server.trusted_proxies.clone(),
    }
}

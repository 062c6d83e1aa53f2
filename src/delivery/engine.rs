//! The per-target delivery loop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::backoff::Backoff;
use super::guard::{Guard, GuardConfig, Verdict};
use super::matching::{CorrelateError, Correlation};
use super::target::{Change, MemberNeeds, State, Target, TargetError};
use super::trail::{self, Trail, Watch};
use crate::clock::Clock;
use crate::entropy::Entropy;
use crate::identity::Relations;
use crate::metrics::PerMinute;
use crate::provlog::{ActionDraft, ActionOutcome, CallRecord, ResourceNames};
use crate::scim::ResourceKind;
use crate::store::{Claim, DeliveryOutcome, QueuedDelivery, Store, StoreError, TargetLink};

/// How often a paused destructive change looks again whether the guard was released.
const GUARD_RECHECK_SECS: i64 = 5;

/// How one target is driven.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Resources delivered in parallel (each resource one at a time).
    pub concurrency: usize,
    /// Requests per second at most; `None` for no limit.
    pub rate_per_second: Option<f64>,
    /// Attempts before a change is dead-lettered.
    pub max_attempts: u32,
    /// One delivery's time limit; a slower target counts as a transient failure.
    pub timeout: Duration,
    pub backoff: Backoff,
    /// How long a claimed row stays ours; must exceed `timeout` comfortably.
    pub lease: Duration,
    /// Idle wait between looks at the queue.
    pub poll: Duration,
    pub guard: GuardConfig,
    /// Which users and groups the target receives; `None`: all of its providers'.
    pub scope: Option<crate::identity::Scope>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            rate_per_second: None,
            max_attempts: 10,
            timeout: Duration::from_secs(30),
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(300),
            },
            lease: Duration::from_secs(120),
            poll: Duration::from_millis(100),
            guard: GuardConfig {
                max_deprovisions: None,
                max_percent: Some(10.0),
                window: Duration::from_secs(3600),
                protected: Vec::new(),
            },
            scope: None,
        }
    }
}

/// What one engine has done since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Destructive deliveries held back by the guard.
    pub paused: AtomicU64,
    /// The last hour's outcomes per minute, for the console's plots: counter
    /// [`DELIVERED`] and [`FAILED`] (retried or dead-lettered).
    pub per_minute: PerMinute<2>,
}

/// [`DeliveryCounters::per_minute`]'s counter of deliveries done.
pub const DELIVERED: usize = 0;
/// [`DeliveryCounters::per_minute`]'s counter of attempts that failed (retried or
/// dead-lettered).
pub const FAILED: usize = 1;

/// Delivers one target's queue.
pub struct Engine {
    store: Arc<dyn Store>,
    target: Arc<dyn Target>,
    cfg: EngineConfig,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    /// Lease owner: unique per process, so instances sharing a database never finish
    /// each other's deliveries.
    owner: String,
    guard: Guard,
    pub counters: Arc<DeliveryCounters>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("target", &self.target.name())
            .finish_non_exhaustive()
    }
}

/// What one delivery came to, and whether a retry is only the ordinary wait for a
/// group's members to reach the target (logged as a wait, not as a failure).
struct Attempted {
    outcome: DeliveryOutcome,
    member_wait: bool,
    /// The target's id for the resource after a success.
    target_id: Option<String>,
}

impl From<DeliveryOutcome> for Attempted {
    fn from(outcome: DeliveryOutcome) -> Self {
        Attempted {
            outcome,
            member_wait: false,
            target_id: None,
        }
    }
}

/// What one delivery decided, for its log line and its provisioning-log record.
struct Decided {
    attempted: Attempted,
    /// userName or displayName (the id until the change is read).
    name: String,
    /// `create`, `update`, `delete`, `skip`, or `send` when the change was not read.
    action: &'static str,
    names: ResourceNames,
}

/// How long a delivery asked for on demand waits for one already in flight.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);

/// What a delivery asked for on demand came to.
#[derive(Debug)]
pub enum OnDemand {
    /// Delivered on the worker's path: its outcome and the provisioning log's record
    /// of it (steps, HTTP calls, the target's answer); `resync` when nothing was
    /// queued, so the whole resource was sent again.
    Ran {
        outcome: DeliveryOutcome,
        record: Box<ActionDraft>,
        resync: bool,
    },
    /// A delivery in flight (the worker's) still holds it, until then at most.
    InFlight {
        until: chrono::DateTime<chrono::Utc>,
    },
}

/// The action of a change left out of the target's scope.
const SKIP: &str = "skip";

/// What the outcome's log line says beside the outcome.
struct Said<'a> {
    /// userName or displayName (the id until the change is read).
    name: &'a str,
    /// `create`, `update`, `delete`, or `skip` when out of scope.
    action: &'static str,
    took: Duration,
    member_wait: bool,
}

/// What a change does at the target, as the success log names it.
fn action(change: &Change) -> &'static str {
    match (&change.state, &change.target_id) {
        (State::Deleted, _) => "delete",
        (State::Present(_), None) => "create",
        (State::Present(_), Some(_)) => "update",
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        target: Arc<dyn Target>,
        cfg: EngineConfig,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        owner: String,
    ) -> Self {
        Self {
            guard: Guard::new(cfg.guard.clone()),
            store,
            target,
            cfg,
            clock,
            entropy,
            owner,
            counters: Arc::new(DeliveryCounters::default()),
        }
    }

    /// Runs until `stop` turns true, then lets deliveries in flight finish (each is
    /// bounded by the timeout) so their outcome is recorded rather than left to a lease.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.cfg.concurrency.max(1)));
        let mut store_failures: u32 = 0;
        while !*stop.borrow() {
            // Under a low rate limit, claimed rows wait for the target's pacer; keep no more in
            // flight than can start within half a lease, or a lease could run out while
            // its row still waits here and the same resource be claimed twice.
            let concurrency = self.cfg.concurrency.max(1);
            let available = slots.available_permits();
            let in_flight = concurrency - available.min(concurrency);
            let paced = self
                .cfg
                .rate_per_second
                .map(|r| ((r * self.cfg.lease.as_secs_f64() / 2.0).floor() as usize).max(1));
            let free = paced.map_or(available, |p| p.saturating_sub(in_flight).min(available));
            if free == 0 {
                // Wait for a delivery to finish (or, when the pacer is the limit, a moment).
                tokio::select! {
                    p = Arc::clone(&slots).acquire_owned(), if available == 0 => drop(p),
                    _ = tokio::time::sleep(self.cfg.poll), if available > 0 => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let now = self.clock.now();
            let claimed = match self
                .store
                .claim_deliveries(
                    self.target.name(),
                    &self.owner,
                    now,
                    now + chrono(self.cfg.lease),
                    free,
                )
                .await
            {
                Ok(c) => {
                    store_failures = 0;
                    c
                }
                Err(e) => {
                    store_failures = store_failures.saturating_add(1);
                    if store_failures == 1 {
                        tracing::error!(target_name = %self.target.name(), error = %e, "cannot read the delivery queue");
                    }
                    if matches!(e, StoreError::Closed) {
                        break;
                    }
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.poll) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for d in claimed {
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                    break;
                };
                let engine = Arc::clone(&self);
                tokio::spawn(async move {
                    engine.deliver(d).await;
                    drop(permit);
                });
            }
        }
        // Every permit back means every delivery recorded.
        let all = u32::try_from(self.cfg.concurrency.max(1)).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(
            self.cfg.timeout + Duration::from_secs(5),
            slots.acquire_many(all),
        )
        .await;
    }

    /// Runs one resource's delivery to this target now, on the worker's path (its
    /// lease, scope, matching, guard, retries and provisioning-log record), because
    /// `asked_by` asked: its queued changes, due or not, or a full resync of it when
    /// nothing is queued. A delivery the worker has in flight is waited for a few
    /// seconds, then reported as in flight. `watch`, if given, is told each step and
    /// HTTP call as it happens.
    pub async fn deliver_now(
        &self,
        provider: &str,
        kind: ResourceKind,
        id: &str,
        asked_by: &str,
        watch: Option<Watch>,
    ) -> Result<OnDemand, StoreError> {
        let name = self.target.name();
        let waiting = std::time::Instant::now();
        let mut resync = false;
        loop {
            let now = self.clock.now();
            let claim = self
                .store
                .claim_delivery(
                    name,
                    provider,
                    kind,
                    id,
                    &self.owner,
                    now,
                    now + chrono(self.cfg.lease),
                )
                .await?;
            match claim {
                Claim::Claimed(d) => {
                    let (outcome, record) = self.deliver_as(d, Some(asked_by), watch).await;
                    return Ok(OnDemand::Ran {
                        outcome,
                        record: Box::new(record),
                        resync,
                    });
                }
                Claim::Absent => {
                    // Queued now and claimed at once; should the worker take it first,
                    // the next turn waits for it and asks again.
                    self.store
                        .enqueue_resync(name, provider, kind, id, now)
                        .await?;
                    resync = true;
                }
                Claim::Leased { until } => {
                    if waiting.elapsed() >= IN_FLIGHT_WAIT {
                        return Ok(OnDemand::InFlight { until });
                    }
                    tokio::time::sleep(self.cfg.poll.max(Duration::from_millis(50))).await;
                }
            }
            if waiting.elapsed() >= IN_FLIGHT_WAIT {
                return Ok(OnDemand::InFlight { until: now });
            }
        }
    }

    async fn deliver(&self, d: QueuedDelivery) {
        self.deliver_as(d, None, None).await;
    }

    /// Delivers a claimed row and records its outcome; answers the outcome and the
    /// provisioning log's record of it. `asked_by` names the operator who asked for
    /// it (none: the worker's own turn), and `watch` who is told each step as it
    /// happens.
    async fn deliver_as(
        &self,
        d: QueuedDelivery,
        asked_by: Option<&str>,
        watch: Option<Watch>,
    ) -> (DeliveryOutcome, ActionDraft) {
        let started = std::time::Instant::now();
        let mut trail = Trail::watched(watch.clone());
        if let Some(who) = asked_by {
            trail.step(
                "asked",
                "on demand",
                Some(format!("{who} asked for it in the console")),
            );
        }
        let (decided, calls, more_calls) =
            trail::recording(self.decide(&d, &mut trail), watch).await;
        let Decided {
            attempted,
            name,
            action,
            mut names,
        } = decided;
        let outcome = attempted.outcome;
        let said = Said {
            name: &name,
            action,
            took: started.elapsed(),
            member_wait: attempted.member_wait,
        };
        self.log(&d, &said, &outcome);
        if attempted.target_id.is_some() {
            names.target_id = attempted.target_id;
        }
        if more_calls > 0 {
            trail.step(
                "calls",
                format!("{more_calls} more"),
                Some("not listed".into()),
            );
        }
        // A change the guard holds is looked at again every few seconds; the log
        // records the hold once, not every look (the queue row keeps the reason).
        // An operator who asked sees it recorded whatever it came to.
        let held_again = asked_by.is_none() && outcome.holds_again(d.last_error.as_deref());
        let draft = self.record(&d, &said, &outcome, names, trail, calls);
        let record = (!held_again).then(|| draft.row(self.clock.now()));
        if let Err(e) = self
            .store
            .finish_delivery_recorded(
                d,
                &self.owner,
                outcome.clone(),
                started.elapsed(),
                self.clock.now(),
                record,
            )
            .await
        {
            // The lease runs out and the change is delivered again: late, never lost.
            tracing::error!(target_name = %self.target.name(), error = %e, "cannot record a delivery outcome");
        }
        (outcome, draft)
    }

    /// Reads the change, applies the target's scope and sends it past the guard,
    /// noting each decision in `trail`.
    async fn decide(&self, d: &QueuedDelivery, trail: &mut Trail) -> Decided {
        let mut change = match self.change(d).await {
            Ok(change) => change,
            Err(e) => {
                return Decided {
                    attempted: DeliveryOutcome::Retry {
                        next_at: self.clock.now()
                            + chrono(self.cfg.backoff.delay(d.attempts, self.entropy.as_ref())),
                        error: format!("reading the change failed: {e}"),
                    }
                    .into(),
                    // Logs name the person or group; the id stands in until the
                    // change is read.
                    name: d.resource_id.clone(),
                    action: "send",
                    names: trail::names(d.kind, &d.resource_id, None),
                };
            }
        };
        let names = trail::names(d.kind, &d.resource_id, Some(&change));
        let name = change.name.clone();
        let now = self.clock.now();
        let (attempted, action) = match self.scope(d, &mut change, trail).await {
            Err(e) => (
                DeliveryOutcome::Retry {
                    next_at: now + chrono(self.cfg.backoff.base),
                    error: format!("deciding the target's scope failed: {e}"),
                }
                .into(),
                action(&change),
            ),
            Ok(Some(why)) => {
                tracing::debug!(target_name = %self.target.name(), provider = %d.provider, name = %change.name, %why, "out of the target's scope: not sent");
                (DeliveryOutcome::Done.into(), SKIP)
            }
            Ok(None) => {
                let act = action(&change);
                (self.guarded(d, change, now, trail).await, act)
            }
        };
        Decided {
            attempted,
            name,
            action,
            names,
        }
    }

    /// The provisioning-log record of a finished delivery.
    fn record(
        &self,
        d: &QueuedDelivery,
        said: &Said<'_>,
        outcome: &DeliveryOutcome,
        resource: ResourceNames,
        mut trail: Trail,
        calls: Vec<CallRecord>,
    ) -> ActionDraft {
        let (result, error, next_at) = match outcome {
            DeliveryOutcome::Done if said.action == SKIP => (ActionOutcome::Skipped, None, None),
            DeliveryOutcome::Done => (ActionOutcome::Success, None, None),
            DeliveryOutcome::Retry { next_at, error } if said.member_wait => {
                (ActionOutcome::Waiting, Some(error.clone()), Some(*next_at))
            }
            DeliveryOutcome::Retry { next_at, error } => {
                (ActionOutcome::Retrying, Some(error.clone()), Some(*next_at))
            }
            DeliveryOutcome::Dead { error } => (ActionOutcome::Dead, Some(error.clone()), None),
            DeliveryOutcome::Defer { next_at, reason } => {
                (ActionOutcome::Held, Some(reason.clone()), Some(*next_at))
            }
        };
        if said.action != SKIP {
            trail.step("action", said.action, None);
        }
        ActionDraft {
            target: self.target.name().to_owned(),
            provider: d.provider.clone(),
            resource,
            action: said.action.to_owned(),
            outcome: result,
            steps: trail.steps,
            calls,
            change_seqs: (d.from_seq, d.last_seq),
            attempt: d.attempts + 1,
            duration_ms: u64::try_from(said.took.as_millis()).unwrap_or(u64::MAX),
            error,
            next_at,
        }
    }

    /// Sends a change the guard lets through.
    async fn guarded(
        &self,
        d: &QueuedDelivery,
        change: Change,
        now: chrono::DateTime<chrono::Utc>,
        trail: &mut Trail,
    ) -> Attempted {
        match self
            .guard
            .check(self.store.as_ref(), self.target.name(), &change, now)
            .await
        {
            Err(e) => DeliveryOutcome::Retry {
                next_at: now + chrono(self.cfg.backoff.base),
                error: format!("checking the guard failed: {e}"),
            }
            .into(),
            Ok(Verdict::Protected(why)) => {
                trail.step("guard", "protected", Some(why.clone()));
                DeliveryOutcome::Dead { error: why }.into()
            }
            Ok(Verdict::Pause(reason)) => {
                trail.step("guard", "held", Some(reason.clone()));
                DeliveryOutcome::Defer {
                    next_at: now + chrono::Duration::seconds(GUARD_RECHECK_SECS),
                    reason: format!(
                        "paused by the mass-deprovisioning guard ({reason}); release with `scim-bridge approve --target {}`",
                        self.target.name()
                    ),
                }
                .into()
            }
            Ok(Verdict::Proceed) => self.attempt(d, change, trail).await,
        }
    }

    /// Counts and logs an outcome, naming the resource as people know it.
    fn log(&self, d: &QueuedDelivery, said: &Said<'_>, outcome: &DeliveryOutcome) {
        let counter = match outcome {
            DeliveryOutcome::Done => &self.counters.delivered,
            DeliveryOutcome::Retry { .. } => &self.counters.retried,
            DeliveryOutcome::Dead { .. } => &self.counters.dead_lettered,
            DeliveryOutcome::Defer { .. } => &self.counters.paused,
        };
        // The minute first: whoever sees the counter move sees the minute counted.
        match outcome {
            DeliveryOutcome::Done => self.counters.per_minute.add(self.clock.now(), DELIVERED, 1),
            // A group waiting for its members to arrive is the ordinary order of
            // things, not a failure to plot.
            DeliveryOutcome::Retry { .. } if said.member_wait => {}
            DeliveryOutcome::Retry { .. } | DeliveryOutcome::Dead { .. } => {
                self.counters.per_minute.add(self.clock.now(), FAILED, 1)
            }
            DeliveryOutcome::Defer { .. } => {}
        }
        counter.fetch_add(1, Ordering::Relaxed);
        let target = self.target.name();
        let (provider, kind, id) = (&d.provider, d.kind.name(), &d.resource_id);
        let name = said.name;
        match outcome {
            // Out of scope: logged (at debug) where scope decided it.
            DeliveryOutcome::Done if said.action == SKIP => {}
            DeliveryOutcome::Done => {
                let (action, duration_ms) = (said.action, said.took.as_millis());
                tracing::info!(target_name = %target, %provider, kind, %name, resource = %id, action, duration_ms, seq = d.last_seq, "delivered")
            }
            DeliveryOutcome::Retry { error, next_at } if said.member_wait => {
                tracing::info!(target_name = %target, %provider, kind, %name, resource = %id, %next_at, reason = %error, "group waits for its members to reach the target; sent again once they have")
            }
            DeliveryOutcome::Retry { error, next_at } => {
                tracing::info!(target_name = %target, %provider, kind, %name, resource = %id, attempt = d.attempts + 1, %next_at, %error, "delivery failed; will retry")
            }
            DeliveryOutcome::Dead { error } => {
                tracing::warn!(target_name = %target, %provider, kind, %name, resource = %id, %error, "delivery dead-lettered")
            }
            DeliveryOutcome::Defer { .. } => {
                tracing::debug!(target_name = %target, %provider, kind, %name, resource = %id, "destructive change paused by the guard")
            }
        }
    }

    /// Sends the change, unless scope or correlation decide otherwise: a resource out
    /// of scope that the target never had is skipped; one new to the target is first
    /// matched against what the target already holds (adopted, or dead-lettered when
    /// the match is ambiguous).
    async fn attempt(
        &self,
        d: &QueuedDelivery,
        mut change: Change,
        trail: &mut Trail,
    ) -> Attempted {
        let recorded = change.target_id.clone();
        let mut adopted_by: Option<String> = None;
        if let Some(t) = &recorded {
            trail.step("match", "linked", Some(format!("target id {t}")));
        }
        if let (None, State::Present(doc)) = (&change.target_id, &change.state) {
            let doc = doc.clone();
            match super::matching::correlate(
                self.store.as_ref(),
                self.target.as_ref(),
                &d.provider,
                d.kind,
                &d.resource_id,
                &doc,
            )
            .await
            {
                Ok(Correlation::Absent) => {
                    trail.step("match", "none", Some("no existing account matched".into()));
                }
                Ok(Correlation::Found { target_id, rule }) => {
                    trail.step(
                        "match",
                        "adopted",
                        Some(format!("existing account {target_id}, matched by {rule}")),
                    );
                    tracing::info!(target_name = %self.target.name(), provider = %d.provider, name = %change.name, %target_id, %rule, "adopting an existing account");
                    // A person deleted and assigned again gets their account back: the
                    // deleted resource's link passes to this one.
                    if let Err(e) = self.release_old_link(d, &target_id).await {
                        return DeliveryOutcome::Retry {
                            next_at: self.clock.now() + chrono(self.cfg.backoff.base),
                            error: format!("taking over the account's old link failed: {e}"),
                        }
                        .into();
                    }
                    change.target_id = Some(target_id);
                    adopted_by = Some(rule);
                }
                Ok(Correlation::Ambiguous(why)) => {
                    trail.step("match", "ambiguous", Some(why.clone()));
                    return DeliveryOutcome::Dead { error: why }.into();
                }
                Err(CorrelateError::Target(e)) => {
                    return self.outcome(d, &change, recorded, None, Err(e)).await;
                }
                Err(CorrelateError::Store(e)) => {
                    return DeliveryOutcome::Retry {
                        next_at: self.clock.now() + chrono(self.cfg.backoff.base),
                        error: format!("matching against the target failed: {e}"),
                    }
                    .into();
                }
            }
        }
        trail.sending(action(&change));
        let result = match tokio::time::timeout(self.cfg.timeout, self.target.apply(&change)).await
        {
            Ok(r) => r,
            Err(_) => Err(TargetError::Transient {
                message: format!("no answer within {:?}", self.cfg.timeout),
                retry_after: None,
            }),
        };
        self.outcome(d, &change, recorded, adopted_by, result).await
    }

    /// Forgets the link of a deleted resource to `target_id`, which this delivery is
    /// adopting.
    async fn release_old_link(
        &self,
        d: &QueuedDelivery,
        target_id: &str,
    ) -> Result<(), StoreError> {
        let name = self.target.name();
        if let Some(old) = self.store.target_owner(name, d.kind, target_id).await?
            && !(old.provider == d.provider && old.resource_id == d.resource_id)
            && self
                .store
                .get(&old.provider, old.kind, &old.resource_id)
                .await?
                .is_none()
        {
            self.store
                .set_target_id(name, &old.provider, old.kind, &old.resource_id, None)
                .await?;
        }
        Ok(())
    }

    /// Applies the target's scope to a built change. `Ok(Some(why))`: out of scope and
    /// never sent there, so nothing to do. A resource that was sent before and is now
    /// out of scope becomes a deletion, which the target deprovisions as its
    /// `on_delete` says (and the guard counts). A scope group's membership change
    /// queues its moved members, so each is provisioned or deprovisioned in turn.
    async fn scope(
        &self,
        d: &QueuedDelivery,
        change: &mut Change,
        trail: &mut Trail,
    ) -> Result<Option<String>, StoreError> {
        let Some(scope) = &self.cfg.scope else {
            trail.step("scope", "in", Some("the target takes everyone".into()));
            return Ok(None);
        };
        let store = self.store.as_ref();
        let name = self.target.name();
        if d.kind == ResourceKind::Group {
            let now = self.clock.now();
            let moved = super::scoping::moved_users(store, scope, &d.provider, change).await?;
            // A dead-lettered user waits for the admin; queueing it again would only
            // add another dead letter.
            let dead = if moved.is_empty() {
                HashSet::new()
            } else {
                self.dead_lettered(&d.provider).await?
            };
            for id in moved.iter().filter(|id| !dead.contains(*id)) {
                store
                    .enqueue_resync(name, &d.provider, ResourceKind::User, id, now)
                    .await?;
            }
            if scope.users.is_some() {
                self.exclude_out_of_scope(d, change).await?;
            }
        }
        let State::Present(doc) = &change.state else {
            return Ok(None);
        };
        // (A deletion needs no scope: whatever the target holds goes.)
        let decision = super::scoping::decide(
            store,
            name,
            Some(scope),
            &d.provider,
            d.kind,
            &d.resource_id,
            doc,
        )
        .await?;
        if decision.in_scope {
            trail.step("scope", "in", Some(decision.why));
            return Ok(None);
        }
        if change.target_id.is_none() {
            trail.step("scope", "out", Some(decision.why.clone()));
            return Ok(Some(decision.why));
        }
        trail.step(
            "scope",
            "left",
            Some(format!("{}; deprovisioning", decision.why)),
        );
        tracing::info!(target_name = %name, provider = %d.provider, name = %change.name, why = %decision.why, "left the target's scope: deprovisioning");
        change.state = State::Deleted;
        Ok(None)
    }

    /// Leaves a group's members that fail the scope's user filter out of what is sent.
    async fn exclude_out_of_scope(
        &self,
        d: &QueuedDelivery,
        change: &mut Change,
    ) -> Result<(), StoreError> {
        let Some(scope) = &self.cfg.scope else {
            return Ok(());
        };
        let mut ids: Vec<String> = change
            .members
            .iter()
            .flatten()
            .map(|m| m.value.clone())
            .collect();
        ids.extend(change.member_deltas().0);
        for id in ids {
            let Some(user) = self.store.get(&d.provider, ResourceKind::User, &id).await? else {
                continue;
            };
            let decision = super::scoping::decide(
                self.store.as_ref(),
                self.target.name(),
                Some(scope),
                &d.provider,
                ResourceKind::User,
                &id,
                &user.doc,
            )
            .await?;
            if !decision.in_scope {
                change.excluded.insert(id);
            }
        }
        if let Some(all) = change.members.as_mut() {
            all.retain(|m| !change.excluded.contains(&m.value));
        }
        Ok(())
    }

    async fn change(&self, d: &QueuedDelivery) -> Result<Change, StoreError> {
        let resource = self.store.get(&d.provider, d.kind, &d.resource_id).await?;
        let events = self
            .store
            .resource_events(&d.provider, d.kind, &d.resource_id, d.from_seq, d.last_seq)
            .await?;
        let target_id = self
            .store
            .target_id(self.target.name(), &d.provider, d.kind, &d.resource_id)
            .await?;
        let name = match &resource {
            Some(r) => super::matching::resource_label(d.kind, &r.doc),
            // Deleted: the delete event keeps the names.
            None => events
                .iter()
                .rev()
                .find_map(|e| e.detail.name())
                .unwrap_or(&d.resource_id)
                .to_owned(),
        };
        let mut change = Change {
            provider: d.provider.clone(),
            kind: d.kind,
            resource_id: d.resource_id.clone(),
            name,
            seq: d.last_seq,
            state: resource.map_or(State::Deleted, |r| State::Present(r.doc)),
            events,
            target_id,
            members: None,
            member_ids: HashMap::new(),
            relations: Relations::default(),
            excluded: HashSet::new(),
            resync_at: d.resync.then_some(d.queued_at),
        };
        if let State::Present(doc) = &change.state
            && d.kind == ResourceKind::User
        {
            change.relations = self.relations(d, doc).await?;
        }
        let needs = self.target.member_needs();
        if d.kind != ResourceKind::Group {
            return Ok(change);
        }
        if needs == MemberNeeds::EventsOnly {
            // A replaced list leaves no delta to carry, and a resync asks for the whole
            // resource: the whole list then goes instead (no target ids: a target that
            // needs only events keeps none).
            if change.state != State::Deleted && (d.resync || change.members_replaced()) {
                change.members = Some(self.store.members(&d.provider, &d.resource_id).await?);
            }
            return Ok(change);
        }
        // A deleted group's last members are in its delete event's `removed`.
        let nested = self.target.expand_nested();
        let full = change.state != State::Deleted
            && (change.target_id.is_none()
                || d.resync
                || change.members_replaced()
                || needs == MemberNeeds::Full
                || nested);
        let mut wanted: Vec<(Option<ResourceKind>, String)> = Vec::new();
        if full {
            let members = if nested {
                super::relations::flattened_members(
                    self.store.as_ref(),
                    &d.provider,
                    &d.resource_id,
                )
                .await?
            } else {
                self.store.members(&d.provider, &d.resource_id).await?
            };
            for m in &members {
                wanted.push((Some(m.kind.unwrap_or(ResourceKind::User)), m.value.clone()));
            }
            change.members = Some(members);
        }
        let (added, removed) = change.member_deltas();
        wanted.extend(added.into_iter().chain(removed).map(|id| (None, id)));
        for (kind, id) in wanted {
            if change.member_ids.contains_key(&id) {
                continue;
            }
            // Deltas do not say whether the member is a user or a group.
            let kinds = match kind {
                Some(k) => vec![k],
                None => vec![ResourceKind::User, ResourceKind::Group],
            };
            for k in kinds {
                if let Some(tid) = self
                    .store
                    .target_id(self.target.name(), &d.provider, k, &id)
                    .await?
                {
                    change.member_ids.insert(id.clone(), tid);
                    break;
                }
            }
        }
        self.exclude_dead_lettered(d, &mut change).await?;
        Ok(change)
    }

    /// The ids of `provider`'s resources in this target's dead-letter queue.
    async fn dead_lettered(&self, provider: &str) -> Result<HashSet<String>, StoreError> {
        Ok(self
            .store
            .dead_letters(Some(self.target.name()))
            .await?
            .into_iter()
            .filter(|l| l.provider == provider)
            .map(|l| l.resource_id)
            .collect())
    }

    /// Leaves out of a group's delivery the members that will not reach the target on
    /// their own (dead-lettered: an ambiguous match, a mapping the target refuses), so
    /// one such member does not hold up the whole group. Once such a member arrives,
    /// its groups are delivered again (see [`Self::followups`]).
    async fn exclude_dead_lettered(
        &self,
        d: &QueuedDelivery,
        change: &mut Change,
    ) -> Result<(), StoreError> {
        let added = change.member_deltas().0;
        let ids: Vec<String> = change
            .members
            .iter()
            .flatten()
            .map(|m| m.value.clone())
            .chain(added)
            .filter(|id| !change.member_ids.contains_key(id))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let dead = self.dead_lettered(&d.provider).await?;
        change
            .excluded
            .extend(ids.into_iter().filter(|id| dead.contains(id)));
        let excluded = &change.excluded;
        if let Some(all) = change.members.as_mut() {
            all.retain(|m| !excluded.contains(&m.value));
        }
        Ok(())
    }

    /// The user's groups and manager, as far as the target's rules need them. A
    /// manager not at the target yet is noted, so the user is delivered again once
    /// the manager arrives.
    async fn relations(
        &self,
        d: &QueuedDelivery,
        doc: &serde_json::Value,
    ) -> Result<Relations, StoreError> {
        let name = self.target.name();
        let mut out = super::relations::gather(
            self.store.as_ref(),
            name,
            self.target.relation_needs(&d.provider),
            &d.provider,
            &d.resource_id,
            doc,
        )
        .await?;
        if let Some(m) = out.manager.as_mut().filter(|m| m.target_id.is_none()) {
            self.store
                .await_link(name, &d.provider, &m.id, &d.resource_id)
                .await?;
            // The manager may have arrived between the two reads; its delivery then
            // found no wait to release.
            m.target_id = self
                .store
                .target_id(name, &d.provider, ResourceKind::User, &m.id)
                .await?;
        }
        Ok(out)
    }

    /// Queues what depends on a delivered change: users waiting for this one as their
    /// manager, and users whose role follows a group that changed.
    async fn followups(
        &self,
        d: &QueuedDelivery,
        change: &Change,
        arrived: bool,
    ) -> Result<(), StoreError> {
        let name = self.target.name();
        let now = self.clock.now();
        // Only a user's first arrival (a target id recorded for the first time) can be
        // what waiting users need; targets that keep no ids never have waits.
        if d.kind == ResourceKind::User && arrived {
            self.store
                .release_waiting(name, &d.provider, &d.resource_id, now)
                .await?;
            // Groups already at the target went without this user (it was out of
            // scope or dead-lettered then): deliver them again so it joins them.
            if self.target.member_needs() != MemberNeeds::EventsOnly {
                for (gid, _) in self.store.groups_of(&d.provider, &d.resource_id).await? {
                    if self
                        .store
                        .target_id(name, &d.provider, ResourceKind::Group, &gid)
                        .await?
                        .is_some()
                    {
                        self.store
                            .enqueue_resync(name, &d.provider, ResourceKind::Group, &gid, now)
                            .await?;
                    }
                }
            }
        }
        // A group's members are part of every group it is nested in.
        if d.kind == ResourceKind::Group && self.target.expand_nested() {
            for (parent, _) in self.store.groups_of(&d.provider, &d.resource_id).await? {
                self.store
                    .enqueue_resync(name, &d.provider, ResourceKind::Group, &parent, now)
                    .await?;
            }
        }
        for id in self.target.followups(change) {
            // Deltas do not say whether a member is a user; only users have roles.
            if self
                .store
                .get(&d.provider, ResourceKind::User, &id)
                .await?
                .is_some()
            {
                self.store
                    .enqueue_resync(name, &d.provider, ResourceKind::User, &id, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Turns the target's answer into the queue's outcome. `recorded` is the target id
    /// the store held before; `adopted_by` the matching rule when this delivery adopted
    /// an existing account.
    async fn outcome(
        &self,
        d: &QueuedDelivery,
        change: &Change,
        recorded: Option<String>,
        adopted_by: Option<String>,
        result: Result<Option<String>, TargetError>,
    ) -> Attempted {
        let member_wait = matches!(result, Err(TargetError::MemberPending { .. }));
        let mut delivered_id = None;
        let outcome = match result {
            Ok(target_id) => {
                // A scoped target without ids of its own (a webhook) is still told when
                // someone leaves its scope, so what it was sent is recorded under the
                // bridge's id.
                let target_id = match (target_id, &change.state) {
                    (None, State::Present(_))
                        if self.cfg.scope.is_some() && !self.target.keeps_ids() =>
                    {
                        Some(d.resource_id.clone())
                    }
                    (t, _) => t,
                };
                let arrived = recorded.is_none() && target_id.is_some();
                delivered_id.clone_from(&target_id);
                // Adopted only if the target kept the adopted account (it may have
                // been gone and created anew).
                let adopted_by = adopted_by.filter(|_| target_id == change.target_id);
                let link = target_id.clone().map(|t| TargetLink {
                    target_id: t,
                    adopted_by,
                });
                if target_id != recorded
                    && let Err(e) = self
                        .store
                        .set_target_id(
                            self.target.name(),
                            &d.provider,
                            d.kind,
                            &d.resource_id,
                            link,
                        )
                        .await
                {
                    return DeliveryOutcome::Retry {
                        next_at: self.clock.now() + chrono(self.cfg.backoff.base),
                        error: format!("delivered, but recording the target id failed: {e}"),
                    }
                    .into();
                }
                // Delivering again is harmless; losing a follow-up is not.
                if let Err(e) = self.followups(d, change, arrived).await {
                    return DeliveryOutcome::Retry {
                        next_at: self.clock.now() + chrono(self.cfg.backoff.base),
                        error: format!("delivered, but queueing what depends on it failed: {e}"),
                    }
                    .into();
                }
                DeliveryOutcome::Done
            }
            Err(TargetError::Permanent { message }) => DeliveryOutcome::Dead { error: message },
            Err(TargetError::Transient {
                message,
                retry_after,
            }) => self.retry(d, message, retry_after),
            // Retried as any transient failure; only the log tells it apart.
            Err(TargetError::MemberPending { message }) => self.retry(d, message, None),
        };
        Attempted {
            outcome,
            member_wait,
            target_id: delivered_id,
        }
    }

    /// A transient failure: tried again after `retry_after` or the backoff, until the
    /// attempts run out.
    fn retry(
        &self,
        d: &QueuedDelivery,
        message: String,
        retry_after: Option<Duration>,
    ) -> DeliveryOutcome {
        if d.attempts + 1 >= self.cfg.max_attempts {
            return DeliveryOutcome::Dead {
                error: format!("gave up after {} attempts; last: {message}", d.attempts + 1),
            };
        }
        let wait = retry_after
            .unwrap_or_else(|| self.cfg.backoff.delay(d.attempts, self.entropy.as_ref()));
        DeliveryOutcome::Retry {
            next_at: self.clock.now() + chrono(wait),
            error: message,
        }
    }
}

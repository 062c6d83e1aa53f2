//! Per-target series of `/metrics`, read at scrape time: the delivery backlog and
//! outcomes, the mass-deprovisioning guard, and the downstream credentials (the
//! target's own token and the accounts people linked). The shipped alert rules and
//! dashboard (`deploy/`) query these names; `tests/e2e/alerting.rs` fails when one
//! of them is no longer exported.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::{AppState, TargetHandle};
use crate::metrics::{Family, timestamp_seconds};

/// The states a token source reports (`AuthHealth::state`), each its own series so
/// a state that is not current reads 0 rather than vanishing.
const TOKEN_STATES: [&str; 3] = ["pending", "ok", "error"];

/// Every per-target family, in the order they are rendered.
pub(super) async fn render(state: &AppState, now: DateTime<Utc>, out: &mut String) {
    let targets = state.targets.get();
    let mut families = delivery(state, &targets, now).await;
    families.extend(guard(state, &targets).await);
    families.extend(credentials(&targets).await);
    for f in &families {
        f.render(out);
    }
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

async fn delivery(state: &AppState, targets: &[TargetHandle], now: DateTime<Utc>) -> Vec<Family> {
    let mut queue = Family::gauge(
        "scim_bridge_delivery_queue",
        "Resources with undelivered changes, by target.",
    );
    let mut retrying = Family::gauge(
        "scim_bridge_delivery_retrying",
        "Queued resources waiting for a retry, by target.",
    );
    let mut oldest = Family::gauge(
        "scim_bridge_delivery_oldest_age_seconds",
        "Age of the oldest undelivered change, by target.",
    );
    let mut dead = Family::gauge("scim_bridge_dead_letters", "Dead letters kept, by target.");
    let mut outcomes = Family::counter(
        "scim_bridge_deliveries_total",
        "Delivery attempts since start, by target and outcome (paused: held by the mass-deprovisioning guard, counted at each recheck).",
    );
    let mut drift = Family::gauge(
        "scim_bridge_reconcile_drift",
        "Differences the last scheduled reconciliation found, by target.",
    );
    let mut paused = Family::gauge(
        "scim_bridge_target_paused",
        "1 while the target's configuration says paused = true (changes queue, nothing is sent).",
    );
    for t in targets {
        let name = t.name.as_str();
        let target = [("target", name)];
        if let Some((Some(_), found)) = t
            .reconcile
            .as_ref()
            .and_then(|r| r.lock().ok().map(|r| (r.at, r.drift)))
        {
            drift.sample(&target, found as f64);
        }
        let Some(c) = &t.delivery else { continue };
        paused.sample(&target, flag(t.paused));
        if let Ok(s) = state.directory.delivery_stats(name).await {
            let age = s
                .oldest
                .map_or(0.0, |o| (now - o).num_milliseconds().max(0) as f64 / 1000.0);
            queue.sample(&target, s.queued as f64);
            retrying.sample(&target, s.retrying as f64);
            oldest.sample(&target, age);
            dead.sample(&target, s.dead_letters as f64);
        }
        for (outcome, n) in [
            ("delivered", &c.delivered),
            ("retried", &c.retried),
            ("dead_lettered", &c.dead_lettered),
            ("paused", &c.paused),
        ] {
            outcomes.sample(
                &[("target", name), ("outcome", outcome)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
    }
    vec![queue, retrying, oldest, dead, outcomes, drift, paused]
}

async fn guard(state: &AppState, targets: &[TargetHandle]) -> Vec<Family> {
    let mut tripped = Family::gauge(
        "scim_bridge_guard_tripped",
        "1 while the target's mass-deprovisioning guard is tripped and holds deactivations and deletions until `scim-bridge approve`.",
    );
    let mut held = Family::gauge(
        "scim_bridge_guard_held_changes",
        "Destructive changes the tripped guard holds back, by target (0 while armed).",
    );
    let mut since = Family::gauge(
        "scim_bridge_guard_tripped_timestamp_seconds",
        "When the target's guard tripped (only while tripped).",
    );
    for t in targets.iter().filter(|t| t.delivery.is_some()) {
        let target = [("target", t.name.as_str())];
        let Ok(g) = state.directory.guard(&t.name).await else {
            continue;
        };
        tripped.sample(&target, flag(g.tripped_at.is_some()));
        // Held rows exist only once the guard has tripped, so an armed guard costs no
        // scan of the queue at each scrape.
        let n = match g.tripped_at {
            Some(at) => {
                since.sample(&target, timestamp_seconds(at));
                state.directory.guard_held(&t.name).await.ok()
            }
            None => Some(0),
        };
        if let Some(n) = n {
            held.sample(&target, n as f64);
        }
    }
    vec![tripped, held, since]
}

async fn credentials(targets: &[TargetHandle]) -> Vec<Family> {
    let mut token_state = Family::gauge(
        "scim_bridge_target_token_state",
        "The target's own access token: 1 for its current state (pending: none requested yet, ok, error: the token endpoint refused or failed).",
    );
    let mut expiry = Family::gauge(
        "scim_bridge_target_token_expiry_timestamp_seconds",
        "When the target's current access token expires.",
    );
    let mut requests = Family::counter(
        "scim_bridge_target_token_requests_total",
        "Token requests sent to the target's token endpoint since start.",
    );
    let mut failures = Family::counter(
        "scim_bridge_target_token_refresh_failures_total",
        "Failed token requests since start, by target and credential (service: the target's own client credentials or account; linked: a person's linked account).",
    );
    let mut linked = Family::gauge(
        "scim_bridge_target_linked_accounts",
        "User accounts linked to the target (authorization code + PKCE).",
    );
    for t in targets {
        let name = t.name.as_str();
        let target = [("target", name)];
        if let Some(source) = &t.source {
            let h = source.health();
            for s in TOKEN_STATES {
                token_state.sample(&[("target", name), ("state", s)], flag(h.state == s));
            }
            if let Some(at) = h.token_expires {
                expiry.sample(&target, timestamp_seconds(at));
            }
            requests.sample(&target, h.token_requests as f64);
            failures.sample(
                &[("target", name), ("credential", "service")],
                source.token_failures() as f64,
            );
        }
        if let Some(linker) = &t.linker {
            failures.sample(
                &[("target", name), ("credential", "linked")],
                linker.refresh_failures() as f64,
            );
            if let Ok(n) = linker.linked_count().await {
                linked.sample(&target, n as f64);
            }
        }
    }
    vec![token_state, expiry, requests, failures, linked]
}

//! The overview: each provider (users, groups, last request, requests and errors in
//! the last hour) and each target (credentials, backlog, dead letters, guard, last
//! reconciliation, deliveries and failures in the last hour), from what `/readyz`
//! and `status` read, with a plot per minute of each (`plot.rs`). The hour's counts
//! are this instance's, kept in memory since it started (`metrics::PerMinute`).
//! Reloads itself every 10 seconds.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::Console;
use super::access::Signed;
use super::page::{Chrome, ago, failed, html, seg, when};
use super::plot::{Plot, Series};
use crate::delivery::{DELIVERED, FAILED};
use crate::metrics::{ERRORS, Hour, MINUTES, REQUESTS, minute_of};
use crate::scim::ResourceKind;

/// Seconds between the page's reloads: live enough to watch a rollout, and one
/// page view per admin per 10 s costs the SCIM front nothing measurable (README,
/// Performance: the console).
const REFRESH: u32 = 10;

struct ProviderRow {
    name: String,
    users: u64,
    groups: u64,
    last_request: String,
    requests: u64,
    errors: u64,
    plot: String,
}

struct TargetRow {
    name: String,
    link: String,
    paused: bool,
    credentials: String,
    credentials_failing: bool,
    delivers: bool,
    queued: u64,
    retrying: u64,
    oldest: String,
    dead_letters: u64,
    since_start: String,
    guard: String,
    guard_tripped: bool,
    reconcile: String,
    reconcile_failing: bool,
    delivered_hour: u64,
    failed_hour: u64,
    plot: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    chrome: Chrome,
    /// When this instance started: the hour's counts begin there.
    started: String,
    generated: String,
    providers: Vec<ProviderRow>,
    targets: Vec<TargetRow>,
}

pub async fn show(State(console): State<Arc<Console>>, signed: Signed) -> Response {
    let mut chrome = signed.chrome("overview");
    chrome.refresh = REFRESH;
    let state = &console.state;
    let store = state.directory.store();
    let now = state.clock.now();
    // The SCIM tokens' last use is buffered and written every few seconds: close
    // enough for "when did Entra last call".
    let tokens = match store.list_tokens().await {
        Ok(t) => t,
        Err(e) => return failed(chrome, &e),
    };
    let counted_from = minute_of(state.started_at);
    let mut providers = Vec::new();
    for p in state.directory.providers() {
        let (users, groups) = match (
            store.count(&p.name, ResourceKind::User).await,
            store.count(&p.name, ResourceKind::Group).await,
        ) {
            (Ok(u), Ok(g)) => (u, g),
            (Err(e), _) | (_, Err(e)) => return failed(chrome, &e),
        };
        let traffic = state.metrics.scim_traffic(&p.name);
        // The stored last use survives a restart; the in-memory one is not a flush
        // behind.
        let last = tokens
            .iter()
            .filter(|t| t.provider.as_deref() == Some(p.name.as_str()))
            .filter_map(|t| t.last_used)
            .chain(traffic.as_ref().and_then(|t| t.last()))
            .max();
        let hour = traffic.map_or_else(|| idle_hour(now), |t| t.hour(now));
        let (requests, errors) = (hour.total(REQUESTS), hour.total(ERRORS));
        let answered: Vec<u64> = hour
            .counts
            .iter()
            .map(|c| c[REQUESTS].saturating_sub(c[ERRORS]))
            .collect();
        let failed: Vec<u64> = hour.counts.iter().map(|c| c[ERRORS]).collect();
        let plot = Plot::new(
            format!("plot-provider-{}", seg(&p.name)),
            format!("SCIM requests from {} per minute, last hour", p.name),
            &[
                Series {
                    class: "ok",
                    label: "answered",
                    counts: answered,
                },
                Series {
                    class: "failed",
                    label: "errors",
                    counts: failed,
                },
            ],
            hour.end_minute,
            counted_from,
        );
        providers.push(ProviderRow {
            name: p.name.clone(),
            users,
            groups,
            last_request: last.map_or_else(
                || "none yet".to_owned(),
                |t| format!("{} ago ({})", ago(now, t), when(t)),
            ),
            requests,
            errors,
            plot: plot.html(),
        });
    }
    let mut targets = Vec::new();
    for t in state.targets.get().iter() {
        let (credentials, credentials_failing) = match t.source.as_ref().map(|s| s.health()) {
            None => ("no OAuth token source".to_owned(), false),
            Some(h) if h.state == "error" => (
                format!(
                    "token endpoint failing since {}: {}",
                    h.since.map(when).unwrap_or_default(),
                    h.error.unwrap_or_default()
                ),
                true,
            ),
            Some(h) => (
                format!(
                    "token {}{}",
                    h.state,
                    h.token_expires
                        .map(|e| if e > now {
                            format!(", expires {} (in {})", when(e), ago(e, now))
                        } else {
                            format!(", expired {} ago ({})", ago(now, e), when(e))
                        })
                        .unwrap_or_default()
                ),
                false,
            ),
        };
        let mut row = TargetRow {
            name: t.name.clone(),
            link: seg(&t.name),
            paused: t.paused,
            credentials,
            credentials_failing,
            delivers: t.delivery.is_some(),
            queued: 0,
            retrying: 0,
            oldest: "-".into(),
            dead_letters: 0,
            since_start: String::new(),
            guard: "-".into(),
            guard_tripped: false,
            reconcile: "not scheduled".into(),
            reconcile_failing: false,
            delivered_hour: 0,
            failed_hour: 0,
            plot: String::new(),
        };
        if let Some(c) = &t.delivery {
            let stats = match state.directory.delivery_stats(&t.name).await {
                Ok(s) => s,
                Err(e) => return failed(chrome, &e),
            };
            row.queued = stats.queued;
            row.retrying = stats.retrying;
            row.oldest = stats.oldest.map_or_else(|| "-".into(), |o| ago(now, o));
            row.dead_letters = stats.dead_letters;
            let hour = c.per_minute.hour(now);
            row.delivered_hour = hour.total(DELIVERED);
            row.failed_hour = hour.total(FAILED);
            let series = |k: usize| hour.counts.iter().map(|c| c[k]).collect::<Vec<_>>();
            row.plot = Plot::new(
                format!("plot-target-{}", seg(&t.name)),
                format!("Deliveries to {} per minute, last hour", t.name),
                &[
                    Series {
                        class: "delivered",
                        label: "delivered",
                        counts: series(DELIVERED),
                    },
                    Series {
                        class: "failed",
                        label: "failed",
                        counts: series(FAILED),
                    },
                ],
                hour.end_minute,
                counted_from,
            )
            .html();
            row.since_start = format!(
                "{} delivered, {} retried, {} dead-lettered",
                c.delivered.load(Ordering::Relaxed),
                c.retried.load(Ordering::Relaxed),
                c.dead_lettered.load(Ordering::Relaxed)
            );
            match state.directory.guard(&t.name).await {
                Ok(g) => match g.tripped_at {
                    Some(at) => {
                        row.guard = format!(
                            "tripped {} ago: {}",
                            ago(now, at),
                            g.reason.unwrap_or_default()
                        );
                        row.guard_tripped = true;
                    }
                    None => {
                        row.guard = match g.approved_until.filter(|u| *u > now) {
                            Some(u) => format!("armed; approved until {}", when(u)),
                            None => "armed".into(),
                        }
                    }
                },
                Err(e) => return failed(chrome, &e),
            }
        }
        if let Some(r) = t
            .reconcile
            .as_ref()
            .and_then(|r| r.lock().ok().map(|r| r.clone()))
        {
            row.reconcile_failing = r.error.is_some();
            let next = r
                .next
                .map(|n| format!("; next {}", when(n)))
                .unwrap_or_default();
            row.reconcile = match (r.at, r.error) {
                (_, Some(e)) => format!("failed: {e}{next}"),
                (Some(at), None) => {
                    format!("{} ago, {} difference(s){next}", ago(now, at), r.drift)
                }
                (None, None) => format!("not run yet{next}"),
            };
        }
        targets.push(row);
    }
    html(
        StatusCode::OK,
        &Overview {
            started: when(state.started_at),
            chrome,
            generated: when(now),
            providers,
            targets,
        },
    )
}

/// The hour of a provider that has sent nothing since start.
fn idle_hour(now: chrono::DateTime<chrono::Utc>) -> Hour<2> {
    Hour {
        end_minute: minute_of(now),
        counts: vec![[0; 2]; MINUTES],
    }
}

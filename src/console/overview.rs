//! The overview: each provider (users, groups, last request) and each target
//! (credentials, backlog, dead letters, guard, last reconciliation), from what
//! `/readyz` and `status` read. Reloads itself every 30 seconds.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::Console;
use super::access::Signed;
use super::page::{Chrome, ago, failed, html, seg, when};
use crate::scim::ResourceKind;

/// Seconds between the page's reloads.
const REFRESH: u32 = 30;

struct ProviderRow {
    name: String,
    users: u64,
    groups: u64,
    last_request: String,
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
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    chrome: Chrome,
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
    let mut providers = Vec::new();
    for p in state.directory.providers() {
        let (users, groups) = match (
            store.count(&p.name, ResourceKind::User).await,
            store.count(&p.name, ResourceKind::Group).await,
        ) {
            (Ok(u), Ok(g)) => (u, g),
            (Err(e), _) | (_, Err(e)) => return failed(chrome, &e),
        };
        let last = tokens
            .iter()
            .filter(|t| t.provider.as_deref() == Some(p.name.as_str()))
            .filter_map(|t| t.last_used)
            .max();
        providers.push(ProviderRow {
            name: p.name.clone(),
            users,
            groups,
            last_request: last.map_or_else(
                || "none yet".to_owned(),
                |t| format!("{} ago ({})", ago(now, t), when(t)),
            ),
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
                        .map(|e| format!(", expires {}", when(e)))
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
            chrome,
            generated: when(now),
            providers,
            targets,
        },
    )
}

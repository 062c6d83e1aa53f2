//! Provision on demand: an admin asks for one person's (or group's) delivery to one
//! target now and reads each step as the engine took it — scope, match, guard,
//! action, every HTTP call — from the very record the provisioning log keeps of it.
//!
//! Nothing here decides anything: [`Engine::deliver_now`](crate::delivery::Engine)
//! leases the resource's queued row (or queues a full resync of it) and runs the
//! worker's own delivery, so ordering, the guard, retries and the record are the
//! worker's. A paused target is left alone, and a delivery the worker has in flight
//! is waited for briefly, then reported.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Console;
use super::access::Signed;
use super::act::audit;
use super::page::{Chrome, failed, html, message, when};
use super::people::{label, link, stored};
use super::signin::CsrfForm;
use crate::delivery::OnDemand;
use crate::provlog::{ActionDraft, ActionOutcome, OperatorDraft, ResourceNames};
use crate::scim::ResourceKind;
use crate::store::DeliveryOutcome;

struct Step {
    step: &'static str,
    result: String,
    detail: String,
}

struct Call {
    method: String,
    path: String,
    status: String,
    failed: bool,
    ms: u64,
}

#[derive(Template)]
#[template(path = "ondemand.html")]
struct Ran {
    chrome: Chrome,
    name: String,
    link: String,
    kind: &'static str,
    provider: String,
    target: String,
    /// What came of it, in one sentence.
    headline: String,
    /// `good`, `warn` or `bad`: the badge beside the outcome.
    tone: &'static str,
    outcome: &'static str,
    /// Why this ran: the queued changes, or a resync when nothing was queued.
    carried: String,
    steps: Vec<Step>,
    calls: Vec<Call>,
    /// The target's answer or the reason, when not a success.
    answer: String,
    took: u64,
}

/// `POST /ui/people/{provider}/{kind}/{id}/provision/{target}`.
pub async fn provision(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Path((provider, kind, id, target)): Path<(String, String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = signed.may_act(&form.csrf) {
        return *refused;
    }
    let chrome = signed.chrome("people");
    let resource = match stored(&console, &chrome, &provider, &kind, &id).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let kind = resource.kind;
    let name = label(&resource);
    let page = link(&provider, kind, &id);
    let receives = console
        .targets
        .get()
        .iter()
        .any(|t| t.name == target && t.receives(&provider));
    let handle = console
        .state
        .targets
        .get()
        .iter()
        .find(|t| t.name == target)
        .cloned();
    let Some(handle) = handle.filter(|_| receives) else {
        return message(
            StatusCode::NOT_FOUND,
            chrome,
            "Not found",
            format!("No target named {target:?} receives {provider}'s changes."),
        );
    };
    let names = ResourceNames::of(kind, &id, &resource.doc);
    let who = signed.session.who.clone();
    let record = |detail: String| OperatorDraft {
        via: "console",
        who: String::new(),
        action: "provision.on_demand",
        target: Some(target.clone()),
        resource: Some((provider.clone(), names.clone())),
        detail,
    };
    if handle.paused {
        audit(
            &console,
            &signed,
            record(format!(
                "asked to provision {name} to {target} now; nothing sent: the target is paused"
            )),
        )
        .await;
        return message(
            StatusCode::CONFLICT,
            chrome,
            "Target paused",
            format!(
                "{target} is paused, so nothing is sent to it, on demand or otherwise; {name} was not provisioned. Review its reconciliation plan, then remove `paused` from its [[targets]] table and reload the daemon."
            ),
        );
    }
    let Some(engine) = handle.engine.clone() else {
        return message(
            StatusCode::CONFLICT,
            chrome,
            "Not delivered",
            format!("This daemon delivers nothing to {target}, so it cannot provision on demand."),
        );
    };
    tracing::info!(%who, %target, %provider, resource = %id, "console: provision on demand");
    // Spawned: a browser that gives up waiting does not cut a delivery short (its
    // outcome is recorded either way).
    let run = {
        let (provider, id, who) = (provider.clone(), id.clone(), who.clone());
        tokio::spawn(async move { engine.deliver_now(&provider, kind, &id, &who).await })
    };
    let ran = match run.await {
        Ok(Ok(ran)) => ran,
        Ok(Err(e)) => return failed(chrome, &e),
        Err(e) => return failed(chrome, &e),
    };
    match ran {
        OnDemand::InFlight { until } => {
            audit(
                &console,
                &signed,
                record(format!(
                    "asked to provision {name} to {target} now; a delivery already in flight holds it until {}",
                    when(until)
                )),
            )
            .await;
            message(
                StatusCode::CONFLICT,
                chrome,
                "In flight",
                format!(
                    "A delivery of {name} to {target} is already in flight (the delivery engine started it); it holds {name} until {} at most. Its outcome shows on {name}'s page; ask again once it is done.",
                    when(until)
                ),
            )
        }
        OnDemand::Ran {
            outcome,
            record: draft,
            resync,
        } => {
            let view = ran_page(chrome, &name, &page, kind, &draft, &outcome, resync);
            audit(
                &console,
                &signed,
                record(format!(
                    "provisioned {name} to {target} on demand: {} ({}){}",
                    draft.action,
                    draft.outcome.as_str(),
                    draft
                        .error
                        .as_deref()
                        .map(|e| format!("; {e}"))
                        .unwrap_or_default()
                )),
            )
            .await;
            html(StatusCode::OK, &view)
        }
    }
}

/// The page of a delivery that ran.
fn ran_page(
    chrome: Chrome,
    name: &str,
    page: &str,
    kind: ResourceKind,
    draft: &ActionDraft,
    outcome: &DeliveryOutcome,
    resync: bool,
) -> Ran {
    let target = &draft.target;
    let next = draft.next_at.map(when).unwrap_or_default();
    let (headline, tone) = match draft.outcome {
        ActionOutcome::Success => (
            format!("Done: {target} has {name} ({} succeeded).", draft.action),
            "good",
        ),
        ActionOutcome::Skipped => (
            format!("Nothing sent: {name} is outside {target}'s scope (see the scope step)."),
            "warn",
        ),
        ActionOutcome::Held => (
            format!(
                "Held: the mass-deprovisioning guard of {target} holds this change, and it stays held. Approve or reject it on the Guard page."
            ),
            "warn",
        ),
        ActionOutcome::Waiting => (
            format!(
                "Waiting: {name} is sent again once its members have reached {target} (next at {next})."
            ),
            "warn",
        ),
        ActionOutcome::Retrying => (
            format!("Failed: {target} did not take it; the delivery engine tries again at {next}."),
            "bad",
        ),
        ActionOutcome::Dead => (
            "Refused: moved to the dead letters, where it waits for an admin.".to_owned(),
            "bad",
        ),
    };
    let carried = if resync {
        format!(
            "Nothing was queued for {name}, so the whole {} was sent again (a resync).",
            kind.name().to_lowercase()
        )
    } else {
        let (from, last) = draft.change_seqs;
        let events = if from + 1 == last {
            format!("change #{last}")
        } else {
            format!("changes #{}–#{last}", from + 1)
        };
        format!(
            "Carried the queued {events}; attempt {} of this change.",
            draft.attempt
        )
    };
    // The guard's own answer already says what was held; the record keeps it too.
    let answer = match outcome {
        DeliveryOutcome::Done => String::new(),
        _ => draft.error.clone().unwrap_or_default(),
    };
    Ran {
        chrome,
        name: name.to_owned(),
        link: page.to_owned(),
        kind: kind.name(),
        provider: draft.provider.clone(),
        target: target.clone(),
        headline,
        tone,
        outcome: draft.outcome.as_str(),
        carried,
        steps: draft
            .steps
            .iter()
            .map(|s| Step {
                step: s.step,
                result: s.result.clone(),
                detail: s.detail.clone().unwrap_or_default(),
            })
            .collect(),
        calls: draft
            .calls
            .iter()
            .map(|c| Call {
                method: c.method.clone(),
                path: c.path.clone(),
                status: c
                    .status
                    .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
                failed: c.status.is_none_or(|s| s >= 400),
                ms: c.ms,
            })
            .collect(),
        answer,
        took: draft.duration_ms,
    }
}

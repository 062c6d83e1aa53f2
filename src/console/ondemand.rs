//! Provision on demand: an admin asks for one person's (or group's) delivery to one
//! target now and reads each step as the engine takes it — scope, match, guard,
//! action, every HTTP call and its answer — then the outcome, from the very record
//! the provisioning log keeps of it.
//!
//! Nothing here decides anything: [`Engine::deliver_now`](crate::delivery::Engine)
//! leases the resource's queued row (or queues a full resync of it) and runs the
//! worker's own delivery, so ordering, the guard, retries and the record are the
//! worker's. A paused target is left alone, and a delivery the worker has in flight
//! is waited for briefly, then reported.
//!
//! The page is streamed without script: the engine tells a channel each step as it
//! happens, and each becomes a table row sent (and shown by the browser) at once;
//! the outcome follows when the delivery ends. The answer's status is settled before
//! the first byte: 200 once the engine has begun, else the page of why it did not.

use std::convert::Infallible;
use std::sync::Arc;

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::Console;
use super::access::Signed;
use super::act::audit;
use super::page::{Chrome, failed, message, when};
use super::people::{label, link, stored};
use super::signin::CsrfForm;
use crate::delivery::{Live, OnDemand};
use crate::provlog::{ActionDraft, ActionOutcome, OperatorDraft, ResourceNames};
use crate::scim::ResourceKind;
use crate::store::DeliveryOutcome;

/// Where the streamed rows go in the rendered page, and where the outcome goes.
const STEPS_AT: &str = "<!--steps-->";
const SUMMARY_AT: &str = "<!--summary-->";

struct Call {
    method: String,
    path: String,
    status: String,
    failed: bool,
    ms: u64,
}

/// The page around the steps.
#[derive(Template)]
#[template(path = "ondemand.html")]
struct Frame {
    chrome: Chrome,
    name: String,
    link: String,
    kind: &'static str,
    provider: String,
    target: String,
}

/// One step, or one HTTP call and its answer, as a row of the steps table.
#[derive(Template)]
#[template(path = "ondemand_step.html")]
struct Row {
    call: bool,
    step: &'static str,
    result: String,
    detail: String,
    failed: bool,
}

/// What came of it.
#[derive(Template)]
#[template(path = "ondemand_summary.html")]
struct Summary {
    target: String,
    /// What came of it, in one sentence.
    headline: String,
    /// `good`, `warn` or `bad`: the badge beside the outcome.
    tone: &'static str,
    outcome: &'static str,
    /// Why this ran: the queued changes, or a resync when nothing was queued.
    carried: String,
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
    let record = |detail: String| asked(&target, &provider, &names, detail);
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
    let (tx, mut steps) = mpsc::unbounded_channel();
    // Spawned, with its audit record: a browser that gives up waiting does not cut a
    // delivery short, and its outcome and who asked are recorded either way.
    let run = {
        let (console, signed, names) = (Arc::clone(&console), signed.clone(), names.clone());
        let (provider, id, name, target) =
            (provider.clone(), id.clone(), name.clone(), target.clone());
        tokio::spawn(async move {
            let ran = engine
                .deliver_now(&provider, kind, &id, &who, Some(tx))
                .await;
            let detail = match &ran {
                Ok(OnDemand::InFlight { until }) => Some(format!(
                    "asked to provision {name} to {target} now; a delivery already in flight holds it until {}",
                    when(*until)
                )),
                Ok(OnDemand::Ran { record: draft, .. }) => Some(format!(
                    "provisioned {name} to {target} on demand: {} ({}){}",
                    draft.action,
                    draft.outcome.as_str(),
                    draft
                        .error
                        .as_deref()
                        .map(|e| format!("; {e}"))
                        .unwrap_or_default()
                )),
                Err(_) => None,
            };
            if let Some(detail) = detail {
                audit(&console, &signed, asked(&target, &provider, &names, detail)).await;
            }
            ran
        })
    };
    // The first step says the engine has begun; none means it ended without
    // beginning (in flight elsewhere, or the store failed), said on a page of its own.
    let Some(first) = steps.recv().await else {
        return match run.await {
            Ok(Ok(OnDemand::InFlight { until })) => message(
                StatusCode::CONFLICT,
                chrome,
                "In flight",
                format!(
                    "A delivery of {name} to {target} is already in flight (the delivery engine started it); it holds {name} until {} at most. Its outcome shows on {name}'s page; ask again once it is done.",
                    when(until)
                ),
            ),
            Ok(Ok(ran @ OnDemand::Ran { .. })) => {
                // Never without a step ("asked" comes first); shown whole all the same.
                streamed(
                    frame(chrome, &name, &page, kind, &provider, &target),
                    Vec::new(),
                    run_done(ran, &name, kind),
                )
            }
            Ok(Err(e)) => failed(chrome, &e),
            Err(e) => failed(chrome, &e),
        };
    };
    let frame = frame(chrome, &name, &page, kind, &provider, &target);
    let (chunks, body) = mpsc::unbounded_channel::<Result<Bytes, Infallible>>();
    tokio::spawn(async move {
        let Some((head, middle, tail)) = frame else {
            return;
        };
        let send = |text: String| chunks.send(Ok(Bytes::from(text))).is_ok();
        if !send(head) {
            return;
        }
        let mut shown = Shown::default();
        let mut next = Some(first);
        while let Some(live) = next {
            if let Some(row) = shown.row(live)
                && !send(row)
            {
                // The browser went away; the delivery goes on and is recorded.
                return;
            }
            next = steps.recv().await;
        }
        let summary = match run.await {
            Ok(Ok(ran)) => run_done(ran, &name, kind),
            Ok(Err(e)) => store_failed(&target, &e),
            Err(e) => store_failed(&target, &e),
        };
        send(middle + &summary + &tail);
    });
    html_stream(body)
}

/// The provisioning log's record that an admin asked, with what came of it.
fn asked(target: &str, provider: &str, names: &ResourceNames, detail: String) -> OperatorDraft {
    OperatorDraft {
        via: "console",
        who: String::new(),
        action: "provision.on_demand",
        target: Some(target.to_owned()),
        resource: Some((provider.to_owned(), names.clone())),
        detail,
    }
}

/// The page around the steps, cut where the rows and the outcome go: the part
/// before the rows, between the rows and the outcome, and after it.
fn frame(
    chrome: Chrome,
    name: &str,
    page: &str,
    kind: ResourceKind,
    provider: &str,
    target: &str,
) -> Option<(String, String, String)> {
    let frame = Frame {
        chrome,
        name: name.to_owned(),
        link: page.to_owned(),
        kind: kind.name(),
        provider: provider.to_owned(),
        target: target.to_owned(),
    };
    let text = frame
        .render()
        .inspect_err(|e| tracing::error!(error = %e, "console page failed to render"))
        .ok()?;
    let (head, rest) = text.split_once(STEPS_AT)?;
    let (middle, tail) = rest.split_once(SUMMARY_AT)?;
    Some((head.to_owned(), middle.to_owned(), tail.to_owned()))
}

/// A page sent whole: its frame, `rows` and the outcome.
fn streamed(
    frame: Option<(String, String, String)>,
    rows: Vec<String>,
    summary: String,
) -> Response {
    let Some((head, middle, tail)) = frame else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page failed to render",
        )
            .into_response();
    };
    let whole = head + &rows.concat() + &middle + &summary + &tail;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        whole,
    )
        .into_response()
}

/// An HTML answer whose body is sent chunk by chunk as `body` yields them.
fn html_stream(body: mpsc::UnboundedReceiver<Result<Bytes, Infallible>>) -> Response {
    let chunks = futures_util::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// Which rows the page has shown: the action step the record adds at the end is
/// already there when the engine said it was sending.
#[derive(Default)]
struct Shown {
    sending: bool,
}

impl Shown {
    /// The row for `live`, or none when it repeats one shown.
    fn row(&mut self, live: Live) -> Option<String> {
        let row = match live {
            Live::Step(s) if s.step == "action" && self.sending => return None,
            Live::Step(s) => Row {
                call: false,
                step: s.step,
                result: s.result,
                detail: s.detail.unwrap_or_default(),
                failed: false,
            },
            Live::Sending(action) => {
                self.sending = true;
                Row {
                    call: false,
                    step: "action",
                    result: action.to_owned(),
                    detail: "sent to the target now; its HTTP calls follow".to_owned(),
                    failed: false,
                }
            }
            Live::Call(c) => Row {
                call: true,
                step: "call",
                result: format!("{} {}", c.method, c.path),
                detail: match c.status {
                    Some(status) => format!("answered {status} in {} ms", c.ms),
                    None => format!("no answer after {} ms", c.ms),
                },
                failed: c.status.is_none_or(|s| s >= 400),
            },
        };
        row.render()
            .inspect_err(|e| tracing::error!(error = %e, "console row failed to render"))
            .ok()
    }
}

/// The outcome of a delivery of `name` that ended, rendered.
fn run_done(ran: OnDemand, name: &str, kind: ResourceKind) -> String {
    let summary = match ran {
        OnDemand::Ran {
            outcome,
            record,
            resync,
        } => summary(name, kind, &record, &outcome, resync),
        OnDemand::InFlight { until } => Summary {
            target: String::new(),
            headline: format!(
                "In flight: a delivery the engine started holds it until {} at most; ask again once it is done.",
                when(until)
            ),
            tone: "warn",
            outcome: "in flight",
            carried: String::new(),
            calls: Vec::new(),
            answer: String::new(),
            took: 0,
        },
    };
    render_summary(&summary)
}

/// The outcome when the store failed mid-way: logged with its detail, said plainly.
fn store_failed(target: &str, e: &dyn std::fmt::Display) -> String {
    tracing::error!(error = %e, "console: provision on demand failed");
    render_summary(&Summary {
        target: target.to_owned(),
        headline: "Not finished: the database did not answer; the daemon's log has the detail. The delivery engine tries again on its own.".to_owned(),
        tone: "bad",
        outcome: "failed",
        carried: String::new(),
        calls: Vec::new(),
        answer: String::new(),
        took: 0,
    })
}

fn render_summary(s: &Summary) -> String {
    s.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "console page failed to render");
        "<p class=\"error\">The outcome failed to render; it is on the person's page.</p>"
            .to_owned()
    })
}

/// The outcome of a delivery that ran.
fn summary(
    name: &str,
    kind: ResourceKind,
    draft: &ActionDraft,
    outcome: &DeliveryOutcome,
    resync: bool,
) -> Summary {
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
    Summary {
        target: target.clone(),
        headline,
        tone,
        outcome: draft.outcome.as_str(),
        carried,
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

//! Reconciliation from the console: per target, a dry run that reads the target and
//! shows the plan in names (who is created, updated, adopted, disabled, left alone,
//! and what changes), then an apply that needs an explicit confirmation bound to the
//! plan's digest: the plan applied is the plan read, and a world that changed since
//! makes apply refuse and show the new plan instead.
//!
//! Both are admin actions: a dry run reads the target with the bridge's credentials.
//! Planning and applying are [`Reconciler`]'s, the same code `scim-bridge sync` and
//! the schedule run; a run goes on in its own task (reads, then one short write per
//! item), so the daemon's other work goes on meanwhile, and one run per target at a
//! time.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::Console;
use super::access::Signed;
use super::act::audit;
use super::page::{Chrome, failed, html, message, seg, when};
use super::people::link;
use super::signin::CsrfForm;
use crate::delivery::{Action, Applied, Plan, PlanItem, ReconcileError, Reconciler};
use crate::provlog::OperatorDraft;
use crate::server::TargetHandle;

struct TargetRow {
    name: String,
    path: String,
    paused: bool,
    /// Delivered to by this daemon (a reconciler exists).
    runnable: bool,
    /// The last scheduled run, in words.
    scheduled: String,
}

#[derive(Template)]
#[template(path = "reconcile.html")]
struct Targets {
    chrome: Chrome,
    targets: Vec<TargetRow>,
}

/// `GET /ui/reconcile`: the targets, their last scheduled run, a dry-run button each.
pub async fn targets(State(console): State<Arc<Console>>, signed: Signed) -> Response {
    let chrome = signed.chrome("reconcile");
    let targets = console
        .state
        .targets
        .get()
        .iter()
        .map(|t| TargetRow {
            name: t.name.clone(),
            path: seg(&t.name),
            paused: t.paused,
            runnable: t.reconciler.is_some(),
            scheduled: scheduled(t),
        })
        .collect();
    html(StatusCode::OK, &Targets { chrome, targets })
}

fn scheduled(t: &TargetHandle) -> String {
    let Some(report) = &t.reconcile else {
        return "No schedule.".into();
    };
    let r = match report.lock() {
        Ok(r) => r.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let next = r
        .next
        .map(|n| format!(" Next: {}.", when(n)))
        .unwrap_or_default();
    match (r.at, r.error) {
        (None, _) => format!("Not run yet.{next}"),
        (Some(at), Some(e)) => format!("Last run {} failed: {e}.{next}", when(at)),
        (Some(at), None) => format!("Last run {}: {} item(s) of drift.{next}", when(at), r.drift),
    }
}

/// One plan item as the page lists it.
struct Row {
    action: &'static str,
    kind: &'static str,
    name: String,
    /// The person's or group's page, while the bridge still has them.
    link: String,
    target_id: String,
    detail: String,
}

fn row(i: &PlanItem) -> Row {
    let gone = matches!(i.action, Action::Deactivate | Action::Delete);
    let link = match (&i.provider, &i.id) {
        (Some(p), Some(id)) if !gone => link(p, i.kind, id),
        _ => String::new(),
    };
    let mut detail = i.detail.clone();
    if let Some(rule) = &i.matched_by {
        detail = format!("{detail} (matched by {rule})");
    }
    Row {
        action: i.action.name(),
        kind: i.kind.name(),
        name: i.name.clone(),
        link,
        target_id: i.target_id.clone().unwrap_or_else(|| "-".into()),
        detail,
    }
}

#[derive(Template)]
#[template(path = "plan.html")]
struct PlanPage {
    chrome: Chrome,
    target: String,
    path: String,
    /// Shown after an apply refused because the plan changed since the dry run.
    changed: bool,
    paused: bool,
    counts: String,
    summary: String,
    changes: Vec<Row>,
    attention: Vec<Row>,
    protected: Vec<Row>,
    unmanaged: Vec<Row>,
    digest: String,
}

fn plan_page(chrome: Chrome, handle: &TargetHandle, p: &Plan, changed: bool) -> PlanPage {
    let section = |pred: &dyn Fn(Action) -> bool| -> Vec<Row> {
        p.items.iter().filter(|i| pred(i.action)).map(row).collect()
    };
    PlanPage {
        chrome,
        target: p.target.clone(),
        path: seg(&p.target),
        changed,
        paused: handle.paused,
        counts: format!(
            "The bridge has {} users and {} groups for {} ({} outside its scope); {} has {} users and {} groups.",
            p.desired_users,
            p.desired_groups,
            p.target,
            p.out_of_scope,
            p.target,
            p.target_users,
            p.target_groups
        ),
        summary: p.summary(),
        changes: section(&Action::changes),
        attention: section(&Action::needs_attention),
        protected: section(&|a| a == Action::Protected),
        unmanaged: section(&|a| a == Action::Unmanaged),
        digest: p.digest(),
    }
}

#[derive(Template)]
#[template(path = "applied.html")]
struct AppliedPage {
    chrome: Chrome,
    target: String,
    summary: String,
    applied: Applied,
}

/// The target `name` and its reconciler for an admin whose form carried `csrf`, or
/// the page that says why not.
fn reconcilable(
    console: &Console,
    signed: &Signed,
    csrf: &str,
    name: &str,
) -> Result<(TargetHandle, Arc<Reconciler>), Box<Response>> {
    signed.may_act(csrf)?;
    let chrome = signed.chrome("reconcile");
    let Some(handle) = console
        .state
        .targets
        .get()
        .iter()
        .find(|t| t.name == name)
        .cloned()
    else {
        return Err(Box::new(message(
            StatusCode::NOT_FOUND,
            chrome,
            "Not found",
            format!("No target named {name:?} is configured."),
        )));
    };
    let Some(r) = handle.reconciler.clone() else {
        return Err(Box::new(message(
            StatusCode::CONFLICT,
            chrome,
            "Not reconciled",
            format!("This daemon delivers nothing to {name}, so it cannot reconcile it."),
        )));
    };
    Ok((handle, r))
}

/// Holds a target's one running reconciliation; dropped with the run's task.
struct Running {
    console: Arc<Console>,
    target: String,
}

impl Running {
    fn start(console: &Arc<Console>, target: &str) -> Option<Running> {
        let mut running = match console.reconciling.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        running.insert(target.to_owned()).then(|| Running {
            console: Arc::clone(console),
            target: target.to_owned(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = match self.console.reconciling.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        running.remove(&self.target);
    }
}

/// What a run in its own task came to.
enum Ran {
    Planned(Plan),
    /// The plan made now differs from the one confirmed.
    Changed(Plan),
    Applied(Plan, Applied),
    Failed(ReconcileError),
}

/// Plans `target` in a task of its own and, when `confirmed` names the digest of the
/// plan made now, applies it there.
async fn run(
    console: &Arc<Console>,
    signed: &Signed,
    target: &str,
    r: Arc<Reconciler>,
    confirmed: Option<String>,
) -> Result<Ran, Box<Response>> {
    let Some(running) = Running::start(console, target) else {
        return Err(Box::new(message(
            StatusCode::CONFLICT,
            signed.chrome("reconcile"),
            "Already running",
            format!(
                "A reconciliation of {target} started from the console is still running; wait for it, then try again."
            ),
        )));
    };
    let state = Arc::clone(&console.state);
    let task = tokio::spawn(async move {
        let _running = running;
        let store = state.directory.store();
        let p = match r.plan(store.as_ref(), &|_, _| {}, state.clock.now()).await {
            Ok(p) => p,
            Err(e) => return Ran::Failed(e),
        };
        let Some(wanted) = confirmed else {
            return Ran::Planned(p);
        };
        if p.digest() != wanted {
            return Ran::Changed(p);
        }
        match r.apply(store.as_ref(), &p, state.clock.now()).await {
            Ok(a) => Ran::Applied(p, a),
            Err(e) => Ran::Failed(e.into()),
        }
    });
    task.await
        .map_err(|e| Box::new(failed(signed.chrome("reconcile"), &e)))
}

/// The page for a run that could not read or write.
fn run_failed(signed: &Signed, target: &str, e: &ReconcileError) -> Response {
    match e {
        ReconcileError::Store(e) => failed(signed.chrome("reconcile"), e),
        e => message(
            StatusCode::BAD_GATEWAY,
            signed.chrome("reconcile"),
            "Could not reconcile",
            format!("{target}: {e}"),
        ),
    }
}

/// `POST /ui/reconcile/{target}/dry-run`: reads the target and shows the plan.
pub async fn dry_run(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Path(target): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (handle, r) = match reconcilable(&console, &signed, &form.csrf, &target) {
        Ok(found) => found,
        Err(page) => return *page,
    };
    tracing::info!(who = %signed.session.who, %target, "console: reconciliation dry run");
    let p = match run(&console, &signed, &target, r, None).await {
        Ok(Ran::Planned(p)) => p,
        Ok(Ran::Failed(e)) => return run_failed(&signed, &target, &e),
        Ok(_) => return failed(signed.chrome("reconcile"), &"unexpected run outcome"),
        Err(page) => return *page,
    };
    let page = plan_page(signed.chrome("reconcile"), &handle, &p, false);
    audit(
        &console,
        &signed,
        draft(
            "reconcile.dry_run",
            &target,
            format!(
                "dry run of {target}: {} (plan {}); nothing changed",
                page.summary,
                short(&page.digest)
            ),
        ),
    )
    .await;
    html(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct ApplyForm {
    csrf: String,
    /// The digest of the plan the admin read.
    #[serde(default)]
    digest: String,
    /// The confirmation checkbox: `yes` when ticked.
    #[serde(default)]
    confirm: String,
}

/// `POST /ui/reconcile/{target}/apply`: plans again and applies, only if the plan is
/// the one confirmed.
pub async fn apply(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Path(target): Path<String>,
    Form(form): Form<ApplyForm>,
) -> Response {
    let (handle, r) = match reconcilable(&console, &signed, &form.csrf, &target) {
        Ok(found) => found,
        Err(page) => return *page,
    };
    if handle.paused {
        return message(
            StatusCode::CONFLICT,
            signed.chrome("reconcile"),
            "Target paused",
            format!(
                "{target} is paused, so nothing is applied to it: review the dry run, then remove `paused` from its [[targets]] table and reload the daemon."
            ),
        );
    }
    if form.confirm != "yes" || form.digest.is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            signed.chrome("reconcile"),
            "Not confirmed",
            "Nothing applied: tick \u{201c}I have read this plan\u{201d} under the plan to confirm it, then apply.",
        );
    }
    tracing::info!(who = %signed.session.who, %target, "console: reconciliation apply");
    match run(&console, &signed, &target, r, Some(form.digest.clone())).await {
        Err(page) => *page,
        Ok(Ran::Failed(e)) => run_failed(&signed, &target, &e),
        Ok(Ran::Planned(_)) => failed(signed.chrome("reconcile"), &"unexpected run outcome"),
        Ok(Ran::Changed(p)) => {
            let page = plan_page(signed.chrome("reconcile"), &handle, &p, true);
            audit(
                &console,
                &signed,
                draft(
                    "reconcile.apply",
                    &target,
                    format!(
                        "refused to apply plan {} to {target}: the plan is now {} ({}); nothing changed",
                        short(&form.digest),
                        short(&page.digest),
                        page.summary
                    ),
                ),
            )
            .await;
            html(StatusCode::CONFLICT, &page)
        }
        Ok(Ran::Applied(p, a)) => {
            let summary = p.summary();
            audit(
                &console,
                &signed,
                draft(
                    "reconcile.apply",
                    &target,
                    format!(
                        "applied plan {} to {target} ({summary}): {} queued, {} linked, {} deactivated, {} deleted, {} held back by the guard, {} error(s)",
                        short(&form.digest),
                        a.queued,
                        a.linked,
                        a.deactivated,
                        a.deleted,
                        a.held_back,
                        a.errors.len()
                    ),
                ),
            )
            .await;
            html(
                StatusCode::OK,
                &AppliedPage {
                    chrome: signed.chrome("reconcile"),
                    target,
                    summary,
                    applied: a,
                },
            )
        }
    }
}

fn draft(action: &'static str, target: &str, detail: String) -> OperatorDraft {
    OperatorDraft {
        via: "console",
        who: String::new(),
        action,
        target: Some(target.to_owned()),
        resource: None,
        detail,
    }
}

/// A digest's first characters, as records and pages name a plan.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

//! Acting on delivery (admin sessions only, each a POST with the session's CSRF
//! token): dead letters (retry, drop) and each target's mass-deprovisioning guard
//! (approve, reject), the CLI's `dlq` and `approve` with names instead of ids.
//! Every action is logged with the token that signed in (`who`) and recorded in the
//! provisioning log (`operator.action`), the audit trail admins and auditors read.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::Console;
use super::access::Signed;
use super::page::{Chrome, ago, failed, html, message, seg, when};
use super::people::{label, link};
use super::signin::CsrfForm;
use crate::delivery::matching::name_of;
use crate::directory::log::dead_letter_resource;
use crate::provlog::OperatorDraft;
use crate::scim::ResourceKind;
use crate::store::{Lookup, StoreError};

/// A resource as a page names it, and where its page is (empty once deleted).
#[derive(Clone)]
struct Named {
    name: String,
    link: String,
}

/// The entry of `names` for a resource, or its id when it has none.
fn named_in(
    names: &HashMap<(String, ResourceKind, String), Named>,
    provider: &str,
    kind: ResourceKind,
    id: &str,
) -> Named {
    names
        .get(&(provider.to_owned(), kind, id.to_owned()))
        .cloned()
        .unwrap_or_else(|| Named {
            name: id.to_owned(),
            link: String::new(),
        })
}

/// The names of `(provider, kind, id)`s: one index lookup per provider and kind,
/// then the deletion's event for any no longer stored.
async fn names(
    console: &Console,
    wanted: &[(String, ResourceKind, String)],
) -> Result<HashMap<(String, ResourceKind, String), Named>, StoreError> {
    let store = console.state.directory.store();
    let mut by: HashMap<(String, ResourceKind), Vec<String>> = HashMap::new();
    for (p, k, id) in wanted {
        by.entry((p.clone(), *k)).or_default().push(id.clone());
    }
    let mut out = HashMap::new();
    for ((p, k), ids) in by {
        for r in store.lookup(&p, k, Lookup::Ids(ids.clone())).await? {
            out.insert(
                (p.clone(), k, r.id.clone()),
                Named {
                    name: label(&r),
                    link: link(&p, k, &r.id),
                },
            );
        }
        for id in ids {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                out.entry((p.clone(), k, id.clone()))
            {
                let name = name_of(store.as_ref(), &p, k, &id).await?;
                slot.insert(Named {
                    name,
                    link: String::new(),
                });
            }
        }
    }
    Ok(out)
}

struct Letter {
    id: i64,
    target: String,
    name: String,
    link: String,
    kind: &'static str,
    provider: String,
    attempts: u32,
    queued: String,
    gave_up: String,
    error: String,
}

#[derive(Template)]
#[template(path = "dead_letters.html")]
struct DeadLetters {
    chrome: Chrome,
    letters: Vec<Letter>,
}

pub async fn dead_letters(State(console): State<Arc<Console>>, signed: Signed) -> Response {
    let chrome = signed.chrome("dead-letters");
    match letters(&console).await {
        Ok(letters) => html(StatusCode::OK, &DeadLetters { chrome, letters }),
        Err(e) => failed(chrome, &e),
    }
}

async fn letters(console: &Console) -> Result<Vec<Letter>, StoreError> {
    let store = console.state.directory.store();
    let all = store.dead_letters(None).await?;
    let wanted: Vec<_> = all
        .iter()
        .map(|l| (l.provider.clone(), l.kind, l.resource_id.clone()))
        .collect();
    let names = names(console, &wanted).await?;
    Ok(all
        .into_iter()
        .map(|l| {
            let named = named_in(&names, &l.provider, l.kind, &l.resource_id);
            Letter {
                id: l.id,
                target: l.target,
                name: named.name,
                link: named.link,
                kind: l.kind.name(),
                provider: l.provider,
                attempts: l.attempts,
                queued: when(l.queued_at),
                gave_up: when(l.at),
                error: l.error,
            }
        })
        .collect())
}

/// The dead letter `id` by name, for the notice after acting on it, and what the
/// audit record says of it.
async fn letter_name(
    console: &Console,
    id: i64,
) -> Result<Option<(String, crate::store::DeadLetter)>, StoreError> {
    let store = console.state.directory.store();
    let Some(l) = store
        .dead_letters(None)
        .await?
        .into_iter()
        .find(|l| l.id == id)
    else {
        return Ok(None);
    };
    let name = name_of(store.as_ref(), &l.provider, l.kind, &l.resource_id).await?;
    Ok(Some((format!("{name} → {}", l.target), l)))
}

/// Records what an admin did in the provisioning log. The action has happened
/// whatever this answers; a record that cannot be written is logged as an error, so
/// the gap in the trail is visible.
pub(super) async fn audit(console: &Console, signed: &Signed, draft: OperatorDraft) {
    let store = console.state.directory.store();
    let row = OperatorDraft {
        who: signed.session.who.clone(),
        ..draft
    }
    .row(console.state.clock.now());
    if let Err(e) = store.log_append(row).await {
        tracing::error!(who = %signed.session.who, error = %e, "cannot record a console action in the provisioning log");
    }
}

/// Back to `to` with `notice` for the next page.
async fn done(console: &Console, signed: &Signed, to: &str, notice: String) -> Response {
    console.sessions.notify(&signed.id, notice).await;
    Redirect::to(to).into_response()
}

/// What an admin does to a dead letter.
#[derive(Clone, Copy)]
enum LetterAction {
    Retry,
    Drop,
}

pub async fn retry(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    on_letter(&console, &signed, id, &form.csrf, LetterAction::Retry).await
}

pub async fn drop_letter(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    on_letter(&console, &signed, id, &form.csrf, LetterAction::Drop).await
}

async fn on_letter(
    console: &Console,
    signed: &Signed,
    id: i64,
    csrf: &str,
    action: LetterAction,
) -> Response {
    if let Err(refused) = signed.may_act(csrf) {
        return *refused;
    }
    let store = console.state.directory.store();
    let result = async {
        let found = letter_name(console, id).await?;
        let done = match action {
            LetterAction::Retry => {
                store
                    .requeue_dead_letter(id, console.state.clock.now())
                    .await?
            }
            LetterAction::Drop => store.drop_dead_letter(id).await?,
        };
        Ok::<_, StoreError>((found, done))
    }
    .await;
    let (logged, notice) = match action {
        LetterAction::Retry => (
            "console: dead letter queued again",
            "Queued again: {}. The running engine delivers it now.",
        ),
        LetterAction::Drop => ("console: dead letter dropped", "Dropped for good: {}."),
    };
    match result {
        Ok((Some((name, letter)), true)) => {
            tracing::info!(who = %signed.session.who, dead_letter = id, "{logged}");
            let (what, said) = match action {
                LetterAction::Retry => ("dlq.retry", "queued again"),
                LetterAction::Drop => ("dlq.drop", "dropped"),
            };
            let resource = dead_letter_resource(store.as_ref(), &letter).await.ok();
            audit(
                console,
                signed,
                OperatorDraft {
                    via: "console",
                    who: String::new(),
                    action: what,
                    target: Some(letter.target.clone()),
                    resource,
                    detail: format!(
                        "dead letter {id} ({name}) {said}; it had failed with: {}",
                        letter.error
                    ),
                },
            )
            .await;
            done(
                console,
                signed,
                "/ui/dead-letters",
                notice.replace("{}", &name),
            )
            .await
        }
        Ok(_) => gone(console, signed, id).await,
        Err(e) => failed(signed.chrome("dead-letters"), &e),
    }
}

async fn gone(console: &Console, signed: &Signed, id: i64) -> Response {
    done(
        console,
        signed,
        "/ui/dead-letters",
        format!("Dead letter {id} is no longer there (retried or dropped meanwhile)."),
    )
    .await
}

struct Held {
    name: String,
    link: String,
    kind: &'static str,
    provider: String,
    since: String,
}

struct GuardView {
    target: String,
    path: String,
    tripped: bool,
    state: String,
    held: Vec<Held>,
}

#[derive(Template)]
#[template(path = "guard.html")]
struct GuardsPage {
    chrome: Chrome,
    guards: Vec<GuardView>,
}

pub async fn guards(State(console): State<Arc<Console>>, signed: Signed) -> Response {
    let chrome = signed.chrome("guard");
    match guard_views(&console).await {
        Ok(guards) => html(StatusCode::OK, &GuardsPage { chrome, guards }),
        Err(e) => failed(chrome, &e),
    }
}

async fn guard_views(console: &Console) -> Result<Vec<GuardView>, StoreError> {
    let store = console.state.directory.store();
    let now = console.state.clock.now();
    let mut out = Vec::new();
    for t in console
        .state
        .targets
        .get()
        .iter()
        .filter(|t| t.delivery.is_some())
    {
        let g = store.guard(&t.name).await?;
        let held = store.held_by_guard(&t.name).await?;
        let wanted: Vec<_> = held
            .iter()
            .map(|h| (h.provider.clone(), h.kind, h.resource_id.clone()))
            .collect();
        let names = names(console, &wanted).await?;
        let state = match (g.tripped_at, g.approved_until.filter(|u| *u > now)) {
            (Some(at), _) => format!(
                "Tripped {} ago ({}): {}. Destructive changes wait here.",
                ago(now, at),
                when(at),
                g.reason.as_deref().unwrap_or("-")
            ),
            (None, Some(until)) => format!("Armed; approved until {}.", when(until)),
            (None, None) => "Armed: nothing held.".to_owned(),
        };
        out.push(GuardView {
            target: t.name.clone(),
            path: seg(&t.name),
            tripped: g.tripped_at.is_some(),
            state,
            held: held
                .into_iter()
                .map(|h| {
                    let named = named_in(&names, &h.provider, h.kind, &h.resource_id);
                    Held {
                        name: named.name,
                        link: named.link,
                        kind: h.kind.name(),
                        provider: h.provider,
                        since: when(h.queued_at),
                    }
                })
                .collect(),
        });
    }
    Ok(out)
}

pub async fn approve(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Path(target): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = signed.may_act(&form.csrf) {
        return *refused;
    }
    let Some(window) = console
        .targets
        .get()
        .iter()
        .find(|t| t.name == target)
        .map(|t| t.guard_window)
    else {
        return no_target(&signed, &target);
    };
    let now = console.state.clock.now();
    let until = now + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1));
    match console
        .state
        .directory
        .store()
        .approve_guard(&target, now, until)
        .await
    {
        Ok(true) => {
            tracing::info!(who = %signed.session.who, %target, "console: guard approved");
            audit(
                &console,
                &signed,
                OperatorDraft {
                    via: "console",
                    who: String::new(),
                    action: "guard.approve",
                    target: Some(target.clone()),
                    resource: None,
                    detail: format!(
                        "approved the held deactivations and deletions of {target}; the guard counts again from {}",
                        when(until)
                    ),
                },
            )
            .await;
            done(
                &console,
                &signed,
                "/ui/guard",
                format!(
                    "Approved: {target}'s held deactivations and deletions go ahead now; the guard counts again from {}.",
                    when(until)
                ),
            )
            .await
        }
        Ok(false) => {
            done(
                &console,
                &signed,
                "/ui/guard",
                format!("The guard of {target} is not tripped; nothing to approve."),
            )
            .await
        }
        Err(e) => failed(signed.chrome("guard"), &e),
    }
}

pub async fn reject(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Path(target): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = signed.may_act(&form.csrf) {
        return *refused;
    }
    if !console.targets.get().iter().any(|t| t.name == target) {
        return no_target(&signed, &target);
    }
    let reason = format!(
        "rejected at the mass-deprovisioning guard in the console (token {}); retry it from the dead letters to send it after all",
        signed.session.who
    );
    let now = console.state.clock.now();
    match console
        .state
        .directory
        .store()
        .reject_held(&target, &reason, now)
        .await
    {
        Ok(n) => {
            tracing::info!(who = %signed.session.who, %target, moved = n, "console: guard holds rejected");
            audit(
                &console,
                &signed,
                OperatorDraft {
                    via: "console",
                    who: String::new(),
                    action: "guard.reject",
                    target: Some(target.clone()),
                    resource: None,
                    detail: format!(
                        "rejected {n} held change(s) of {target}: moved to the dead letters"
                    ),
                },
            )
            .await;
            done(
                &console,
                &signed,
                "/ui/guard",
                format!(
                    "Rejected: {n} held change(s) of {target} moved to the dead letters; the guard is reset."
                ),
            )
            .await
        }
        Err(e) => failed(signed.chrome("guard"), &e),
    }
}

fn no_target(signed: &Signed, target: &str) -> Response {
    message(
        StatusCode::NOT_FOUND,
        signed.chrome("guard"),
        "Not found",
        format!("No target named {target:?} is configured."),
    )
}

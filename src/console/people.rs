//! People and groups: search through the store's indexes (exact userName, email,
//! display name, id or externalId, letter case ignored where the index ignores it:
//! a handful of index lookups per provider whatever the directory's size), and one
//! person's or group's page: attributes, groups or members, and per target whether
//! it is in scope and why, its account there, what it gets (a user's role and
//! manager, every mapped field, as `scim-bridge explain` works them out), the version
//! it last acknowledged and its delivery attempts.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::Console;
use super::ConsoleTarget;
use super::access::Signed;
use super::delivered::{last_delivered, standing};
use super::page::{Chrome, failed, html, message, seg, when};
use crate::config::TargetKind;
use crate::identity::{Outcome, manager_id};
use crate::scim::ResourceKind;
use crate::store::{Lookup, Store, StoreError, StoredResource};
use crate::targets::explain::{Gets, gets, placement};

/// The longest query taken; longer ones cannot be a name.
const MAX_QUERY: usize = 512;
/// Rows shown at most, for a search and for a group's members.
const MAX_ROWS: usize = 200;
/// Delivery attempts shown per target, newest first.
const ATTEMPTS_SHOWN: usize = 10;

/// The path segment of a kind in console links.
fn kind_segment(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    }
}

/// The kind a console link's segment names.
pub fn kind_from_segment(segment: &str) -> Option<ResourceKind> {
    match segment {
        "users" => Some(ResourceKind::User),
        "groups" => Some(ResourceKind::Group),
        _ => None,
    }
}

/// The console link to a stored user or group.
pub fn link(provider: &str, kind: ResourceKind, id: &str) -> String {
    format!(
        "/ui/people/{}/{}/{}",
        seg(provider),
        kind_segment(kind),
        seg(id)
    )
}

/// userName for a user, displayName for a group (else the other, else the id).
pub fn label(r: &StoredResource) -> String {
    let (first, second) = match r.kind {
        ResourceKind::User => ("userName", "displayName"),
        ResourceKind::Group => ("displayName", "userName"),
    };
    r.doc
        .get(first)
        .or_else(|| r.doc.get(second))
        .and_then(Value::as_str)
        .map_or_else(|| r.id.clone(), str::to_owned)
}

struct Hit {
    link: String,
    name: String,
    display: String,
    email: String,
    kind: &'static str,
    provider: String,
    active: &'static str,
}

#[derive(Template)]
#[template(path = "people.html")]
struct Search {
    chrome: Chrome,
    q: String,
    searched: bool,
    hits: Vec<Hit>,
    more: bool,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub async fn search(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Query(query): Query<SearchQuery>,
) -> Response {
    let chrome = signed.chrome("people");
    let q: String = query.q.trim().chars().take(MAX_QUERY).collect();
    let mut page = Search {
        chrome,
        q: q.clone(),
        searched: !q.is_empty(),
        hits: Vec::new(),
        more: false,
    };
    if q.is_empty() {
        return html(StatusCode::OK, &page);
    }
    match find(&console, &q).await {
        Ok(found) => {
            page.more = found.len() > MAX_ROWS;
            page.hits = found.iter().take(MAX_ROWS).map(hit).collect();
            html(StatusCode::OK, &page)
        }
        Err(e) => failed(page.chrome, &e),
    }
}

/// Users, then groups, of every provider that `q` names exactly through an index.
async fn find(console: &Console, q: &str) -> Result<Vec<StoredResource>, StoreError> {
    let store = console.state.directory.store();
    let one = || vec![q.to_owned()];
    let mut out = Vec::new();
    for kind in [ResourceKind::User, ResourceKind::Group] {
        for p in console.state.directory.providers() {
            let mut lookups = vec![
                Lookup::DisplayNames(one()),
                Lookup::Ids(one()),
                Lookup::ExternalIds(one()),
            ];
            if kind == ResourceKind::User {
                lookups.extend([Lookup::UserNames(one()), Lookup::Emails(one())]);
            }
            let mut seen = BTreeSet::new();
            let mut found = Vec::new();
            for l in lookups {
                for r in store.lookup(&p.name, kind, l).await? {
                    if seen.insert(r.seq) {
                        found.push(r);
                    }
                }
            }
            found.sort_by_key(|r| r.seq);
            out.extend(found);
        }
    }
    Ok(out)
}

fn hit(r: &StoredResource) -> Hit {
    let text = |k: &str| {
        r.doc
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Hit {
        link: link(&r.provider, r.kind, &r.id),
        name: label(r),
        display: text("displayName"),
        email: primary_email(&r.doc),
        kind: r.kind.name(),
        provider: r.provider.clone(),
        active: match r.doc.get("active").and_then(Value::as_bool) {
            Some(false) => "inactive",
            _ => "",
        },
    }
}

fn primary_email(doc: &Value) -> String {
    let emails = doc.get("emails").and_then(Value::as_array);
    let mut all = emails.into_iter().flatten();
    let primary = all
        .clone()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true));
    primary
        .or_else(|| all.next())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

struct Related {
    link: String,
    name: String,
}

struct Attempt {
    at: String,
    outcome: String,
    failed: bool,
    detail: String,
    took: String,
    events: String,
}

/// One provisioning-log record as the person page lists it.
struct LogLine {
    at: String,
    route: String,
    action: String,
    outcome: String,
    failed: bool,
    /// Old → new values of a change; the steps, calls or answer of an action.
    details: String,
}

/// Log records shown on a person's page, newest first.
const LOG_SHOWN: usize = 50;

struct PerTarget {
    name: String,
    /// The name as a path segment, for its provision-on-demand form.
    path: String,
    /// Paused: nothing is sent to it, on demand or otherwise.
    paused: bool,
    target_id: String,
    /// The account in words: how the bridge came to manage it, or what its first
    /// delivery does.
    account: String,
    in_scope: bool,
    why: String,
    /// A user's role there and the rule behind it (empty for a group).
    role: String,
    role_why: String,
    /// A user's manager as the target knows them, by name (empty for a group).
    manager: String,
    /// The version it last acknowledged, and when.
    delivered: String,
    /// The stored version is newer than that.
    pending: bool,
    /// What the mapping fills: field, value, the rule behind it.
    fields: Vec<(String, String, String)>,
    /// Why the mapping refuses it, or what the field list leaves unsaid.
    fields_note: String,
    attempts: Vec<Attempt>,
    more_attempts: usize,
}

#[derive(Template)]
#[template(path = "person.html")]
struct Person {
    chrome: Chrome,
    name: String,
    /// This page, where its forms post to.
    link: String,
    kind: &'static str,
    id: String,
    provider: String,
    version: i64,
    created: String,
    modified: String,
    attributes: Vec<(String, String)>,
    /// A user's groups, or a group's members.
    related_title: &'static str,
    related: Vec<Related>,
    related_more: usize,
    targets: Vec<PerTarget>,
    log: Vec<LogLine>,
    log_more: bool,
}

/// The stored user or group a console path names (`users` or `groups` as `kind`),
/// or the page that says there is none.
pub async fn stored(
    console: &Console,
    chrome: &Chrome,
    provider: &str,
    kind: &str,
    id: &str,
) -> Result<StoredResource, Box<Response>> {
    let Some(kind) = kind_from_segment(kind) else {
        return Err(Box::new(message(
            StatusCode::NOT_FOUND,
            chrome.clone(),
            "Not found",
            "No such page.",
        )));
    };
    match console
        .state
        .directory
        .store()
        .get(provider, kind, id)
        .await
    {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(Box::new(message(
            StatusCode::NOT_FOUND,
            chrome.clone(),
            "Not found",
            format!(
                "{provider} has no {} with id {id}.",
                kind.name().to_lowercase()
            ),
        ))),
        Err(e) => Err(Box::new(failed(chrome.clone(), &e))),
    }
}

pub async fn show(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Path((provider, kind, id)): Path<(String, String, String)>,
) -> Response {
    let chrome = signed.chrome("people");
    let r = match stored(&console, &chrome, &provider, &kind, &id).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    match person(&console, chrome.clone(), r).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(e) => failed(chrome, &e),
    }
}

async fn person(
    console: &Console,
    chrome: Chrome,
    r: StoredResource,
) -> Result<Person, StoreError> {
    let store = console.state.directory.store();
    let (related_title, mut related, related_more) = match r.kind {
        ResourceKind::User => {
            let groups = store.groups_of(&r.provider, &r.id).await?;
            let shown = groups
                .iter()
                .map(|(gid, name)| Related {
                    link: link(&r.provider, ResourceKind::Group, gid),
                    name: name.clone().unwrap_or_else(|| gid.clone()),
                })
                .collect();
            ("Groups", shown, 0)
        }
        ResourceKind::Group => {
            let members = store.members(&r.provider, &r.id).await?;
            let more = members.len().saturating_sub(MAX_ROWS);
            let shown: Vec<_> = members.into_iter().take(MAX_ROWS).collect();
            (
                "Members",
                named_members(console, &r.provider, &shown).await?,
                more,
            )
        }
    };
    related.sort_by_key(|r| r.name.to_lowercase());
    let attempts = store.delivery_attempts(&r.provider, r.kind, &r.id).await?;
    let delivered = last_delivered(store.as_ref(), &r).await?;
    let handles = console.state.targets.get();
    let mut targets = Vec::new();
    for t in console
        .targets
        .get()
        .iter()
        .filter(|t| t.receives(&r.provider))
    {
        let placed = placement(store.as_ref(), &t.config, &r.provider, r.kind, &r).await?;
        let view = what_it_gets(console, t, &r).await?;
        let last = delivered.get(&t.name);
        let copy = standing(
            last,
            r.version,
            &last.map(|d| when(d.at)).unwrap_or_default(),
        );
        let mine: Vec<_> = attempts.iter().filter(|a| a.target == t.name).collect();
        let shown = mine
            .iter()
            .rev()
            .take(ATTEMPTS_SHOWN)
            .map(|a| Attempt {
                at: when(a.at),
                outcome: a.outcome.clone(),
                failed: a.outcome != "delivered",
                detail: a.detail.clone().unwrap_or_default(),
                took: format!("{} ms", a.duration_ms),
                events: if a.from_seq + 1 == a.last_seq {
                    format!("#{}", a.last_seq)
                } else {
                    format!("#{}–#{}", a.from_seq + 1, a.last_seq)
                },
            })
            .collect();
        targets.push(PerTarget {
            name: t.name.clone(),
            path: seg(&t.name),
            paused: handles.iter().any(|h| h.name == t.name && h.paused),
            target_id: placed.target_id.unwrap_or_else(|| "none recorded".into()),
            account: placed.account,
            in_scope: placed.scope.in_scope,
            why: placed.scope.why,
            role: view.role,
            role_why: view.role_why,
            manager: view.manager,
            delivered: copy.text,
            pending: copy.pending,
            fields: view.fields,
            fields_note: view.note,
            attempts: shown,
            more_attempts: mine.len().saturating_sub(ATTEMPTS_SHOWN),
        });
    }
    let (log, log_more) = log_lines(store.as_ref(), &r).await?;
    Ok(Person {
        log,
        log_more,
        chrome,
        name: label(&r),
        link: link(&r.provider, r.kind, &r.id),
        kind: r.kind.name(),
        id: r.id.clone(),
        provider: r.provider.clone(),
        version: r.version,
        created: when(r.created),
        modified: when(r.last_modified),
        attributes: attributes(&r.doc),
        related_title,
        related,
        related_more,
        targets,
    })
}

/// What one target gets for `r`, as the person page words it.
struct View {
    role: String,
    role_why: String,
    manager: String,
    fields: Vec<(String, String, String)>,
    note: String,
}

/// `explain`'s account of what `t` gets for `r`: role and manager by name, and every
/// mapped field.
async fn what_it_gets(
    console: &Console,
    t: &ConsoleTarget,
    r: &StoredResource,
) -> Result<View, StoreError> {
    let store = console.state.directory.store().as_ref();
    let Gets {
        fields,
        note,
        role,
        manager,
    } = gets(store, &t.config, &r.provider, r.kind, r, &console.http).await?;
    let refused = fields.is_err();
    let (fields, note) = match fields {
        Ok(fields) => (
            fields
                .into_iter()
                .map(|f| {
                    let value = match f.value {
                        None => "(left out)".to_owned(),
                        Some(Value::String(s)) => s,
                        Some(other) => other.to_string(),
                    };
                    (f.field, value, f.source)
                })
                .collect(),
            note.unwrap_or_default().to_owned(),
        ),
        Err(e) => (
            Vec::new(),
            format!("cannot be mapped, so its deliveries are dead-lettered: {e}"),
        ),
    };
    let mut view = View {
        role: String::new(),
        role_why: String::new(),
        manager: String::new(),
        fields,
        note,
    };
    if r.kind != ResourceKind::User {
        return Ok(view);
    }
    let kind = t.config.kind();
    (view.role, view.role_why) = match (kind, role) {
        // The rules are never reached for a user the mapping refuses.
        (TargetKind::Scim, None) if refused => ("none".to_owned(), view.note.clone()),
        (TargetKind::Scim, Some((field, decided))) => {
            let role = match decided.outcome {
                Outcome::Set { role, .. } => role,
                Outcome::Keep { .. } => "the one the app holds (kept)".to_owned(),
                Outcome::Leave => "none (left out)".to_owned(),
                Outcome::Clear => "none (cleared at the app)".to_owned(),
            };
            (role, format!("{}; written to {field}", decided.why))
        }
        (TargetKind::Scim, None) => (
            "none".to_owned(),
            format!("{} sets no role rules for {}", t.name, r.provider),
        ),
        (TargetKind::Imanage, _) => (
            "none".to_owned(),
            "iManage has no user roles; access comes through its groups".to_owned(),
        ),
        (TargetKind::Webhook, _) => (
            "none".to_owned(),
            "webhooks get the resource as stored".to_owned(),
        ),
    };
    view.manager = match (kind, manager) {
        (TargetKind::Scim, Some(m)) => {
            let name = person_name(store, &r.provider, &m.id).await?;
            match m.target_id {
                Some(_) => name,
                None => format!("{name}: not at the target yet, so left out until delivered"),
            }
        }
        (TargetKind::Imanage, _) => "not sent: iManage users have no manager".to_owned(),
        (TargetKind::Webhook, _) => match manager_id(&r.doc) {
            Some(id) => format!(
                "{} (as stored, by the bridge's id)",
                person_name(store, &r.provider, id).await?
            ),
            None => "none".to_owned(),
        },
        (TargetKind::Scim, None) => "none".to_owned(),
    };
    Ok(view)
}

/// A user's name (userName), or the id when the bridge no longer has them.
async fn person_name(store: &dyn Store, provider: &str, id: &str) -> Result<String, StoreError> {
    Ok(match store.get(provider, ResourceKind::User, id).await? {
        Some(u) => label(&u),
        None => format!("{id} (no such user at the bridge)"),
    })
}

/// Members with their names, looked up by id in one query per kind.
async fn named_members(
    console: &Console,
    provider: &str,
    members: &[crate::scim::MemberRef],
) -> Result<Vec<Related>, StoreError> {
    let store = console.state.directory.store();
    let ids: Vec<String> = members.iter().map(|m| m.value.clone()).collect();
    let mut names: HashMap<String, (ResourceKind, String)> = HashMap::new();
    for kind in [ResourceKind::User, ResourceKind::Group] {
        for r in store
            .lookup(provider, kind, Lookup::Ids(ids.clone()))
            .await?
        {
            names.insert(r.id.clone(), (kind, label(&r)));
        }
    }
    Ok(members
        .iter()
        .map(|m| match names.get(&m.value) {
            Some((kind, name)) => Related {
                link: link(provider, *kind, &m.value),
                name: name.clone(),
            },
            None => Related {
                link: String::new(),
                name: m.display.clone().unwrap_or_else(|| m.value.clone()),
            },
        })
        .collect())
}

/// The document as `path → value` lines people read; never a password, whatever
/// a provider sent.
pub fn attributes(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Value::Object(map) = doc {
        for (k, v) in map {
            if matches!(k.as_str(), "schemas" | "meta" | "id" | "groups" | "members") {
                continue;
            }
            let name = match k.strip_prefix("urn:") {
                Some(urn) => urn
                    .split(':')
                    .skip_while(|s| *s != "extension")
                    .nth(1)
                    .unwrap_or(urn.rsplit(':').next().unwrap_or(urn))
                    .to_owned(),
                None => k.clone(),
            };
            flatten(&name, v, &mut out);
        }
    }
    out
}

fn secret_name(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
    last.contains("password") || last.contains("secret")
}

fn flatten(path: &str, v: &Value, out: &mut Vec<(String, String)>) {
    if secret_name(path) {
        return;
    }
    match v {
        Value::Null => {}
        Value::String(s) => out.push((path.to_owned(), s.clone())),
        Value::Bool(b) => out.push((path.to_owned(), b.to_string())),
        Value::Number(n) => out.push((path.to_owned(), n.to_string())),
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{path}.{k}"), v, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Object(m) => {
                        let label = m
                            .get("type")
                            .and_then(Value::as_str)
                            .map_or_else(|| (i + 1).to_string(), str::to_owned);
                        let primary = m.get("primary").and_then(Value::as_bool) == Some(true);
                        let at = format!("{path}[{label}]");
                        for (k, v) in m {
                            if matches!(k.as_str(), "type" | "primary") {
                                continue;
                            }
                            let key = if k == "value" {
                                at.clone()
                            } else {
                                format!("{at}.{k}")
                            };
                            let before = out.len();
                            flatten(&key, v, out);
                            if primary
                                && k == "value"
                                && out.len() > before
                                && let Some(last) = out.last_mut()
                            {
                                last.1.push_str(" (primary)");
                            }
                        }
                    }
                    other => flatten(&format!("{path}[{}]", i + 1), other, out),
                }
            }
        }
    }
}

/// The newest records of the provisioning log about `r`, in words.
async fn log_lines(
    store: &dyn crate::store::Store,
    r: &StoredResource,
) -> Result<(Vec<LogLine>, bool), StoreError> {
    use crate::provlog::render::{details, route};
    use crate::provlog::{LogQuery, Subject};
    let q = LogQuery {
        subject: Some(Subject {
            ids: vec![r.id.clone()],
            ..Subject::default()
        }),
        provider: Some(r.provider.clone()),
        limit: LOG_SHOWN + 1,
        ..LogQuery::default()
    };
    let mut entries = store.log_query(&q).await?;
    let more = entries.len() > LOG_SHOWN;
    entries.truncate(LOG_SHOWN);
    let names = crate::directory::log::member_names(store, &entries, 500).await?;
    let name = |id: &str| names.get(id).cloned();
    let lines = entries
        .iter()
        .map(|e| LogLine {
            details: details(e, &name),
            at: when(e.at),
            route: route(e),
            action: e.action().to_owned(),
            outcome: e.outcome().to_owned(),
            failed: matches!(e.outcome(), "dead" | "retrying"),
        })
        .collect();
    Ok((lines, more))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_read_flat_and_never_show_a_password() {
        let doc = json!({
            "schemas": ["x"], "id": "1", "userName": "ada@example.com",
            "password": "hunter2", "active": true,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Maths"},
        });
        let attrs = attributes(&doc);
        let text = format!("{attrs:?}");
        assert!(!text.contains("hunter2"));
        assert!(attrs.contains(&("name.givenName".into(), "Ada".into())));
        assert!(attrs.contains(&("emails[work]".into(), "ada@example.com (primary)".into())));
        assert!(attrs.contains(&("enterprise.department".into(), "Maths".into())));
        assert!(!attrs.iter().any(|(k, _)| k == "schemas" || k == "id"));
    }
}

//! The provisioning log's query as every reader asks it (`scim-bridge log`, the
//! admin API, the console): a person or group given as people know them (userName,
//! e-mail, displayName or id) resolved to the records about them, newest first, with
//! the names of the members a group change touched.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::provlog::{
    ACTION, ActionOutcome, CHANGE, LogEntry, LogQuery, MAX_LIMIT, OPERATOR, Subject, parse_time,
};
use crate::scim::ResourceKind;
use crate::scim::username::comparison_key;
use crate::store::{Lookup, Store, StoreError};

/// Whom a reader asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who<'a> {
    /// A user: userName, e-mail, displayName or id.
    Person(&'a str),
    /// A group: displayName or id.
    Group(&'a str),
}

/// The resources `who` names in any of `providers`, and the names themselves, so a
/// person deleted since (no resource left) is still found by what they were called.
pub async fn subject(
    store: &dyn Store,
    providers: &[String],
    who: Who<'_>,
) -> Result<Subject, StoreError> {
    let (text, kind, lookups): (&str, ResourceKind, Vec<Lookup>) = match who {
        Who::Person(t) => (
            t,
            ResourceKind::User,
            vec![
                Lookup::Ids(vec![t.to_owned()]),
                Lookup::UserNames(vec![t.to_owned()]),
                Lookup::Emails(vec![t.to_owned()]),
                Lookup::DisplayNames(vec![t.to_owned()]),
            ],
        ),
        Who::Group(t) => (
            t,
            ResourceKind::Group,
            vec![
                Lookup::Ids(vec![t.to_owned()]),
                Lookup::DisplayNames(vec![t.to_owned()]),
            ],
        ),
    };
    let text = text.trim();
    // The id itself: a resource deleted since is in the log under it.
    let mut ids = vec![text.to_owned()];
    for p in providers {
        for lookup in &lookups {
            for r in store.lookup(p, kind, lookup.clone()).await? {
                if !ids.contains(&r.id) {
                    ids.push(r.id);
                }
            }
        }
    }
    Ok(Subject {
        ids,
        user_name_keys: match who {
            Who::Person(_) => vec![comparison_key(text)],
            Who::Group(_) => Vec::new(),
        },
        display_names: vec![text.to_lowercase()],
    })
}

/// Why a log query was not run.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A filter the reader gave is not valid; the message says how to fix it.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The filters as a reader gives them (command-line options, query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// userName, e-mail, displayName or id.
    pub person: Option<String>,
    /// displayName or id.
    pub group: Option<String>,
    pub provider: Option<String>,
    pub target: Option<String>,
    /// `changes` or `actions`.
    pub only: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// RFC 3339, a date, or an age (`2h`).
    pub since: Option<String>,
    pub until: Option<String>,
    /// The cursor: records older than this log id.
    pub before: Option<i64>,
    pub limit: usize,
}

/// The query `f` asks for, its person or group resolved in `providers`.
pub async fn build(
    store: &dyn Store,
    providers: &[String],
    f: &Filters,
    now: DateTime<Utc>,
) -> Result<LogQuery, LogError> {
    let time = |t: &Option<String>| {
        t.as_deref()
            .map(|t| parse_time(t, now).map_err(LogError::Invalid))
            .transpose()
    };
    if f.person.is_some() && f.group.is_some() {
        return Err(LogError::Invalid(
            "give a person or a group, not both".into(),
        ));
    }
    if f.limit == 0 || f.limit > MAX_LIMIT {
        return Err(LogError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let kind = match f.only.as_deref() {
        None => None,
        Some("changes") => Some(CHANGE.to_owned()),
        Some("actions") => Some(ACTION.to_owned()),
        Some("operators") => Some(OPERATOR.to_owned()),
        Some(other) => {
            return Err(LogError::Invalid(format!(
                "only={other:?}: give `changes` (what identity providers sent), `actions` (what targets were sent) or `operators` (what admins did)"
            )));
        }
    };
    if let Some(o) = &f.outcome
        && !ActionOutcome::NAMES.contains(&o.as_str())
    {
        return Err(LogError::Invalid(format!(
            "outcome {o:?} is not one of {}",
            ActionOutcome::NAMES.join(", ")
        )));
    }
    if let Some(p) = &f.provider
        && !providers.contains(p)
    {
        return Err(LogError::Invalid(format!(
            "no provider named {p:?}; the providers are {}",
            providers.join(", ")
        )));
    }
    let who = match (&f.person, &f.group) {
        (Some(p), _) => Some(Who::Person(p)),
        (None, Some(g)) => Some(Who::Group(g)),
        (None, None) => None,
    };
    let searched: Vec<String> = match &f.provider {
        Some(p) => vec![p.clone()],
        None => providers.to_vec(),
    };
    let subject = match who {
        Some(w) => Some(subject(store, &searched, w).await?),
        None => None,
    };
    Ok(LogQuery {
        subject,
        provider: f.provider.clone(),
        resource_kind: match who {
            Some(Who::Person(_)) => Some(ResourceKind::User.name().to_owned()),
            Some(Who::Group(_)) => Some(ResourceKind::Group.name().to_owned()),
            None => None,
        },
        target: f.target.clone(),
        kind,
        action: f.action.clone(),
        outcome: f.outcome.clone(),
        since: time(&f.since)?,
        until: time(&f.until)?,
        before_id: f.before,
        change_seq: None,
        limit: f.limit,
    })
}

/// The records linked to `e`: for a change received, the actions that delivered it;
/// for an action, the changes it carried (records about the same resource that share
/// a change event), oldest first.
pub async fn linked(store: &dyn Store, e: &LogEntry) -> Result<Vec<LogEntry>, StoreError> {
    let Some((from, last)) = e.change_seqs() else {
        return Ok(Vec::new());
    };
    let mut q = LogQuery {
        subject: Some(Subject {
            ids: vec![e.resource().id],
            ..Subject::default()
        }),
        kind: Some(if e.kind == CHANGE { ACTION } else { CHANGE }.to_owned()),
        limit: 200,
        ..LogQuery::default()
    };
    let mut out: Vec<LogEntry> = Vec::new();
    // One query per change event the record spans (a coalesced delivery spans few;
    // a cap keeps a pathological span cheap).
    for seq in from..=last.min(from.saturating_add(100)) {
        q.change_seq = Some(seq);
        for l in store.log_query(&q).await? {
            if !out.iter().any(|o| o.id == l.id) {
                out.push(l);
            }
        }
    }
    out.sort_by_key(|l| l.id);
    Ok(out)
}

/// A record as the JSON outputs show it: its body with its log id, chain seq, time
/// and kind.
pub fn entry_json(e: &LogEntry) -> Value {
    let mut v = json!({
        "id": e.id,
        "seq": e.seq,
        "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "kind": e.kind,
    });
    if let (Value::Object(out), Value::Object(body)) = (&mut v, &e.body) {
        for (k, val) in body {
            out.insert(k.clone(), val.clone());
        }
    }
    v
}

/// The names of the members the entries' group changes list (at most the first
/// `limit` ids), by id: a record keeps ids, people read names.
pub async fn member_names(
    store: &dyn Store,
    entries: &[LogEntry],
    limit: usize,
) -> Result<HashMap<String, String>, StoreError> {
    let mut wanted: HashMap<String, Vec<String>> = HashMap::new();
    let mut count = 0;
    'outer: for e in entries {
        let (Some(provider), Some(m)) = (e.provider(), e.body.get("members")) else {
            continue;
        };
        for key in ["added", "removed"] {
            for id in m.get(key).and_then(Value::as_array).into_iter().flatten() {
                if let Some(id) = id.as_str() {
                    wanted
                        .entry(provider.to_owned())
                        .or_default()
                        .push(id.to_owned());
                    count += 1;
                    if count >= limit {
                        break 'outer;
                    }
                }
            }
        }
    }
    let mut names = HashMap::new();
    for (provider, ids) in wanted {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            for r in store
                .lookup(&provider, kind, Lookup::Ids(ids.clone()))
                .await?
            {
                let name = ["userName", "displayName"]
                    .iter()
                    .find_map(|k| r.doc.get(*k).and_then(Value::as_str));
                if let Some(n) = name {
                    names.insert(r.id.clone(), n.to_owned());
                }
            }
        }
    }
    Ok(names)
}

/// A dead letter's resource as a record names it: from the stored document, or once
/// deleted from the names its deletion kept.
pub async fn dead_letter_resource(
    store: &dyn Store,
    l: &crate::store::DeadLetter,
) -> Result<(String, crate::provlog::ResourceNames), StoreError> {
    use crate::provlog::ResourceNames;
    if let Some(r) = store.get(&l.provider, l.kind, &l.resource_id).await? {
        return Ok((l.provider.clone(), ResourceNames::of(l.kind, &r.id, &r.doc)));
    }
    let mut names = ResourceNames {
        kind: Some(l.kind),
        id: l.resource_id.clone(),
        ..ResourceNames::default()
    };
    let events = store
        .resource_events(&l.provider, l.kind, &l.resource_id, 0, i64::MAX)
        .await?;
    if let Some(last) = events.last() {
        last.detail.fill_deleted_names(&mut names);
    }
    Ok((l.provider.clone(), names))
}

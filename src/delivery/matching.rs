//! Correlation: before the bridge creates an account or group at a target, it looks for
//! one that already exists, by the target's ordered matching rules (Entra's "matching
//! attributes"). The first rule that finds anything decides:
//!
//! - exactly one account, managed by nobody else: **adopt** it (record its id, then
//!   update it);
//! - several, or one the bridge already manages for someone else: **ambiguous** —
//!   create nothing and dead-letter the change with every candidate named, for the
//!   admin to settle;
//! - nothing under any rule: **create**.
//!
//! The same rules decide links in reconciliation, over the target's snapshot instead of
//! searches, so `sync --dry-run` shows exactly what delivery will do.

use std::collections::HashMap;

use serde_json::Value;

use super::target::{Target, TargetError};
use crate::scim::ResourceKind;
use crate::store::{Managed, Store, StoreError};

/// Where a matching rule looks at the target (in the SCIM-shaped form targets give
/// their snapshot and candidates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchField {
    /// The target's own id (iManage: the login id).
    Id,
    UserName,
    ExternalId,
    /// Any of the account's emails.
    Email,
    DisplayName,
}

impl MatchField {
    /// The values of this field in a SCIM-shaped target document, lower-cased (matching
    /// ignores case, as iManage ids and emails do).
    pub fn values(self, doc: &Value) -> Vec<String> {
        let text = |k: &str| {
            doc.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_lowercase)
        };
        match self {
            MatchField::Id => text("id").into_iter().collect(),
            MatchField::UserName => text("userName").into_iter().collect(),
            MatchField::ExternalId => text("externalId").into_iter().collect(),
            MatchField::DisplayName => text("displayName").into_iter().collect(),
            MatchField::Email => doc
                .get("emails")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("value").and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .map(str::to_lowercase)
                .collect(),
        }
    }
}

/// One rule's question for one resource: "is there an account whose `field` is `value`?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchKey {
    /// The rule's configured name (`"email"`, `"userName"`, …), recorded as how an
    /// account was adopted.
    pub rule: String,
    pub field: MatchField,
    /// What the bridge's resource has, as the target would hold it.
    pub value: String,
}

impl MatchKey {
    /// A key for `rule`, unless the resource has no value for it (an empty value would
    /// match every account that lacks one too).
    pub fn new(rule: &str, field: MatchField, value: &str) -> Option<MatchKey> {
        (!value.trim().is_empty()).then(|| MatchKey {
            rule: rule.to_owned(),
            field,
            value: value.to_owned(),
        })
    }

    /// The documents a target's search returned that really match, as candidates:
    /// searches may match loosely (a part of an email, words of a name) or with
    /// another case rule than matching's, so the comparison is made here.
    pub fn candidates<'a>(&self, docs: impl IntoIterator<Item = &'a Value>) -> Vec<Candidate> {
        let want = self.value.to_lowercase();
        docs.into_iter()
            .filter(|d| self.field.values(d).contains(&want))
            .filter_map(Candidate::from_doc)
            .collect()
    }
}

/// An existing account or group at the target that a rule found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub target_id: String,
    /// How people know it: `JSMITH (John Smith, jsmith@firm.example)`.
    pub label: String,
}

impl Candidate {
    /// A candidate from a SCIM-shaped target document: its id, and its name, display
    /// name and first email for people to tell candidates apart.
    pub fn from_doc(doc: &Value) -> Option<Candidate> {
        let id = doc.get("id").and_then(Value::as_str)?.to_owned();
        let text = |k: &str| doc.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let name = text("userName").or(text("displayName")).unwrap_or(&id);
        let mut extra: Vec<&str> = Vec::new();
        if let Some(d) = text("displayName").filter(|d| *d != name) {
            extra.push(d);
        }
        if let Some(e) = doc
            .get("emails")
            .and_then(|e| e.get(0))
            .and_then(|e| e.get("value"))
            .and_then(Value::as_str)
        {
            extra.push(e);
        }
        let label = match (name == id, extra.is_empty()) {
            (true, true) => id.clone(),
            (true, false) => format!("{id} ({})", extra.join(", ")),
            (false, true) => format!("{name} [{id}]"),
            (false, false) => format!("{name} [{id}] ({})", extra.join(", ")),
        };
        Some(Candidate {
            target_id: id,
            label,
        })
    }
}

/// What correlation decided for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correlation {
    /// Nothing matched: create.
    Absent,
    /// Exactly one unclaimed account matched under `rule`: adopt it.
    Found { target_id: String, rule: String },
    /// Several accounts matched, or the one that matched is someone else's: create
    /// nothing; the message names every candidate and what to do.
    Ambiguous(String),
}

/// Who else holds a candidate: `Some(name)` when the bridge already manages it for
/// another resource.
pub type Claimed = Option<String>;

/// Decides from the candidates of the first rule that found any. `candidates` are in
/// rule order, each with who (if anyone else) the bridge already manages it for.
pub fn decide(
    target: &str,
    who: &str,
    found: Vec<(MatchKey, Vec<(Candidate, Claimed)>)>,
) -> Correlation {
    let Some((key, candidates)) = found.into_iter().find(|(_, c)| !c.is_empty()) else {
        return Correlation::Absent;
    };
    if let [(one, None)] = candidates.as_slice() {
        return Correlation::Found {
            target_id: one.target_id.clone(),
            rule: key.rule,
        };
    }
    let named: Vec<String> = candidates
        .iter()
        .map(|(c, claimed)| match claimed {
            Some(owner) => format!("{} (already managed for {owner})", c.label),
            None => c.label.clone(),
        })
        .collect();
    let what = if candidates.len() == 1 {
        format!(
            "the account at {target} that matches {who} by {} {:?} is already managed for someone else: {}",
            key.rule, key.value, named[0]
        )
    } else {
        format!(
            "{} accounts at {target} match {who} by {} {:?}: {}",
            candidates.len(),
            key.rule,
            key.value,
            named.join("; ")
        )
    };
    Correlation::Ambiguous(format!(
        "{what}. Nothing was created or changed. Make the match unique (at {target} or in the identity provider) or change [targets.matching], then `scim-bridge dlq retry`"
    ))
}

/// Why correlation could not decide.
#[derive(Debug, thiserror::Error)]
pub enum CorrelateError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Correlates one resource at delivery time, asking the target rule by rule.
/// `resource_id` is the bridge's id: an account the store already links to this same
/// resource is not "someone else's".
pub async fn correlate(
    store: &dyn Store,
    target: &dyn Target,
    provider: &str,
    kind: ResourceKind,
    resource_id: &str,
    doc: &Value,
) -> Result<Correlation, CorrelateError> {
    let mut found = Vec::new();
    for key in target.match_keys(provider, kind, doc) {
        let candidates = target.find(kind, &key).await?;
        let mut judged = Vec::with_capacity(candidates.len());
        for c in candidates {
            let owner = store
                .target_owner(target.name(), kind, &c.target_id)
                .await?;
            let claimed = match owner {
                Some(m) if holds(store, &m, provider, resource_id).await? => {
                    Some(name_of(store, &m.provider, m.kind, &m.resource_id).await?)
                }
                _ => None,
            };
            judged.push((c, claimed));
        }
        let stop = !judged.is_empty();
        found.push((key, judged));
        if stop {
            break;
        }
    }
    Ok(decide(target.name(), &resource_label(kind, doc), found))
}

/// Whether `m`'s link keeps its account from being adopted for another resource: it
/// does unless it is that same resource, or its resource was deleted in the IdP (a
/// person deleted and assigned again, under a new id, gets their account back).
pub async fn holds(
    store: &dyn Store,
    m: &Managed,
    provider: &str,
    resource_id: &str,
) -> Result<bool, StoreError> {
    if m.provider == provider && m.resource_id == resource_id {
        return Ok(false);
    }
    Ok(store
        .get(&m.provider, m.kind, &m.resource_id)
        .await?
        .is_some())
}

/// A bridge resource's name for people: userName or displayName, else its id.
pub async fn name_of(
    store: &dyn Store,
    provider: &str,
    kind: ResourceKind,
    id: &str,
) -> Result<String, StoreError> {
    if let Some(r) = store.get(provider, kind, id).await? {
        return Ok(resource_label(kind, &r.doc));
    }
    // Deleted: its delete event keeps the names it had.
    let events = store
        .resource_events(provider, kind, id, 0, i64::MAX)
        .await?;
    let named = events.iter().rev().find_map(|e| e.detail.name());
    Ok(match named {
        Some(n) => format!("{n} (deleted)"),
        None => format!("{provider} {} {id} (deleted)", kind.name().to_lowercase()),
    })
}

/// userName for users, displayName for groups; the id when neither is there.
pub fn resource_label(kind: ResourceKind, doc: &Value) -> String {
    let key = match kind {
        ResourceKind::User => "userName",
        ResourceKind::Group => "displayName",
    };
    doc.get(key)
        .and_then(Value::as_str)
        .or_else(|| doc.get("id").and_then(Value::as_str))
        .unwrap_or("?")
        .to_owned()
}

/// The target's documents indexed by each field, for correlating over a snapshot.
#[derive(Debug, Default)]
pub struct SnapshotIndex {
    by: HashMap<(MatchField, String), Vec<usize>>,
}

impl SnapshotIndex {
    pub fn new(docs: &[Value]) -> Self {
        let mut by: HashMap<(MatchField, String), Vec<usize>> = HashMap::new();
        for (i, d) in docs.iter().enumerate() {
            for field in [
                MatchField::Id,
                MatchField::UserName,
                MatchField::ExternalId,
                MatchField::Email,
                MatchField::DisplayName,
            ] {
                for v in field.values(d) {
                    let slot = by.entry((field, v)).or_default();
                    if !slot.contains(&i) {
                        slot.push(i);
                    }
                }
            }
        }
        Self { by }
    }

    /// Positions of the documents whose `key.field` equals `key.value`, ignoring case.
    pub fn find(&self, key: &MatchKey) -> &[usize] {
        self.by
            .get(&(key.field, key.value.to_lowercase()))
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(rule: &str, field: MatchField, value: &str) -> MatchKey {
        MatchKey {
            rule: rule.into(),
            field,
            value: value.into(),
        }
    }

    fn cand(id: &str) -> Candidate {
        Candidate {
            target_id: id.into(),
            label: id.into(),
        }
    }

    #[test]
    fn the_first_rule_that_finds_anything_decides() {
        let found = vec![
            (key("id", MatchField::Id, "JOHN.SMITH"), vec![]),
            (
                key("email", MatchField::Email, "john@firm"),
                vec![(cand("JSMITH"), None)],
            ),
        ];
        assert_eq!(
            decide("imanage", "john", found),
            Correlation::Found {
                target_id: "JSMITH".into(),
                rule: "email".into()
            }
        );
        assert_eq!(decide("imanage", "john", vec![]), Correlation::Absent);
        assert_eq!(
            decide(
                "imanage",
                "john",
                vec![(key("id", MatchField::Id, "X"), vec![])]
            ),
            Correlation::Absent
        );
    }

    #[test]
    fn several_candidates_or_someone_elses_account_create_nothing() {
        let two = vec![(
            key("email", MatchField::Email, "shared@firm"),
            vec![(cand("ASMITH"), None), (cand("BSMITH"), None)],
        )];
        let Correlation::Ambiguous(why) = decide("imanage", "a.smith@firm", two) else {
            panic!("two candidates must be ambiguous");
        };
        assert!(why.contains("2 accounts at imanage match a.smith@firm by email"));
        assert!(why.contains("ASMITH") && why.contains("BSMITH"));
        let taken = vec![(
            key("email", MatchField::Email, "shared@firm"),
            vec![(cand("JSMITH"), Some("john.smith@firm".into()))],
        )];
        let Correlation::Ambiguous(why) = decide("imanage", "jane@firm", taken) else {
            panic!("someone else's account must not be adopted");
        };
        assert!(why.contains("already managed for john.smith@firm"), "{why}");
    }

    #[test]
    fn the_snapshot_index_ignores_case_and_reads_every_email() {
        let docs = vec![
            json!({"id": "JSMITH", "userName": "JSMITH", "emails": [{"value": "J.Smith@Firm.example"}, {"value": "john@firm.example"}]}),
            json!({"id": "ARCHIVIST", "userName": "ARCHIVIST"}),
        ];
        let index = SnapshotIndex::new(&docs);
        assert_eq!(
            index.find(&key("email", MatchField::Email, "john@FIRM.example")),
            &[0]
        );
        assert_eq!(index.find(&key("id", MatchField::Id, "archivist")), &[1]);
        assert!(
            index
                .find(&key("email", MatchField::Email, "nobody@firm"))
                .is_empty()
        );
    }

    #[test]
    fn candidates_are_named_for_people() {
        let c = Candidate::from_doc(&json!({"id": "JSMITH", "userName": "JSMITH", "displayName": "John Smith", "emails": [{"value": "js@firm"}]})).unwrap();
        assert_eq!(c.label, "JSMITH (John Smith, js@firm)");
        let c = Candidate::from_doc(&json!({"id": "8f1c", "userName": "ann@firm"})).unwrap();
        assert_eq!(c.label, "ann@firm [8f1c]");
    }
}

//! The mutation algorithm, written once for both engines.
//!
//! [`plan`] turns a [`Mutation`] and the stored row it applies to (as the engine read
//! it: locked on PostgreSQL, under the single writer on SQLite) into the row
//! operations to run, in order. The engine runs each [`Step`] in its own SQL and
//! hands what it found back to the [`Tally`], which decides (member checks, the
//! userName check) and builds the change event's [`EventDetail`]. The engine then
//! writes that event. So the order of the writes, the checks and the event detail
//! exist once; the engines differ only in how a step is spelled in SQL (one
//! statement per row on SQLite, one per set on PostgreSQL).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::provlog::{LogRow, MembersChanged};
use crate::scim::{MemberRef, ResourceKind};
use crate::store::{
    ChangeOp, Committed, EventDetail, IndexKeys, MemberChange, MemberCheck, Mutation, MutationKind,
    StoreError, UserNameKey,
};

/// The stored row a change applies to, as the engine read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Current {
    /// The row's seq (the key member and e-mail rows point at).
    pub seq: i64,
    /// The stored version.
    pub version: i64,
    /// `meta.created`.
    pub created: DateTime<Utc>,
    /// The stored document's text (read by deletions only).
    pub doc: String,
    /// The userName key and its look-alike mark (see `store::rekey`).
    pub user_name: UserNameKey,
}

/// One row operation. Steps act on "the resource": the current row's seq, or the
/// one the [`Step::Insert`] created.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step<'m> {
    /// Inserts the resource row at version 1 (created and last modified at the
    /// change's time). The unique indexes decide conflicts, which the engine names
    /// with [`user_name_taken`] or [`StoreError::DuplicateId`]; probing first would
    /// cost two index lookups on every create. Answer [`Answer::Done`].
    Insert { keys: IndexKeys, doc: &'m Value },
    /// Which resource holds this userName key unmarked: [`Answer::Holder`].
    FindUserNameHolder { key: String },
    /// Rewrites the row: new version, document, index keys and look-alike mark.
    Update {
        version: i64,
        keys: IndexKeys,
        doc: &'m Value,
        dup: i64,
    },
    /// A new version and last-modified time, the document unchanged.
    Touch { version: i64 },
    /// The oldest user marked as a look-alike of `key` takes the name over.
    PromoteLookAlike { key: String },
    /// Removes the resource's e-mail index rows.
    DeleteEmails,
    /// Adds e-mail index rows (duplicates ignored).
    InsertEmails { emails: Vec<String> },
    /// What each member names: [`Answer::Found`], one kind (or none) per member,
    /// in order. Looked up in the change's transaction, so a member deleted
    /// concurrently is refused or removed again by its deletion.
    LookUpMembers { refs: &'m [MemberRef] },
    /// Adds members after the existing ones, in order, ignoring present ones:
    /// [`Answer::Ids`] of those that were not members yet, in order.
    AddMembers { refs: &'m [MemberRef] },
    /// Removes these members: [`Answer::Ids`] of those that were members, in order.
    RemoveMembers { ids: &'m [String] },
    /// Removes every member row of the resource.
    ClearMembers,
    /// The resource's members by position: [`Answer::Ids`].
    ListMembers,
    /// Deletes the resource row.
    Delete,
    /// Removes the resource from every group of its provider (RFC 7644 §3.6); a
    /// target drops those memberships when it deletes the resource itself.
    DropMemberships,
}

/// What the engine found running a step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// The step wrote; nothing to report.
    Done,
    /// The seq of the resource holding a userName key, if any.
    Holder(Option<i64>),
    /// Per member looked up: the kind of the resource it names, if any.
    Found(Vec<Option<ResourceKind>>),
    /// Member ids.
    Ids(Vec<String>),
}

/// The change event a mutation writes once its steps have run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// What happened.
    pub op: ChangeOp,
    /// The resource's version after the change.
    pub version: i64,
    /// What the event records.
    pub detail: EventDetail,
    created: DateTime<Utc>,
    at: DateTime<Utc>,
}

impl Event {
    /// The provisioning-log row of `m`, if it carries a draft, once its event is
    /// written as `event_seq`: the draft finished with the member delta applied and,
    /// for a deletion, the names the resource had.
    pub(crate) fn log_row(&self, m: &Mutation, event_seq: i64) -> Option<LogRow> {
        let prepared = m.log.as_ref()?;
        let mut prepared = std::borrow::Cow::Borrowed(prepared);
        if matches!(self.detail, EventDetail::Deleted { .. }) {
            self.detail
                .fill_deleted_names(&mut prepared.to_mut().resource);
        }
        let members = MembersChanged {
            added: self.detail.added(),
            removed: self.detail.removed(),
            replaced: self.detail.replaced(),
        };
        Some(prepared.row(self.at, event_seq, self.version, members))
    }

    /// The caller's answer once the event is written as `event_seq`.
    pub(crate) fn committed(&self, event_seq: i64) -> Committed {
        Committed {
            version: self.version,
            created: self.created,
            last_modified: self.at,
            event_seq,
        }
    }
}

/// The steps of `m` applied to `current` (`None`: no such resource), and the tally
/// that checks their answers. Fails before any step when the resource is missing or
/// at another version than the one `m` expects.
pub(crate) fn plan<'m>(
    m: &'m Mutation,
    current: Option<Current>,
) -> Result<(Vec<Step<'m>>, Tally<'m>), StoreError> {
    let group = m.kind == ResourceKind::Group;
    let mut steps = Vec::new();
    let tally = match &m.change {
        MutationKind::Create { doc, members } => {
            let keys = IndexKeys::from_doc(m.kind, doc);
            let emails = keys.emails.clone();
            steps.push(Step::Insert { keys, doc });
            insert_emails(&mut steps, emails);
            if group {
                // After the insert: a group naming itself is found, and refused as
                // its own member rather than as unknown.
                add_members(&mut steps, m, members);
            }
            Tally::new(m, ChangeOp::Create, 1, m.at, None)
        }
        MutationKind::Update { doc, members } => {
            let cur = expected(m, current)?;
            let version = cur.version + 1;
            match doc {
                Some(doc) => {
                    let keys = IndexKeys::from_doc(m.kind, doc);
                    let dup = cur.user_name.dup_after(&keys);
                    if let (0, Some(key)) = (dup, &keys.user_name) {
                        steps.push(Step::FindUserNameHolder { key: key.clone() });
                    }
                    let freed = cur.user_name.freed_by(&keys).map(str::to_owned);
                    let emails = keys.emails.clone();
                    steps.push(Step::Update {
                        version,
                        keys,
                        doc,
                        dup,
                    });
                    if let Some(key) = freed {
                        steps.push(Step::PromoteLookAlike { key });
                    }
                    steps.push(Step::DeleteEmails);
                    insert_emails(&mut steps, emails);
                }
                None => steps.push(Step::Touch { version }),
            }
            if group {
                for change in members {
                    match change {
                        MemberChange::Add(refs) => add_members(&mut steps, m, refs),
                        MemberChange::Remove(ids) => {
                            if !ids.is_empty() {
                                steps.push(Step::RemoveMembers { ids });
                            }
                        }
                        MemberChange::RemoveAll => steps.push(Step::ClearMembers),
                        MemberChange::ReplaceAll(refs) => {
                            look_up_members(&mut steps, m, refs);
                            steps.push(Step::ClearMembers);
                            if !refs.is_empty() {
                                steps.push(Step::AddMembers { refs });
                            }
                        }
                    }
                }
            }
            Tally::new(m, ChangeOp::Update, version, cur.created, Some(cur.seq))
        }
        MutationKind::Delete => {
            let cur = expected(m, current)?;
            if group {
                // Before the rows go: targets that cannot delete groups (iManage)
                // empty them first.
                steps.push(Step::ListMembers);
            }
            steps.push(Step::Delete);
            if let Some(key) = cur.user_name.freed_by(&IndexKeys::default()) {
                steps.push(Step::PromoteLookAlike {
                    key: key.to_owned(),
                });
            }
            steps.push(Step::DeleteEmails);
            steps.push(Step::ClearMembers);
            steps.push(Step::DropMemberships);
            // Stored documents are written by the bridge and always parse; one that
            // did not still deletes, with no names recorded.
            let old: Value = serde_json::from_str(&cur.doc).unwrap_or(Value::Null);
            let mut tally = Tally::new(
                m,
                ChangeOp::Delete,
                cur.version + 1,
                cur.created,
                Some(cur.seq),
            );
            tally.deleted = Some(EventDetail::deleted(&old, None));
            tally
        }
    };
    Ok((steps, tally))
}

fn expected(m: &Mutation, current: Option<Current>) -> Result<Current, StoreError> {
    let cur = current.ok_or(StoreError::NotFound)?;
    if let Some(expected) = m.expected_version
        && expected != cur.version
    {
        return Err(StoreError::VersionMismatch {
            expected,
            found: cur.version,
        });
    }
    Ok(cur)
}

fn insert_emails(steps: &mut Vec<Step<'_>>, emails: Vec<String>) {
    if !emails.is_empty() {
        steps.push(Step::InsertEmails { emails });
    }
}

/// Members a change adds are checked first when the caller asks for it (see
/// [`Mutation::check_members`]).
fn look_up_members<'m>(steps: &mut Vec<Step<'m>>, m: &Mutation, refs: &'m [MemberRef]) {
    if m.check_members && !refs.is_empty() {
        steps.push(Step::LookUpMembers { refs });
    }
}

fn add_members<'m>(steps: &mut Vec<Step<'m>>, m: &Mutation, refs: &'m [MemberRef]) {
    look_up_members(steps, m, refs);
    if !refs.is_empty() {
        steps.push(Step::AddMembers { refs });
    }
}

/// Collects the answers to a plan's steps: refuses what they found wrong and builds
/// the change event.
#[derive(Debug)]
pub(crate) struct Tally<'m> {
    m: &'m Mutation,
    op: ChangeOp,
    version: i64,
    created: DateTime<Utc>,
    /// The changed row's seq: a userName key it holds itself is not taken.
    own_seq: Option<i64>,
    delta: MemberDelta,
    /// A deletion's names; its member list fills `removed`.
    deleted: Option<EventDetail>,
}

impl<'m> Tally<'m> {
    fn new(
        m: &'m Mutation,
        op: ChangeOp,
        version: i64,
        created: DateTime<Utc>,
        own_seq: Option<i64>,
    ) -> Self {
        Tally {
            m,
            op,
            version,
            created,
            own_seq,
            delta: MemberDelta::default(),
            deleted: None,
        }
    }

    /// Takes in what running `step` found; an error refuses the whole change.
    pub(crate) fn record(&mut self, step: &Step<'_>, answer: Answer) -> Result<(), StoreError> {
        match (step, answer) {
            (Step::FindUserNameHolder { key }, Answer::Holder(holder)) => match holder {
                Some(seq) if Some(seq) != self.own_seq => Err(user_name_taken(self.m, Some(key))),
                _ => Ok(()),
            },
            (Step::LookUpMembers { refs }, Answer::Found(kinds)) if kinds.len() == refs.len() => {
                let mut check = MemberCheck::new(self.m);
                for (r, kind) in refs.iter().zip(kinds) {
                    check.found(r, kind);
                }
                check.finish()
            }
            (Step::AddMembers { .. }, Answer::Ids(ids)) => {
                ids.iter().for_each(|id| self.delta.add(id));
                Ok(())
            }
            (Step::RemoveMembers { .. }, Answer::Ids(ids)) => {
                ids.iter().for_each(|id| self.delta.remove(id));
                Ok(())
            }
            (Step::ClearMembers, Answer::Done) => {
                self.delta.replace();
                Ok(())
            }
            (Step::ListMembers, Answer::Ids(ids)) => {
                if let Some(EventDetail::Deleted { removed, .. }) = &mut self.deleted {
                    *removed = Some(ids);
                }
                Ok(())
            }
            (
                Step::Insert { .. }
                | Step::Update { .. }
                | Step::Touch { .. }
                | Step::PromoteLookAlike { .. }
                | Step::DeleteEmails
                | Step::InsertEmails { .. }
                | Step::Delete
                | Step::DropMemberships,
                Answer::Done,
            ) => Ok(()),
            (step, answer) => Err(StoreError::Database(format!(
                "the engine answered {answer:?} to {step:?}"
            ))),
        }
    }

    /// The change event, once every step has run.
    pub(crate) fn event(self) -> Event {
        let detail = match (self.deleted, self.m.kind) {
            (Some(deleted), _) => deleted,
            (None, ResourceKind::Group) => self.delta.into_detail(self.op),
            (None, ResourceKind::User) => EventDetail::Plain,
        };
        Event {
            op: self.op,
            version: self.version,
            detail,
            created: self.created,
            at: self.m.at,
        }
    }
}

/// The conflict on `userName`, naming it as the client wrote it (else its key).
pub(crate) fn user_name_taken(m: &Mutation, key: Option<&str>) -> StoreError {
    let doc = match &m.change {
        MutationKind::Create { doc, .. } => Some(doc),
        MutationKind::Update { doc, .. } => doc.as_ref(),
        MutationKind::Delete => None,
    };
    StoreError::Uniqueness {
        attribute: "userName",
        value: doc
            .and_then(|d| d.get("userName"))
            .and_then(Value::as_str)
            .or(key)
            .unwrap_or_default()
            .to_owned(),
    }
}

/// A group's membership change within one mutation, as its change event records it.
///
/// Each member touched appears once: in `added` when it is a member afterwards, in
/// `removed` when it is not. Steps inside one PATCH (remove A, then add A) therefore
/// never leave a member in both lists, and applying the lists in either order gives
/// the same set.
#[derive(Debug, Default)]
struct MemberDelta {
    touched: Vec<(String, bool)>,
    at: HashMap<String, usize>,
    replaced: bool,
}

impl MemberDelta {
    /// `id` became a member (it was not one before this step).
    fn add(&mut self, id: &str) {
        self.touch(id, true);
    }

    /// `id` stopped being a member.
    fn remove(&mut self, id: &str) {
        self.touch(id, false);
    }

    /// The whole list was replaced: delivery reads the set instead of a delta.
    fn replace(&mut self) {
        self.replaced = true;
    }

    fn touch(&mut self, id: &str, member: bool) {
        match self.at.get(id) {
            Some(&i) => {
                if let Some(entry) = self.touched.get_mut(i) {
                    entry.1 = member;
                }
            }
            None => {
                self.at.insert(id.to_owned(), self.touched.len());
                self.touched.push((id.to_owned(), member));
            }
        }
    }

    /// A created group lists its members; a changed one its deltas, or that its
    /// list was replaced.
    fn into_detail(self, op: ChangeOp) -> EventDetail {
        if self.replaced {
            return EventDetail::Replaced;
        }
        let (added, removed): (Vec<_>, Vec<_>) = self.touched.into_iter().partition(|t| t.1);
        let ids = |v: Vec<(String, bool)>| v.into_iter().map(|t| t.0).collect::<Vec<_>>();
        match op {
            ChangeOp::Create => EventDetail::Created { added: ids(added) },
            ChangeOp::Update | ChangeOp::Delete => EventDetail::Updated {
                added: ids(added),
                removed: ids(removed),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::store::MemberProblem;

    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).single().unwrap()
    }

    fn mutation(kind: ResourceKind, change: MutationKind) -> Mutation {
        Mutation {
            provider: "p".into(),
            kind,
            id: "g".into(),
            expected_version: None,
            at: at(),
            request_id: None,
            check_members: true,
            log: None,
            change,
        }
    }

    fn member(id: &str) -> MemberRef {
        MemberRef {
            value: id.into(),
            kind: None,
            display: None,
        }
    }

    fn current(doc: Value) -> Current {
        Current {
            seq: 7,
            version: 3,
            created: at() - chrono::Duration::days(1),
            doc: doc.to_string(),
            user_name: UserNameKey::default(),
        }
    }

    /// Runs a plan against canned answers, as an engine would.
    fn run(
        m: &Mutation,
        cur: Option<Current>,
        mut answer: impl FnMut(&Step<'_>) -> Answer,
    ) -> Result<(Vec<String>, Event), StoreError> {
        let (steps, mut tally) = plan(m, cur)?;
        let mut names = Vec::new();
        for step in &steps {
            names.push(
                format!("{step:?}")
                    .split([' ', '{', '('])
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            );
            tally.record(step, answer(step))?;
        }
        Ok((names, tally.event()))
    }

    fn done(_: &Step<'_>) -> Answer {
        Answer::Done
    }

    #[test]
    fn a_group_is_inserted_before_its_members_are_checked_and_added() {
        let members = vec![member("a"), member("b"), member("a")];
        let m = mutation(
            ResourceKind::Group,
            MutationKind::Create {
                doc: json!({"displayName": "G", "emails": [{"value": "G@X"}]}),
                members,
            },
        );
        let (steps, event) = run(&m, None, |s| match s {
            Step::LookUpMembers { refs } => {
                Answer::Found(vec![Some(ResourceKind::User); refs.len()])
            }
            Step::AddMembers { .. } => Answer::Ids(vec!["a".into(), "b".into()]),
            _ => Answer::Done,
        })
        .unwrap();
        assert_eq!(
            steps,
            ["Insert", "InsertEmails", "LookUpMembers", "AddMembers"]
        );
        assert_eq!(event.op, ChangeOp::Create);
        assert_eq!(event.detail.to_json(), json!({"added": ["a", "b"]}));
        assert_eq!(
            event.committed(42),
            Committed {
                version: 1,
                created: at(),
                last_modified: at(),
                event_seq: 42
            }
        );
    }

    #[test]
    fn a_user_records_nothing_and_its_members_are_never_touched() {
        let m = mutation(
            ResourceKind::User,
            MutationKind::Create {
                doc: json!({"userName": "bob"}),
                members: vec![member("x")],
            },
        );
        let (steps, event) = run(&m, None, done).unwrap();
        assert_eq!(steps, ["Insert"]);
        assert_eq!(event.detail, EventDetail::Plain);
        assert_eq!(event.detail.to_json(), json!({}));
    }

    #[test]
    fn unknown_members_refuse_the_change_before_anything_is_added() {
        let m = mutation(
            ResourceKind::Group,
            MutationKind::Update {
                doc: None,
                members: vec![MemberChange::Add(vec![member("a"), member("zz")])],
            },
        );
        let mut asked = Vec::new();
        let err = run(&m, Some(current(json!({}))), |s| {
            asked.push(format!("{s:?}"));
            match s {
                Step::LookUpMembers { .. } => Answer::Found(vec![Some(ResourceKind::User), None]),
                _ => Answer::Done,
            }
        })
        .unwrap_err();
        assert!(matches!(
            err,
            StoreError::Members(MemberProblem::Unknown { ref first, count: 1 }) if first == &["zz"]
        ));
        assert!(
            !asked.iter().any(|s| s.starts_with("AddMembers")),
            "{asked:?}"
        );
    }

    #[test]
    fn member_changes_in_one_patch_list_each_member_once() {
        let removes = vec!["b".to_string(), "a".to_string()];
        let m = mutation(
            ResourceKind::Group,
            MutationKind::Update {
                doc: None,
                members: vec![
                    MemberChange::Remove(removes),
                    MemberChange::Add(vec![member("a"), member("c")]),
                    MemberChange::Remove(vec![]),
                ],
            },
        );
        let (steps, event) = run(&m, Some(current(json!({}))), |s| match s {
            Step::RemoveMembers { .. } => Answer::Ids(vec!["b".into(), "a".into()]),
            Step::LookUpMembers { refs } => {
                Answer::Found(vec![Some(ResourceKind::User); refs.len()])
            }
            Step::AddMembers { .. } => Answer::Ids(vec!["a".into(), "c".into()]),
            _ => Answer::Done,
        })
        .unwrap();
        assert_eq!(
            steps,
            ["Touch", "RemoveMembers", "LookUpMembers", "AddMembers"]
        );
        assert_eq!(
            event.detail.to_json(),
            json!({"added": ["a", "c"], "removed": ["b"]})
        );
        assert_eq!(event.version, 4);
        assert_eq!(event.committed(1).created, at() - chrono::Duration::days(1));
    }

    #[test]
    fn a_replaced_list_is_recorded_as_replaced() {
        let m = mutation(
            ResourceKind::Group,
            MutationKind::Update {
                doc: Some(json!({"displayName": "G"})),
                members: vec![MemberChange::ReplaceAll(vec![member("a")])],
            },
        );
        let (steps, event) = run(&m, Some(current(json!({}))), |s| match s {
            Step::LookUpMembers { .. } => Answer::Found(vec![Some(ResourceKind::User)]),
            Step::AddMembers { .. } => Answer::Ids(vec!["a".into()]),
            _ => Answer::Done,
        })
        .unwrap();
        assert_eq!(
            steps,
            [
                "Update",
                "DeleteEmails",
                "LookUpMembers",
                "ClearMembers",
                "AddMembers"
            ]
        );
        assert_eq!(event.detail, EventDetail::Replaced);
    }

    #[test]
    fn a_user_name_held_by_another_resource_is_taken_but_its_own_is_not() {
        let m = mutation(
            ResourceKind::User,
            MutationKind::Update {
                doc: Some(json!({"userName": "Bob"})),
                members: vec![],
            },
        );
        let holder = |seq| {
            move |s: &Step<'_>| match s {
                Step::FindUserNameHolder { .. } => Answer::Holder(Some(seq)),
                _ => Answer::Done,
            }
        };
        let err = run(&m, Some(current(json!({}))), holder(8)).unwrap_err();
        assert!(
            matches!(err, StoreError::Uniqueness { attribute: "userName", ref value } if value == "Bob"),
            "{err}"
        );
        let (steps, event) = run(&m, Some(current(json!({}))), holder(7)).unwrap();
        assert_eq!(steps, ["FindUserNameHolder", "Update", "DeleteEmails"]);
        assert_eq!(event.detail, EventDetail::Plain);
    }

    #[test]
    fn a_renamed_or_deleted_user_hands_its_name_to_a_marked_look_alike() {
        let mut cur = current(json!({"userName": "bob", "externalId": "x"}));
        cur.user_name = UserNameKey {
            key: Some("bob".into()),
            dup: 0,
        };
        let m = mutation(ResourceKind::User, MutationKind::Delete);
        let (steps, event) = run(&m, Some(cur.clone()), done).unwrap();
        assert_eq!(
            steps,
            [
                "Delete",
                "PromoteLookAlike",
                "DeleteEmails",
                "ClearMembers",
                "DropMemberships"
            ]
        );
        assert_eq!(
            event.detail.to_json(),
            json!({"userName": "bob", "externalId": "x", "displayName": null})
        );
        assert_eq!((event.op, event.version), (ChangeOp::Delete, 4));
        let rename = mutation(
            ResourceKind::User,
            MutationKind::Update {
                doc: Some(json!({"userName": "robert"})),
                members: vec![],
            },
        );
        let (steps, _) = run(&rename, Some(cur), |s| match s {
            Step::FindUserNameHolder { .. } => Answer::Holder(None),
            _ => Answer::Done,
        })
        .unwrap();
        assert_eq!(
            steps,
            [
                "FindUserNameHolder",
                "Update",
                "PromoteLookAlike",
                "DeleteEmails"
            ]
        );
    }

    #[test]
    fn a_deleted_group_lists_its_members_before_they_go() {
        let m = mutation(ResourceKind::Group, MutationKind::Delete);
        let (steps, event) = run(
            &m,
            Some(current(json!({"displayName": "G"}))),
            |s| match s {
                Step::ListMembers => Answer::Ids(vec!["b".into(), "a".into()]),
                _ => Answer::Done,
            },
        )
        .unwrap();
        assert_eq!(steps[..2], ["ListMembers", "Delete"]);
        assert_eq!(
            event.detail.to_json(),
            json!({"userName": null, "externalId": null, "displayName": "G", "removed": ["b", "a"]})
        );
    }

    #[test]
    fn a_missing_resource_or_another_version_is_refused_before_any_step() {
        let mut m = mutation(ResourceKind::User, MutationKind::Delete);
        assert!(matches!(plan(&m, None), Err(StoreError::NotFound)));
        m.expected_version = Some(2);
        assert!(matches!(
            plan(&m, Some(current(json!({})))),
            Err(StoreError::VersionMismatch {
                expected: 2,
                found: 3
            })
        ));
    }

    #[test]
    fn an_answer_that_does_not_fit_its_step_is_an_error() {
        let m = mutation(ResourceKind::Group, MutationKind::Delete);
        let err = run(&m, Some(current(json!({}))), done).unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err}");
    }
}

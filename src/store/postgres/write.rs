//! Resource changes: the steps of `store::plan` (the resource row, its e-mail and
//! member rows) and the change event with its delivery fan-out, in one transaction;
//! a create that only writes rows is all of that in one statement
//! ([`create_at_once`]).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

use super::rows::{Failed, execute, ms, query, query_one, query_opt, unique_violation};
use crate::provlog::LogRow;
use crate::scim::{MemberRef, ResourceKind};
use crate::store::model::parse_kind;
use crate::store::plan::{Answer, Current, Event, Step, plan, user_name_taken};
use crate::store::provisioning_log::{INSERT_COLUMNS, Param, micros};
use crate::store::{Committed, IndexKeys, Mutation, MutationKind, StoreError, UserNameKey};

// Ordering. Every change locks its resource's row (`current` takes it FOR NO KEY
// UPDATE, or FOR UPDATE to delete; a create holds the new key in the unique indexes)
// before it allocates its event's
// seq, so two changes to one resource commit in seq order, on any instance. That is
// the order delivery needs: it reads one resource's events between the seqs its
// queue row names, never a global cursor. Changes to different resources may
// commit out of seq order, and nothing serialises them: an outbox lock taken for a
// global order held every commit's WAL flush in turn (HTTP POST on PostgreSQL,
// back-to-back runs of `cargo bench --bench http`: 1,244/s with it, 2,171/s without;
// runs vary by a few hundred).

pub async fn apply(tx: &Transaction<'_>, m: &Mutation) -> Result<Committed, Failed> {
    let cur = match m.change {
        MutationKind::Create { .. } => None,
        _ => current(tx, m).await?,
    };
    let mut seq = cur.as_ref().map_or(0, |cur| cur.seq);
    let (steps, mut tally) = plan(m, cur)?;
    let at = ms(m.at);
    for step in &steps {
        let answer = run_step(tx, m, &mut seq, at, step).await?;
        tally.record(step, answer)?;
    }
    let ev = tally.event();
    let event_seq = event(tx, m, &ev).await?;
    if let Some(row) = ev.log_row(m, event_seq) {
        super::provlog::insert(tx, &row).await?;
    }
    Ok(ev.committed(event_seq))
}

/// One step of a plan, in PostgreSQL's SQL: member steps take the whole set in one
/// statement (a 50,000-member group is one round trip, not 50,000).
async fn run_step(
    tx: &Transaction<'_>,
    m: &Mutation,
    seq: &mut i64,
    at: DateTime<Utc>,
    step: &Step<'_>,
) -> Result<Answer, Failed> {
    match step {
        Step::Insert { keys, doc } => {
            let row = query_one(
                tx,
                "INSERT INTO resources (provider, kind, id, version, created, last_modified,
                   user_name_ci, external_id, display_name_ci, doc)
                 VALUES ($1, $2, $3, 1, $4, $4, $5, $6, $7, $8) RETURNING seq",
                &[
                    &m.provider,
                    &m.kind.name(),
                    &m.id,
                    &at,
                    &keys.user_name,
                    &keys.external_id,
                    &keys.display_name,
                    &doc.to_string(),
                ],
            )
            .await
            .map_err(|e| conflict(e, m, keys))?;
            *seq = row.try_get(0).map_err(StoreError::from)?;
        }
        Step::FindUserNameHolder { key } => {
            // A friendlier answer than the index violation when the name is plainly
            // taken; the unique index still decides races.
            let holder = query_opt(
                tx,
                "SELECT seq FROM resources
                 WHERE user_name_ci = $3 AND provider = $1 AND kind = $2 AND user_name_dup = 0",
                &[&m.provider, &m.kind.name(), key],
            )
            .await?;
            let holder = holder
                .map(|r| r.try_get::<_, i64>(0))
                .transpose()
                .map_err(StoreError::from)?;
            return Ok(Answer::Holder(holder));
        }
        Step::Update {
            version,
            keys,
            doc,
            dup,
        } => {
            execute(
                tx,
                "UPDATE resources SET version = $2, last_modified = $3, user_name_ci = $4,
                   external_id = $5, display_name_ci = $6, doc = $7, user_name_dup = $8
                 WHERE seq = $1",
                &[
                    &*seq,
                    version,
                    &at,
                    &keys.user_name,
                    &keys.external_id,
                    &keys.display_name,
                    &doc.to_string(),
                    dup,
                ],
            )
            .await
            .map_err(|e| conflict(e, m, keys))?;
        }
        Step::Touch { version } => {
            execute(
                tx,
                "UPDATE resources SET version = $2, last_modified = $3 WHERE seq = $1",
                &[&*seq, version, &at],
            )
            .await?;
        }
        Step::PromoteLookAlike { key } => {
            // A user that shares its key with an older user since a key
            // recomputation takes the name over, so the name stays unique.
            execute(
                tx,
                "UPDATE resources SET user_name_dup = 0 WHERE seq = (
                   SELECT min(seq) FROM resources
                   WHERE user_name_ci = $3 AND provider = $1 AND kind = $2 AND user_name_dup <> 0)",
                &[&m.provider, &m.kind.name(), key],
            )
            .await?;
        }
        Step::DeleteEmails => {
            execute(
                tx,
                "DELETE FROM resource_emails WHERE resource_seq = $1",
                &[&*seq],
            )
            .await?;
        }
        Step::InsertEmails { emails } => {
            execute(
                tx,
                "INSERT INTO resource_emails (value_ci, resource_seq)
                 SELECT v, $2 FROM unnest($1::text[]) AS v ON CONFLICT DO NOTHING",
                &[emails, &*seq],
            )
            .await?;
        }
        Step::LookUpMembers { refs } => return look_up_members(tx, m, refs).await,
        Step::AddMembers { refs } => return add_members(tx, *seq, refs).await,
        Step::RemoveMembers { ids } => {
            let gone = query(
                tx,
                "DELETE FROM group_members WHERE group_seq = $1 AND member_id = ANY($2)
                 RETURNING member_id",
                &[&*seq, ids],
            )
            .await?;
            let mut gone_ids = std::collections::HashSet::with_capacity(gone.len());
            for r in &gone {
                gone_ids.insert(r.try_get::<_, String>(0).map_err(StoreError::from)?);
            }
            let removed = ids.iter().filter(|id| gone_ids.remove(*id)).cloned();
            return Ok(Answer::Ids(removed.collect()));
        }
        Step::ClearMembers => {
            execute(
                tx,
                "DELETE FROM group_members WHERE group_seq = $1",
                &[&*seq],
            )
            .await?;
        }
        Step::ListMembers => {
            let members = query(
                tx,
                "SELECT member_id FROM group_members WHERE group_seq = $1 ORDER BY pos",
                &[&*seq],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?;
            return Ok(Answer::Ids(members));
        }
        Step::Delete => {
            execute(tx, "DELETE FROM resources WHERE seq = $1", &[&*seq]).await?;
        }
        Step::DropMemberships => {
            execute(
                tx,
                "DELETE FROM group_members m USING resources g
                 WHERE m.member_id = $1 AND g.seq = m.group_seq
                   AND g.provider = $2 AND g.kind = 'Group'",
                &[&m.id, &m.provider],
            )
            .await?;
        }
    }
    Ok(Answer::Done)
}

/// Names the conflict a failed INSERT or UPDATE of a resource ran into.
fn conflict(e: tokio_postgres::Error, m: &Mutation, keys: &IndexKeys) -> Failed {
    match unique_violation(&e) {
        Some("resources_user_name") => Failed::Store(user_name_taken(m, keys.user_name.as_deref())),
        Some("resources_id") => Failed::Store(StoreError::DuplicateId(m.id.clone())),
        _ => Failed::from(e),
    }
}

/// The row a change applies to, if there is one, locked until commit: concurrent
/// changes to one resource (from any instance) queue here, so its versions and
/// events stay in order.
///
/// An update takes FOR NO KEY UPDATE, which still excludes every other change to the
/// row but not the FOR KEY SHARE a group change takes on the members it adds
/// ([`look_up_members`]): a user's PATCH need not wait for a membership change that
/// names the user. A deletion takes FOR UPDATE, which does wait for those, so a
/// membership added concurrently is committed before the deletion removes it.
async fn current(tx: &Transaction<'_>, m: &Mutation) -> Result<Option<Current>, Failed> {
    let sql = if matches!(m.change, MutationKind::Delete) {
        "SELECT seq, version, created, doc, user_name_ci, user_name_dup FROM resources
         WHERE provider = $1 AND kind = $2 AND id = $3 FOR UPDATE"
    } else {
        "SELECT seq, version, created, doc, user_name_ci, user_name_dup FROM resources
         WHERE provider = $1 AND kind = $2 AND id = $3 FOR NO KEY UPDATE"
    };
    let Some(row) = query_opt(tx, sql, &[&m.provider, &m.kind.name(), &m.id]).await? else {
        return Ok(None);
    };
    let read = || -> Result<Current, tokio_postgres::Error> {
        Ok(Current {
            seq: row.try_get(0)?,
            version: row.try_get(1)?,
            created: row.try_get(2)?,
            doc: row.try_get(3)?,
            user_name: UserNameKey {
                key: row.try_get(4)?,
                dup: row.try_get(5)?,
            },
        })
    };
    Ok(Some(read().map_err(StoreError::from)?))
}

/// What each member names, in one statement (15,000 ids are one round trip).
/// FOR KEY SHARE keeps each member from being deleted until this change commits; a
/// deletion that got there first makes its row invisible here, so the member is
/// reported unknown rather than left dangling.
async fn look_up_members(
    tx: &Transaction<'_>,
    m: &Mutation,
    refs: &[MemberRef],
) -> Result<Answer, Failed> {
    let ids: Vec<&str> = refs.iter().map(|r| r.value.as_str()).collect();
    let rows = query(
        tx,
        "SELECT id, kind FROM resources WHERE id = ANY($1) AND provider = $2
           AND kind IN ('User', 'Group') FOR KEY SHARE",
        &[&ids, &m.provider],
    )
    .await?;
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get(0).map_err(StoreError::from)?;
        let kind: String = r.try_get(1).map_err(StoreError::from)?;
        found.insert(id, parse_kind(&kind)?);
    }
    Ok(Answer::Found(
        refs.iter().map(|r| found.get(&r.value).copied()).collect(),
    ))
}

/// Adds members in one statement, in the order given; answers the ids that were not
/// members yet, in that order.
async fn add_members(
    tx: &Transaction<'_>,
    group_seq: i64,
    members: &[MemberRef],
) -> Result<Answer, Failed> {
    let ids: Vec<&str> = members.iter().map(|m| m.value.as_str()).collect();
    let types: Vec<Option<&str>> = members
        .iter()
        .map(|m| m.kind.map(ResourceKind::name))
        .collect();
    let displays: Vec<Option<&str>> = members.iter().map(|m| m.display.as_deref()).collect();
    let inserted = query(
        tx,
        "INSERT INTO group_members (group_seq, member_id, member_type, display, pos)
         SELECT $1, m.id, m.t, m.d,
                (SELECT coalesce(max(pos), -1) FROM group_members WHERE group_seq = $1) + m.n
         FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS m(id, t, d, n)
         ORDER BY m.n
         ON CONFLICT DO NOTHING RETURNING member_id",
        &[&group_seq, &ids, &types, &displays],
    )
    .await?;
    let mut fresh = std::collections::HashSet::with_capacity(inserted.len());
    for r in &inserted {
        fresh.insert(r.try_get::<_, String>(0).map_err(StoreError::from)?);
    }
    let added = members.iter().filter(|m| fresh.remove(&m.value));
    Ok(Answer::Ids(added.map(|m| m.value.clone()).collect()))
}

/// Writes the change event and fans it out to every target routed from the
/// provider; a row already queued for the resource absorbs it.
async fn event(tx: &Transaction<'_>, m: &Mutation, ev: &Event) -> Result<i64, Failed> {
    let at = ms(m.at);
    let row = query_one(
        tx,
        "WITH ev AS (
           INSERT INTO change_events (provider, kind, resource_id, op, version, at, detail, request_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq
         ), fan AS (
           INSERT INTO delivery_queue (target, provider, kind, resource_id, from_seq, last_seq, queued_at, next_at)
           SELECT r.target, $1, $2, $3, ev.seq - 1, ev.seq, $6, $6 FROM delivery_routes r, ev
           WHERE r.provider = $1
           ON CONFLICT (target, provider, kind, resource_id) DO UPDATE SET last_seq = excluded.last_seq
         )
         SELECT seq FROM ev",
        &[
            &m.provider,
            &m.kind.name(),
            &m.id,
            &ev.op.as_str(),
            &ev.version,
            &at,
            &ev.detail.to_json().to_string(),
            &m.request_id,
        ],
    )
    .await?;
    Ok(row.try_get(0).map_err(StoreError::from)?)
}

/// The change-event seq a create's provisioning-log body is first rendered with;
/// the statement writes the seq the server allocates in its place. Never a real seq.
const SEQ_PLACEHOLDER: i64 = i64::MIN;

/// The one statement of [`create_at_once`]. `ev` selects from `r`, so the event's
/// seq is allocated after the new row holds its keys in the unique indexes (the
/// ordering rule at the top of this file); `fan` and `log` select from `ev`. `log`
/// writes nothing when `$15` (the record's kind) is NULL: a mutation without a draft.
static CREATE_AT_ONCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH r AS (
           INSERT INTO resources (provider, kind, id, version, created, last_modified,
             user_name_ci, external_id, display_name_ci, doc)
           VALUES ($1, $2, $3, 1, $4, $4, $5, $6, $7, $8) RETURNING seq
         ), em AS (
           INSERT INTO resource_emails (value_ci, resource_seq)
           SELECT v, r.seq FROM r, unnest($9::text[]) AS v ON CONFLICT DO NOTHING
         ), ev AS (
           INSERT INTO change_events (provider, kind, resource_id, op, version, at, detail, request_id)
           SELECT $1, $2, $3, $10::text, $11::bigint, $4, $12::text, $13::text FROM r RETURNING seq
         ), fan AS (
           INSERT INTO delivery_queue (target, provider, kind, resource_id, from_seq, last_seq, queued_at, next_at)
           SELECT rt.target, $1, $2, $3, ev.seq - 1, ev.seq, $4, $4 FROM delivery_routes rt, ev
           WHERE rt.provider = $1
           ON CONFLICT (target, provider, kind, resource_id) DO UPDATE SET last_seq = excluded.last_seq
         ), log AS (
           INSERT INTO audit_log ({INSERT_COLUMNS})
           SELECT $14::bigint, $15::text, $16::text || ev.seq::text || $17::text, $18::text,
                  $19::text, $20::text, $21::text, $22::text, $23::text, $24::text, $25::text,
                  ev.seq, ev.seq, $26::text
           FROM ev WHERE $15::text IS NOT NULL
         )
         SELECT ev.seq FROM ev"
    )
});

/// A create that only writes rows (a user, or a group created without members), as
/// one statement committed on its own: the resource row, its e-mail rows, the change
/// event with its fan-out and the provisioning-log record. One round trip and one
/// implicit transaction where [`apply`] takes six (BEGIN, four statements, COMMIT);
/// those round trips were most of a POST /Users on PostgreSQL, on both sides.
///
/// `None` when `m` needs [`apply`]'s transaction: member look-ups, whose answers the
/// plan checks before the event is written, or any mutation but a create.
pub async fn create_at_once(
    c: &impl GenericClient,
    m: &Mutation,
) -> Result<Option<Committed>, Failed> {
    if !matches!(m.change, MutationKind::Create { .. }) {
        return Ok(None);
    }
    let (steps, mut tally) = plan(m, None)?;
    let mut insert = None;
    let mut emails: &[String] = &[];
    for step in &steps {
        match step {
            Step::Insert { keys, doc } => insert = Some((keys, *doc)),
            Step::InsertEmails { emails: e } => emails = e,
            _ => return Ok(None),
        }
        tally.record(step, Answer::Done)?;
    }
    let Some((keys, doc)) = insert else {
        return Ok(None);
    };
    let ev = tally.event();
    let Some(log) = log_params(ev.log_row(m, SEQ_PLACEHOLDER)) else {
        return Ok(None);
    };
    let (kind, op) = (m.kind.name(), ev.op.as_str());
    let at = ms(m.at);
    let doc = doc.to_string();
    let detail = ev.detail.to_json().to_string();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &m.provider,
        &kind,
        &m.id,
        &at,
        &keys.user_name,
        &keys.external_id,
        &keys.display_name,
        &doc,
        &emails,
        &op,
        &ev.version,
        &detail,
        &m.request_id,
    ];
    params.extend(super::provlog::bound(&log));
    let row = query_one(c, &CREATE_AT_ONCE, &params)
        .await
        .map_err(|e| conflict(e, m, keys))?;
    let event_seq: i64 = row.try_get(0).map_err(StoreError::from)?;
    Ok(Some(ev.committed(event_seq)))
}

/// `$14`–`$26` of [`CREATE_AT_ONCE`]: the record's values in `INSERT_COLUMNS` order,
/// its body split around the event's seq and without the two seq columns (the
/// statement writes the event's seq there). All NULL without a record; `None` when
/// the body does not show the placeholder once as its `changeSeq` (then the caller
/// takes the transaction, which renders the body with the real seq).
fn log_params(row: Option<LogRow>) -> Option<Vec<Param>> {
    let Some(row) = row else {
        let mut nulls = vec![Param::Int(None)];
        nulls.resize(13, Param::Text(None));
        return Some(nulls);
    };
    if row.change_seq != Some(SEQ_PLACEHOLDER) || row.change_seq_last != Some(SEQ_PLACEHOLDER) {
        return None;
    }
    let field = format!("\"changeSeq\":{SEQ_PLACEHOLDER}");
    let at = row.body.find(&field)?;
    if row.body.rfind(&field) != Some(at) {
        return None;
    }
    let split = at + field.len() - SEQ_PLACEHOLDER.to_string().len();
    let (pre, post) = (row.body.get(..split)?, row.body.get(at + field.len()..)?);
    Some(vec![
        Param::Int(Some(micros(row.at))),
        Param::Text(Some(row.kind.to_owned())),
        Param::Text(Some(pre.to_owned())),
        Param::Text(Some(post.to_owned())),
        Param::Text(row.provider),
        Param::Text(row.resource_kind),
        Param::Text(row.resource_id),
        Param::Text(row.user_name_key),
        Param::Text(row.display_name),
        Param::Text(row.target),
        Param::Text(Some(row.action)),
        Param::Text(Some(row.outcome)),
        Param::Text(row.request_id),
    ])
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::provlog::{ChangeDraft, ChangeOp, MembersChanged, Origin, ResourceNames};

    /// What the statement writes (the body around the server's seq) is byte for byte
    /// the body the transaction path renders with that seq, whatever the names hold.
    #[test]
    fn the_split_body_joined_with_the_seq_is_the_rendered_body() {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default();
        for name in [
            "ann@firm.example",
            r#"evil","changeSeq":-9223372036854775808,"x":"#,
            "changeSeq -9223372036854775808",
        ] {
            let doc = json!({"userName": name, "displayName": name});
            let draft = ChangeDraft {
                origin: Origin {
                    provider: "entra".into(),
                    request_id: Some("req-1".into()),
                    client: Some("10.1.2.3".into()),
                    token: Some("tok1".into()),
                },
                op: ChangeOp::Create,
                resource: ResourceNames::of(ResourceKind::User, "u1", &doc),
                changes: vec![],
                status: 201,
            }
            .prepare();
            let members = || MembersChanged {
                added: &[],
                removed: &[],
                replaced: false,
            };
            let template = draft.row(at, SEQ_PLACEHOLDER, 1, members());
            let params = log_params(Some(template)).expect("the placeholder is found once");
            let (Param::Text(Some(pre)), Param::Text(Some(post))) = (&params[2], &params[3]) else {
                panic!("body parts expected: {params:?}");
            };
            let real = draft.row(at, 4711, 1, members());
            assert_eq!(format!("{pre}4711{post}"), real.body, "{name}");
            assert_eq!(params[0], Param::Int(Some(micros(at))));
        }
        let nulls = log_params(None).expect("no record: all NULL");
        assert_eq!(nulls.len(), 13);
        assert!(matches!(nulls[0], Param::Int(None)));
        assert!(nulls[1..].iter().all(|p| *p == Param::Text(None)));
    }
}

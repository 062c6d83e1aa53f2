//! The two kinds of record and the row each becomes.
//!
//! A [`ChangeDraft`] is what the SCIM front knows of a write before the store commits
//! it; the store finishes it (the change event's seq, the version, a group's member
//! delta) inside the write's transaction, so a 2xx means the record is durable and a
//! rolled-back write leaves none. An [`ActionDraft`] is one downstream action the
//! delivery engine finished, written in the transaction that records the outcome.
//! `docs/provisioning-log.md` maps every field to the column Entra's provisioning
//! log shows.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::diff::{AttrChange, Between};
use crate::canonical::{Object, into_text, write_list, write_str, write_value};
use crate::scim::ResourceKind;
use crate::scim::username::comparison_key;

/// The record kind of a SCIM write received.
pub const CHANGE: &str = "scim.change";
/// The record kind of a downstream action.
pub const ACTION: &str = "delivery.action";
/// The record kind of what an operator did (a dead letter retried, a guard approved).
pub const OPERATOR: &str = "operator.action";

/// A group change lists at most this many member ids (and says how many there were):
/// an Entra initial cycle can add 50,000 members in one request, and a record that
/// size would cost more than the change.
pub const MAX_MEMBER_IDS: usize = 1000;

/// How a record names the resource it is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceNames {
    pub kind: Option<ResourceKind>,
    pub id: String,
    pub user_name: Option<String>,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    /// The first e-mail address.
    pub email: Option<String>,
    /// The target's id for it (actions only).
    pub target_id: Option<String>,
}

impl ResourceNames {
    /// The names in a SCIM document.
    pub fn of(kind: ResourceKind, id: &str, doc: &Value) -> Self {
        let s = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        let email = doc
            .get("emails")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
                    .or_else(|| a.first())
            })
            .and_then(|e| e.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        ResourceNames {
            kind: Some(kind),
            id: id.to_owned(),
            user_name: s("userName"),
            display_name: s("displayName"),
            external_id: s("externalId"),
            email,
            target_id: None,
        }
    }

    /// The names as a canonical JSON object (keys sorted: what the audit chain hashes
    /// as stored).
    fn write_canonical(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .some_str("displayName", self.display_name.as_deref())
            .some_str("email", self.email.as_deref())
            .some_str("externalId", self.external_id.as_deref())
            .str("id", &self.id)
            .some_str("targetId", self.target_id.as_deref())
            .some_str("type", self.kind.map(ResourceKind::name))
            .some_str("userName", self.user_name.as_deref())
            .end();
    }

    fn to_json(&self) -> Value {
        let mut o = Map::new();
        if let Some(k) = self.kind {
            o.insert("type".into(), k.name().into());
        }
        o.insert("id".into(), self.id.clone().into());
        let mut opt = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                o.insert(k.into(), v.clone().into());
            }
        };
        opt("userName", &self.user_name);
        opt("displayName", &self.display_name);
        opt("externalId", &self.external_id);
        opt("email", &self.email);
        opt("targetId", &self.target_id);
        Value::Object(o)
    }

    /// userName for users, displayName for groups, else the id: what people read.
    pub fn label(&self) -> &str {
        self.user_name
            .as_deref()
            .or(self.display_name.as_deref())
            .unwrap_or(&self.id)
    }
}

/// What a SCIM write did: `create`, `update` (PUT or PATCH, document and/or
/// members) or `delete`. Also the operation a store change event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Create,
    Update,
    Delete,
}

impl ChangeOp {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(ChangeOp::Create),
            "update" => Some(ChangeOp::Update),
            "delete" => Some(ChangeOp::Delete),
            _ => None,
        }
    }
}

/// Who sent a request: the provider's route, the client's address and the token id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub provider: String,
    pub request_id: Option<String>,
    /// The peer address (or the trusted proxy's forwarded client).
    pub client: Option<String>,
    /// The API token's public id; never the token.
    pub token: Option<String>,
}

/// A SCIM write as the front knows it before the store commits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeDraft {
    pub origin: Origin,
    pub op: ChangeOp,
    pub resource: ResourceNames,
    /// Attributes changed (members aside: the store adds the delta it applied).
    pub changes: Vec<AttrChange>,
    /// The HTTP status the request is answered with on success.
    pub status: u16,
}

/// A group's member delta, as the store applied it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersChanged<'a> {
    pub added: &'a [String],
    pub removed: &'a [String],
    /// The whole list was replaced.
    pub replaced: bool,
}

impl ChangeDraft {
    /// The record rendered as far as it can be before the store writes the change:
    /// everything but what the transaction decides, so the store's writer (one
    /// thread on SQLite) only appends a few fields.
    pub fn prepare(&self) -> PreparedChange {
        let mut changes = Vec::with_capacity(16 + 96 * self.changes.len());
        write_list(&mut changes, &self.changes, |out, c| c.write_canonical(out));
        PreparedChange {
            changes: into_text(changes),
            origin: self.origin.clone(),
            status: self.status,
            resource: self.resource.clone(),
            op: self.op,
        }
    }

    /// The row to insert once the store has written change event `change_seq`, which
    /// left the resource at `version`.
    pub fn row(
        &self,
        at: DateTime<Utc>,
        change_seq: i64,
        version: i64,
        members: MembersChanged<'_>,
    ) -> LogRow {
        self.prepare().row(at, change_seq, version, members)
    }
}

/// A [`ChangeDraft`] rendered up to what the store's transaction decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedChange {
    /// The attribute changes as a canonical JSON array: the costly part, rendered
    /// on the request's task rather than in the store's writer.
    changes: String,
    origin: Origin,
    status: u16,
    /// Who the change is about; a deletion's names are filled in by the store from
    /// the row it deletes.
    pub resource: ResourceNames,
    op: ChangeOp,
}

impl PreparedChange {
    /// What [`ChangeDraft::prepare`] gives for a draft of `between.changes()`, with
    /// the changes written straight to JSON as they are found: the SCIM front
    /// prepares one for every write, on the request's task.
    pub fn of(
        origin: Origin,
        op: ChangeOp,
        resource: ResourceNames,
        between: Between<'_>,
        status: u16,
    ) -> Self {
        let mut changes = Vec::with_capacity(512);
        between.write_changes(&mut changes);
        PreparedChange {
            changes: into_text(changes),
            origin,
            status,
            resource,
            op,
        }
    }

    /// The row to insert once the store has written change event `change_seq`, which
    /// left the resource at `version`. The body is written in canonical form (keys
    /// sorted), so the audit chain hashes it as stored.
    pub fn row(
        &self,
        at: DateTime<Utc>,
        change_seq: i64,
        version: i64,
        members: MembersChanged<'_>,
    ) -> LogRow {
        let mut body = Vec::with_capacity(self.changes.len() + 384);
        let o = Object::new(&mut body)
            .i64("changeSeq", change_seq)
            .raw("changes", &self.changes)
            .some_str("client", self.origin.client.as_deref());
        let o = if !members.added.is_empty() || !members.removed.is_empty() || members.replaced {
            o.with("members", |out| members.write_canonical(out))
        } else {
            o
        };
        o.str("op", self.op.as_str())
            .str("provider", &self.origin.provider)
            .some_str("requestId", self.origin.request_id.as_deref())
            .with("resource", |out| self.resource.write_canonical(out))
            .u64("status", u64::from(self.status))
            .some_str("token", self.origin.token.as_deref())
            .i64("version", version)
            .end();
        LogRow {
            at,
            kind: CHANGE,
            body: into_text(body),
            provider: Some(self.origin.provider.clone()),
            resource_kind: self.resource.kind.map(|k| k.name().to_owned()),
            resource_id: Some(self.resource.id.clone()),
            user_name_key: self.resource.user_name.as_deref().map(comparison_key),
            display_name: self.resource.display_name.as_deref().map(str::to_lowercase),
            target: None,
            action: self.op.as_str().to_owned(),
            outcome: "success".to_owned(),
            change_seq: Some(change_seq),
            change_seq_last: Some(change_seq),
            request_id: self.origin.request_id.clone(),
        }
    }
}

impl MembersChanged<'_> {
    /// `{"added": […], "addedCount": n, "removed": …, "replaced": true}`, keys sorted,
    /// at most [`MAX_MEMBER_IDS`] ids a list.
    fn write_canonical(&self, out: &mut Vec<u8>) {
        let o = member_list(Object::new(out), ("added", "addedCount"), self.added);
        let o = member_list(o, ("removed", "removedCount"), self.removed);
        let o = if self.replaced {
            o.bool("replaced", true)
        } else {
            o
        };
        o.end();
    }
}

/// One list of member ids, and its length when it was cut.
fn member_list<'o>(
    o: Object<'o>,
    (key, count): (&'static str, &'static str),
    ids: &[String],
) -> Object<'o> {
    if ids.is_empty() {
        return o;
    }
    let o = o.with(key, |out| {
        write_list(out, ids.iter().take(MAX_MEMBER_IDS), |out, id| {
            write_str(out, id);
        });
    });
    if ids.len() > MAX_MEMBER_IDS {
        o.u64(count, u64::try_from(ids.len()).unwrap_or(u64::MAX))
    } else {
        o
    }
}

/// `value` in canonical form (keys sorted), so the audit chain hashes it as stored.
/// Record bodies hold no floats; one that did would be written as serde_json writes
/// it, and chained by the slower road that parses it.
fn canonical_text(value: &Value) -> String {
    let mut out = Vec::with_capacity(512);
    match write_value(&mut out, value) {
        Ok(()) => into_text(out),
        Err(_) => value.to_string(),
    }
}

/// One step of a downstream action: `scope`, `match`, `guard`, `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub step: &'static str,
    /// `in`, `out`, `linked`, `adopted`, `none`, `held`, `create`, …
    pub result: String,
    /// Why, in words.
    pub detail: Option<String>,
}

impl StepRecord {
    pub fn new(step: &'static str, result: impl Into<String>, detail: Option<String>) -> Self {
        StepRecord {
            step,
            result: result.into(),
            detail,
        }
    }
}

/// One HTTP call a target made for the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub method: String,
    /// The URL's path and query.
    pub path: String,
    /// `None` when no answer came (timeout, connection refused).
    pub status: Option<u16>,
    pub ms: u64,
}

/// How a downstream action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionOutcome {
    /// The target has the change.
    Success,
    /// Out of the target's scope: nothing sent.
    Skipped,
    /// Failed; will be tried again.
    Retrying,
    /// A group waits for its members to reach the target (an ordinary wait).
    Waiting,
    /// Held by the mass-deprovisioning guard.
    Held,
    /// Given up on: in the dead-letter queue.
    Dead,
}

impl ActionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOutcome::Success => "success",
            ActionOutcome::Skipped => "skipped",
            ActionOutcome::Retrying => "retrying",
            ActionOutcome::Waiting => "waiting",
            ActionOutcome::Held => "held",
            ActionOutcome::Dead => "dead",
        }
    }

    /// Every outcome's name, for argument checking.
    pub const NAMES: [&'static str; 6] =
        ["success", "skipped", "retrying", "waiting", "held", "dead"];
}

/// One downstream action the delivery engine finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionDraft {
    pub target: String,
    pub provider: String,
    pub resource: ResourceNames,
    /// `create`, `update`, `delete`, `skip`, or `send` when the change could not be read.
    pub action: String,
    pub outcome: ActionOutcome,
    pub steps: Vec<StepRecord>,
    pub calls: Vec<CallRecord>,
    /// The change events carried: `(from, last]`.
    pub change_seqs: (i64, i64),
    /// 1 for the first try.
    pub attempt: u32,
    pub duration_ms: u64,
    /// The target's answer or the reason, when not a success.
    pub error: Option<String>,
    /// When it is tried again (retrying, waiting, held).
    pub next_at: Option<DateTime<Utc>>,
}

/// The target's answer kept in a record, at most this many bytes.
const MAX_ERROR_BYTES: usize = 2048;

impl ActionDraft {
    /// The row to insert with the delivery's outcome.
    pub fn row(&self, at: DateTime<Utc>) -> LogRow {
        let mut body = Map::new();
        body.insert("target".into(), self.target.clone().into());
        body.insert("provider".into(), self.provider.clone().into());
        body.insert("action".into(), self.action.clone().into());
        body.insert("outcome".into(), self.outcome.as_str().into());
        body.insert("resource".into(), self.resource.to_json());
        let steps = self.steps.iter().map(|s| {
            let mut o = Map::new();
            o.insert("step".into(), s.step.into());
            o.insert("result".into(), s.result.clone().into());
            if let Some(d) = &s.detail {
                o.insert("detail".into(), d.clone().into());
            }
            Value::Object(o)
        });
        body.insert("steps".into(), Value::Array(steps.collect()));
        let calls = self.calls.iter().map(|c| {
            let mut o = Map::new();
            o.insert("method".into(), c.method.clone().into());
            o.insert("path".into(), c.path.clone().into());
            o.insert("status".into(), c.status.map_or(Value::Null, |s| json!(s)));
            o.insert("ms".into(), json!(c.ms));
            Value::Object(o)
        });
        body.insert("calls".into(), Value::Array(calls.collect()));
        body.insert(
            "changeSeqs".into(),
            json!([self.change_seqs.0, self.change_seqs.1]),
        );
        body.insert("attempt".into(), json!(self.attempt));
        body.insert("durationMs".into(), json!(self.duration_ms));
        if let Some(e) = &self.error {
            body.insert("error".into(), cut(e, MAX_ERROR_BYTES).into());
        }
        if let Some(n) = self.next_at {
            body.insert(
                "nextAt".into(),
                n.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into(),
            );
        }
        LogRow {
            at,
            kind: ACTION,
            body: canonical_text(&Value::Object(body)),
            provider: Some(self.provider.clone()),
            resource_kind: self.resource.kind.map(|k| k.name().to_owned()),
            resource_id: Some(self.resource.id.clone()),
            user_name_key: self.resource.user_name.as_deref().map(comparison_key),
            display_name: self.resource.display_name.as_deref().map(str::to_lowercase),
            target: Some(self.target.clone()),
            action: self.action.clone(),
            outcome: self.outcome.as_str().to_owned(),
            change_seq: Some(self.change_seqs.0 + 1),
            change_seq_last: Some(self.change_seqs.1),
            request_id: None,
        }
    }
}

/// What an operator did, and who: from the console (the token that signed in) or
/// the command line (the OS user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorDraft {
    /// `console` or `cli`.
    pub via: &'static str,
    /// The console session's token id, or the OS user running the CLI.
    pub who: String,
    /// `dlq.retry`, `dlq.drop`, `guard.approve`, `guard.reject`,
    /// `provision.on_demand`, `reconcile.dry_run`, `reconcile.apply`.
    pub action: &'static str,
    pub target: Option<String>,
    /// The provider and resource acted on, when one is.
    pub resource: Option<(String, ResourceNames)>,
    /// What happened, in words.
    pub detail: String,
}

impl OperatorDraft {
    /// The row to insert.
    pub fn row(&self, at: DateTime<Utc>) -> LogRow {
        let mut body = Map::new();
        body.insert("via".into(), self.via.into());
        body.insert("who".into(), self.who.clone().into());
        body.insert("action".into(), self.action.into());
        body.insert("outcome".into(), "success".into());
        if let Some(t) = &self.target {
            body.insert("target".into(), t.clone().into());
        }
        if let Some((provider, r)) = &self.resource {
            body.insert("provider".into(), provider.clone().into());
            body.insert("resource".into(), r.to_json());
        }
        body.insert("detail".into(), self.detail.clone().into());
        let r = self.resource.as_ref().map(|(_, r)| r);
        LogRow {
            at,
            kind: OPERATOR,
            body: canonical_text(&Value::Object(body)),
            provider: self.resource.as_ref().map(|(p, _)| p.clone()),
            resource_kind: r.and_then(|r| r.kind).map(|k| k.name().to_owned()),
            resource_id: r.map(|r| r.id.clone()),
            user_name_key: r.and_then(|r| r.user_name.as_deref()).map(comparison_key),
            display_name: r
                .and_then(|r| r.display_name.as_deref())
                .map(str::to_lowercase),
            target: self.target.clone(),
            action: self.action.to_owned(),
            outcome: "success".to_owned(),
            change_seq: None,
            change_seq_last: None,
            request_id: None,
        }
    }
}

/// `s` cut at a character boundary to at most `max` bytes, marked when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A record as the store writes it: its body (JSON) and the columns queries use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub at: DateTime<Utc>,
    /// [`CHANGE`] or [`ACTION`].
    pub kind: &'static str,
    /// The record's JSON object.
    pub body: String,
    pub provider: Option<String>,
    pub resource_kind: Option<String>,
    pub resource_id: Option<String>,
    /// `userName`'s comparison key, so a deleted person is still found by name.
    pub user_name_key: Option<String>,
    /// `displayName`, lower-cased.
    pub display_name: Option<String>,
    pub target: Option<String>,
    pub action: String,
    pub outcome: String,
    /// The first change event the record concerns …
    pub change_seq: Option<i64>,
    /// … and the last.
    pub change_seq_last: Option<i64>,
    pub request_id: Option<String>,
}

/// A record read back.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The row's id: stable, increasing in write order.
    pub id: i64,
    /// Its place in the audit chain, once chained.
    pub seq: Option<i64>,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub body: Value,
}

impl LogEntry {
    fn text(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    /// The target (actions), or `None` for a change received.
    pub fn target(&self) -> Option<&str> {
        self.text("target")
    }

    pub fn provider(&self) -> Option<&str> {
        self.text("provider")
    }

    /// `create`, `update`, `delete` (changes); the action's name (actions).
    pub fn action(&self) -> &str {
        self.text("op")
            .or_else(|| self.text("action"))
            .unwrap_or("")
    }

    /// `success` for a change received; the action's outcome otherwise.
    pub fn outcome(&self) -> &str {
        if self.kind == CHANGE {
            "success"
        } else {
            self.text("outcome").unwrap_or("")
        }
    }

    /// The resource's names as recorded.
    pub fn resource(&self) -> ResourceNames {
        let r = self.body.get("resource");
        let s = |k: &str| {
            r.and_then(|r| r.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        ResourceNames {
            kind: s("type").and_then(|t| t.parse().ok()),
            id: s("id").unwrap_or_default(),
            user_name: s("userName"),
            display_name: s("displayName"),
            external_id: s("externalId"),
            email: s("email"),
            target_id: s("targetId"),
        }
    }

    /// The first and last change event the record concerns.
    pub fn change_seqs(&self) -> Option<(i64, i64)> {
        if let Some(s) = self.body.get("changeSeq").and_then(Value::as_i64) {
            return Some((s, s));
        }
        let a = self.body.get("changeSeqs")?.as_array()?;
        Some((a.first()?.as_i64()? + 1, a.get(1)?.as_i64()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn a_change_row_carries_names_changes_and_its_event() {
        let draft = ChangeDraft {
            origin: Origin {
                provider: "entra".into(),
                request_id: Some("r-1".into()),
                client: Some("10.0.0.7".into()),
                token: Some("tok1".into()),
            },
            op: ChangeOp::Update,
            resource: ResourceNames::of(
                ResourceKind::User,
                "u-1",
                &json!({"userName": "Ann@Firm.example", "displayName": "Ann Lee"}),
            ),
            changes: vec![AttrChange {
                path: "title".into(),
                old: Some(json!("Associate")),
                new: Some(json!("Partner")),
                redacted: false,
            }],
            status: 200,
        };
        let row = draft.row(at(), 42, 3, MembersChanged::default());
        let body: Value = serde_json::from_str(&row.body).unwrap();
        assert_eq!(body["resource"]["userName"], "Ann@Firm.example");
        assert_eq!(body["changes"][0]["new"], "Partner");
        assert_eq!(body["changeSeq"], 42);
        assert_eq!(body["token"], "tok1");
        assert!(body.get("members").is_none());
        assert_eq!(row.user_name_key.as_deref(), Some("ann@firm.example"));
        assert_eq!(row.action, "update");
        // Written canonical, so the audit chain hashes it as stored.
        assert!(
            crate::canonical::is_canonical_object(&row.body),
            "{}",
            row.body
        );
        assert_eq!(
            row.body,
            r#"{"changeSeq":42,"changes":[{"new":"Partner","old":"Associate","path":"title"}],"client":"10.0.0.7","op":"update","provider":"entra","requestId":"r-1","resource":{"displayName":"Ann Lee","id":"u-1","type":"User","userName":"Ann@Firm.example"},"status":200,"token":"tok1","version":3}"#
        );
    }

    #[test]
    fn changes_written_as_found_are_the_draft_of_the_diff() {
        let registry = crate::scim::SchemaRegistry::new();
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let old = json!({"userName": "ann", "title": "Associate", "password": "x",
            "emails": [{"type": "work", "value": "a@f.example", "primary": true}],
            "addresses": [{"street\u{0}Address": "1 \"Main\" St"}],
            urn: {"department": "Tax"}, "nickName": "Annie"});
        let new = json!({"userName": "ann", "title": "Partner\n", "password": "y",
            "name": {"givenName": "Ann", "familyName": null}, "active": true, "x": 3,
            "emails": [{"type": "home", "value": "a@h.example"}, {"value": "é"}],
            urn: {"department": "Litigation", "manager": {"value": "m-1"}}});
        let origin = Origin {
            provider: "entra".into(),
            request_id: None,
            client: Some("10.0.0.7".into()),
            token: None,
        };
        for (o, n) in [
            (None, Some(&new)),
            (Some(&old), Some(&new)),
            (Some(&old), None),
        ] {
            let resource = ResourceNames::of(ResourceKind::User, "u-1", n.or(o).unwrap());
            let draft = ChangeDraft {
                origin: origin.clone(),
                op: ChangeOp::Update,
                resource: resource.clone(),
                changes: super::super::diff(ResourceKind::User, &registry, o, n),
                status: 200,
            };
            let between = Between {
                kind: ResourceKind::User,
                registry: &registry,
                old: o,
                new: n,
            };
            let of = PreparedChange::of(origin.clone(), ChangeOp::Update, resource, between, 200);
            assert_eq!(of, draft.prepare());
            let row = of.row(at(), 1, 1, MembersChanged::default());
            assert!(
                crate::canonical::is_canonical_object(&row.body),
                "{}",
                row.body
            );
        }
    }

    #[test]
    fn a_huge_member_change_lists_the_first_ids_and_the_count() {
        let ids: Vec<String> = (0..MAX_MEMBER_IDS + 5).map(|i| format!("m{i}")).collect();
        let draft = ChangeDraft {
            origin: Origin::default(),
            op: ChangeOp::Update,
            resource: ResourceNames::default(),
            changes: vec![],
            status: 204,
        };
        let row = draft.row(
            at(),
            1,
            2,
            MembersChanged {
                added: &ids,
                removed: &[],
                replaced: false,
            },
        );
        let body: Value = serde_json::from_str(&row.body).unwrap();
        assert_eq!(
            body["members"]["added"].as_array().map(Vec::len),
            Some(MAX_MEMBER_IDS)
        );
        assert_eq!(body["members"]["addedCount"], MAX_MEMBER_IDS + 5);
        assert!(crate::canonical::is_canonical_object(&row.body));
    }

    #[test]
    fn an_action_row_keeps_steps_calls_and_a_cut_answer() {
        let draft = ActionDraft {
            target: "imanage".into(),
            provider: "entra".into(),
            resource: ResourceNames {
                kind: Some(ResourceKind::User),
                id: "u-1".into(),
                user_name: Some("ann".into()),
                ..ResourceNames::default()
            },
            action: "create".into(),
            outcome: ActionOutcome::Dead,
            steps: vec![StepRecord::new("scope", "in", None)],
            calls: vec![CallRecord {
                method: "POST".into(),
                path: "/api/v2/users".into(),
                status: Some(400),
                ms: 12,
            }],
            change_seqs: (4, 7),
            attempt: 1,
            duration_ms: 15,
            error: Some("é".repeat(MAX_ERROR_BYTES)),
            next_at: None,
        };
        let row = draft.row(at());
        assert!(crate::canonical::is_canonical_object(&row.body));
        let body: Value = serde_json::from_str(&row.body).unwrap();
        assert_eq!(body["calls"][0]["status"], 400);
        assert!(body["error"].as_str().unwrap().len() <= MAX_ERROR_BYTES + '…'.len_utf8());
        assert_eq!((row.change_seq, row.change_seq_last), (Some(5), Some(7)));
        let entry = LogEntry {
            id: 1,
            seq: None,
            at: at(),
            kind: ACTION.into(),
            body,
        };
        assert_eq!(entry.change_seqs(), Some((5, 7)));
        assert_eq!(entry.outcome(), "dead");
        assert_eq!(entry.resource().label(), "ann");
    }
}

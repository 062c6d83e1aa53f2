//! Plain data passed across the [`Store`](super::Store) boundary.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::scim::username::comparison_key;
use crate::scim::{MemberRef, ResourceKind};
use crate::store::{EventDetail, MemberProblem, StoreError};

/// A stored User or Group. `doc` is the normalised SCIM document without `id`,
/// `meta` and (for groups) `members`, which live in their own rows: parsed (`Value`,
/// the default), or the compact JSON text it is stored as ([`StoredText`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource<D = Value> {
    /// Position in creation order; used for keyset paging.
    pub seq: i64,
    /// The identity provider that owns it.
    pub provider: String,
    /// User or Group.
    pub kind: ResourceKind,
    /// The SCIM id.
    pub id: String,
    /// Incremented on every change; the weak ETag.
    pub version: i64,
    /// `meta.created`.
    pub created: DateTime<Utc>,
    /// `meta.lastModified`.
    pub last_modified: DateTime<Utc>,
    /// The document.
    pub doc: D,
}

/// A stored resource with its document as stored: compact JSON, as `serde_json`
/// writes a `Value` (both engines store `doc.to_string()`).
pub type StoredText = StoredResource<String>;

impl StoredText {
    /// The resource with its document parsed.
    pub fn parse(self) -> Result<StoredResource, StoreError> {
        let doc = serde_json::from_str(&self.doc)
            .map_err(|e| StoreError::Database(format!("bad stored document: {e}")))?;
        Ok(StoredResource {
            seq: self.seq,
            provider: self.provider,
            kind: self.kind,
            id: self.id,
            version: self.version,
            created: self.created,
            last_modified: self.last_modified,
            doc,
        })
    }
}

/// Values the store indexes, extracted from a document by [`IndexKeys::from_doc`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexKeys {
    /// `userName`'s comparison key ([`comparison_key`]): unique per provider, so
    /// look-alike names (case, width, composition, surrounding spaces) are one name.
    pub user_name: Option<String>,
    /// `externalId`, exact (caseExact in RFC 7643).
    pub external_id: Option<String>,
    /// `displayName`, lower-cased.
    pub display_name: Option<String>,
    /// Every `emails[].value`, lower-cased.
    pub emails: Vec<String>,
}

impl IndexKeys {
    /// The keys of a normalised document.
    pub fn from_doc(kind: ResourceKind, doc: &Value) -> Self {
        let s = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        let emails = doc
            .get("emails")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.get("value").and_then(Value::as_str))
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        IndexKeys {
            user_name: match kind {
                ResourceKind::User => s("userName").map(|u| comparison_key(&u)),
                ResourceKind::Group => None,
            },
            external_id: s("externalId"),
            display_name: s("displayName").map(|d| d.to_lowercase()),
            emails,
        }
    }
}

/// A stored user's userName key and look-alike mark, as both engines read them
/// before a change (see `store::rekey` for how a mark comes about).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserNameKey {
    /// `user_name_ci`.
    pub key: Option<String>,
    /// `user_name_dup`: 0, or the row's own seq while it shares its key with an older
    /// user's.
    pub dup: i64,
}

impl UserNameKey {
    /// The mark after a change to `keys`: a marked user keeps its mark while its name
    /// keeps its key; any other name is checked for uniqueness like a new one.
    pub(crate) fn dup_after(&self, keys: &IndexKeys) -> i64 {
        if self.dup != 0 && keys.user_name == self.key {
            self.dup
        } else {
            0
        }
    }

    /// The key this change frees for a marked look-alike: an unmarked holder's key
    /// when the change moves it elsewhere (a rename, or a deletion: empty `keys`).
    pub(crate) fn freed_by(&self, keys: &IndexKeys) -> Option<&str> {
        match &self.key {
            Some(k) if self.dup == 0 && keys.user_name.as_ref() != Some(k) => Some(k),
            _ => None,
        }
    }
}

/// An index lookup. Values are compared the way the index stores them
/// (case-insensitively except ids and externalIds).
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// By SCIM id.
    Ids(Vec<String>),
    /// By userName.
    UserNames(Vec<String>),
    /// By externalId.
    ExternalIds(Vec<String>),
    /// By displayName.
    DisplayNames(Vec<String>),
    /// By any email value.
    Emails(Vec<String>),
}

impl Lookup {
    /// The values as the index stores them: userNames by their comparison key,
    /// displayNames and emails lower-cased, ids and externalIds as given.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Lookup::Ids(v) | Lookup::ExternalIds(v) => v.clone(),
            Lookup::UserNames(v) => v.iter().map(|s| comparison_key(s)).collect(),
            Lookup::DisplayNames(v) | Lookup::Emails(v) => {
                v.iter().map(|s| s.to_lowercase()).collect()
            }
        }
    }
}

/// A change to a group's member rows.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// Add (idempotent).
    Add(Vec<MemberRef>),
    /// Remove these ids (absent ones ignored).
    Remove(Vec<String>),
    /// Remove all.
    RemoveAll,
    /// Replace the whole set.
    ReplaceAll(Vec<MemberRef>),
}

/// What a [`Mutation`] does.
#[derive(Debug, Clone, PartialEq)]
pub enum MutationKind {
    /// A new resource with this document and initial members.
    Create {
        /// The document.
        doc: Value,
        /// Initial members (groups).
        members: Vec<MemberRef>,
    },
    /// A new document and/or member changes for an existing resource.
    Update {
        /// The new document; `None` keeps the stored one (member-only changes, which
        /// must not write back a document that may have changed concurrently).
        doc: Option<Value>,
        /// Member changes, applied in order.
        members: Vec<MemberChange>,
    },
    /// Deletion, with its member rows.
    Delete,
}

/// One durable change and the change event that goes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The owning provider.
    pub provider: String,
    /// User or Group.
    pub kind: ResourceKind,
    /// The SCIM id.
    pub id: String,
    /// When set, the change applies only if the stored version is this one.
    pub expected_version: Option<i64>,
    /// The time of the change (from the caller's clock).
    pub at: DateTime<Utc>,
    /// The request that caused it, for tracing a change end to end.
    pub request_id: Option<String>,
    /// Members this change adds to a group must name an existing User or Group of the
    /// same provider (with the `type` they say, if any), and never the group itself;
    /// otherwise the change fails with [`StoreError::Members`](crate::store::StoreError::Members).
    /// Checked inside the write's transaction, so a member deleted concurrently
    /// is either refused or removed again by its deletion. The SCIM front sets it;
    /// internal writers and store tests leave it off.
    pub check_members: bool,
    /// The change.
    pub change: MutationKind,
    /// The provisioning-log record of the change, finished and written in its
    /// transaction (the SCIM front sets it; internal writers leave it off).
    pub log: Option<crate::provlog::PreparedChange>,
}

/// The outcome of a committed [`Mutation`].
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The resource's version after the change.
    pub version: i64,
    /// `meta.created`.
    pub created: DateTime<Utc>,
    /// `meta.lastModified`.
    pub last_modified: DateTime<Utc>,
    /// The change event's sequence number.
    pub event_seq: i64,
}

/// What a change adding group members checks them for (both engines; see
/// [`Mutation::check_members`]): the engine looks each member up and reports it here.
pub(crate) struct MemberCheck<'m> {
    m: &'m Mutation,
    unknown: Vec<String>,
    unknown_seen: std::collections::HashSet<String>,
    problem: Option<MemberProblem>,
}

/// Unknown ids named in an error, at most; the count says how many there were.
const UNKNOWN_SHOWN: usize = 5;

impl<'m> MemberCheck<'m> {
    /// A check of the members `m` adds.
    pub(crate) fn new(m: &'m Mutation) -> Self {
        MemberCheck {
            m,
            unknown: Vec::new(),
            unknown_seen: std::collections::HashSet::new(),
            problem: None,
        }
    }

    /// `r` names a resource of kind `found` (`None`: no User or Group of the provider).
    pub(crate) fn found(&mut self, r: &MemberRef, found: Option<ResourceKind>) {
        match found {
            None => {
                if self.unknown_seen.insert(r.value.clone()) && self.unknown.len() < UNKNOWN_SHOWN {
                    self.unknown.push(r.value.clone());
                }
            }
            Some(kind) if self.problem.is_none() => {
                if let Some(said) = r.kind.filter(|t| *t != kind) {
                    self.problem = Some(MemberProblem::WrongType {
                        id: r.value.clone(),
                        is: kind,
                        said,
                    });
                } else if kind == ResourceKind::Group
                    && self.m.kind == ResourceKind::Group
                    && r.value == self.m.id
                {
                    self.problem = Some(MemberProblem::OwnMember);
                }
            }
            Some(_) => {}
        }
    }

    /// The verdict: unknown ids first (all of them counted), then the first other problem.
    pub(crate) fn finish(self) -> Result<(), StoreError> {
        if !self.unknown_seen.is_empty() {
            return Err(StoreError::Members(MemberProblem::Unknown {
                first: self.unknown,
                count: self.unknown_seen.len(),
            }));
        }
        match self.problem {
            Some(p) => Err(StoreError::Members(p)),
            None => Ok(()),
        }
    }
}

/// A page of a keyset scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The resources, in creation order.
    pub items: Vec<StoredResource>,
    /// Pass as `after_seq` for the next page; `None` at the end.
    pub next: Option<i64>,
}

/// The operation a change event records: one type with the provisioning log's
/// records of the same change.
pub use crate::provlog::ChangeOp;

/// One entry of the outbox. Delivery reads the resource's current state when it
/// pushes, so events carry only what cannot be read back: member deltas and, for a
/// deletion, the keys a target needs to find its copy.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// Global order.
    pub seq: i64,
    /// The owning provider.
    pub provider: String,
    /// User or Group.
    pub kind: ResourceKind,
    /// The SCIM id.
    pub resource_id: String,
    /// What happened.
    pub op: ChangeOp,
    /// The resource version this event produced.
    pub version: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Member deltas of a group, the names of a deleted resource.
    pub detail: EventDetail,
    /// The request that caused it.
    pub request_id: Option<String>,
}

/// An API token as stored: never the secret, only its SHA-256.
#[derive(Clone, PartialEq)]
pub struct ApiToken {
    /// Public id, part of the token string.
    pub id: String,
    /// The provider whose SCIM base it opens (None for admin tokens).
    pub provider: Option<String>,
    /// `scim` or `admin`.
    pub scope: String,
    /// SHA-256 of the secret part.
    pub secret_hash: [u8; 32],
    /// When created.
    pub created: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires: Option<DateTime<Utc>>,
    /// Last successful use (flushed periodically).
    pub last_used: Option<DateTime<Utc>>,
    /// When revoked.
    pub revoked: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash is not the secret, but it is offline-guessable material: keep it out.
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("scope", &self.scope)
            .field("created", &self.created)
            .field("expires", &self.expires)
            .field("last_used", &self.last_used)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// What `/readyz` and `status` report about the store that is cheap to read: a few
/// indexed lookups, no table scan, so readiness probes can ask on every call.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreStatus {
    /// `sqlite` or `postgres`.
    pub engine: &'static str,
    /// Where (a path, or a URL with the password removed).
    pub location: String,
    /// Schema version in the database.
    pub schema_version: i64,
    /// Schema version this binary expects.
    pub expected_schema_version: i64,
    /// Highest change event sequence number (0 before the first change).
    pub last_event_seq: i64,
    /// Write transactions since start (group commits).
    pub write_batches: u64,
    /// Writes since start; `write_jobs / write_batches` is the group-commit factor.
    pub write_jobs: u64,
}

/// What is stored, counted: each figure scans a table or an index (about 10 ms at
/// 100,000 users on SQLite), so callers that poll keep a recent answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounts {
    /// Change events in the outbox.
    pub events: i64,
    /// Users stored, all providers.
    pub users: i64,
    /// Groups stored, all providers.
    pub groups: i64,
}

/// A sealed vault secret as stored. `sealed` is AES-256-GCM output, useless without
/// the vault key.
#[derive(Clone, PartialEq)]
pub struct SecretRow {
    /// The secret's name, also its associated data.
    pub name: String,
    /// Version byte, nonce, ciphertext and tag.
    pub sealed: Vec<u8>,
    /// When first stored.
    pub created: DateTime<Utc>,
    /// When last changed (set or re-encrypted).
    pub updated: DateTime<Utc>,
}

impl std::fmt::Debug for SecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRow")
            .field("name", &self.name)
            .field("sealed_len", &self.sealed.len())
            .field("created", &self.created)
            .field("updated", &self.updated)
            .finish()
    }
}

/// The stored vault header and its dates.
#[derive(Debug, Clone, PartialEq)]
pub struct VaultRecord {
    /// The header as JSON (salt, costs, key check; nothing secret).
    pub header: String,
    /// When the vault was initialised.
    pub created: DateTime<Utc>,
    /// When the passphrase was last rotated.
    pub rotated: Option<DateTime<Utc>>,
}

/// A stored member's `type`. Rows hold `User` or `Group` as the SCIM front
/// normalised them (or nothing); any other spelling reads the way the member's
/// `type` is parsed on the way in, and what that refuses reads as not given.
pub(crate) fn stored_member_kind(stored: Option<String>) -> Option<ResourceKind> {
    stored.as_deref().and_then(ResourceKind::from_member_type)
}

/// Parses a stored resource kind (both engines store `User` / `Group`).
pub fn parse_kind(s: &str) -> Result<ResourceKind, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Database(format!("bad stored kind {s:?}")))
}

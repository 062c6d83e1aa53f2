//! Recomputing stored userName keys when the key function is new to the database.
//!
//! The key ([`comparison_key`]) needs Unicode tables SQL does not have, so each
//! engine walks its users in Rust when it opens and finds `meta.user_name_key`
//! missing or naming another [`key_version`]: once after the migration that
//! introduced the key, and again after an update that moves to new Unicode tables.
//! Both engines run the same two passes, in batches, inside one transaction:
//!
//! 1. every user whose key changes gets the new key and is marked with its own seq in
//!    `user_name_dup` (so no intermediate state can violate the unique index, whatever
//!    order the rows come in);
//! 2. every marked user, oldest first, is unmarked unless another unmarked user
//!    already holds its key: then both are kept (a start never fails over stored
//!    data), both stay reachable by id and by `userName eq`, and a warning names both.

use serde_json::Value;

use crate::scim::username::comparison_key;
pub(crate) use crate::scim::username::key_version;

/// Rows read per round trip.
pub(crate) const BATCH: i64 = 1000;

/// The `meta` key recording which key version the stored keys were computed with.
pub(crate) const META_KEY: &str = "user_name_key";

/// The userName a stored document holds.
fn user_name_of(doc: &str) -> Option<String> {
    serde_json::from_str::<Value>(doc)
        .ok()?
        .get("userName")?
        .as_str()
        .map(str::to_owned)
}

/// Pass 1: the key a stored user (its document, its stored key) should have, when it
/// is not the one stored.
pub(crate) fn changed_key(doc: &str, stored: Option<&str>) -> Option<Option<String>> {
    let key = user_name_of(doc).map(|u| comparison_key(&u));
    (key.as_deref() != stored).then_some(key)
}

/// A user whose name became one with an older user's under the new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Collision {
    pub provider: String,
    /// The user keeping the name for uniqueness: (id, userName).
    pub holder: (String, String),
    /// The user marked as its look-alike: (id, userName).
    pub marked: (String, String),
}

impl Collision {
    /// Pass 2 found `marked` (id, document) sharing its key with `holder`'s.
    pub(crate) fn new(provider: String, holder: (String, &str), marked: (String, &str)) -> Self {
        let named = |(id, doc): (String, &str)| (id, user_name_of(doc).unwrap_or_default());
        Collision {
            provider,
            holder: named(holder),
            marked: named(marked),
        }
    }

    /// Says so in the log, naming both people.
    pub(crate) fn warn(&self) {
        tracing::warn!(
            provider = %self.provider,
            holder_id = %self.holder.0,
            marked_id = %self.marked.0,
            "userNames {:?} and {:?} of provider {} are one name under the bridge's userName comparison (case folding, Unicode normalisation, surrounding spaces); both users are kept and found by either name, but one person should have one account: delete or rename one of them in the identity provider",
            self.holder.1,
            self.marked.1,
            self.provider
        );
    }
}

/// What a recomputation did.
#[derive(Debug, Default)]
pub(crate) struct Rekeyed {
    /// Users whose key changed.
    pub changed: u64,
    /// Users left sharing a key with an older one.
    pub collisions: Vec<Collision>,
}

impl Rekeyed {
    /// Logs the outcome once the transaction has committed.
    pub(crate) fn report(&self, engine: &str) {
        for c in &self.collisions {
            c.warn();
        }
        if self.changed > 0 {
            tracing::info!(
                engine,
                changed = self.changed,
                collisions = self.collisions.len(),
                "recomputed stored userName comparison keys"
            );
        }
    }
}

//! Names people read beside the ids the store keys by: a user's `userName`, a
//! group's `displayName`, from the stored document or, once deleted, from the
//! deletion's change event. Shared by `dlq` and `trace`.

use serde_json::Value;

use crate::scim::ResourceKind;
use crate::store::{Lookup, Store, StoreError};

/// The name of a stored document: `userName`, else `displayName`.
pub(super) fn of_doc(doc: &Value) -> Option<&str> {
    doc.get("userName")
        .or_else(|| doc.get("displayName"))
        .and_then(Value::as_str)
}

/// The names of `ids` (`provider`'s, of `kind`), in their order; `None` for an id
/// the store has no name for.
pub(super) async fn of_ids(
    store: &dyn Store,
    provider: &str,
    kind: ResourceKind,
    ids: &[String],
) -> Result<Vec<Option<String>>, StoreError> {
    let found = store
        .lookup(provider, kind, Lookup::Ids(ids.to_vec()))
        .await?;
    // By id: a group change can name thousands of members.
    let found: std::collections::HashMap<&str, &Value> =
        found.iter().map(|r| (r.id.as_str(), &r.doc)).collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let live = found
            .get(id.as_str())
            .and_then(|doc| of_doc(doc))
            .map(str::to_owned);
        let name = match live {
            Some(n) => Some(n),
            // Deleted: its last event kept the names it had.
            None => store
                .resource_events(provider, kind, id, 0, i64::MAX)
                .await?
                .last()
                .and_then(|e| e.detail.name().map(str::to_owned)),
        };
        out.push(name);
    }
    Ok(out)
}

/// `name (id)` as people read it, or the id alone when there is no name.
pub(super) fn labelled(name: Option<&str>, id: &str) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("{n} ({id})"),
        _ => id.to_owned(),
    }
}

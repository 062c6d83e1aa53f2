//! The version of a person or group each target last acknowledged, and when.
//!
//! Nothing new is stored for it: the provisioning log already keeps, durably and for
//! `database.log_retention`, each successful action with the change events it
//! carried (written in the transaction that records the outcome), and each change
//! received with the version it left the resource at. A delivery pushes the
//! resource's state as of its last carried event, so that event's version is what
//! the target acknowledged. (The delivery log's `delivered` rows would not do: they
//! also count changes left out of a target's scope, and last 30 days.)

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::provlog::{ACTION, CHANGE, LogQuery, Subject};
use crate::store::{Store, StoreError, StoredResource};

/// Successful actions read at most per page: a person's newest, across targets.
const ACTIONS_READ: usize = 200;

/// A target's last acknowledged delivery of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The resource's version it carried; `None` when neither the change events nor
    /// the log still say (both pruned by age).
    pub version: Option<i64>,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub at: DateTime<Utc>,
}

/// What the page says of one target's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// `version 7, 2026-12-05 16:00:00 UTC (update)`, or why there is none.
    pub text: String,
    /// The stored version is newer than the target's.
    pub pending: bool,
}

/// Each target's last successful delivery of `r`, by target name (targets with none
/// recorded among the newest [`ACTIONS_READ`] are absent).
pub async fn last_delivered(
    store: &dyn Store,
    r: &StoredResource,
) -> Result<HashMap<String, Delivered>, StoreError> {
    let about = || {
        Some(Subject {
            ids: vec![r.id.clone()],
            ..Subject::default()
        })
    };
    // Filtered by the resource only (its index), not by target: the target's own
    // index would walk that target's whole history to find one person.
    let actions = store
        .log_query(&LogQuery {
            subject: about(),
            provider: Some(r.provider.clone()),
            resource_kind: Some(r.kind.name().to_owned()),
            kind: Some(ACTION.to_owned()),
            outcome: Some("success".to_owned()),
            limit: ACTIONS_READ,
            ..LogQuery::default()
        })
        .await?;
    let mut newest: HashMap<String, (i64, String, DateTime<Utc>)> = HashMap::new();
    for a in &actions {
        let (Some(target), Some((_, last))) = (a.target(), a.change_seqs()) else {
            continue;
        };
        newest
            .entry(target.to_owned())
            .or_insert_with(|| (last, a.action().to_owned(), a.at));
    }
    let mut versions: HashMap<i64, Option<i64>> = HashMap::new();
    let mut out = HashMap::new();
    for (target, (seq, action, at)) in newest {
        let version = match versions.get(&seq) {
            Some(v) => *v,
            None => {
                let v = version_at(store, r, seq, about()).await?;
                versions.insert(seq, v);
                v
            }
        };
        out.insert(
            target,
            Delivered {
                version,
                action,
                at,
            },
        );
    }
    Ok(out)
}

/// The version change event `seq` left `r` at: from the change events while they are
/// kept, else from the log's record of the change.
async fn version_at(
    store: &dyn Store,
    r: &StoredResource,
    seq: i64,
    about: Option<Subject>,
) -> Result<Option<i64>, StoreError> {
    let events = store
        .resource_events(&r.provider, r.kind, &r.id, seq - 1, seq)
        .await?;
    if let Some(e) = events.last() {
        return Ok(Some(e.version));
    }
    let changes = store
        .log_query(&LogQuery {
            subject: about,
            provider: Some(r.provider.clone()),
            kind: Some(CHANGE.to_owned()),
            change_seq: Some(seq),
            limit: 1,
            ..LogQuery::default()
        })
        .await?;
    Ok(changes
        .first()
        .and_then(|c| c.body.get("version"))
        .and_then(serde_json::Value::as_i64))
}

/// How `target`'s copy of `r` (at `current`, the stored version) stands, in words.
pub fn standing(delivered: Option<&Delivered>, current: i64, when: &str) -> Standing {
    let Some(d) = delivered else {
        return Standing {
            text: "none recorded".to_owned(),
            pending: false,
        };
    };
    let text = match d.version {
        Some(v) => format!("version {v}, {when} ({})", d.action),
        None => format!("{when} ({}; its version is no longer recorded)", d.action),
    };
    Standing {
        pending: d.action != "delete" && d.version.is_some_and(|v| v < current),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_delivered_version_is_pending() {
        let d = Delivered {
            version: Some(3),
            action: "update".into(),
            at: DateTime::<Utc>::default(),
        };
        let s = standing(Some(&d), 5, "then");
        assert_eq!(s.text, "version 3, then (update)");
        assert!(s.pending);
        assert!(!standing(Some(&d), 3, "then").pending);
        let gone = Delivered {
            action: "delete".into(),
            ..d.clone()
        };
        assert!(!standing(Some(&gone), 5, "then").pending);
        assert_eq!(standing(None, 5, "").text, "none recorded");
    }
}

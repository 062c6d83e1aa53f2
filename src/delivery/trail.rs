//! What the provisioning log records of one delivery, gathered as it runs: the steps
//! the engine decided (scope, match, guard, action) and every HTTP call the target
//! made, turned into a [`provlog::ActionDraft`](crate::provlog::ActionDraft) when the
//! outcome is known.
//!
//! Calls are collected through a task-local recorder that [`recording`] installs
//! around one delivery: the HTTP helper every target sends through
//! ([`record_call`]) adds to it, and code outside a delivery (reconciliation reads,
//! workspace searches) records nothing. Passing a recorder explicitly would widen
//! every [`Target`](super::Target) method and HTTP helper for the log's sake alone.

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::provlog::{CallRecord, ResourceNames, StepRecord};
use crate::scim::ResourceKind;

use super::target::{Change, State};

/// A record keeps at most this many calls (a group pushed member by member can make
/// thousands); the rest are counted.
const MAX_CALLS: usize = 50;

#[derive(Debug, Default)]
struct Calls {
    kept: Vec<CallRecord>,
    more: usize,
}

tokio::task_local! {
    static CALLS: Arc<Mutex<Calls>>;
}

/// Runs `f` (one delivery) with a call recorder; answers its output, the calls it
/// made (the first [`MAX_CALLS`]) and how many more there were.
pub(crate) async fn recording<F: Future>(f: F) -> (F::Output, Vec<CallRecord>, usize) {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let out = CALLS.scope(Arc::clone(&calls), f).await;
    let taken = calls
        .lock()
        .map(|mut c| std::mem::take(&mut *c))
        .unwrap_or_default();
    (out, taken.kept, taken.more)
}

/// Records one HTTP call for the delivery running on this task, if any.
pub fn record_call(call: CallRecord) {
    let _ = CALLS.try_with(|calls| {
        if let Ok(mut c) = calls.lock() {
            if c.kept.len() < MAX_CALLS {
                c.kept.push(call);
            } else {
                c.more += 1;
            }
        }
    });
}

/// The steps of one delivery, in the order they were decided.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    pub steps: Vec<StepRecord>,
}

impl Trail {
    pub fn step(&mut self, step: &'static str, result: impl Into<String>, detail: Option<String>) {
        self.steps.push(StepRecord::new(step, result, detail));
    }
}

/// The names a record gives the delivered resource: from its document, or once
/// deleted from the names its delete event kept.
pub(crate) fn names(kind: ResourceKind, id: &str, change: Option<&Change>) -> ResourceNames {
    let Some(change) = change else {
        return ResourceNames {
            kind: Some(kind),
            id: id.to_owned(),
            ..ResourceNames::default()
        };
    };
    let mut names = match &change.state {
        State::Present(doc) => ResourceNames::of(kind, id, doc),
        State::Deleted => {
            let mut n = ResourceNames {
                kind: Some(kind),
                id: id.to_owned(),
                ..ResourceNames::default()
            };
            let named = change
                .events
                .iter()
                .rev()
                .any(|e| e.detail.fill_deleted_names(&mut n));
            if !named {
                // Deprovisioned for leaving the scope: the label is all there is.
                n.display_name = Some(change.name.clone());
            }
            n
        }
    };
    names.target_id.clone_from(&change.target_id);
    names
}

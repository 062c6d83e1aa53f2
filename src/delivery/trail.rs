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
//!
//! A delivery someone watches (provision on demand) also tells a [`Watch`] each step
//! and call the moment it is known, so the console can show them as they happen.

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
    watch: Option<Watch>,
}

/// What a watched delivery reports as it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// A decision, as the record keeps it.
    Step(StepRecord),
    /// The change goes to the target now, as this action (`create`, `update`,
    /// `delete`); its HTTP calls follow. The record notes the action once the
    /// outcome is known.
    Sending(&'static str),
    /// One HTTP call the target made, with its answer (the first [`MAX_CALLS`]).
    Call(CallRecord),
}

/// Where a watched delivery reports; a watcher that has gone away is ignored (the
/// delivery and its record do not depend on anyone reading).
pub type Watch = tokio::sync::mpsc::UnboundedSender<Live>;

tokio::task_local! {
    static CALLS: Arc<Mutex<Calls>>;
}

/// Runs `f` (one delivery) with a call recorder, which also tells `watch` each call;
/// answers its output, the calls it made (the first [`MAX_CALLS`]) and how many more
/// there were.
pub(crate) async fn recording<F: Future>(
    f: F,
    watch: Option<Watch>,
) -> (F::Output, Vec<CallRecord>, usize) {
    let calls = Arc::new(Mutex::new(Calls {
        watch,
        ..Calls::default()
    }));
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
                if let Some(w) = &c.watch {
                    let _ = w.send(Live::Call(call.clone()));
                }
                c.kept.push(call);
            } else {
                c.more += 1;
            }
        }
    });
}

/// The steps of one delivery, in the order they were decided, each also told to
/// the watcher, if any.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    pub steps: Vec<StepRecord>,
    watch: Option<Watch>,
}

impl Trail {
    pub fn watched(watch: Option<Watch>) -> Self {
        Trail {
            steps: Vec::new(),
            watch,
        }
    }

    pub fn step(&mut self, step: &'static str, result: impl Into<String>, detail: Option<String>) {
        let record = StepRecord::new(step, result, detail);
        if let Some(w) = &self.watch {
            let _ = w.send(Live::Step(record.clone()));
        }
        self.steps.push(record);
    }

    /// Tells the watcher the change goes to the target now (the record notes the
    /// action with the outcome).
    pub fn sending(&self, action: &'static str) {
        if let Some(w) = &self.watch {
            let _ = w.send(Live::Sending(action));
        }
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

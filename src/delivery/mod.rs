//! Delivery: pushes every change to every target routed from its provider — in order
//! per resource, coalesced, paced, retried with backoff, and dead-lettered rather than
//! dropped.
//!
//! The store queues a change for each target in the same transaction as the change
//! itself (see the `0003_delivery` migration), so nothing here can lose one: an
//! [`Engine`] claims due rows with a lease, pushes each resource's latest state through
//! its [`Target`], and records the outcome. A crash mid-delivery leaves the lease to run
//! out; the change is then delivered again, so targets must apply idempotently (they get
//! the target id recorded by the previous success, and the sequence number).

mod backoff;
mod engine;
mod guard;
pub mod matching;
mod pacer;
mod reconcile;
mod relations;
pub mod scoping;
mod target;
mod trail;

pub use backoff::{Backoff, parse_retry_after};
pub use engine::{DELIVERED, DeliveryCounters, Engine, EngineConfig, FAILED, OnDemand};
pub use guard::{GuardConfig, Verdict, destructive};
pub use pacer::Pacer;
pub use reconcile::{
    Action, Applied, Plan, PlanItem, Policy, ReconcileError, ReconcileReport, Reconciler, apply,
    plan, run_scheduled,
};
pub use relations::{flattened_members, gather as gather_relations};
pub use target::{
    Change, MemberNeeds, Progress, RelationNeeds, Snapshot, State, Target, TargetError,
};
pub use trail::{Live, Watch, record_call};

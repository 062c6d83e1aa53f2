//! The provisioning log's records as people read them: what each SCIM write changed
//! (old → new, secrets redacted), what each downstream action did (scope, match,
//! the HTTP calls and the target's answer), how a reader asks for them, and how they
//! read as tables and CSV. Pure: the store writes and reads the rows, the audit
//! chain ([`crate::audit`]) makes them tamper-evident, `cli::log` and the admin API
//! show them. `docs/provisioning-log.md` has the design.

mod diff;
mod query;
mod record;
pub mod render;

pub use diff::{AttrChange, Between, diff};
pub use query::{LogQuery, MAX_LIMIT, Subject, parse_time};
pub use record::{
    ACTION, ActionDraft, ActionOutcome, CHANGE, CallRecord, ChangeDraft, ChangeOp, LogEntry,
    LogRow, MAX_MEMBER_IDS, MembersChanged, OPERATOR, OperatorDraft, Origin, PreparedChange,
    ResourceNames, StepRecord,
};

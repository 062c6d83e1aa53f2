//! Durable state behind one [`Store`] trait, made of one trait per capability
//! ([`Resources`], [`ChangeLog`], [`Tokens`], [`VaultRows`], [`DeliveryQueue`],
//! [`Guards`], [`TargetLinks`], [`Schedules`], [`Lifecycle`], [`ProvisioningLog`], [`ConsoleSessions`]): resources, group
//! memberships, the change-event outbox, API tokens, the vault's rows and delivery
//! state. Only this module knows SQL.
//!
//! Every resource change is written in the same transaction as its change event, so
//! a 2xx from the SCIM front means both are on disk. Callers never branch on the
//! engine: SQLite (embedded, group commit) and PostgreSQL implement the same trait.

mod audit_chain;
mod change_log;
#[cfg(test)]
mod conformance;
mod console_sessions;
pub mod copy;
mod delivery;
mod delivery_queue;
mod error;
mod event_detail;
mod guards;
mod lifecycle;
mod model;
mod plan;
pub mod postgres;
mod provisioning_log;
mod rekey;
mod resources;
mod schedules;
mod settle;
pub mod sqlite;
mod target_links;
mod token_lease;
mod tokens;
mod vault_rows;

pub use audit_chain::{
    AuditChain, AuditHead, CHAIN_BATCH, Chained, ChainedLine, StoredCheckpoint, StoredSeal,
};
pub use change_log::ChangeLog;
pub use console_sessions::{ConsoleSessionRow, ConsoleSessions};
pub use delivery_queue::DeliveryQueue;
pub use guards::Guards;
pub use lifecycle::Lifecycle;
pub use provisioning_log::ProvisioningLog;
pub use resources::Resources;
pub use schedules::Schedules;
pub use target_links::TargetLinks;
pub use token_lease::{TokenLease, Watched};
pub use tokens::Tokens;
pub use vault_rows::{SecretWrite, VaultRows};

pub use delivery::{
    Claim, DeadLetter, DeliveryAttempt, DeliveryOutcome, DeliveryStats, GuardState, Managed,
    Orphan, QueuedDelivery, TargetLink,
};
pub use error::{MemberProblem, StoreError};
pub use event_detail::EventDetail;
pub use model::{
    ApiToken, ChangeEvent, ChangeOp, Committed, IndexKeys, Lookup, MemberChange, Mutation,
    MutationKind, Page, SecretRow, StoreCounts, StoreStatus, StoredResource, StoredText,
    VaultRecord,
};
pub(crate) use model::{MemberCheck, UserNameKey, stored_member_kind};

/// The engine-independent storage interface: every capability one engine offers.
/// Implementations must make every successful [`Resources::apply`] durable before
/// returning. Code that needs one capability can take that trait alone.
pub trait Store:
    Resources
    + ChangeLog
    + Tokens
    + VaultRows
    + DeliveryQueue
    + Guards
    + TargetLinks
    + Schedules
    + Lifecycle
    + ProvisioningLog
    + AuditChain
    + ConsoleSessions
{
}

impl<T> Store for T where
    T: Resources
        + ChangeLog
        + Tokens
        + VaultRows
        + DeliveryQueue
        + Guards
        + TargetLinks
        + Schedules
        + Lifecycle
        + ProvisioningLog
        + AuditChain
        + ConsoleSessions
{
}

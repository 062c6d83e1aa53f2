//! The storage layer's one error type.

use thiserror::Error;

use crate::scim::ResourceKind;

/// Why a store operation failed. Conflicts are expected outcomes the SCIM layer maps
/// to 404/409/412; the rest are operational failures.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The resource does not exist.
    #[error("no such resource")]
    NotFound,
    /// A resource with that id already exists.
    #[error("a resource with id {0} already exists")]
    DuplicateId(String),
    /// A unique attribute (`userName`) is already taken.
    #[error("{attribute} {value:?} is already in use")]
    Uniqueness {
        /// The attribute name, as SCIM spells it.
        attribute: &'static str,
        /// The conflicting value.
        value: String,
    },
    /// Members a change adds name no resource, the wrong kind, or the group itself.
    #[error("{0}")]
    Members(MemberProblem),
    /// The resource changed since it was read.
    #[error("the resource was modified (expected version {expected}, found {found})")]
    VersionMismatch {
        /// The version the caller based its change on.
        expected: i64,
        /// The version in the store.
        found: i64,
    },
    /// The database file is not a scim-bridge database, or is damaged.
    #[error("{0}")]
    Foreign(String),
    /// The database schema is newer than this binary understands.
    #[error(
        "the database schema is version {found}, newer than this binary supports ({supported}); upgrade scim-bridge"
    )]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Highest version this binary knows.
        supported: i64,
    },
    /// The state changed underneath an operation that required it not to.
    #[error("{0}")]
    Conflict(String),
    /// The store is shutting down and accepts no more writes.
    #[error("the store is shutting down")]
    Closed,
    /// Opening or creating the database failed.
    #[error("cannot open the database at {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(String),
}

/// What is wrong with the members a change adds (see `Mutation::check_members`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberProblem {
    /// Ids that name no User or Group of the provider: the first few, and how many
    /// distinct ids in all.
    Unknown {
        /// The first unknown ids, in request order.
        first: Vec<String>,
        /// How many distinct unknown ids the change named.
        count: usize,
    },
    /// A member whose `type` is not its resource's kind.
    WrongType {
        /// The member's id.
        id: String,
        /// What the id names.
        is: ResourceKind,
        /// The `type` the request gave.
        said: ResourceKind,
    },
    /// A group listed itself.
    OwnMember,
}

impl std::fmt::Display for MemberProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberProblem::Unknown { first, count } => {
                let shown = first
                    .iter()
                    .map(|id| format!("{id:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = count.saturating_sub(first.len());
                if *count == 1 {
                    write!(f, "member {shown} names no User or Group of this provider")
                } else if more == 0 {
                    write!(
                        f,
                        "{count} member values name no User or Group of this provider: {shown}"
                    )
                } else {
                    write!(
                        f,
                        "{count} member values name no User or Group of this provider: {shown} and {more} more"
                    )
                }
            }
            MemberProblem::WrongType { id, is, said } => write!(
                f,
                "member {id:?} is a {}, but its type says {:?}",
                is.name(),
                said.name()
            ),
            MemberProblem::OwnMember => f.write_str("a group cannot be its own member"),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

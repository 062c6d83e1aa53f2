//! The storage layer's one error type.

use thiserror::Error;

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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

//! What can stop the daemon from being built or served, by cause: the CLI turns each
//! cause into its documented exit code.

use std::fmt;

/// Why the app could not be built or started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// The configuration (or a secret it names) cannot be used.
    Config(String),
    /// The database cannot be opened or answered with an error.
    Store(String),
    /// The vault: wrong or too short passphrase, damaged vault, missing vault secret.
    Vault(String),
    /// A listener could not be bound or read.
    Listen(String),
    /// Anything else at run time (a task that failed, the OS random generator).
    Runtime(String),
}

impl AppError {
    /// The message, without its cause.
    pub fn message(&self) -> &str {
        match self {
            AppError::Config(m)
            | AppError::Store(m)
            | AppError::Vault(m)
            | AppError::Listen(m)
            | AppError::Runtime(m) => m,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AppError {}

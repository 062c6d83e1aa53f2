//! The OAuth layer's one error type. No variant carries a token or a client secret.

/// Why a token could not be obtained.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OAuthError {
    /// The token endpoint answered with an RFC 6749 error (`invalid_client`, …).
    #[error("token endpoint refused the request: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The `error` code.
        code: String,
        /// The `error_description`, when given.
        description: Option<String>,
    },
    /// The token endpoint could not be reached or timed out.
    #[error("token endpoint unreachable: {0}")]
    Unreachable(String),
    /// The token endpoint answered something that is not a token response.
    #[error("token endpoint answered {0}")]
    BadResponse(String),
    /// The bridge is misconfigured for this operation.
    #[error("{0}")]
    Config(String),
    /// A user link is unknown, used or expired.
    #[error("{0}")]
    Link(String),
    /// Reading or writing the vault failed.
    #[error("vault: {0}")]
    Vault(String),
}

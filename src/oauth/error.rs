//! The OAuth layer's one error type. No variant carries a token or a client secret.

use std::time::Duration;

/// Why a token could not be obtained.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OAuthError {
    /// The token endpoint answered with an RFC 6749 error (`invalid_client`, …): the
    /// same request will be refused again.
    #[error("token endpoint {}: {code}{}", answered(*status), detail(description.as_deref()))]
    Refused {
        /// The `error` code.
        code: String,
        /// The `error_description`, when given.
        description: Option<String>,
        /// The HTTP status it came with, when known.
        status: Option<u16>,
    },
    /// The token endpoint is busy or failing (HTTP 408, 429 or 5xx): worth asking
    /// again, not before `retry_after` when it said so.
    #[error(
        "token endpoint answered HTTP {}{}{}",
        status_text(*status),
        code.as_deref().map(|c| format!(": {c}{}", detail(description.as_deref()))).unwrap_or_default(),
        retry_after.map(|r| format!(" (retry after {} s)", r.as_secs())).unwrap_or_default()
    )]
    Unavailable {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code, when the body had one.
        code: Option<String>,
        /// The `error_description`, when given.
        description: Option<String>,
        /// The endpoint's `Retry-After`.
        retry_after: Option<Duration>,
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

impl OAuthError {
    /// Whether asking again later can succeed. A refusal (wrong client, revoked grant,
    /// unknown scope) or a misconfiguration stays until someone fixes the settings;
    /// a busy, failing or unreachable endpoint, or an odd answer (a proxy's page
    /// during an outage), may pass.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            OAuthError::Refused { .. } | OAuthError::Config(_) | OAuthError::Link(_)
        )
    }

    /// This error with `left` as the time still to wait (for an answer repeated before
    /// its `Retry-After` has passed); other errors as they are.
    pub fn waiting(&self, left: Duration) -> OAuthError {
        let mut e = self.clone();
        if let OAuthError::Unavailable { retry_after, .. } = &mut e {
            *retry_after = Some(left);
        }
        e
    }

    /// How long the token endpoint asked to be left alone, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OAuthError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// `503 Service Unavailable`, or the bare number for a status without a name.
fn status_text(status: u16) -> String {
    reqwest::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string())
}

fn answered(status: Option<u16>) -> String {
    match status {
        Some(s) => format!("answered HTTP {}", status_text(s)),
        None => "refused the request".to_owned(),
    }
}

fn detail(description: Option<&str>) -> String {
    description.map(|d| format!(" ({d})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_with_their_status_and_wait() {
        let busy = OAuthError::Unavailable {
            status: 503,
            code: None,
            description: None,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            busy.to_string(),
            "token endpoint answered HTTP 503 Service Unavailable (retry after 7 s)"
        );
        assert!(busy.is_transient());
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(7)));
        let slow = OAuthError::Unavailable {
            status: 429,
            code: Some("slow_down".into()),
            description: Some("too many token requests".into()),
            retry_after: None,
        };
        assert_eq!(
            slow.to_string(),
            "token endpoint answered HTTP 429 Too Many Requests: slow_down (too many token requests)"
        );
        let refused = OAuthError::Refused {
            code: "invalid_client".into(),
            description: Some("client authentication failed".into()),
            status: Some(401),
        };
        assert_eq!(
            refused.to_string(),
            "token endpoint answered HTTP 401 Unauthorized: invalid_client (client authentication failed)"
        );
        assert!(!refused.is_transient());
        assert_eq!(refused.retry_after(), None);
    }
}

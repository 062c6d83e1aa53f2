//! Turning a target's HTTP answer into a delivery outcome.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::delivery::{TargetError, parse_retry_after};

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Ok(())` for 2xx; otherwise a transient error for 408, 429 and 5xx (with the
/// target's `Retry-After`) and a permanent one for the rest. `body` is the start of the
/// answer, quoted in the error so the dead-letter queue shows what the target said.
pub fn classify(
    status: reqwest::StatusCode,
    retry_after: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), TargetError> {
    if status.is_success() {
        return Ok(());
    }
    let mut shown: String = body.chars().filter(|c| !c.is_control()).take(300).collect();
    if shown.len() < body.len() {
        shown.push('…');
    }
    let message = if shown.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {shown}")
    };
    let transient = status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
    if transient {
        Err(TargetError::Transient {
            message,
            retry_after: retry_after.and_then(|v| parse_retry_after(v, now, MAX_RETRY_AFTER)),
        })
    } else {
        Err(TargetError::Permanent { message })
    }
}

/// Reads at most `limit` bytes of a response body as text.
pub(crate) async fn body_prefix(mut response: reqwest::Response, limit: usize) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

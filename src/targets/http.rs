//! Turning a target's HTTP answer into a delivery outcome.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::delivery::{Pacer, TargetError, parse_retry_after, record_call};
use crate::oauth::{Credentials, SendError};
use crate::provlog::CallRecord;

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

/// A target's answer before it is read: status, `Retry-After`, and the response.
pub(crate) struct Reply {
    pub status: reqwest::StatusCode,
    pub retry_after: Option<String>,
    pub response: reqwest::Response,
}

/// How a call appears in the provisioning log: its method and the path shown for it
/// (a URL's path and query; a webhook shows a fixed label, as its URL can hold a
/// secret).
pub(crate) struct Shown<'a> {
    pub method: &'a reqwest::Method,
    pub path: &'a str,
}

impl Shown<'_> {
    fn record(&self, status: Option<u16>, started: std::time::Instant) {
        let path = match reqwest::Url::parse(self.path) {
            Ok(url) => match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            },
            Err(_) => self.path.to_owned(),
        };
        record_call(CallRecord {
            method: self.method.as_str().to_owned(),
            path,
            status,
            ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
}

/// Every request a target sends goes through here: it waits for the target's pacer (so
/// deliveries, reconciliation reads and searches together stay under the rate limit),
/// sends with the target's credentials (one new token and retry on 401, each request
/// in its own slot), turns a failure to get an answer into a target error, and
/// records the call in the running delivery's provisioning-log record.
pub(crate) async fn send(
    pacer: &Pacer,
    credentials: &Credentials,
    shown: Shown<'_>,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Reply, TargetError> {
    let started = std::time::Instant::now();
    let response = match credentials.send(pacer, build).await {
        Ok(r) => r,
        Err(e) => {
            shown.record(None, started);
            return Err(unsent(e));
        }
    };
    shown.record(Some(response.status().as_u16()), started);
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(Reply {
        status: response.status(),
        retry_after,
        response,
    })
}

/// A request that got no answer: a token the endpoint refuses (wrong client or grant)
/// will be refused on every retry, so the change is dead-lettered with the reason; a
/// busy token endpoint's `Retry-After` becomes the delivery's wait.
fn unsent(e: SendError) -> TargetError {
    match e {
        SendError::Auth(e) if !e.is_transient() => TargetError::Permanent {
            message: e.to_string(),
        },
        SendError::Auth(e) => TargetError::Transient {
            retry_after: e.retry_after(),
            message: e.to_string(),
        },
        SendError::Http(message) => TargetError::Transient {
            message,
            retry_after: None,
        },
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

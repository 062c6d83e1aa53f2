//! The HTTP function oauth2 5 calls, over our reqwest 0.13 client.

use std::time::Duration;

use oauth2::{HttpRequest, HttpResponse};

use crate::clock::Clock;
use crate::delivery::parse_retry_after;

/// Token responses are small; anything larger is not one.
const MAX_TOKEN_RESPONSE: usize = 256 * 1024;
/// The longest `Retry-After` honoured, as for targets' own answers.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The longest OAuth `error` or `error_description` shown.
const MAX_ERROR_TEXT: usize = 200;

/// A transport failure; never carries request bodies (they hold client secrets).
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    /// Connecting, sending or reading failed.
    #[error("{0}")]
    Transport(String),
    /// The body was larger than a token response can be.
    #[error("response larger than {MAX_TOKEN_RESPONSE} bytes")]
    TooLarge,
    /// The answer is not JSON (an HTML login page, a proxy's error page).
    #[error("{0}")]
    NotJson(String),
    /// The endpoint answered a status other than 200: what it said, without the body.
    #[error("HTTP {}{}", .0.status, .0.detail)]
    Status(Box<StatusAnswer>),
}

/// A token endpoint's answer with a status other than 200. Only the OAuth `error` and
/// `error_description` are taken from a JSON body (never the body itself, which a
/// broken server could fill with anything); a non-JSON body is described as
/// [`HttpClientError::NotJson`] describes one.
#[derive(Debug)]
pub struct StatusAnswer {
    pub status: reqwest::StatusCode,
    /// `Retry-After`, read at arrival.
    pub retry_after: Option<Duration>,
    /// The OAuth `error` code.
    pub code: Option<String>,
    /// The OAuth `error_description`.
    pub description: Option<String>,
    /// What the body was when it held no OAuth error, for the operator: starts with a
    /// space, or is empty.
    pub detail: String,
}

/// The shared HTTP client: rustls on ring with the system's trust store, no redirects
/// (a token endpoint that redirects would receive the client secret twice), and
/// bounded timeouts.
pub fn build_client(timeout: Duration) -> Result<reqwest::Client, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_platform_verifier()
        .map_err(|e| format!("TLS trust store: {e}"))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .user_agent(concat!("scim-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// oauth2's HTTP client interface over reqwest. A named type rather than a closure:
/// closures here make the handler futures fail axum's `Send` check.
pub(super) struct OAuthHttp<'a> {
    pub http: &'a reqwest::Client,
    /// Reads a `Retry-After` date against it.
    pub clock: &'a dyn Clock,
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp<'_> {
    type Error = HttpClientError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, HttpClientError>> + Send + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(self.http, self.clock, request))
    }
}

/// Sends one oauth2 request with `client`.
async fn send(
    client: &reqwest::Client,
    clock: &dyn Clock,
    request: HttpRequest,
) -> Result<HttpResponse, HttpClientError> {
    let (parts, body) = request.into_parts();
    let mut response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpClientError::Transport(describe(&e)))?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| HttpClientError::Transport(describe(&e)))?
    {
        if bytes.len() + chunk.len() > MAX_TOKEN_RESPONSE {
            return Err(HttpClientError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json" || essence.ends_with("+json");
    let shown = if content_type.is_empty() {
        "no content type"
    } else {
        content_type.as_str()
    };
    // oauth2 reads any status but 200 as an RFC 6749 error body and loses the status;
    // a busy server's 503 or 429 would then read as "JSON that is not a token
    // response". Answer it here, status and Retry-After included.
    if status != reqwest::StatusCode::OK {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            // A Retry-After date is wall-clock time, read against the clock passed in.
            .and_then(|v| parse_retry_after(v, clock.now(), MAX_RETRY_AFTER));
        let body: Option<serde_json::Value> = if json {
            serde_json::from_slice(&bytes).ok()
        } else {
            None
        };
        let field = |k: &str| {
            body.as_ref()
                .and_then(|b| b[k].as_str())
                .map(printable)
                .filter(|t| !t.is_empty())
        };
        let code = field("error");
        let detail = match (&code, json) {
            (Some(_), _) => String::new(),
            (None, true) => " with JSON that is not an OAuth error".to_owned(),
            (None, false) => format!(" with {shown} instead of JSON: {}", snippet(&bytes)),
        };
        return Err(HttpClientError::Status(Box::new(StatusAnswer {
            status,
            retry_after,
            description: code.as_ref().and(field("error_description")),
            code,
            detail,
        })));
    }
    if !json {
        return Err(HttpClientError::NotJson(format!(
            "HTTP {status} with {shown} instead of JSON: {}",
            snippet(&bytes)
        )));
    }
    let mut out = oauth2::http::Response::new(bytes);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// reqwest's Display hides the cause ("error sending request"); the chain says
/// "connection refused" or "timed out", which is what an operator needs.
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Server-chosen text as one log-safe line: control characters (a forged log line's
/// newline) dropped, at most [`MAX_ERROR_TEXT`] characters.
fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_TEXT)
        .collect();
    if text.chars().filter(|c| !c.is_control()).count() > MAX_ERROR_TEXT {
        out.push('…');
    }
    out
}

/// The start of a non-JSON body, for an operator to recognise (an HTML error page, a
/// login form): printable characters only, whitespace collapsed, at most 120.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut space = false;
    for c in text.chars() {
        if out.chars().count() >= 120 {
            out.push('…');
            break;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if out.is_empty() {
        "(empty body)".to_owned()
    } else {
        format!("{out:?}")
    }
}

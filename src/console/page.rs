//! What every console page shares: the frame around it (`Chrome`), rendering with
//! the security headers, error pages, and how times read.

use askama::Template;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::session::{Role, Session};

/// No script, no frames, nothing from elsewhere: styles and images from the console
/// itself, forms posted only back to it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The header, navigation and notice around a page.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub signed_in: bool,
    pub role: String,
    pub admin: bool,
    /// The session's CSRF token, for every form on the page.
    pub csrf: String,
    /// Which navigation entry is this page.
    pub current: &'static str,
    pub notice: Option<String>,
    /// Seconds between reloads (`<meta http-equiv=refresh>`); zero: none.
    pub refresh: u32,
}

impl Chrome {
    /// The frame of a signed-in page.
    pub fn of(session: &Session, current: &'static str) -> Chrome {
        Chrome {
            signed_in: true,
            role: session.role.as_str().to_owned(),
            admin: session.role == Role::Admin,
            csrf: session.csrf.clone(),
            current,
            notice: session.notice.clone(),
            refresh: 0,
        }
    }
}

/// A rendered page, or the error page when the template fails.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message {
    chrome: Chrome,
    title: String,
    text: String,
}

/// A page that says one thing (not found, not allowed, failed), in the frame.
pub fn message(
    status: StatusCode,
    chrome: Chrome,
    title: &str,
    text: impl Into<String>,
) -> Response {
    html(
        status,
        &Message {
            chrome,
            title: title.to_owned(),
            text: text.into(),
        },
    )
}

/// A store failure, logged with its detail; the page says only that it failed.
pub fn failed(chrome: Chrome, e: &impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console: store read failed");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        chrome,
        "Not available",
        "The database did not answer; the daemon's log has the detail. Try again shortly.",
    )
}

pub async fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        Chrome::default(),
        "Not found",
        "There is no such console page.",
    )
}

/// Outside `/ui` on the console's own listener.
pub async fn not_found_plain() -> Response {
    (StatusCode::NOT_FOUND, "not found; the console is at /ui/").into_response()
}

/// Headers on every console answer: the CSP, no sniffing, no framing, no referrer
/// (a search's query names a person), and nothing cached (pages hold personal data).
pub async fn secure_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// A moment as pages show it.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// How long ago `t` was, roughly, as people read it.
pub fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// What a path segment keeps as it is: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment, percent-encoded for a link.
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_say_them() {
        let t = chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap();
        assert_eq!(ago(t, t), "0 s");
        assert_eq!(ago(t + chrono::Duration::seconds(125), t), "2 min");
        assert_eq!(ago(t + chrono::Duration::seconds(7260), t), "2 h 1 min");
        assert_eq!(ago(t + chrono::Duration::days(3), t), "3 d 0 h");
        assert_eq!(seg("a b/c-d.e"), "a%20b%2Fc-d.e");
    }
}

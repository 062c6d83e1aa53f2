//! Who may see and do what: the session cookie, the `Signed` extractor every page
//! takes, and the check every action makes (an admin session, its CSRF token).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::page::{Chrome, message};
use super::session::{Role, Session, same_secret};
use super::{Console, PREFIX};
use crate::server::Encrypted;
use crate::store::ApiToken;
use crate::tokens::TokenScope;

/// The session cookie's name; its path is [`PREFIX`], so no other part of the
/// daemon ever receives it.
pub const COOKIE: &str = "sb_console";
/// The sign-in form's own CSRF cookie (there is no session yet to tie it to).
pub const SIGNIN_COOKIE: &str = "sb_console_signin";
/// A sign-in through the identity provider under way: its state, nonce and PKCE
/// verifier (`oidc/mod.rs`).
pub const OIDC_COOKIE: &str = "sb_console_oidc";

/// A request from a signed-in browser.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The session id from the cookie, to sign out or leave a notice.
    pub id: String,
    pub session: Session,
}

impl Signed {
    pub fn chrome(&self, current: &'static str) -> Chrome {
        Chrome::of(&self.session, current)
    }

    /// Refuses unless this session may act and `csrf` is its token. The refusal is
    /// the page to answer with (boxed: a response is large, and the way is short).
    pub fn may_act(&self, csrf: &str) -> Result<(), Box<Response>> {
        if !same_secret(csrf, &self.session.csrf) {
            return Err(Box::new(message(
                StatusCode::FORBIDDEN,
                self.chrome(""),
                "Refused",
                "The form was not this session's (its CSRF token did not match). Reload the page and try again.",
            )));
        }
        if self.session.role != Role::Admin {
            let why = match self.session.token {
                Some(_) => {
                    "You are signed in with a viewer token, which reads the console and changes nothing. Sign in with an admin token to act."
                }
                None => {
                    "You are signed in read only: your account is in the console's viewer group, not its admin group. Ask the console's administrator if you need to act."
                }
            };
            return Err(Box::new(message(
                StatusCode::FORBIDDEN,
                self.chrome(""),
                "Not allowed",
                why,
            )));
        }
        Ok(())
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value for the console: HttpOnly, SameSite=Strict, Path=/ui,
/// Secure when the browser reached us over TLS (or through the HTTPS public URL).
pub fn set_cookie(
    console: &Console,
    parts: &Parts,
    name: &str,
    value: &str,
    max_age: i64,
) -> HeaderValue {
    cookie_value(console, parts, name, value, max_age, "Strict")
}

/// As [`set_cookie`] but SameSite=Lax, for the cookie that must come back with the
/// identity provider's redirect (a top-level navigation from another site). It
/// opens nothing by itself: it only ties the provider's answer to this browser.
pub fn set_flow_cookie(
    console: &Console,
    parts: &Parts,
    name: &str,
    value: &str,
    max_age: i64,
) -> HeaderValue {
    cookie_value(console, parts, name, value, max_age, "Lax")
}

fn cookie_value(
    console: &Console,
    parts: &Parts,
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
) -> HeaderValue {
    let secure = if secure_transport(console, parts) {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path={PREFIX}; HttpOnly; SameSite={same_site}; Max-Age={}{secure}",
        max_age.max(0)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// TLS to this daemon, or the daemon's own listener behind an `https://` public URL
/// (a TLS proxy in front).
fn secure_transport(console: &Console, parts: &Parts) -> bool {
    let tls = parts.extensions.get::<Encrypted>().is_some_and(|e| e.0);
    tls || (!console.own_listener
        && console
            .state
            .settings
            .public_url
            .to_ascii_lowercase()
            .starts_with("https://"))
}

/// Whether the token a session was opened with still opens the console: revoking
/// or expiring a token ends its sessions at their next request.
fn still_valid(token: Option<&ApiToken>, role: Role, now: chrono::DateTime<chrono::Utc>) -> bool {
    let Some(t) = token else { return false };
    let scope = match role {
        Role::Admin => TokenScope::Admin,
        Role::Viewer => TokenScope::Viewer,
    };
    t.revoked.is_none()
        && t.expires.is_none_or(|e| e > now)
        && t.scope.parse::<TokenScope>().ok() == Some(scope)
}

impl FromRequestParts<Arc<Console>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let now = console.state.clock.now();
        let refused = || {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                Redirect::to("/ui/signin").into_response()
            } else {
                message(
                    StatusCode::FORBIDDEN,
                    Chrome::default(),
                    "Signed out",
                    "Your session has ended; sign in again.",
                )
            }
        };
        let Some(id) = cookie(parts, COOKIE).filter(|id| !id.is_empty()) else {
            return Err(refused());
        };
        let session = match console.sessions.find(&id, now).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(refused()),
            Err(e) => return Err(super::page::failed(Chrome::default(), &e)),
        };
        // A person the identity provider vouched for keeps the session to its end
        // (the role was decided from the ID token at sign-in); a token's session
        // lasts only while the token opens the console.
        let Some(token_id) = session.token.clone() else {
            return Ok(Signed { id, session });
        };
        let token = console.state.directory.store().find_token(&token_id).await;
        match token {
            Ok(t) if still_valid(t.as_ref(), session.role, now) => Ok(Signed { id, session }),
            Ok(_) => {
                if let Err(e) = console.sessions.close_all_of_token(&token_id).await {
                    tracing::warn!(error = %e, "console: cannot end the sessions of a revoked token");
                }
                Err(refused())
            }
            Err(e) => Err(super::page::failed(Chrome::default(), &e)),
        }
    }
}

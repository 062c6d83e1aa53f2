//! Sign-in with an `admin` or `viewer` API token, and sign-out.
//!
//! The token is checked as the admin API checks it (`Directory::authenticate`) and
//! never kept: the session remembers its id, to end the session when the token is
//! revoked. The form has its own CSRF cookie, so another site cannot sign a browser
//! in to a session of its choosing. OpenID Connect sign-in (`oidc/`) ends in the
//! same `Sessions::open`, with a role from the person's groups.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::Console;
use super::access::{COOKIE, SIGNIN_COOKIE, Signed, cookie, set_cookie};
use super::page::{Chrome, html};
use super::session::{Role, Who, random_token, same_secret};
use crate::directory::TokenFailure;
use crate::tokens::{Refusal, TokenScope};

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    error: Option<String>,
    /// The identity provider's name, when sign-in through it is configured.
    idp: Option<String>,
}

/// The sign-in form, with a fresh CSRF cookie.
pub async fn form(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    render_form(&console, &parts, StatusCode::OK, None)
}

fn render_form(
    console: &Console,
    parts: &Parts,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let csrf = random_token(console.state.entropy.as_ref());
    let mut resp = html(
        status,
        &SignInPage {
            chrome: Chrome::default(),
            csrf: csrf.clone(),
            error,
            idp: console.oidc.as_ref().map(|o| o.display_name().to_owned()),
        },
    );
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(console, parts, SIGNIN_COOKIE, &csrf, 3600),
    );
    resp
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    csrf: String,
}

/// Checks the token; opens a session and sends the browser to the overview.
pub async fn sign_in(
    State(console): State<Arc<Console>>,
    parts: Parts,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = cookie(&parts, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        return render_form(
            &console,
            &parts,
            StatusCode::FORBIDDEN,
            Some("The sign-in form had expired or came from elsewhere. Try again.".into()),
        );
    }
    let now = console.state.clock.now();
    let directory = &console.state.directory;
    let presented = form.token.trim();
    let mut outcome = directory
        .authenticate(presented, None, TokenScope::Admin, now)
        .await
        .map(|id| (id, Role::Admin));
    if outcome == Err(TokenFailure::Refused(Refusal::WrongAudience)) {
        outcome = directory
            .authenticate(presented, None, TokenScope::Viewer, now)
            .await
            .map(|id| (id, Role::Viewer));
    }
    let (who, role) = match outcome {
        Ok(found) => found,
        Err(TokenFailure::Unavailable) => {
            return render_form(
                &console,
                &parts,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The token cannot be checked right now (the database did not answer). Try again shortly.".into()),
            );
        }
        Err(TokenFailure::Refused(r)) => {
            console.state.metrics.auth_failure("console");
            let why = match r {
                Refusal::WrongAudience => {
                    "That token does not open the console: sign in with an admin or viewer token (scim-bridge token create --scope admin|viewer)."
                }
                other => other.detail(),
            };
            tracing::info!(reason = why, "console sign-in refused");
            return render_form(
                &console,
                &parts,
                StatusCode::UNAUTHORIZED,
                Some(why.to_owned()),
            );
        }
    };
    console.state.note_token_use(who.clone(), now);
    tracing::info!(token = %who, role = role.as_str(), "console sign-in");
    let opened = console
        .sessions
        .open(Who::Token(who), role, now, console.state.entropy.as_ref())
        .await;
    match opened {
        Ok((id, _)) => signed_in(&console, &parts, Redirect::to("/ui/").into_response(), &id),
        Err(e) => super::page::failed(Chrome::default(), &e),
    }
}

/// `resp` with the new session's cookie, and the sign-in form's cookie cleared.
pub fn signed_in(console: &Console, parts: &Parts, mut resp: Response, id: &str) -> Response {
    let max_age = console.sessions.lifetime().num_seconds();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(console, parts, COOKIE, id, max_age),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(console, parts, SIGNIN_COOKIE, "", 0),
    );
    resp
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// Ends the session (with its CSRF token, so no other site can sign an admin out).
pub async fn sign_out(
    State(console): State<Arc<Console>>,
    signed: Signed,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same_secret(&form.csrf, &signed.session.csrf) {
        return super::page::message(
            StatusCode::FORBIDDEN,
            signed.chrome(""),
            "Refused",
            "The form was not this session's (its CSRF token did not match).",
        );
    }
    if let Err(e) = console.sessions.close(&signed.id).await {
        return super::page::failed(signed.chrome(""), &e);
    }
    tracing::info!(who = %signed.session.who, "console sign-out");
    let mut resp = Redirect::to("/ui/signin").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&console, &parts, COOKIE, "", 0),
    );
    resp
}

//! Sign-in through the firm's OpenID Connect provider: the authorization code flow
//! with PKCE (S256), `state` and `nonce` (OpenID Connect Core §3.1).
//!
//! `/ui/signin/oidc` makes a fresh state, nonce and PKCE verifier, keeps them in a
//! short-lived cookie of their own (HttpOnly, SameSite=Lax: the provider's redirect
//! back is a cross-site navigation, which a Strict cookie would not survive) and
//! sends the browser to the provider. `/ui/signin/oidc/callback` checks the state
//! against that cookie, refuses a callback seen before, exchanges the code with the
//! verifier and the client secret, verifies the ID token (`idtoken.rs`) and decides
//! the role from the person's groups or subject. The session then opened is the
//! same as a token's ([`super::session::Sessions::open`]), naming the person.
//!
//! The flow cookie rather than server-side state: any instance behind a load
//! balancer can finish a sign-in another began. What it holds is worth nothing
//! without the browser that carries it and the provider's answer to that browser.

mod idtoken;
mod provider;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Console;
use super::access::{OIDC_COOKIE, cookie, set_flow_cookie};
use super::page::{Chrome, html, message};
use super::session::{Role, Who, random_token, same_secret};
use crate::config::{OIDC_CALLBACK_PATH, OidcConfig};
use idtoken::{Expected, TokenError};
use provider::{Provider, ProviderError};

/// How long a sign-in at the provider may take.
const FLOW_SECS: i64 = 600;

/// The console's OpenID Connect client.
pub struct Oidc {
    cfg: OidcConfig,
    secret: SecretString,
    /// Where the provider sends the browser back.
    redirect: String,
    provider: Provider,
    /// States already answered (their hash, and when their flow began), so a
    /// callback replayed from history or a log is refused before it reaches the
    /// provider; forgotten once their flow could no longer finish anyway.
    used: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.cfg.issuer)
            .field("client_id", &self.cfg.client_id)
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// The client `cfg` describes, its secret resolved; the redirect URL defaults
    /// to the console's callback under `public_url`.
    pub fn new(cfg: &OidcConfig, secret: SecretString, public_url: &str) -> Result<Oidc, String> {
        let http = crate::oauth::build_client(std::time::Duration::from_secs(15))?;
        let redirect = cfg
            .redirect_url
            .clone()
            .unwrap_or_else(|| format!("{}{OIDC_CALLBACK_PATH}", public_url.trim_end_matches('/')));
        Ok(Oidc {
            cfg: cfg.clone(),
            secret,
            redirect,
            provider: Provider::new(cfg.issuer.clone(), http),
            used: Mutex::new(HashMap::new()),
        })
    }

    /// "Sign in with …" on the sign-in page.
    pub fn display_name(&self) -> &str {
        &self.cfg.display_name
    }

    /// Admin when named as one by subject or group, else viewer likewise, else
    /// `None`: not allowed in.
    fn role(&self, subject: &str, groups: &[String]) -> Option<Role> {
        let named = |subjects: &[String], allowed: &[String]| {
            subjects.iter().any(|s| s == subject) || groups.iter().any(|g| allowed.contains(g))
        };
        if named(&self.cfg.admin_subjects, &self.cfg.admin_groups) {
            Some(Role::Admin)
        } else if named(&self.cfg.viewer_subjects, &self.cfg.viewer_groups) {
            Some(Role::Viewer)
        } else {
            None
        }
    }

    /// Marks `state` answered; `false` when it was already.
    fn first_use(&self, state: &str, began: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        used.retain(|_, b| now - *b < chrono::Duration::seconds(FLOW_SECS * 2));
        used.insert(hex::encode(Sha256::digest(state.as_bytes())), began)
            .is_none()
    }
}

/// What the flow cookie holds: `state.nonce.verifier.began` (all URL-safe base64
/// but the start time, so `.` separates them).
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    began: DateTime<Utc>,
}

impl Flow {
    fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.state,
            self.nonce,
            self.verifier,
            self.began.timestamp()
        )
    }

    fn decode(text: &str) -> Option<Flow> {
        let mut it = text.split('.');
        let (state, nonce, verifier, began) = (it.next()?, it.next()?, it.next()?, it.next()?);
        Some(Flow {
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            verifier: verifier.to_owned(),
            began: DateTime::from_timestamp(began.parse().ok()?, 0)?,
        })
    }
}

fn unavailable(e: &ProviderError) -> Response {
    tracing::warn!(error = %e, "console: the identity provider cannot be used");
    message(
        StatusCode::BAD_GATEWAY,
        Chrome::default(),
        "Identity provider unavailable",
        format!(
            "Sign-in through the identity provider failed: {e}. Try again shortly, or sign in with an API token. The daemon's log has the detail."
        ),
    )
}

fn refused(status: StatusCode, text: impl Into<String>) -> Response {
    let text = text.into();
    tracing::info!(reason = %text, "console sign-in through the identity provider refused");
    message(status, Chrome::default(), "Sign-in refused", text)
}

/// Starts a sign-in: to the provider, with a fresh state, nonce and PKCE challenge.
pub async fn start(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let Some(oidc) = console.oidc.as_ref() else {
        return super::page::not_found().await;
    };
    let now = console.state.clock.now();
    let endpoints = match oidc.provider.endpoints(now).await {
        Ok(e) => e,
        Err(e) => return unavailable(&e),
    };
    let entropy = console.state.entropy.as_ref();
    let flow = Flow {
        state: random_token(entropy),
        nonce: random_token(entropy),
        verifier: random_token(entropy),
        began: now,
    };
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(flow.verifier.as_bytes()));
    let mut to = match url::Url::parse(&endpoints.authorization) {
        Ok(u) => u,
        Err(e) => {
            return unavailable(&ProviderError::Invalid {
                url: endpoints.authorization.clone(),
                reason: e.to_string(),
            });
        }
    };
    to.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.cfg.client_id)
        .append_pair("redirect_uri", &oidc.redirect)
        .append_pair("scope", &oidc.cfg.scopes.join(" "))
        .append_pair("state", &flow.state)
        .append_pair("nonce", &flow.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut resp = Redirect::to(to.as_str()).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_flow_cookie(&console, &parts, OIDC_COOKIE, &flow.encode(), FLOW_SECS),
    );
    resp
}

/// The provider's answer.
#[derive(Deserialize)]
pub struct Answer {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// RFC 9207: who answered, when the provider says.
    iss: Option<String>,
}

#[derive(Template)]
#[template(path = "oidc_done.html")]
struct Done {
    who: String,
    role: &'static str,
}

/// Finishes a sign-in: checks the answer, exchanges the code, verifies the ID token,
/// decides the role and opens the session.
pub async fn callback(
    State(console): State<Arc<Console>>,
    parts: Parts,
    Query(answer): Query<Answer>,
) -> Response {
    let Some(oidc) = console.oidc.as_ref() else {
        return super::page::not_found().await;
    };
    let mut resp = finish(&console, oidc, &parts, answer).await;
    // The flow is over whatever the outcome: its cookie goes.
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_flow_cookie(&console, &parts, OIDC_COOKIE, "", 0),
    );
    resp
}

async fn finish(console: &Console, oidc: &Oidc, parts: &Parts, answer: Answer) -> Response {
    let now = console.state.clock.now();
    let flow = cookie(parts, OIDC_COOKIE).and_then(|c| Flow::decode(&c));
    let Some(flow) = flow.filter(|f| (now - f.began).num_seconds() < FLOW_SECS) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in did not start in this browser, or took longer than 10 minutes. Start again from the sign-in page.",
        );
    };
    let state = answer.state.unwrap_or_default();
    if !same_secret(&state, &flow.state) {
        return refused(
            StatusCode::FORBIDDEN,
            "The identity provider's answer does not belong to the sign-in this browser started (its state did not match). Start again from the sign-in page.",
        );
    }
    if !oidc.first_use(&flow.state, flow.began, now) {
        return refused(
            StatusCode::FORBIDDEN,
            "This sign-in was already completed; an answer is used once. Start again from the sign-in page.",
        );
    }
    if let Some(error) = answer.error {
        let desc = answer.error_description.unwrap_or_default();
        let said: String = format!("{error} {desc}").trim().chars().take(300).collect();
        return refused(
            StatusCode::FORBIDDEN,
            format!("The identity provider did not sign you in: {said}"),
        );
    }
    if answer.iss.as_deref().is_some_and(|i| i != oidc.cfg.issuer) {
        return refused(
            StatusCode::FORBIDDEN,
            "The answer came from another identity provider than the one configured (iss).",
        );
    }
    let Some(code) = answer.code.filter(|c| !c.is_empty() && c.len() <= 4096) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The identity provider's answer has no authorization code.",
        );
    };
    let endpoints = match oidc.provider.endpoints(now).await {
        Ok(e) => e,
        Err(e) => return unavailable(&e),
    };
    let token = oidc
        .provider
        .exchange(
            &endpoints.token,
            &oidc.cfg.client_id,
            &oidc.secret,
            &code,
            &flow.verifier,
            &oidc.redirect,
        )
        .await;
    let token = match token {
        Ok(t) => zeroize::Zeroizing::new(t),
        // The provider refusing the code (used before, expired, wrong verifier) is a
        // refusal; anything else is an outage.
        Err(ProviderError::Status {
            status: 400,
            detail,
            ..
        }) => {
            return refused(
                StatusCode::FORBIDDEN,
                format!(
                    "The identity provider refused the sign-in's code (it may have been used already or expired){detail}. Start again from the sign-in page."
                ),
            );
        }
        Err(e) => return unavailable(&e),
    };
    let kid = match idtoken::key_id(&token) {
        Ok(k) => k,
        Err(e) => return token_refused(&e),
    };
    let keys = match oidc.provider.keys(kid.as_deref(), now).await {
        Ok(k) => k,
        Err(e) => return unavailable(&e),
    };
    let expected = Expected {
        issuer: &oidc.cfg.issuer,
        client_id: &oidc.cfg.client_id,
        nonce: &flow.nonce,
        now,
    };
    let claims = match idtoken::verify(&token, &keys, &expected) {
        Ok(c) => c,
        Err(e) => return token_refused(&e),
    };
    let subject = claims.subject().to_owned();
    let name = claims.display_name();
    let groups = claims.strings(&oidc.cfg.groups_claim).unwrap_or_default();
    let who = Who::Person {
        subject: subject.clone(),
        name: name.clone(),
    };
    let Some(role) = oidc.role(&subject, &groups) else {
        let overflow = if claims.overflowed(&oidc.cfg.groups_claim) {
            " Your account is in more groups than fit in a sign-in token; ask the administrator to send only the groups assigned to this application (in Entra ID: Token configuration → groups claim → \"Groups assigned to the application\")."
        } else {
            ""
        };
        tracing::info!(who = %who.label(), groups = groups.len(), "console sign-in through the identity provider refused: in no allowed group");
        return message(
            StatusCode::FORBIDDEN,
            Chrome::default(),
            "Not allowed",
            format!(
                "You signed in at {} as {} (subject {subject}), but this account may not use the scim-bridge console: it is in none of the groups allowed to use it (the token listed {} group(s) in its \"{}\" claim).{overflow} Ask the administrator of the console to add you to its admin or viewer group, then sign in again.",
                oidc.cfg.display_name,
                if name.is_empty() {
                    "this account"
                } else {
                    &name
                },
                groups.len(),
                oidc.cfg.groups_claim,
            ),
        );
    };
    let opened = console
        .sessions
        .open(who.clone(), role, now, console.state.entropy.as_ref())
        .await;
    let (id, _) = match opened {
        Ok(o) => o,
        Err(e) => return super::page::failed(Chrome::default(), &e),
    };
    tracing::info!(who = %who.label(), role = role.as_str(), via = "oidc", "console sign-in");
    // A page that moves on by itself rather than a redirect: the browser arrived here
    // from the provider's site, and a SameSite=Strict cookie set now is sent only on
    // a request this site starts, not on the rest of a cross-site redirect chain.
    let page = html(
        StatusCode::OK,
        &Done {
            who: who.label(),
            role: role.as_str(),
        },
    );
    super::signin::signed_in(console, parts, page, &id)
}

fn token_refused(e: &TokenError) -> Response {
    refused(
        StatusCode::FORBIDDEN,
        format!(
            "The identity provider's answer could not be trusted: {e}. Start again from the sign-in page; if it happens again, the daemon's log and the provider's configuration (issuer, client id, signing keys) are where to look."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc() -> Oidc {
        let cfg = OidcConfig {
            issuer: "https://idp.example.com".into(),
            client_id: "bridge".into(),
            client_secret: crate::config::SecretRef::Env("X".into()),
            redirect_url: None,
            scopes: vec!["openid".into()],
            display_name: "Okta".into(),
            groups_claim: "groups".into(),
            admin_groups: vec!["Admins".into()],
            admin_subjects: vec!["root".into()],
            viewer_groups: vec!["Readers".into()],
            viewer_subjects: vec!["auditor".into()],
        };
        Oidc::new(
            &cfg,
            SecretString::from("s3cret"),
            "https://bridge.example.com/",
        )
        .unwrap()
    }

    #[test]
    fn roles_come_from_groups_or_subjects_admin_first() {
        let o = oidc();
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(o.role("x", &g(&["Readers", "Admins"])), Some(Role::Admin));
        assert_eq!(o.role("root", &[]), Some(Role::Admin));
        assert_eq!(o.role("x", &g(&["Readers"])), Some(Role::Viewer));
        assert_eq!(o.role("auditor", &[]), Some(Role::Viewer));
        assert_eq!(o.role("x", &g(&["admins", "Other"])), None);
        assert_eq!(
            o.redirect,
            "https://bridge.example.com/ui/signin/oidc/callback"
        );
        assert!(!format!("{o:?}").contains("s3cret"));
    }

    #[test]
    fn a_state_is_answered_once_and_the_flow_cookie_round_trips() {
        let o = oidc();
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert!(o.first_use("s1", t0, t0));
        assert!(!o.first_use("s1", t0, t0 + chrono::Duration::seconds(5)));
        assert!(o.first_use("s2", t0, t0));
        let f = Flow {
            state: "a".into(),
            nonce: "b".into(),
            verifier: "c".into(),
            began: t0,
        };
        let back = Flow::decode(&f.encode()).unwrap();
        assert_eq!(
            (back.state, back.nonce, back.verifier, back.began),
            ("a".into(), "b".into(), "c".into(), t0)
        );
        assert!(Flow::decode("a.b").is_none());
    }
}

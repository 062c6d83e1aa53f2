//! How a target request is authorised, with one retry after a 401.

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::error::OAuthError;
use super::http::describe;
use super::link::Linker;
use super::source::TokenSource;
use crate::config::AuthHeader;
use crate::delivery::Pacer;

/// A target's credentials.
pub enum Credentials {
    /// Tokens from an OAuth2 token endpoint.
    OAuth {
        /// The source.
        source: Arc<TokenSource>,
        /// Where the token goes.
        header: AuthHeader,
    },
    /// A long-lived token from the vault or a file.
    Static {
        /// The token.
        token: SecretString,
        /// Where it goes.
        header: AuthHeader,
    },
    /// A person's linked account: requests act as them, with their rights at the
    /// target. Their token is refreshed on use and after a 401.
    Linked {
        linker: Arc<Linker>,
        /// The person, as their link is named.
        user: String,
        /// Where the token goes.
        header: AuthHeader,
    },
    /// No authentication (a webhook signed by other means).
    None,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::OAuth { .. } => "Credentials::OAuth",
            Credentials::Static { .. } => "Credentials::Static",
            Credentials::Linked { .. } => "Credentials::Linked",
            Credentials::None => "Credentials::None",
        })
    }
}

/// Why an authorised request failed before a response came back.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No token could be obtained.
    #[error(transparent)]
    Auth(#[from] OAuthError),
    /// The request itself failed (connection, timeout).
    #[error("{0}")]
    Http(String),
}

/// The header carrying `token`, marked sensitive so it is never logged.
pub fn auth_header(
    style: AuthHeader,
    token: &str,
) -> Result<(HeaderName, HeaderValue), OAuthError> {
    let (name, value) = match style {
        AuthHeader::Bearer => (AUTHORIZATION, format!("Bearer {token}")),
        AuthHeader::XAuthToken => (HeaderName::from_static("x-auth-token"), token.to_owned()),
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        OAuthError::BadResponse(
            "an access token with characters not allowed in an HTTP header".into(),
        )
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

impl Credentials {
    /// Sends the request `build` makes, authorised, each time after `pacer`'s wait. On
    /// a 401 with an OAuth token, the token is dropped and the request is sent once
    /// more with a new one; a second 401 is returned to the caller as it is.
    ///
    /// Every request waits for its own slot, the retry after a 401 included, so a
    /// re-authentication does not send two requests in one slot past the target's rate
    /// limit. The token is taken before the wait: a token request, when one is needed,
    /// waits for the token source's pacer (the target's, when the token endpoint is on
    /// the target's host), and callers that waited for that token then each take a slot
    /// of their own rather than all going out the moment it arrives.
    pub async fn send(
        &self,
        pacer: &Pacer,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SendError> {
        match self {
            Credentials::None => {
                pacer.wait().await;
                send(build()).await
            }
            Credentials::Static { token, header } => {
                let (name, value) = auth_header(*header, token.expose_secret())?;
                pacer.wait().await;
                send(build().header(name, value)).await
            }
            Credentials::Linked {
                linker,
                user,
                header,
            } => {
                let token = linker.access_token(user).await?;
                let (name, value) = auth_header(*header, token.expose_secret())?;
                pacer.wait().await;
                let response = send(build().header(name, value)).await?;
                if response.status() != reqwest::StatusCode::UNAUTHORIZED {
                    return Ok(response);
                }
                tracing::info!(target_name = %linker.target(), %user, "target refused the linked account's token; refreshing it");
                let token = linker.refresh_rejected(user, &token).await?;
                let (name, value) = auth_header(*header, token.expose_secret())?;
                pacer.wait().await;
                send(build().header(name, value)).await
            }
            Credentials::OAuth { source, header } => {
                let token = source.get().await?;
                let (name, value) = auth_header(*header, token.access().expose_secret())?;
                pacer.wait().await;
                let response = send(build().header(name, value)).await?;
                if response.status() != reqwest::StatusCode::UNAUTHORIZED {
                    return Ok(response);
                }
                tracing::info!(target_name = %source.target(), "target refused the access token; getting a new one");
                source.invalidate(&token);
                let token = source.get().await?;
                let (name, value) = auth_header(*header, token.access().expose_secret())?;
                pacer.wait().await;
                send(build().header(name, value)).await
            }
        }
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, SendError> {
    request
        .send()
        .await
        .map_err(|e| SendError::Http(describe(&e)))
}

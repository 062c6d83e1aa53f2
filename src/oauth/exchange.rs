//! The four token requests the bridge makes, over oauth2 5 and reqwest 0.13.

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, ResourceOwnerPassword,
    ResourceOwnerUsername, Scope, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

use super::error::OAuthError;
use super::http::{HttpClientError, OAuthHttp, StatusAnswer};
use crate::clock::Clock;
use crate::config::ClientAuth;

type Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A token endpoint and the client credentials presented to it.
#[derive(Clone)]
pub struct TokenEndpoint {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl TokenEndpoint {
    fn client(&self) -> Result<Client, OAuthError> {
        let url = TokenUrl::new(self.token_url.clone())
            .map_err(|e| OAuthError::Config(format!("token_url {:?}: {e}", self.token_url)))?;
        let mut client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_token_uri(url)
            .set_auth_type(match self.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Post => AuthType::RequestBody,
            });
        if let Some(secret) = &self.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        Ok(client)
    }

    fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.scopes.iter().map(|s| Scope::new(s.clone()))
    }

    pub(super) async fn client_credentials(
        &self,
        http: &reqwest::Client,
        clock: &dyn Clock,
    ) -> Result<BasicTokenResponse, OAuthError> {
        let client = self.client()?;
        let f = OAuthHttp { http, clock };
        client
            .exchange_client_credentials()
            .add_scopes(self.scopes())
            .request_async(&f)
            .await
            .map_err(map_error)
    }

    pub(super) async fn password(
        &self,
        http: &reqwest::Client,
        clock: &dyn Clock,
        username: &str,
        password: &SecretString,
    ) -> Result<BasicTokenResponse, OAuthError> {
        let client = self.client()?;
        let user = ResourceOwnerUsername::new(username.to_owned());
        let pass = ResourceOwnerPassword::new(password.expose_secret().to_owned());
        let f = OAuthHttp { http, clock };
        client
            .exchange_password(&user, &pass)
            .add_scopes(self.scopes())
            .request_async(&f)
            .await
            .map_err(map_error)
    }

    pub(super) async fn refresh(
        &self,
        http: &reqwest::Client,
        clock: &dyn Clock,
        refresh: &SecretString,
    ) -> Result<BasicTokenResponse, OAuthError> {
        let client = self.client()?;
        let token = RefreshToken::new(refresh.expose_secret().to_owned());
        let f = OAuthHttp { http, clock };
        client
            .exchange_refresh_token(&token)
            .request_async(&f)
            .await
            .map_err(map_error)
    }

    pub(super) async fn code(
        &self,
        http: &reqwest::Client,
        clock: &dyn Clock,
        code: &str,
        verifier: &str,
        redirect: &str,
    ) -> Result<BasicTokenResponse, OAuthError> {
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| OAuthError::Config(format!("redirect URL {redirect:?}: {e}")))?;
        let client = self.client()?.set_redirect_uri(redirect);
        let f = OAuthHttp { http, clock };
        client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&f)
            .await
            .map_err(map_error)
    }
}

impl TokenEndpoint {
    /// Asks the provider to revoke `token` (RFC 7009): a form POST to `url` with
    /// `token` and `token_type_hint`, the client authenticated as at the token
    /// endpoint. 200 means revoked (or already unknown, which RFC 7009 answers the same).
    pub(super) async fn revoke(
        &self,
        http: &reqwest::Client,
        url: &str,
        token: &SecretString,
        hint: &str,
    ) -> Result<(), OAuthError> {
        let mut form: Vec<(&str, &str)> =
            vec![("token", token.expose_secret()), ("token_type_hint", hint)];
        let mut request = http.post(url);
        match (&self.client_auth, &self.client_secret) {
            (ClientAuth::Basic, Some(secret)) => {
                request = request.basic_auth(&self.client_id, Some(secret.expose_secret()));
            }
            (_, secret) => {
                form.push(("client_id", &self.client_id));
                if let Some(secret) = secret {
                    form.push(("client_secret", secret.expose_secret()));
                }
            }
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let response = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| OAuthError::Unreachable(super::http::describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // Only the OAuth error fields are shown: the body may echo what was sent.
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let code = body["error"].as_str().map(str::to_owned);
        let description = body["error_description"].as_str().map(str::to_owned);
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(OAuthError::Unavailable {
                status: status.as_u16(),
                code,
                description,
                retry_after: None,
            });
        }
        Err(OAuthError::Refused {
            code: code.unwrap_or_else(|| "revocation refused".into()),
            description,
            status: Some(status.as_u16()),
        })
    }
}

fn map_error(e: RequestTokenError<HttpClientError, BasicErrorResponse>) -> OAuthError {
    match e {
        // Unreached while our HTTP function answers every status but 200 itself
        // (below); kept for an oauth2 that reports errors another way.
        RequestTokenError::ServerResponse(r) => OAuthError::Refused {
            code: r.error().to_string(),
            description: r.error_description().cloned(),
            status: None,
        },
        RequestTokenError::Request(HttpClientError::Status(a)) => {
            let StatusAnswer {
                status,
                retry_after,
                code,
                description,
                detail,
            } = *a;
            let busy = status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT;
            match code {
                _ if busy => OAuthError::Unavailable {
                    status: status.as_u16(),
                    code,
                    description,
                    retry_after,
                },
                Some(code) => OAuthError::Refused {
                    code,
                    description,
                    status: Some(status.as_u16()),
                },
                None => OAuthError::BadResponse(format!("HTTP {status}{detail}")),
            }
        }
        RequestTokenError::Request(HttpClientError::Transport(t)) => OAuthError::Unreachable(t),
        RequestTokenError::Request(HttpClientError::NotJson(what)) => OAuthError::BadResponse(what),
        RequestTokenError::Request(e @ HttpClientError::TooLarge) => {
            OAuthError::BadResponse(e.to_string())
        }
        // The body may hold a token next to the field that failed: name the field only.
        RequestTokenError::Parse(e, _) => OAuthError::BadResponse(format!(
            "JSON that is not a token response (problem at `{}`)",
            e.path()
        )),
        RequestTokenError::Other(what) => OAuthError::BadResponse(what),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::{IntoResponse, Response};

    use super::*;

    const SECRET: &str = "client-secret-Vq9Tz3";

    /// (status, content type, Retry-After, body)
    type Scripted = (u16, &'static str, Option<&'static str>, &'static str);

    /// A token endpoint on a local port answering each request with the next scripted
    /// answer.
    async fn endpoint(script: Vec<Scripted>) -> TokenEndpoint {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move || {
                let next = script.lock().unwrap().pop_front();
                async move {
                    let (status, ctype, retry, body) = next.unwrap();
                    let mut r: Response = (
                        StatusCode::from_u16(status).unwrap(),
                        [(header::CONTENT_TYPE, ctype)],
                        body,
                    )
                        .into_response();
                    if let Some(v) = retry {
                        r.headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from_static(v));
                    }
                    r
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        TokenEndpoint {
            token_url: format!("http://{addr}/token"),
            client_id: "bridge".into(),
            client_secret: Some(SecretString::from(SECRET)),
            client_auth: ClientAuth::Post,
            scopes: Vec::new(),
        }
    }

    #[tokio::test]
    async fn token_endpoint_failures_name_their_status_and_say_whether_to_retry() {
        let json = "application/json";
        let e = endpoint(vec![
            (503, json, Some("7"), r#"{"error":{"code":"NRC_BUSY"}}"#),
            (
                429,
                json,
                Some("2"),
                r#"{"error":"slow_down","error_description":"easy\nnow"}"#,
            ),
            (502, "text/html", None, "<html><h1>Bad Gateway</h1></html>"),
            (
                400,
                json,
                None,
                r#"{"error":"invalid_grant","error_description":"password expired"}"#,
            ),
            (401, json, None, r#"{"error":"invalid_client"}"#),
            (404, json, None, r#"{"message":"no route"}"#),
            (503, json, Some("Wed, 21 Oct 2015 07:28:00 GMT"), "{}"),
        ])
        .await;
        let http = super::super::http::build_client(Duration::from_secs(5)).unwrap();
        let mut seen = Vec::new();
        for _ in 0..7 {
            let err = e
                .client_credentials(&http, &crate::clock::SystemClock)
                .await
                .unwrap_err();
            assert!(!err.to_string().contains(SECRET), "{err}");
            seen.push((err.to_string(), err.is_transient(), err.retry_after()));
        }
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            seen,
            [
                (
                    "token endpoint answered HTTP 503 Service Unavailable (retry after 7 s)".into(),
                    true,
                    secs(7)
                ),
                (
                    "token endpoint answered HTTP 429 Too Many Requests: slow_down (easynow) (retry after 2 s)".into(),
                    true,
                    secs(2)
                ),
                ("token endpoint answered HTTP 502 Bad Gateway".into(), true, None),
                (
                    "token endpoint answered HTTP 400 Bad Request: invalid_grant (password expired)".into(),
                    false,
                    None
                ),
                (
                    "token endpoint answered HTTP 401 Unauthorized: invalid_client".into(),
                    false,
                    None
                ),
                (
                    "token endpoint answered HTTP 404 Not Found with JSON that is not an OAuth error".into(),
                    true,
                    None
                ),
                // A date in the past: ask again at once.
                (
                    "token endpoint answered HTTP 503 Service Unavailable (retry after 0 s)".into(),
                    true,
                    secs(0)
                ),
            ]
        );
    }
}

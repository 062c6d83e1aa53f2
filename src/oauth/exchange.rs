//! The four token requests the bridge makes, over oauth2 5 and reqwest 0.13.

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, ResourceOwnerPassword,
    ResourceOwnerUsername, Scope, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

use super::error::OAuthError;
use super::http::{HttpClientError, OAuthHttp};
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
    ) -> Result<BasicTokenResponse, OAuthError> {
        let client = self.client()?;
        let f = OAuthHttp(http);
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
        username: &str,
        password: &SecretString,
    ) -> Result<BasicTokenResponse, OAuthError> {
        let client = self.client()?;
        let user = ResourceOwnerUsername::new(username.to_owned());
        let pass = ResourceOwnerPassword::new(password.expose_secret().to_owned());
        let f = OAuthHttp(http);
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
        refresh: &SecretString,
    ) -> Result<BasicTokenResponse, OAuthError> {
        let client = self.client()?;
        let token = RefreshToken::new(refresh.expose_secret().to_owned());
        let f = OAuthHttp(http);
        client
            .exchange_refresh_token(&token)
            .request_async(&f)
            .await
            .map_err(map_error)
    }

    pub(super) async fn code(
        &self,
        http: &reqwest::Client,
        code: &str,
        verifier: &str,
        redirect: &str,
    ) -> Result<BasicTokenResponse, OAuthError> {
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| OAuthError::Config(format!("redirect URL {redirect:?}: {e}")))?;
        let client = self.client()?.set_redirect_uri(redirect);
        let f = OAuthHttp(http);
        client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&f)
            .await
            .map_err(map_error)
    }
}

fn map_error(e: RequestTokenError<HttpClientError, BasicErrorResponse>) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(r) => OAuthError::Refused {
            code: r.error().to_string(),
            description: r.error_description().cloned(),
        },
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

//! Access to downstream APIs: OAuth2 token sources (client credentials, password grant,
//! refresh tokens), static bearer tokens, and user accounts linked through the
//! authorization-code flow with PKCE.
//!
//! Tokens are cached in memory and persisted in the vault, so a restart reuses them
//! instead of minting new ones. One refresh runs at a time per source; concurrent
//! callers wait for it or keep using the still-valid token (see [`TokenSource::get`]).

mod credentials;
mod error;
mod exchange;
mod http;
mod link;
mod persist;
mod source;
mod token;

pub use credentials::{Credentials, SendError, auth_header};
pub use error::OAuthError;
pub use exchange::TokenEndpoint;
pub use http::{HttpClientError, StatusAnswer, build_client, describe as describe_http_error};
pub use link::{Approver, LinkStatus, Linker, LinkerConfig, Revoked};
pub use persist::{SecretsTokenStore, TokenStore};
pub use source::{AuthHealth, Grant, SourceConfig, TokenSource};
pub use token::Token;

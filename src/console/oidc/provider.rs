//! The identity provider as the console reaches it: its discovery document
//! (`{issuer}/.well-known/openid-configuration`), its signing keys (JWKS), cached
//! and fetched again when a token names a key not seen yet (the provider rotated),
//! and the token endpoint, where the authorization code and PKCE verifier are
//! exchanged for an ID token with the client's secret (HTTP Basic, RFC 6749 §2.3.1).

use std::sync::Mutex;

use base64::Engine;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::idtoken::KeySet;

/// Discovery documents and key sets are a few KiB; a provider that sends more is
/// broken or not a provider.
const MAX_DOCUMENT: usize = 512 * 1024;
/// How long discovery and keys are trusted before being fetched again.
const CACHE_FOR: chrono::Duration = chrono::Duration::hours(1);
/// At most one fetch of the keys for an unknown `kid` this often (the first at
/// once), so a stream of tokens with made-up key ids cannot make the daemon hammer
/// the provider.
const REFETCH_AFTER: chrono::Duration = chrono::Duration::seconds(10);

/// Why the provider could not be used. Messages name URLs and statuses, never the
/// code, secret or tokens.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{url} did not answer: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url} did not answer with a usable document: {reason}")]
    Invalid { url: String, reason: String },
}

/// The endpoints discovery names.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub jwks: String,
}

struct Cached {
    endpoints: Endpoints,
    keys: KeySet,
    fetched: DateTime<Utc>,
    /// When the keys were last fetched again for an unknown `kid`.
    refetched: Option<DateTime<Utc>>,
}

/// One provider, its discovery and keys cached.
pub struct Provider {
    pub issuer: String,
    http: reqwest::Client,
    cache: Mutex<Option<Cached>>,
}

/// http:// is accepted only to this machine (as for the issuer in the config).
fn acceptable(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(u) => {
            u.scheme() == "https"
                || (u.scheme() == "http"
                    && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")))
        }
        Err(_) => false,
    }
}

async fn read_json(resp: reqwest::Response, url: &str) -> Result<Value, ProviderError> {
    let invalid = |reason: String| ProviderError::Invalid {
        url: url.to_owned(),
        reason,
    };
    let mut resp = resp;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| ProviderError::Unreachable {
        url: url.to_owned(),
        reason: e.to_string(),
    })? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOCUMENT {
            return Err(invalid(format!("larger than {MAX_DOCUMENT} bytes")));
        }
    }
    serde_json::from_slice(&body).map_err(|_| invalid("not JSON".into()))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl Provider {
    pub fn new(issuer: String, http: reqwest::Client) -> Self {
        Provider {
            issuer,
            http,
            cache: Mutex::new(None),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn get(&self, url: &str) -> Result<Value, ProviderError> {
        let resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable {
                url: url.to_owned(),
                reason: e.without_url().to_string(),
            })?;
        if !resp.status().is_success() {
            return Err(ProviderError::Status {
                url: url.to_owned(),
                status: resp.status().as_u16(),
                detail: String::new(),
            });
        }
        read_json(resp, url).await
    }

    async fn discover(&self) -> Result<Endpoints, ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let doc = self.get(&url).await?;
        let invalid = |reason: String| ProviderError::Invalid {
            url: url.clone(),
            reason,
        };
        // OpenID Connect Discovery §4.3: the document must name the issuer asked for,
        // or its tokens would be checked against the wrong `iss`.
        let issuer = text(&doc, "issuer").unwrap_or_default();
        if issuer != self.issuer {
            return Err(invalid(format!(
                "it names issuer {issuer:?}, not the configured {:?} (console.oidc.issuer must match exactly, trailing slash included)",
                self.issuer
            )));
        }
        if let Some(methods) = doc
            .get("code_challenge_methods_supported")
            .and_then(Value::as_array)
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(invalid("the provider does not offer PKCE with S256".into()));
        }
        let endpoint = |key: &str| match text(&doc, key) {
            Some(u) if acceptable(&u) => Ok(u),
            Some(u) => Err(invalid(format!("{key} {u:?} is not an https:// URL"))),
            None => Err(invalid(format!("it has no {key}"))),
        };
        Ok(Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            jwks: endpoint("jwks_uri")?,
        })
    }

    async fn keys_at(&self, url: &str) -> Result<KeySet, ProviderError> {
        let doc = self.get(url).await?;
        match doc.get("keys").and_then(Value::as_array) {
            Some(keys) => Ok(KeySet(keys.clone())),
            None => Err(ProviderError::Invalid {
                url: url.to_owned(),
                reason: "no \"keys\" array".into(),
            }),
        }
    }

    /// The endpoints, from the cache while it is fresh.
    pub async fn endpoints(&self, now: DateTime<Utc>) -> Result<Endpoints, ProviderError> {
        if let Some(c) = self.cache().as_ref()
            && now - c.fetched < CACHE_FOR
        {
            return Ok(c.endpoints.clone());
        }
        let endpoints = self.discover().await?;
        let keys = self.keys_at(&endpoints.jwks).await?;
        *self.cache() = Some(Cached {
            endpoints: endpoints.clone(),
            keys,
            fetched: now,
            refetched: None,
        });
        Ok(endpoints)
    }

    /// The signing keys, fetched again when they lack `kid` (a rotation), at most
    /// once per [`REFETCH_AFTER`].
    pub async fn keys(
        &self,
        kid: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<KeySet, ProviderError> {
        let endpoints = self.endpoints(now).await?;
        let (keys, refetched) = match self.cache().as_ref() {
            Some(c) => (c.keys.clone(), c.refetched),
            None => (KeySet::default(), None),
        };
        let stale = kid.is_some_and(|k| !keys.has(k))
            && refetched.is_none_or(|at| now - at >= REFETCH_AFTER);
        if !stale {
            return Ok(keys);
        }
        let keys = self.keys_at(&endpoints.jwks).await?;
        if let Some(c) = self.cache().as_mut() {
            c.keys = keys.clone();
            c.refetched = Some(now);
        }
        Ok(keys)
    }

    /// Exchanges `code` (with its PKCE `verifier`) for the token response's ID token.
    pub async fn exchange(
        &self,
        token_url: &str,
        client_id: &str,
        secret: &SecretString,
        code: &str,
        verifier: &str,
        redirect: &str,
    ) -> Result<String, ProviderError> {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(
            format!("{}:{}", enc(client_id), enc(secret.expose_secret())),
        ));
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect)
            .append_pair("code_verifier", verifier)
            .finish();
        let resp = self
            .http
            .post(token_url)
            .header("authorization", format!("Basic {}", basic.as_str()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable {
                url: token_url.to_owned(),
                reason: e.without_url().to_string(),
            })?;
        let status = resp.status().as_u16();
        let body = read_json(resp, token_url).await;
        if !(200..300).contains(&status) {
            // Only the OAuth error code and its description, bounded: never the body.
            let detail = body
                .ok()
                .and_then(|b| {
                    let code = text(&b, "error")?;
                    let desc = text(&b, "error_description").unwrap_or_default();
                    Some(format!(": {code} {desc}").chars().take(240).collect())
                })
                .unwrap_or_default();
            return Err(ProviderError::Status {
                url: token_url.to_owned(),
                status,
                detail,
            });
        }
        text(&body?, "id_token").ok_or_else(|| ProviderError::Invalid {
            url: token_url.to_owned(),
            reason: "the token response has no id_token (is \"openid\" among the scopes?)".into(),
        })
    }
}

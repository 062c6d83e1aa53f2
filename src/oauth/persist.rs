//! Where tokens are kept between restarts.

use std::sync::Arc;

use secrecy::SecretString;

use crate::vault::Secrets;

/// Persistent storage for token JSON. Errors are messages for logs and health: they
/// never carry the value.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    /// The value stored under `name`.
    async fn load(&self, name: &str) -> Result<Option<SecretString>, String>;
    /// Creates or replaces `name`.
    async fn save(&self, name: &str, value: &SecretString) -> Result<(), String>;
    /// Removes `name`; `false` when absent.
    async fn remove(&self, name: &str) -> Result<bool, String>;
    /// Names starting with `prefix`.
    async fn names(&self, prefix: &str) -> Result<Vec<String>, String>;
}

/// Tokens sealed in the vault.
#[derive(Debug, Clone)]
pub struct SecretsTokenStore(pub Arc<Secrets>);

#[async_trait::async_trait]
impl TokenStore for SecretsTokenStore {
    async fn load(&self, name: &str) -> Result<Option<SecretString>, String> {
        self.0.get(name).await.map_err(|e| e.to_string())
    }

    async fn save(&self, name: &str, value: &SecretString) -> Result<(), String> {
        self.0.put(name, value).await.map_err(|e| e.to_string())
    }

    async fn remove(&self, name: &str) -> Result<bool, String> {
        self.0.delete(name).await.map_err(|e| e.to_string())
    }

    async fn names(&self, prefix: &str) -> Result<Vec<String>, String> {
        let rows = self.0.list(prefix).await.map_err(|e| e.to_string())?;
        Ok(rows.into_iter().map(|r| r.name).collect())
    }
}

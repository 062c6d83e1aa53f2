//! Named secrets sealed under the vault key and kept in the store.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::{VaultError, VaultKey};
use crate::clock::Clock;
use crate::entropy::Entropy;
use crate::store::{SecretRow, SecretWrite, Store, StoreError};

/// The associated data binding a sealed secret to its name, so a ciphertext copied
/// onto another row does not open.
pub fn secret_aad(name: &str) -> Vec<u8> {
    format!("secret:{name}").into_bytes()
}

/// Why a secret could not be read or written. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The stored ciphertext does not open (tampered, truncated or copied from another row).
    #[error("vault secret {name:?} cannot be opened: {source}")]
    Open {
        /// The secret's name.
        name: String,
        /// Why.
        source: VaultError,
    },
    /// Sealing failed.
    #[error("vault secret {name:?} cannot be sealed: {source}")]
    Seal {
        /// The secret's name.
        name: String,
        /// Why.
        source: VaultError,
    },
    /// The store failed.
    #[error("vault secret {name:?}: {source}")]
    Store {
        /// The secret's name.
        name: String,
        /// Why.
        source: StoreError,
    },
}

/// Reads and writes sealed secrets with an unlocked key.
pub struct Secrets {
    store: Arc<dyn Store>,
    key: VaultKey,
    /// The header the key was derived from; writes are refused once it changes.
    header: String,
    entropy: Arc<dyn Entropy>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

impl Secrets {
    /// `header` is the stored vault header `key` was unlocked against.
    pub fn new(
        store: Arc<dyn Store>,
        key: VaultKey,
        header: String,
        entropy: Arc<dyn Entropy>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            key,
            header,
            entropy,
            clock,
        }
    }

    /// The secret's value, or `None` when no secret has that name.
    pub async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsError> {
        let row = self
            .store
            .secret(name)
            .await
            .map_err(|source| SecretsError::Store {
                name: name.to_owned(),
                source,
            })?;
        let Some(row) = row else { return Ok(None) };
        self.key
            .open_string(&secret_aad(name), &row.sealed)
            .map(Some)
            .map_err(|source| SecretsError::Open {
                name: name.to_owned(),
                source,
            })
    }

    /// Creates or replaces a secret.
    pub async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretsError> {
        self.write(name, value, SecretWrite::Replace)
            .await
            .map(drop)
    }

    /// Creates a secret unless one of that name is stored already (then it is kept,
    /// and `false` returned): for a value made on first use, which instances starting
    /// together must agree on.
    pub async fn add(&self, name: &str, value: &SecretString) -> Result<bool, SecretsError> {
        self.write(name, value, SecretWrite::IfAbsent).await
    }

    async fn write(
        &self,
        name: &str,
        value: &SecretString,
        write: SecretWrite,
    ) -> Result<bool, SecretsError> {
        let sealed = self
            .key
            .seal(
                &secret_aad(name),
                value.expose_secret().as_bytes(),
                self.entropy.as_ref(),
            )
            .map_err(|source| SecretsError::Seal {
                name: name.to_owned(),
                source,
            })?;
        self.store
            .put_secret(name, sealed, &self.header, self.clock.now(), write)
            .await
            .map_err(|source| SecretsError::Store {
                name: name.to_owned(),
                source,
            })
    }

    /// Removes a secret; `false` when there was none.
    pub async fn delete(&self, name: &str) -> Result<bool, SecretsError> {
        self.store
            .delete_secret(name)
            .await
            .map_err(|source| SecretsError::Store {
                name: name.to_owned(),
                source,
            })
    }

    /// Every stored secret whose name starts with `prefix` (sealed; for names and dates).
    pub async fn list(&self, prefix: &str) -> Result<Vec<SecretRow>, SecretsError> {
        let rows = self
            .store
            .secrets()
            .await
            .map_err(|source| SecretsError::Store {
                name: format!("{prefix}*"),
                source,
            })?;
        Ok(rows
            .into_iter()
            .filter(|r| r.name.starts_with(prefix))
            .collect())
    }
}

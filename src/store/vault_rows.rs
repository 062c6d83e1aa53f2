//! The vault's header and sealed secrets (the store never sees a key).

use crate::store::{SecretRow, StoreError, VaultRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What [`VaultRows::put_secret`] does when the name is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretWrite {
    /// The new value replaces the stored one (`vault secret set`, a refreshed token).
    Replace,
    /// The stored value stays: a value made on first use by whichever instance comes
    /// first, which every other instance must then read and use (the audit signing
    /// key), where a replacing write by a second instance starting at the same
    /// moment would leave the first holding a value no longer stored.
    IfAbsent,
}

/// The insert behind [`VaultRows::put_secret`], with placeholders spelled by `ph`
/// (`?1` on SQLite, `$1` on PostgreSQL): written once so both engines store alike.
pub(crate) fn put_secret_sql(write: SecretWrite, ph: fn(usize) -> String) -> String {
    let on_conflict = match write {
        SecretWrite::Replace => {
            "DO UPDATE SET sealed = excluded.sealed, updated = excluded.updated"
        }
        SecretWrite::IfAbsent => "DO NOTHING",
    };
    format!(
        "INSERT INTO secrets (name, sealed, created, updated) VALUES ({}, {}, {}, {})
         ON CONFLICT (name) {on_conflict}",
        ph(1),
        ph(2),
        ph(3),
        ph(3)
    )
}

/// The vault's header and sealed secrets (the store never sees a key).
#[async_trait]
pub trait VaultRows: Send + Sync {
    /// The vault header, when the vault has been initialised.
    async fn vault(&self) -> Result<Option<VaultRecord>, StoreError>;

    /// Stores the header of a new vault; fails with [`StoreError::DuplicateId`] when
    /// one exists (a second init would orphan every stored secret).
    async fn init_vault(&self, header: String, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Stores a sealed secret; `true` when it was written, `false` when `write` is
    /// [`SecretWrite::IfAbsent`] and a secret of that name was already stored (it is
    /// left as it was). `sealed_under` is the vault header the caller's key was
    /// derived from: when the vault has been rotated since, the write fails with
    /// [`StoreError::Conflict`], so a long-running process holding the old key can
    /// never store a secret the new passphrase cannot open.
    async fn put_secret(
        &self,
        name: &str,
        sealed: Vec<u8>,
        sealed_under: &str,
        at: DateTime<Utc>,
        write: SecretWrite,
    ) -> Result<bool, StoreError>;

    /// One sealed secret.
    async fn secret(&self, name: &str) -> Result<Option<SecretRow>, StoreError>;

    /// Every sealed secret, by name.
    async fn secrets(&self) -> Result<Vec<SecretRow>, StoreError>;

    /// Deletes a secret; `false` when there was none.
    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError>;

    /// Replaces the header and every secret in one transaction (passphrase rotation).
    /// Fails, changing nothing, unless the stored header is still `old_header` and
    /// `rows` covers exactly the stored secrets.
    async fn rotate_vault(
        &self,
        old_header: String,
        new_header: String,
        rows: Vec<(String, Vec<u8>)>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

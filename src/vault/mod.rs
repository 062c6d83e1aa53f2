//! Encryption at rest for downstream tokens and client secrets.
//!
//! A long admin passphrase goes through Argon2id to a 256-bit [`VaultKey`]; each
//! secret is sealed with AES-256-GCM under a fresh random nonce and an AAD naming
//! the secret (e.g. `b"secret:imanage.client_secret"`), so a ciphertext copied to
//! another row does not open. The [`VaultHeader`] holds the salt, the costs and a
//! key check so a wrong passphrase is reported as such at unlock.
//!
//! Rotation: [`Vault::init`] with the new passphrase, then [`rekey`] every row
//! and replace the header, all in one store transaction.

mod error;
mod header;
mod key;
mod params;
mod passphrase;
mod secrets;
#[cfg(test)]
mod tests;

pub use error::VaultError;
pub use header::{SALT_LEN, VaultHeader};
pub use key::{SEAL_OVERHEAD, SEAL_VERSION, VaultKey, rekey};
pub use params::KdfParams;
pub use passphrase::Passphrase;
pub use secrets::{Secrets, SecretsError, secret_aad};

use crate::entropy::Entropy;

/// AAD of the key check; no secret may use it.
const KEY_CHECK_AAD: &[u8] = b"scim-bridge/key-check";
/// What the key check decrypts to under the right key.
const KEY_CHECK_PLAINTEXT: &[u8] = b"scim-bridge vault key check v1";

/// Creating and unlocking a vault.
#[derive(Debug)]
pub struct Vault;

impl Vault {
    /// Create a vault: random salt, derived key, and the header to persist.
    pub fn init(
        passphrase: &Passphrase,
        params: KdfParams,
        entropy: &dyn Entropy,
    ) -> Result<(VaultHeader, VaultKey), VaultError> {
        let mut salt = [0u8; SALT_LEN];
        entropy.fill(&mut salt);
        let key = VaultKey::derive(passphrase, &salt, &params)?;
        let key_check = key.seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT, entropy)?;
        let header = VaultHeader {
            version: VaultHeader::VERSION,
            salt,
            params,
            key_check,
        };
        Ok((header, key))
    }

    /// Re-derive the key from `passphrase` and check it against the header's key check.
    pub fn unlock(passphrase: &Passphrase, header: &VaultHeader) -> Result<VaultKey, VaultError> {
        if header.version != VaultHeader::VERSION {
            return Err(VaultError::UnsupportedHeaderVersion {
                found: header.version,
                supported: VaultHeader::VERSION,
            });
        }
        let key = VaultKey::derive(passphrase, &header.salt, &header.params)?;
        match key.open(KEY_CHECK_AAD, &header.key_check) {
            Ok(check) if check.as_slice() == KEY_CHECK_PLAINTEXT => Ok(key),
            Ok(_) => Err(VaultError::MalformedHeader(
                "key check holds unexpected data".into(),
            )),
            // A changed salt or costs also lands here: either way this passphrase
            // does not produce the key that sealed the check.
            Err(VaultError::Tampered) => Err(VaultError::WrongPassphrase),
            Err(e) => Err(VaultError::MalformedHeader(format!("key check: {e}"))),
        }
    }
}

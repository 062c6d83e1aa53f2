//! The derived vault key and the sealed-secret format.
//!
//! Sealed format: `version (1) | nonce (12) | ciphertext | tag (16)`. The version
//! byte is also prepended to the AAD, so a future format cannot be confused with
//! this one even if it reuses the layout.

use std::fmt;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use argon2::{Algorithm, Argon2, Block, Version};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{KdfParams, Passphrase, VaultError};
use crate::entropy::Entropy;

/// Format version of sealed blobs written by this build.
pub const SEAL_VERSION: u8 = 1;
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes a sealed blob adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// The 256-bit AES key derived from the passphrase; wiped on drop, never printed.
pub struct VaultKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl VaultKey {
    /// Argon2id(passphrase, salt, params) → 32 bytes.
    pub(super) fn derive(
        passphrase: &Passphrase,
        salt: &[u8],
        params: &KdfParams,
    ) -> Result<Self, VaultError> {
        params.validate()?;
        let kdf_err = |e: argon2::Error| VaultError::Kdf(e.to_string());
        let argon_params = argon2::Params::new(
            params.m_cost_kib,
            params.t_cost,
            params.p_cost,
            Some(KEY_LEN),
        )
        .map_err(kdf_err)?;
        let blocks_needed = argon_params.block_count();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);

        // Our own memory rather than `hash_password_into`: the crate frees its
        // blocks without wiping them, and the last ones determine the key.
        // `try_reserve_exact` turns an oversized header into an error, not an abort.
        let mut blocks: Zeroizing<Vec<Block>> = Zeroizing::new(Vec::new());
        blocks.try_reserve_exact(blocks_needed).map_err(|_| {
            VaultError::Kdf(format!(
                "cannot allocate {} KiB of Argon2 memory",
                params.m_cost_kib
            ))
        })?;
        blocks.resize(blocks_needed, Block::new());

        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into_with_memory(
                passphrase.as_bytes(),
                salt,
                bytes.as_mut_slice(),
                blocks.as_mut_slice(),
            )
            .map_err(kdf_err)?;
        Ok(Self { bytes })
    }

    fn cipher(&self) -> Aes256Gcm {
        // Built per call (sub-microsecond) so no expanded key schedule outlives a call;
        // the `zeroize` feature wipes it on drop.
        Aes256Gcm::new((&*self.bytes).into())
    }

    /// Encrypt `plaintext` bound to `aad` (the secret's identity) under a fresh random nonce.
    pub fn seal(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        entropy: &dyn Entropy,
    ) -> Result<Vec<u8>, VaultError> {
        // Random 96-bit nonces are safe for ~2^32 seals per key; a vault holds a
        // handful of secrets and rotation brings a fresh key.
        let mut nonce = [0u8; NONCE_LEN];
        entropy.fill(&mut nonce);

        // Zeroizing while the plaintext is in it, in case encryption fails.
        let mut out = Zeroizing::new(Vec::with_capacity(SEAL_OVERHEAD + plaintext.len()));
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher()
            .encrypt_inout_detached(
                &Nonce::from(nonce),
                &versioned_aad(aad),
                (&mut out[1 + NONCE_LEN..]).into(),
            )
            .map_err(|_| VaultError::TooLarge)?;
        out.extend_from_slice(&tag);
        Ok(std::mem::take(&mut *out))
    }

    /// Decrypt a blob from [`VaultKey::seal`]; fails unless key, `aad` and every byte match.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (&version, rest) = sealed
            .split_first()
            .ok_or(VaultError::Corrupt("it is empty"))?;
        if version != SEAL_VERSION {
            return Err(VaultError::Corrupt("unknown format version"));
        }
        let (nonce, rest) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(VaultError::Corrupt("it is truncated"))?;
        let (ciphertext, tag) = rest
            .split_last_chunk::<TAG_LEN>()
            .ok_or(VaultError::Corrupt("it is truncated"))?;

        let mut buf = Zeroizing::new(ciphertext.to_vec());
        self.cipher()
            .decrypt_inout_detached(
                &Nonce::from(*nonce),
                &versioned_aad(aad),
                buf.as_mut_slice().into(),
                &Tag::from(*tag),
            )
            .map_err(|_| VaultError::Tampered)?;
        Ok(buf)
    }

    /// [`VaultKey::seal`] for a text secret.
    pub fn seal_str(
        &self,
        aad: &[u8],
        secret: &SecretString,
        entropy: &dyn Entropy,
    ) -> Result<Vec<u8>, VaultError> {
        self.seal(aad, secret.expose_secret().as_bytes(), entropy)
    }

    /// [`VaultKey::open`] for a text secret.
    pub fn open_string(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretString, VaultError> {
        let bytes = self.open(aad, sealed)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| VaultError::NotUtf8)?;
        // Copies into an exact-size box; `bytes` is wiped when it drops.
        Ok(SecretString::from(text))
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKey([redacted])")
    }
}

fn versioned_aad(aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(1 + aad.len());
    full.push(SEAL_VERSION);
    full.extend_from_slice(aad);
    full
}

/// Re-encrypt one sealed secret from `old` to `new` under the same `aad` (key rotation).
pub fn rekey(
    old: &VaultKey,
    new: &VaultKey,
    aad: &[u8],
    sealed: &[u8],
    entropy: &dyn Entropy,
) -> Result<Vec<u8>, VaultError> {
    let plaintext = old.open(aad, sealed)?;
    new.seal(aad, &plaintext, entropy)
}

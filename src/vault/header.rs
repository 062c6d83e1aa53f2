//! The vault header: everything needed to re-derive and verify the key.

use serde::{Deserialize, Serialize};

use super::{KdfParams, VaultError};

/// Salt length in bytes (RFC 9106 recommends 16).
pub const SALT_LEN: usize = 16;

/// Persisted once per vault; nothing in it is secret. Binary fields serialise as base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultHeader {
    /// Header format version ([`VaultHeader::VERSION`]).
    pub version: u8,
    /// Argon2 salt, random per vault (and per rotation).
    #[serde(with = "b64")]
    pub salt: [u8; SALT_LEN],
    /// Argon2id costs the key was derived with.
    pub params: KdfParams,
    /// A fixed plaintext sealed under the key, to tell a wrong passphrase from corrupt secrets.
    #[serde(with = "b64")]
    pub key_check: Vec<u8>,
}

impl VaultHeader {
    /// Header format version written and read by this build.
    pub const VERSION: u8 = 1;

    /// Serialise to one JSON string for storage.
    pub fn to_json(&self) -> Result<String, VaultError> {
        serde_json::to_string(self).map_err(|e| VaultError::MalformedHeader(e.to_string()))
    }

    /// Parse a header written by [`VaultHeader::to_json`].
    pub fn from_json(text: &str) -> Result<Self, VaultError> {
        serde_json::from_str(text).map_err(|e| VaultError::MalformedHeader(e.to_string()))
    }
}

/// Base64 (standard, padded) for byte fields, so a stored header stays compact and readable.
mod b64 {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &impl AsRef<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<Vec<u8>>,
    {
        let text = String::deserialize(d)?;
        let bytes = STANDARD.decode(text).map_err(D::Error::custom)?;
        let len = bytes.len();
        T::try_from(bytes).map_err(|_| D::Error::custom(format!("unexpected length {len}")))
    }
}

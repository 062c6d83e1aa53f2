//! Vault errors. No variant carries key, passphrase or plaintext material.

/// Everything that can go wrong in the vault.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VaultError {
    /// The passphrase is shorter than the minimum.
    #[error(
        "vault passphrase too short: it must have over {} characters (at least {min}), the one given has {given}",
        .min - 1
    )]
    PassphraseTooShort {
        /// Minimum number of characters.
        min: usize,
        /// Number of characters supplied (after trimming a trailing newline).
        given: usize,
    },

    /// An Argon2 parameter is outside the accepted range.
    #[error("invalid Argon2 parameter {name} = {value}: it must be between {min} and {max}")]
    InvalidKdfParams {
        /// Parameter name as stored in the header.
        name: &'static str,
        /// Value found.
        value: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },

    /// Argon2 itself failed (e.g. could not allocate its memory).
    #[error("vault key derivation failed: {0}")]
    Kdf(String),

    /// The passphrase does not open the key check.
    #[error(
        "wrong vault passphrase: it does not match the one this vault was initialised with; \
         use the original passphrase (to change it, run `scim-bridge vault rotate`, \
         which also asks for the original)"
    )]
    WrongPassphrase,

    /// The vault header has a format version this build does not understand.
    #[error("unsupported vault header version {found} (this build supports version {supported})")]
    UnsupportedHeaderVersion {
        /// Version found in the header.
        found: u8,
        /// Version this build writes and reads.
        supported: u8,
    },

    /// The stored header could not be parsed.
    #[error("vault header is malformed: {0}")]
    MalformedHeader(String),

    /// A sealed blob is structurally invalid (too short or unknown format version).
    #[error("sealed secret is corrupt: {0}")]
    Corrupt(&'static str),

    /// A sealed blob failed authentication.
    #[error(
        "sealed secret failed authentication: it was modified, belongs to another record, \
         or was sealed under a different vault key"
    )]
    Tampered,

    /// The plaintext or its label exceeds what AES-GCM can encrypt.
    #[error("secret too large to encrypt")]
    TooLarge,

    /// A secret expected to be text decrypted to bytes that are not UTF-8.
    #[error("decrypted secret is not valid UTF-8")]
    NotUtf8,
}

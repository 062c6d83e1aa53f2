//! Sealing keys. Ed25519 is the primary algorithm: the verification key is public,
//! so an auditor, a customer or an offline machine can check an export without being
//! able to forge one. HMAC-SHA256 is the alternative for sites that want one
//! symmetric secret in the vault; whoever verifies with it can also forge.
//! Both come from crates already in the build (`ring` through rustls, `hmac`).

use std::fmt;

use hmac::{Hmac, Mac};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::AuditError;
use crate::entropy::Entropy;

/// Domain tag for key ids, so the id of a key is never the hash of anything else.
const KEY_ID_TAG: &[u8] = b"scim-bridge-audit/v1/key-id\0";
/// Shortest HMAC key accepted: the SHA-256 block of security it is meant to give.
const HMAC_MIN_KEY: usize = 32;

/// The signature algorithm of seals and checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Ed25519,
    HmacSha256,
}

impl Algorithm {
    /// The name written in the export header and in key text.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::HmacSha256 => "hmac-sha256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ed25519" => Some(Self::Ed25519),
            "hmac-sha256" => Some(Self::HmacSha256),
            _ => None,
        }
    }
}

/// The short public name of a key: 16 bytes of a tagged SHA-256 of the algorithm and
/// the verification key (for HMAC, the secret: SHA-256 does not give it back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId(String);

impl KeyId {
    fn of(alg: Algorithm, material: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(KEY_ID_TAG);
        h.update(alg.name().as_bytes());
        h.update([0]);
        h.update(material);
        Self(hex::encode(&h.finalize()[..16]))
    }

    /// A key id as read from a file (checked by the caller for its form).
    pub(crate) fn from_text(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

enum Signer {
    Ed25519(Ed25519KeyPair),
    Hmac(Zeroizing<Vec<u8>>),
}

/// The key the daemon seals with (held in the vault).
pub struct SigningKey {
    signer: Signer,
    verifying: VerifyingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({} {})", self.algorithm().name(), self.id())
    }
}

impl SigningKey {
    /// An Ed25519 key from its 32-byte seed (the form kept in the vault).
    pub fn ed25519_from_seed(seed: &[u8]) -> Result<Self, AuditError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| AuditError::Invalid(format!("Ed25519 seed: {e}")))?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| AuditError::Invalid("Ed25519 public key is not 32 bytes".into()))?;
        Ok(Self {
            signer: Signer::Ed25519(pair),
            verifying: VerifyingKey::ed25519(public),
        })
    }

    /// An HMAC-SHA256 key (at least 32 bytes).
    pub fn hmac_sha256(secret: &[u8]) -> Result<Self, AuditError> {
        let verifying = VerifyingKey::hmac_sha256(secret)?;
        Ok(Self {
            signer: Signer::Hmac(Zeroizing::new(secret.to_vec())),
            verifying,
        })
    }

    /// A fresh key and the 32 secret bytes to store for it (seed or HMAC key).
    pub fn generate(
        alg: Algorithm,
        entropy: &dyn Entropy,
    ) -> Result<(Self, Zeroizing<[u8; 32]>), AuditError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        entropy.fill(secret.as_mut());
        let key = match alg {
            Algorithm::Ed25519 => Self::ed25519_from_seed(secret.as_ref())?,
            Algorithm::HmacSha256 => Self::hmac_sha256(secret.as_ref())?,
        };
        Ok((key, secret))
    }

    pub fn algorithm(&self) -> Algorithm {
        self.verifying.algorithm()
    }

    pub fn id(&self) -> &KeyId {
        self.verifying.id()
    }

    /// What an auditor needs to check seals (for HMAC: the secret itself).
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuditError> {
        Ok(match &self.signer {
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Hmac(secret) => hmac(secret, message)?.finalize().into_bytes().to_vec(),
        })
    }
}

fn hmac(secret: &[u8], message: &[u8]) -> Result<Hmac<Sha256>, AuditError> {
    // HMAC takes a key of any length, so this error does not happen in practice.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|e| AuditError::Invalid(format!("HMAC key: {e}")))?;
    mac.update(message);
    Ok(mac)
}

#[derive(Clone)]
enum Verifier {
    Ed25519([u8; 32]),
    Hmac(Zeroizing<Vec<u8>>),
}

/// The key `verify` checks seals with.
#[derive(Clone)]
pub struct VerifyingKey {
    verifier: Verifier,
    id: KeyId,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({} {})", self.algorithm().name(), self.id)
    }
}

impl VerifyingKey {
    pub fn ed25519(public: [u8; 32]) -> Self {
        Self {
            id: KeyId::of(Algorithm::Ed25519, &public),
            verifier: Verifier::Ed25519(public),
        }
    }

    pub fn hmac_sha256(secret: &[u8]) -> Result<Self, AuditError> {
        if secret.len() < HMAC_MIN_KEY {
            return Err(AuditError::Invalid(format!(
                "an HMAC-SHA256 audit key needs at least {HMAC_MIN_KEY} bytes, not {}",
                secret.len()
            )));
        }
        Ok(Self {
            id: KeyId::of(Algorithm::HmacSha256, secret),
            verifier: Verifier::Hmac(Zeroizing::new(secret.to_vec())),
        })
    }

    /// Reads `ed25519:<64 hex>` or `hmac-sha256:<hex>`, the form `--key` takes.
    pub fn from_text(text: &str) -> Result<Self, AuditError> {
        let bad = |why: &str| AuditError::Invalid(format!("audit key: {why}"));
        let (alg, hex_part) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| bad("expected ed25519:<hex> or hmac-sha256:<hex>"))?;
        let bytes = hex::decode(hex_part).map_err(|_| bad("the part after ':' is not hex"))?;
        match Algorithm::parse(alg) {
            Some(Algorithm::Ed25519) => {
                let public: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| bad("an Ed25519 public key is 32 bytes (64 hex digits)"))?;
                Ok(Self::ed25519(public))
            }
            Some(Algorithm::HmacSha256) => Self::hmac_sha256(&bytes),
            None => Err(bad(&format!("unknown algorithm {alg:?}"))),
        }
    }

    /// The text `from_text` reads. For HMAC this is the secret: handle it as one.
    pub fn to_text(&self) -> String {
        let material = match &self.verifier {
            Verifier::Ed25519(public) => hex::encode(public),
            Verifier::Hmac(secret) => hex::encode(secret.as_slice()),
        };
        format!("{}:{material}", self.algorithm().name())
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.verifier {
            Verifier::Ed25519(_) => Algorithm::Ed25519,
            Verifier::Hmac(_) => Algorithm::HmacSha256,
        }
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Ed25519(public) => UnparsedPublicKey::new(&ED25519, public)
                .verify(message, signature)
                .is_ok(),
            // Constant-time comparison inside `verify_slice`.
            Verifier::Hmac(secret) => {
                hmac(secret, message).is_ok_and(|mac| mac.verify_slice(signature).is_ok())
            }
        }
    }
}

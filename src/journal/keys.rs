//! The audit signing key: a 32-byte Ed25519 seed kept as the vault secret
//! `audit.signing` (sealed like OAuth client secrets), made on first use. Whoever
//! holds only the verification key (`audit key`) can check exports, never forge one.

use secrecy::{ExposeSecret, SecretString};

use super::JournalError;
use crate::audit::{AuditError, SigningKey};
use crate::entropy::Entropy;
use crate::vault::Secrets;

/// The vault secret that holds the seed (hex).
pub const SECRET: &str = "audit.signing";

/// The signing key from the vault, created (and stored) when there is none yet.
pub async fn signing_key(
    secrets: &Secrets,
    entropy: &dyn Entropy,
) -> Result<SigningKey, JournalError> {
    if let Some(seed) = secrets.get(SECRET).await? {
        return from_seed_text(&seed);
    }
    let (_, seed) = SigningKey::generate(crate::audit::Algorithm::Ed25519, entropy)?;
    secrets
        .put(SECRET, &SecretString::from(hex::encode(seed.as_ref())))
        .await?;
    tracing::info!("audit signing key created (vault secret {SECRET})");
    // Read back what is stored: with instances starting together on one database,
    // the seed that stayed is the one every instance must sign with.
    let stored = secrets.get(SECRET).await?.ok_or_else(|| {
        JournalError::Invalid(format!(
            "the vault secret {SECRET} vanished after it was stored"
        ))
    })?;
    from_seed_text(&stored)
}

fn from_seed_text(seed: &SecretString) -> Result<SigningKey, JournalError> {
    let bytes =
        zeroize::Zeroizing::new(hex::decode(seed.expose_secret().trim()).map_err(|_| {
            AuditError::Invalid(format!(
                "the vault secret {SECRET} is not a hex Ed25519 seed"
            ))
        })?);
    if bytes.len() != 32 {
        return Err(AuditError::Invalid(format!(
            "the vault secret {SECRET} is not a 32-byte Ed25519 seed"
        ))
        .into());
    }
    Ok(SigningKey::ed25519_from_seed(&bytes)?)
}

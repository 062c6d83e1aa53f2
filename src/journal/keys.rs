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
    // Instances starting together on one new database each make a seed: the first
    // stored stays (a replacing write would leave an instance that read its own seed
    // back before another's replaced it signing with a key no longer stored), and
    // every instance signs with what is stored.
    if secrets
        .add(SECRET, &SecretString::from(hex::encode(seed.as_ref())))
        .await?
    {
        tracing::info!("audit signing key created (vault secret {SECRET})");
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, SystemClock};
    use crate::entropy::SeededEntropy;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;
    use crate::vault::{KdfParams, Passphrase, Vault};

    /// Instances starting together on one new database each make a seed; every one
    /// of them must end up signing with the seed that is stored. With a replacing
    /// write, an instance that read its own seed back before another's replaced it
    /// kept a key no longer stored, and its seals failed to verify.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn instances_starting_together_sign_with_the_one_stored_key() {
        // The race needs another instance's write between one's own write and its
        // read-back; rounds make missing it unlikely (one round caught the replacing
        // write about one time in three).
        for round in 0..20u64 {
            one_round(round).await;
        }
    }

    async fn one_round(round: u64) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("b.db")).unwrap());
        let params = KdfParams {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        };
        let phrase = Passphrase::new("p".repeat(Passphrase::MIN_CHARS)).unwrap();
        let (header, _) = Vault::init(&phrase, params, &SeededEntropy::new(round)).unwrap();
        let json = header.to_json().unwrap();
        store
            .init_vault(json.clone(), SystemClock.now())
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8u64)
            .map(|i| {
                let key = Vault::unlock(&phrase, &header).unwrap();
                let secrets = Secrets::new(
                    Arc::clone(&store),
                    key,
                    json.clone(),
                    Arc::new(SeededEntropy::new(100 * round + i)),
                    Arc::new(SystemClock),
                );
                tokio::spawn(async move {
                    let entropy = SeededEntropy::new(10_000 * round + i);
                    let key = signing_key(&secrets, &entropy).await.unwrap();
                    (key.id().clone(), secrets)
                })
            })
            .collect();
        let mut keys = Vec::new();
        for t in tasks {
            keys.push(t.await.unwrap());
        }
        let (_, secrets) = &keys[0];
        let stored = signing_key(secrets, &SeededEntropy::new(7)).await.unwrap();
        for (k, _) in &keys {
            assert_eq!(
                k,
                stored.id(),
                "round {round}: an instance signs with a key not stored"
            );
        }
        store.close().await;
    }
}

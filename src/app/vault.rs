//! Opening the vault with the configured passphrase, for the daemon and the commands
//! that read or change secrets.

use super::AppError;
use crate::config::{Config, Environment, SecretRef};
use crate::store::Store;
use crate::vault::{KdfParams, Passphrase, Vault, VaultError, VaultHeader, VaultKey};

/// The configured passphrase.
pub fn passphrase(cfg: &Config, env: &Environment) -> Result<Passphrase, AppError> {
    let vc = cfg.vault.as_ref().ok_or_else(|| {
        AppError::Config(
            "no [vault] section in the configuration: add one with passphrase = { credential = \"…\" } or { file = \"…\" }"
                .to_owned(),
        )
    })?;
    passphrase_from(&vc.passphrase, env, "vault.passphrase")
}

pub fn passphrase_from(
    r: &SecretRef,
    env: &Environment,
    what: &str,
) -> Result<Passphrase, AppError> {
    let value = r
        .resolve(env)
        .map_err(|e| AppError::Config(format!("{what}: {e}")))?;
    Passphrase::new(value.expose().to_owned()).map_err(|e| match e {
        // A passphrase that breaks the length rule is a configuration mistake, not a
        // wrong passphrase: nothing was tried against the vault.
        VaultError::PassphraseTooShort { .. } => AppError::Config(format!("{what}: {e}")),
        _ => AppError::Vault(format!("{what}: {e}")),
    })
}

pub fn params(cfg: &Config) -> KdfParams {
    cfg.vault.as_ref().map_or(
        KdfParams {
            m_cost_kib: 65536,
            t_cost: 3,
            p_cost: 1,
        },
        |v| KdfParams {
            m_cost_kib: v.memory_kib,
            t_cost: v.iterations,
            p_cost: v.parallelism,
        },
    )
}

/// Unlocks the stored vault with the configured passphrase: the key and the header
/// it was derived from.
pub async fn unlock(
    store: &dyn Store,
    cfg: &Config,
    env: &Environment,
) -> Result<Option<(VaultKey, String)>, AppError> {
    let Some(record) = store
        .vault()
        .await
        .map_err(|e| AppError::Store(e.to_string()))?
    else {
        return Ok(None);
    };
    let header = VaultHeader::from_json(&record.header)
        .map_err(|e| AppError::Vault(format!("the stored vault header is damaged: {e}")))?;
    let pass = passphrase(cfg, env)?;
    let key = tokio::task::spawn_blocking(move || Vault::unlock(&pass, &header))
        .await
        .map_err(|e| AppError::Runtime(format!("unlock task failed: {e}")))?
        .map_err(|e| AppError::Vault(e.to_string()))?;
    Ok(Some((key, record.header)))
}

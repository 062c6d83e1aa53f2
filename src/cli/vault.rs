//! `scim-bridge vault init|status|rotate` and `secret set|list|delete`.
//!
//! Passphrases and secret values come from files, systemd credentials, environment
//! variables or stdin — never from the command line, where `ps` would show them.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use crate::clock::Clock;
use clap::Subcommand;

use super::{Failure, setup};
pub use crate::app::vault::unlock;
use crate::app::vault::{params, passphrase, passphrase_from};
use crate::config::{Config, Environment, SecretRef};
use crate::entropy::OsEntropy;
use crate::store::{SecretWrite, Store};
use crate::vault::{Vault, VaultHeader, rekey, secret_aad};

/// Vault actions.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Create the vault with the passphrase `[vault] passphrase` names.
    Init,
    /// Whether the vault exists, its costs, and whether the configured passphrase opens it.
    Status,
    /// Re-encrypt every secret under a new passphrase, in one transaction.
    Rotate {
        /// File holding the new passphrase
        #[arg(long, value_name = "PATH", group = "new")]
        new_passphrase_file: Option<PathBuf>,
        /// Environment variable holding the new passphrase
        #[arg(long, value_name = "VAR", group = "new")]
        new_passphrase_env: Option<String>,
        /// systemd credential holding the new passphrase
        #[arg(long, value_name = "NAME", group = "new")]
        new_passphrase_credential: Option<String>,
    },
}

/// Secret actions.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret; the value is read from stdin (one trailing newline dropped).
    Set {
        /// Name, as referenced in the config: `{ vault = "NAME" }`
        name: String,
    },
    /// Names and dates of stored secrets (never values).
    List,
    /// Delete a secret.
    Delete {
        /// Name
        name: String,
    },
}

/// The secret's value from stdin, one trailing newline dropped. At a terminal the
/// person is asked for it and what they type is not echoed (nor left on the screen).
fn read_secret_value(name: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
    use std::io::IsTerminal;
    let mut value = zeroize::Zeroizing::new(Vec::new());
    let stdin = std::io::stdin();
    let read = |value: &mut Vec<u8>| -> Result<(), Failure> {
        let res = if stdin.is_terminal() {
            // One line at a terminal: Enter ends it.
            let mut line = String::new();
            let r = stdin.lock().read_line(&mut line).map(|_| ());
            value.extend_from_slice(line.as_bytes());
            zeroize::Zeroize::zeroize(&mut line);
            r
        } else {
            stdin.lock().read_to_end(value).map(|_| ())
        };
        res.map_err(|e| Failure::runtime(format!("cannot read the secret from stdin: {e}")))
    };
    if stdin.is_terminal() {
        eprint!("value for secret {name} (not shown as you type): ");
        let _ = std::io::stderr().flush();
        let echo = EchoOff::new();
        let r = read(&mut value);
        drop(echo);
        eprintln!();
        r?;
    } else {
        read(&mut value)?;
    }
    if value.last() == Some(&b'\n') {
        value.pop();
        if value.last() == Some(&b'\r') {
            value.pop();
        }
    }
    Ok(value)
}

/// Terminal echo off for as long as it lives (restored on drop, also on error).
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> Self {
        #[cfg(unix)]
        {
            // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed, then filled, termios;
            // failures leave the terminal as it was.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                    return EchoOff { saved: None };
                }
                let saved = t;
                t.c_lflag &= !libc::ECHO;
                if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                    return EchoOff { saved: None };
                }
                EchoOff { saved: Some(saved) }
            }
        }
        #[cfg(not(unix))]
        EchoOff {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(t) = self.saved {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t);
            }
        }
    }
}

fn vault_failure(message: impl Into<String>) -> Failure {
    Failure {
        code: 6,
        message: message.into(),
    }
}

fn valid_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Failure {
            code: 2,
            message: format!(
                "secret name {name:?}: use 1–128 characters from a-z, A-Z, 0-9, '.', '_', '-'"
            ),
        })
    }
}

pub async fn run_vault(
    action: VaultCommand,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    // `vault init` may create the database; nothing else may.
    let store = if matches!(action, VaultCommand::Init) {
        crate::app::setup::open_store(&cfg).await?
    } else {
        setup::open_existing_store(&cfg).await?
    };
    let result = vault_action(action, &cfg, store.as_ref(), env, clock).await;
    store.close().await;
    result
}

async fn vault_action(
    action: VaultCommand,
    cfg: &Config,
    store: &dyn Store,
    env: &Environment,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    match action {
        VaultCommand::Init => {
            if store
                .vault()
                .await
                .map_err(|e| Failure::store(e.to_string()))?
                .is_some()
            {
                return Err(vault_failure(
                    "the vault already exists; to change its passphrase use `scim-bridge vault rotate`",
                ));
            }
            let pass = passphrase(cfg, env)?;
            let params = params(cfg);
            params
                .validate()
                .map_err(|e| Failure::config(format!("[vault]: {e}")))?;
            let (header, _key) =
                tokio::task::spawn_blocking(move || Vault::init(&pass, params, &OsEntropy))
                    .await
                    .map_err(|e| Failure::runtime(format!("init task failed: {e}")))?
                    .map_err(|e| vault_failure(e.to_string()))?;
            let json = header.to_json().map_err(|e| vault_failure(e.to_string()))?;
            store
                .init_vault(json, clock.now())
                .await
                .map_err(|e| vault_failure(format!("cannot store the vault: {e}")))?;
            println!(
                "vault initialised (Argon2id m={} KiB, t={}, p={}); keep the passphrase safe: without it the stored secrets cannot be recovered",
                params.m_cost_kib, params.t_cost, params.p_cost
            );
            Ok(())
        }
        VaultCommand::Status => {
            let Some(record) = store
                .vault()
                .await
                .map_err(|e| Failure::store(e.to_string()))?
            else {
                println!("vault: not initialised (run `scim-bridge vault init`)");
                return Ok(());
            };
            let header = VaultHeader::from_json(&record.header)
                .map_err(|e| vault_failure(format!("the stored vault header is damaged: {e}")))?;
            let secrets = store
                .secrets()
                .await
                .map_err(|e| Failure::store(e.to_string()))?;
            println!(
                "vault: initialised {}{}; Argon2id m={} KiB, t={}, p={}; {} secret(s)",
                record.created.format("%Y-%m-%d %H:%M:%S UTC"),
                record
                    .rotated
                    .map(|r| format!(", rotated {}", r.format("%Y-%m-%d %H:%M:%S UTC")))
                    .unwrap_or_default(),
                header.params.m_cost_kib,
                header.params.t_cost,
                header.params.p_cost,
                secrets.len()
            );
            let (key, _) = unlock(store, cfg, env)
                .await?
                .ok_or_else(|| vault_failure("the vault disappeared while reading it"))?;
            // Open every secret: a truncated or tampered row shows up here, not when a
            // delivery needs it.
            for s in &secrets {
                key.open(&secret_aad(&s.name), &s.sealed).map_err(|e| {
                    vault_failure(format!("secret {:?} does not open: {e}", s.name))
                })?;
            }
            println!(
                "passphrase: the configured passphrase opens the vault and all {} secret(s)",
                secrets.len()
            );
            Ok(())
        }
        VaultCommand::Rotate {
            new_passphrase_file,
            new_passphrase_env,
            new_passphrase_credential,
        } => {
            let new_ref = match (
                new_passphrase_file,
                new_passphrase_env,
                new_passphrase_credential,
            ) {
                (Some(p), None, None) => SecretRef::File(p),
                (None, Some(v), None) => SecretRef::Env(v),
                (None, None, Some(c)) => SecretRef::Credential(c),
                _ => {
                    return Err(Failure {
                        code: 2,
                        message: "give the new passphrase with exactly one of --new-passphrase-file, --new-passphrase-env, --new-passphrase-credential".into(),
                    });
                }
            };
            let new_pass = passphrase_from(&new_ref, env, "new passphrase")?;
            let record = store
                .vault()
                .await
                .map_err(|e| Failure::store(e.to_string()))?
                .ok_or_else(|| {
                    vault_failure("no vault to rotate (run `scim-bridge vault init`)")
                })?;
            let (old_key, _) = unlock(store, cfg, env)
                .await?
                .ok_or_else(|| vault_failure("no vault to rotate"))?;
            let params = params(cfg);
            let (new_header, new_key) =
                tokio::task::spawn_blocking(move || Vault::init(&new_pass, params, &OsEntropy))
                    .await
                    .map_err(|e| Failure::runtime(format!("rotate task failed: {e}")))?
                    .map_err(|e| vault_failure(e.to_string()))?;
            let secrets = store
                .secrets()
                .await
                .map_err(|e| Failure::store(e.to_string()))?;
            let mut rows = Vec::with_capacity(secrets.len());
            for s in &secrets {
                let sealed = rekey(
                    &old_key,
                    &new_key,
                    &secret_aad(&s.name),
                    &s.sealed,
                    &OsEntropy,
                )
                .map_err(|e| {
                    vault_failure(format!(
                        "secret {:?} does not open ({e}); nothing was changed",
                        s.name
                    ))
                })?;
                rows.push((s.name.clone(), sealed));
            }
            let json = new_header
                .to_json()
                .map_err(|e| vault_failure(e.to_string()))?;
            store
                .rotate_vault(record.header, json, rows, clock.now())
                .await
                .map_err(|e| vault_failure(format!("rotation failed: {e}")))?;
            println!(
                "vault rotated: {} secret(s) re-encrypted under the new passphrase. Point [vault] passphrase at it now; the old one no longer opens the vault.",
                secrets.len()
            );
            Ok(())
        }
    }
}

pub async fn run_secret(
    action: SecretCommand,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    if let SecretCommand::Set { name } | SecretCommand::Delete { name } = &action {
        valid_name(name)?;
    }
    let store = setup::open_existing_store(&cfg).await?;
    let result = secret_action(action, &cfg, store.as_ref(), env, clock).await;
    store.close().await;
    result
}

async fn secret_action(
    action: SecretCommand,
    cfg: &Config,
    store: &dyn Store,
    env: &Environment,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    match action {
        SecretCommand::Set { name } => {
            let (key, header) = unlock(store, cfg, env).await?.ok_or_else(|| {
                vault_failure("the vault is not initialised (run `scim-bridge vault init`)")
            })?;
            let value = read_secret_value(&name)?;
            if value.is_empty() {
                return Err(Failure {
                    code: 2,
                    message: "the secret read from stdin is empty".into(),
                });
            }
            let sealed = key
                .seal(&secret_aad(&name), &value, &OsEntropy)
                .map_err(|e| vault_failure(e.to_string()))?;
            store
                .put_secret(&name, sealed, &header, clock.now(), SecretWrite::Replace)
                .await
                .map_err(|e| Failure::store(e.to_string()))?;
            println!("secret {name} stored ({} bytes, encrypted)", value.len());
            Ok(())
        }
        SecretCommand::List => {
            let rows = store
                .secrets()
                .await
                .map_err(|e| Failure::store(e.to_string()))?;
            println!("{:<40} {:<20} UPDATED", "NAME", "CREATED");
            for r in rows {
                println!(
                    "{:<40} {:<20} {}",
                    r.name,
                    r.created.format("%Y-%m-%d %H:%M:%S"),
                    r.updated.format("%Y-%m-%d %H:%M:%S")
                );
            }
            Ok(())
        }
        SecretCommand::Delete { name } => {
            // Like every other vault command: only someone holding the passphrase may
            // change what the vault holds, and a wrong one writes nothing (exit 6).
            unlock(store, cfg, env).await?.ok_or_else(|| {
                vault_failure("the vault is not initialised (run `scim-bridge vault init`)")
            })?;
            if store
                .delete_secret(&name)
                .await
                .map_err(|e| Failure::store(e.to_string()))?
            {
                println!("secret {name} deleted");
                Ok(())
            } else {
                Err(Failure::runtime(format!("no secret named {name:?}")))
            }
        }
    }
}

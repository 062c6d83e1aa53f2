//! `scim-bridge link list|revoke`: user accounts linked to targets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;

use super::{Failure, setup};
use crate::app::targets;
use crate::config::Environment;
use crate::oauth::Revoked;
use crate::store::Store;

/// Link actions.
#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Linked accounts: target, user, when linked, token expiry (never tokens).
    List {
        /// Only this target
        #[arg(long)]
        target: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// One person's links: when linked, when the token expires, when it was last
    /// refreshed (never tokens).
    Status {
        /// User name as linked
        user: String,
        /// Only this target
        #[arg(long)]
        target: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// End a user's link to a target: its tokens are revoked at the provider (where it
    /// offers revocation) and forgotten; the user must link again.
    Revoke {
        /// Target name
        #[arg(long)]
        target: String,
        /// User name as linked
        #[arg(long)]
        user: String,
    },
}

pub async fn run(
    action: LinkCommand,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    let store: Arc<dyn Store> = setup::open_existing_store(&cfg).await?;
    let result = async {
        // Linked accounts live in the vault: without it there are none to show.
        if cfg.vault.is_none() {
            return Err(Failure::config(
                "no [vault] section in the configuration, so no account can be linked: add one with passphrase = { credential = \"…\" } or { file = \"…\" }",
            ));
        }
        let (built, _, opened) = targets::for_command(&cfg, env, &store).await?;
        if !opened {
            return Err(Failure { code: 6, message: "the vault is not initialised, so no account is linked".into() });
        }
        let linker = |name: &str| {
            built
                .iter()
                .find(|t| t.name == name)
                .and_then(|t| t.linker.clone())
                .ok_or_else(|| Failure {
                    code: 2,
                    message: format!("no target named {name:?} links accounts (it needs [targets.auth] authorize_url)"),
                })
        };
        match action {
            LinkCommand::List { target, json } => {
                let mut links = Vec::new();
                let chosen: Vec<_> = match &target {
                    Some(name) => vec![linker(name)?],
                    None => built.iter().filter_map(|t| t.linker.clone()).collect(),
                };
                for l in chosen {
                    links.extend(l.list().await.map_err(|e| Failure::runtime(e.to_string()))?);
                }
                if json {
                    println!("{}", serde_json::to_string_pretty(&links).unwrap_or_default());
                    return Ok(());
                }
                println!("{:<16} {:<40} {:<20} {:<20} REFRESHABLE", "TARGET", "USER", "LINKED", "TOKEN EXPIRES");
                let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string())
                };
                for l in &links {
                    println!(
                        "{:<16} {:<40} {:<20} {:<20} {}",
                        l.target,
                        l.user,
                        when(Some(l.linked)),
                        when(l.expires),
                        if l.refreshable { "yes" } else { "no" }
                    );
                }
                Ok(())
            }
            LinkCommand::Status { user, target, json } => {
                let chosen: Vec<_> = match &target {
                    Some(name) => vec![linker(name)?],
                    None => built.iter().filter_map(|t| t.linker.clone()).collect(),
                };
                let mut found = Vec::new();
                for l in chosen {
                    if let Some(s) = l.status(&user).await.map_err(|e| Failure::runtime(e.to_string()))? {
                        found.push(s);
                    }
                }
                if json {
                    println!("{}", serde_json::to_string_pretty(&found).unwrap_or_default());
                } else {
                    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                        t.map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    };
                    for s in &found {
                        println!("{} at {}: linked {}; token expires {}; last refreshed {}; {}",
                            s.user, s.target, when(Some(s.linked)), when(s.expires),
                            s.refreshed.map_or_else(|| "never".to_owned(), |t| when(Some(t))),
                            if s.refreshable { "refreshed on use" } else { "not refreshable: links again when it expires" });
                    }
                }
                if found.is_empty() {
                    return Err(Failure::runtime(format!("{user} has no linked account")));
                }
                Ok(())
            }
            LinkCommand::Revoke { target, user } => {
                match linker(&target)?.revoke(&user).await.map_err(|e| Failure::runtime(format!("{user}'s link to {target} was kept: {e}")))? {
                    Revoked::AtProvider => {
                        println!("{user}'s link to {target} ended: its tokens were revoked at the provider and forgotten here");
                        Ok(())
                    }
                    Revoked::LocallyOnly => {
                        println!("{user}'s link to {target} forgotten here; no revoke_url is configured, so its tokens stay valid at the provider until they expire");
                        Ok(())
                    }
                    Revoked::NoLink => Err(Failure::runtime(format!("{user} has no link to {target}"))),
                }
            }
        }
    }
    .await;
    store.close().await;
    result
}

//! `scim-bridge token create|list|revoke`.

use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::clock::Clock;
use clap::Subcommand;

use super::{Failure, setup};
use crate::config::Environment;
use crate::entropy::OsEntropy;
use crate::tokens::{self, TokenScope};

/// Token actions.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it once (the last line of stdout is the token alone).
    Create {
        /// Provider whose SCIM base the token opens (required for scope scim)
        #[arg(long)]
        provider: Option<String>,
        /// Lifetime such as 5y, 90d, 12h; never expires when omitted
        #[arg(long)]
        expires: Option<String>,
        /// scim (default), admin (admin API and console) or viewer (console, read only)
        #[arg(long, default_value = "scim")]
        scope: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id; takes effect at once, also in a running daemon.
    Revoke {
        /// Token id, as `token list` shows it
        id: String,
    },
}

pub async fn run(
    action: TokenCommand,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let loaded = setup::load_config(config, data_dir, None, env)?;
    let cfg = loaded.config;
    // Validate arguments before touching the database.
    let create = match &action {
        TokenCommand::Create {
            provider,
            expires,
            scope,
        } => {
            let expires = expires
                .as_deref()
                .map(|e| {
                    tokens::parse_lifetime(e).ok_or_else(|| Failure {
                        code: 2,
                        message: format!(
                            "--expires {e:?}: expected a lifetime like 5y, 90d, 12h or 30m"
                        ),
                    })
                })
                .transpose()?;
            let scope = scope.parse::<TokenScope>().map_err(|e| Failure {
                code: 2,
                message: format!("--scope {:?}: expected scim, admin or viewer", e.0),
            })?;
            let provider = match (scope, provider) {
                (TokenScope::Scim, Some(p)) => {
                    if !cfg.providers.iter().any(|c| &c.name == p) {
                        let known: Vec<_> = cfg.providers.iter().map(|c| c.name.as_str()).collect();
                        return Err(Failure {
                            code: 2,
                            message: format!(
                                "no provider {p:?} in the configuration (configured: {})",
                                known.join(", ")
                            ),
                        });
                    }
                    Some(p.clone())
                }
                (TokenScope::Scim, None) => {
                    return Err(Failure {
                        code: 2,
                        message: "--provider NAME is required for a SCIM token".into(),
                    });
                }
                (TokenScope::Admin | TokenScope::Viewer, _) => None,
            };
            Some((provider, expires, scope))
        }
        _ => None,
    };
    // Only creating a token may create the database (before the first start).
    let store = if create.is_some() {
        crate::app::setup::open_store(&cfg).await?
    } else {
        setup::open_existing_store(&cfg).await?
    };
    let result = match action {
        TokenCommand::Create { .. } => {
            let Some((provider, expires, scope)) = create else {
                return Err(Failure::runtime("unreachable token state"));
            };
            let now = clock.now();
            let t = tokens::mint(
                provider.as_deref(),
                scope,
                expires.map(|d| now + d),
                now,
                &OsEntropy,
            );
            store
                .create_token(t.record.clone())
                .await
                .map_err(|e| Failure::store(e.to_string()))?;
            eprintln!(
                "Created {scope} token {}{}{}. It is shown once; store it now.",
                t.record.id,
                provider
                    .map(|p| format!(" for provider {p}"))
                    .unwrap_or_default(),
                t.record
                    .expires
                    .map(|e| format!(", expires {}", e.format("%Y-%m-%d")))
                    .unwrap_or_default(),
            );
            println!("{}", t.plaintext.as_str());
            Ok(())
        }
        TokenCommand::List => {
            let list = store
                .list_tokens()
                .await
                .map_err(|e| Failure::store(e.to_string()))?;
            println!(
                "{:<18} {:<10} {:<6} {:<20} {:<20} {:<20} STATE",
                "ID", "PROVIDER", "SCOPE", "CREATED", "EXPIRES", "LAST USED"
            );
            let fmt = |t: Option<chrono::DateTime<Utc>>| {
                t.map_or_else(
                    || "-".to_owned(),
                    |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
                )
            };
            let now = clock.now();
            for t in list {
                let state = if t.revoked.is_some() {
                    "revoked"
                } else if t.expires.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<18} {:<10} {:<6} {:<20} {:<20} {:<20} {state}",
                    t.id,
                    t.provider.as_deref().unwrap_or("-"),
                    t.scope,
                    fmt(Some(t.created)),
                    fmt(t.expires),
                    fmt(t.last_used),
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            if store
                .revoke_token(&id, clock.now())
                .await
                .map_err(|e| Failure::store(e.to_string()))?
            {
                println!("token {id} revoked");
                Ok(())
            } else {
                Err(Failure::runtime(format!(
                    "no token with id {id:?} (see `scim-bridge token list`)"
                )))
            }
        }
    };
    store.close().await;
    result
}

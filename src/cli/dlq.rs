//! `scim-bridge dlq list|show|retry|drop`: changes a target refused or that failed too
//! often, with the target's answer.

use std::path::{Path, PathBuf};

use crate::clock::Clock;
use clap::Subcommand;

use super::{Failure, names, setup};
use crate::config::Environment;
use crate::store::{DeadLetter, Store};

/// Dead-letter actions.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Dead letters, oldest first.
    List {
        /// Only this target
        #[arg(long)]
        target: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// One dead letter in full, with the target's answer.
    Show {
        /// Its id
        id: i64,
    },
    /// Queue the changes again (a running daemon delivers them at once).
    Retry {
        /// Its id
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        /// Every dead letter (of `--target`, when given)
        #[arg(long)]
        all: bool,
        /// With `--all`: only this target
        #[arg(long, requires = "all")]
        target: Option<String>,
    },
    /// Discard a dead letter for good.
    Drop {
        /// Its id
        id: i64,
    },
}

pub async fn run(
    action: DlqCommand,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    let store = setup::open_existing_store(&cfg).await?;
    let who = super::operator::who(env);
    let result = act(action, store.as_ref(), clock, &who).await;
    store.close().await;
    result
}

fn store_err(e: crate::store::StoreError) -> Failure {
    Failure::store(e.to_string())
}

fn missing(id: i64) -> Failure {
    Failure::runtime(format!(
        "no dead letter with id {id} (see `scim-bridge dlq list`)"
    ))
}

async fn act(
    action: DlqCommand,
    store: &dyn Store,
    clock: &dyn Clock,
    who: &str,
) -> Result<(), Failure> {
    match action {
        DlqCommand::List { target, json } => {
            let letters = store
                .dead_letters(target.as_deref())
                .await
                .map_err(store_err)?;
            let mut named = Vec::with_capacity(letters.len());
            for l in &letters {
                named.push(name_of(store, l).await?);
            }
            if json {
                let out: Vec<serde_json::Value> = letters
                    .iter()
                    .zip(&named)
                    .map(|(l, name)| {
                        let mut v = serde_json::to_value(l).unwrap_or_default();
                        v["name"] = name.clone().into();
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                return Ok(());
            }
            println!(
                "{:<6} {:<14} {:<10} {:<6} {:<60} {:<9} ERROR",
                "ID", "TARGET", "PROVIDER", "TYPE", "RESOURCE", "ATTEMPTS"
            );
            for (l, name) in letters.iter().zip(&named) {
                let mut error: String = l.error.chars().take(60).collect();
                if error.len() < l.error.len() {
                    error.push('…');
                }
                println!(
                    "{:<6} {:<14} {:<10} {:<6} {:<60} {:<9} {error}",
                    l.id,
                    l.target,
                    l.provider,
                    l.kind.name(),
                    names::labelled(name.as_deref(), &l.resource_id),
                    l.attempts
                );
            }
            Ok(())
        }
        DlqCommand::Show { id } => {
            let letters = store.dead_letters(None).await.map_err(store_err)?;
            let l = letters
                .iter()
                .find(|l| l.id == id)
                .ok_or_else(|| missing(id))?;
            let name = name_of(store, l).await?;
            print_letter(l, name.as_deref());
            Ok(())
        }
        DlqCommand::Retry { id, all, target } => {
            let letters = store
                .dead_letters(if all { target.as_deref() } else { None })
                .await
                .map_err(store_err)?;
            let chosen: Vec<&DeadLetter> = match (all, id) {
                (true, _) => letters.iter().collect(),
                (false, Some(id)) => {
                    vec![
                        letters
                            .iter()
                            .find(|l| l.id == id)
                            .ok_or_else(|| missing(id))?,
                    ]
                }
                (false, None) => Vec::new(),
            };
            let mut queued = 0;
            for l in chosen {
                if store
                    .requeue_dead_letter(l.id, clock.now())
                    .await
                    .map_err(store_err)?
                {
                    queued += 1;
                    audit_letter(store, clock, who, "dlq.retry", "queued again", l).await;
                } else if !all {
                    return Err(missing(l.id));
                }
            }
            println!("{queued} dead letter(s) queued again");
            Ok(())
        }
        DlqCommand::Drop { id } => {
            let letters = store.dead_letters(None).await.map_err(store_err)?;
            let l = letters
                .iter()
                .find(|l| l.id == id)
                .ok_or_else(|| missing(id))?;
            if !store.drop_dead_letter(id).await.map_err(store_err)? {
                return Err(missing(id));
            }
            audit_letter(store, clock, who, "dlq.drop", "dropped for good", l).await;
            println!("dead letter {id} dropped");
            Ok(())
        }
    }
}

/// Records what an operator did to dead letter `l` in the provisioning log, naming
/// the person or group (read once, for the record and its wording).
async fn audit_letter(
    store: &dyn Store,
    clock: &dyn Clock,
    who: &str,
    action: &'static str,
    done: &str,
    l: &DeadLetter,
) {
    let resource = crate::directory::log::dead_letter_resource(store, l)
        .await
        .ok();
    let label = resource
        .as_ref()
        .map(|(_, r)| r.label().to_owned())
        .filter(|n| *n != l.resource_id);
    let detail = format!(
        "dead letter {} ({} → {}) {done}; it had failed with: {}",
        l.id,
        names::labelled(label.as_deref(), &l.resource_id),
        l.target,
        l.error
    );
    super::operator::record(store, clock, who, action, Some(&l.target), resource, detail).await;
}

/// The user's or group's name, for people reading the queue.
async fn name_of(store: &dyn Store, l: &DeadLetter) -> Result<Option<String>, Failure> {
    let ids = [l.resource_id.clone()];
    let names = names::of_ids(store, &l.provider, l.kind, &ids)
        .await
        .map_err(store_err)?;
    Ok(names.into_iter().next().flatten())
}

fn print_letter(l: &DeadLetter, name: Option<&str>) {
    println!("id         {}", l.id);
    println!("target     {}", l.target);
    println!(
        "resource   {} {}, provider {}",
        l.kind.name(),
        names::labelled(name, &l.resource_id),
        l.provider
    );
    println!("changes    events {}..={}", l.from_seq + 1, l.last_seq);
    println!("queued     {}", l.queued_at.format("%Y-%m-%d %H:%M:%S UTC"));
    println!(
        "gave up    {} after {} attempt(s)",
        l.at.format("%Y-%m-%d %H:%M:%S UTC"),
        l.attempts
    );
    println!("answer     {}", l.error);
}

//! `scim-bridge approve --target NAME [--list | --reject]`: what the mass-deprovisioning
//! guard holds back, by name; release it, or refuse it.

use std::path::{Path, PathBuf};

use crate::clock::Clock;

use super::{Failure, setup};
use crate::config::Environment;
use crate::delivery::matching::name_of;
use crate::store::Store;

/// What `approve` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// Release the guard: held changes go ahead.
    Approve,
    /// Show what the guard holds; change nothing.
    List,
    /// Move what the guard holds to the dead-letter queue and reset the guard.
    Reject,
}

pub async fn run(
    target: &str,
    what: What,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    let Some(t) = cfg.targets.iter().find(|t| t.name == target) else {
        let names: Vec<_> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
        return Err(Failure {
            code: 2,
            message: format!(
                "no target named {target:?} (configured: {})",
                names.join(", ")
            ),
        });
    };
    let window = chrono::Duration::from_std(t.guard.window).unwrap_or(chrono::Duration::hours(1));
    let store = setup::open_existing_store(&cfg).await?;
    let who = super::operator::who(env);
    let result = async {
        let state = store.guard(target).await.map_err(|e| Failure::store(e.to_string()))?;
        let now = clock.now();
        match what {
            What::List => list(store.as_ref(), target, &state).await,
            What::Reject => {
                let n = store
                    .reject_held(
                        target,
                        "rejected at the mass-deprovisioning guard by an admin (`approve --reject`); `scim-bridge dlq retry` sends it after all",
                        now,
                    )
                    .await
                    .map_err(|e| Failure::store(e.to_string()))?;
                if n == 0 && state.tripped_at.is_none() {
                    return Err(Failure::runtime(format!(
                        "the guard of {target} holds nothing and is not tripped; nothing to reject"
                    )));
                }
                super::operator::record(
                    store.as_ref(),
                    clock,
                    &who,
                    "guard.reject",
                    Some(target),
                    None,
                    format!("rejected {n} held change(s) of {target}: moved to the dead letters"),
                )
                .await;
                println!(
                    "rejected: {n} held change(s) of {target} moved to the dead-letter queue (see `scim-bridge dlq list --target {target}`); the guard is reset"
                );
                Ok(())
            }
            What::Approve => {
                if !store
                    .approve_guard(target, now, now + window)
                    .await
                    .map_err(|e| Failure::store(e.to_string()))?
                {
                    return Err(Failure::runtime(format!(
                        "the guard of {target} is not tripped; nothing to approve"
                    )));
                }
                super::operator::record(
                    store.as_ref(),
                    clock,
                    &who,
                    "guard.approve",
                    Some(target),
                    None,
                    format!(
                        "approved the held deactivations and deletions of {target} (tripped: {})",
                        state.reason.clone().unwrap_or_default()
                    ),
                )
                .await;
                println!(
                    "approved: {target}'s paused deactivations and deletions go ahead now (tripped: {}); the guard counts again from {}",
                    state.reason.unwrap_or_default(),
                    (now + window).format("%Y-%m-%d %H:%M:%S UTC")
                );
                Ok(())
            }
        }
    }
    .await;
    store.close().await;
    result
}

/// Prints the guard's state and each held change with the person's or group's name.
async fn list(
    store: &dyn Store,
    target: &str,
    state: &crate::store::GuardState,
) -> Result<(), Failure> {
    let held = store
        .held_by_guard(target)
        .await
        .map_err(|e| Failure::store(e.to_string()))?;
    match (&state.tripped_at, &state.reason) {
        (Some(at), reason) => println!(
            "the guard of {target} tripped at {}: {}",
            at.format("%Y-%m-%d %H:%M:%S UTC"),
            reason.as_deref().unwrap_or("-")
        ),
        (None, _) => println!("the guard of {target} is not tripped"),
    }
    if held.is_empty() {
        println!("it holds nothing back");
        return Ok(());
    }
    println!("it holds back {} change(s):", held.len());
    println!("  {:<6} {:<10} {:<40} SINCE", "TYPE", "PROVIDER", "NAME");
    for h in &held {
        let name = name_of(store, &h.provider, h.kind, &h.resource_id)
            .await
            .map_err(|e| Failure::store(e.to_string()))?;
        println!(
            "  {:<6} {:<10} {:<40} {}",
            h.kind.name(),
            h.provider,
            name,
            h.queued_at.format("%Y-%m-%d %H:%M UTC")
        );
    }
    println!(
        "release them with `scim-bridge approve --target {target}`, or refuse them with `scim-bridge approve --target {target} --reject`"
    );
    Ok(())
}

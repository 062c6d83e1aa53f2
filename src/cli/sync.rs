//! `scim-bridge sync --target NAME [--dry-run] [--json]`: reconcile one target now.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use super::{Failure, setup, targets};
use crate::config::Environment;
use crate::delivery::{Action, Plan, apply, plan};
use crate::store::Store;

pub async fn run(
    target: &str,
    dry_run: bool,
    as_json: bool,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    let Some(index) = cfg.targets.iter().position(|t| t.name == target) else {
        let names: Vec<_> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
        return Err(Failure {
            code: 2,
            message: format!(
                "no target named {target:?} (configured: {})",
                names.join(", ")
            ),
        });
    };
    let store: Arc<dyn Store> = setup::open_store(&cfg).await?;
    let result = async {
        let (_, deliverables, _) = targets::for_command(&cfg, env, &store).await?;
        let Some(d) = deliverables.into_iter().find(|d| d.index == index) else {
            return Err(Failure::runtime(format!("target {target} is not delivered to by this version, so it cannot be synced")));
        };
        // A spinner with counts on a terminal; nothing on pipes and in scripts.
        let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) && !as_json {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar.set_message(format!("reading {target} …"));
            Some(bar)
        } else {
            None
        };
        let progress = |what: &str, n: usize| {
            if let Some(b) = &bar {
                b.set_message(format!("reading {target}: {n} {what}"));
            }
        };
        let p = plan(
            store.as_ref(),
            d.target.as_ref(),
            &d.providers,
            &progress,
            Utc::now(),
        )
        .await;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let p = p
            .map_err(|e| Failure::runtime(e.to_string()))?
            .protect(&d.engine.guard.protected);
        if dry_run {
            if as_json {
                println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
            } else {
                print_plan(&p);
                println!("dry run: nothing changed");
            }
            return Ok(());
        }
        let applied = apply(store.as_ref(), d.target.as_ref(), &p, &d.engine.guard, Utc::now())
            .await
            .map_err(|e| Failure::store(e.to_string()))?;
        if as_json {
            println!("{}", serde_json::json!({ "plan": p, "applied": applied }));
        } else {
            print_plan(&p);
            println!(
                "applied: {} queued for delivery (the running daemon sends them), {} linked, {} deactivated, {} deleted",
                applied.queued, applied.linked, applied.deactivated, applied.deleted
            );
            if applied.held_back > 0 {
                println!(
                    "held back: {} deactivations and deletions exceed the guard's max_deprovisions; review the plan and raise the threshold or fix the IdP assignment",
                    applied.held_back
                );
            }
            for e in &applied.errors {
                println!("error: {e}");
            }
        }
        if applied.errors.is_empty() { Ok(()) } else { Err(Failure::runtime(format!("{} operation(s) failed", applied.errors.len()))) }
    }
    .await;
    store.close().await;
    result
}

fn print_plan(p: &Plan) {
    println!(
        "target {}: bridge has {} users and {} groups, target has {} users and {} groups",
        p.target, p.desired_users, p.desired_groups, p.target_users, p.target_groups
    );
    if p.items.is_empty() {
        println!("in sync: nothing to do");
        return;
    }
    println!(
        "{:<11} {:<6} {:<36} {:<34} WHAT",
        "ACTION", "TYPE", "NAME", "TARGET ID"
    );
    for i in &p.items {
        let action = match i.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::Link => "link",
            Action::Members => "members",
            Action::Deactivate => "deactivate",
            Action::Protected => "protected",
            Action::Delete => "delete",
        };
        println!(
            "{action:<11} {:<6} {:<36} {:<34} {}",
            i.kind.name(),
            i.name,
            i.target_id.as_deref().unwrap_or("-"),
            i.detail
        );
    }
    let count = |a| p.items.iter().filter(|i| i.action == a).count();
    println!(
        "plan: {} create, {} update, {} link, {} membership, {} deactivate, {} delete, {} protected",
        count(Action::Create),
        count(Action::Update),
        count(Action::Link),
        count(Action::Members),
        count(Action::Deactivate),
        count(Action::Delete),
        count(Action::Protected)
    );
}

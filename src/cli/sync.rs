//! `scim-bridge sync --target NAME [--dry-run] [--json]`: reconcile one target now.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::Clock;

use super::{Failure, setup};
use crate::app::targets;
use crate::config::Environment;
use std::io::IsTerminal;

use crate::delivery::{Action, Plan, PlanItem, Reconciler};
use crate::store::Store;

/// Whether `sync` changes anything, and whether it asks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Print the plan; change nothing.
    DryRun,
    /// Print the plan, then ask on a terminal (refuse elsewhere) before applying.
    Review,
    /// Apply without asking (`--yes`).
    Apply,
}

impl Mode {
    pub fn from_flags(dry_run: bool, yes: bool) -> Self {
        match (dry_run, yes) {
            (true, _) => Mode::DryRun,
            (false, true) => Mode::Apply,
            (false, false) => Mode::Review,
        }
    }
}

pub async fn run(
    target: &str,
    mode: Mode,
    as_json: bool,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
    clock: &dyn Clock,
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
    if mode != Mode::DryRun && cfg.targets[index].paused {
        return Err(Failure {
            code: 2,
            message: format!(
                "target {target} is paused, so nothing is sent to it: review `scim-bridge sync --target {target} --dry-run`, then remove `paused` from its [[targets]] table and restart the daemon"
            ),
        });
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if mode == Mode::Review && !interactive {
        return Err(Failure {
            code: 2,
            message: format!(
                "sync applies changes only after review: run `scim-bridge sync --target {target} --dry-run` to see the plan, then `scim-bridge sync --target {target} --yes` to apply it (or run sync on a terminal to be asked)"
            ),
        });
    }
    let store: Arc<dyn Store> = setup::open_existing_store(&cfg).await?;
    let result = async {
        let (_, deliverables, _) = targets::for_command(&cfg, env, &store).await?;
        let Some(d) = deliverables.into_iter().find(|d| d.index == index) else {
            return Err(Failure::runtime(format!("target {target} is not delivered to by this version, so it cannot be synced")));
        };
        // A spinner with counts on a terminal; nothing on pipes and in scripts.
        let bar = if std::io::stderr().is_terminal() && !as_json {
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
        // The daemon's console runs the same plan and apply through the same type.
        let r = Reconciler {
            target: d.target,
            providers: d.providers,
            policy: d.policy,
            guard: d.engine.guard,
        };
        let p = r.plan(store.as_ref(), &progress, clock.now()).await;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let p = p.map_err(|e| Failure::runtime(e.to_string()))?;
        if mode == Mode::DryRun {
            if as_json {
                println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
            } else {
                print_plan(&p);
                println!("dry run: nothing changed");
            }
            return Ok(());
        }
        if mode == Mode::Review {
            print_plan(&p);
            if !p.items.iter().any(|i| i.action.changes()) {
                println!("nothing to apply");
                return Ok(());
            }
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            if !confirm(&mut input, &mut std::io::stdout(), &p.summary()) {
                println!("not applied: nothing changed");
                return Ok(());
            }
        }
        let applied = r.apply(store.as_ref(), &p, clock.now())
            .await
            .map_err(|e| Failure::store(e.to_string()))?;
        if as_json {
            println!("{}", serde_json::json!({ "plan": p, "applied": applied }));
        } else {
            if mode == Mode::Apply {
                print_plan(&p);
            }
            println!(
                "applied: {} queued for delivery (the running daemon sends them), {} linked, {} deactivated, {} deleted",
                applied.queued, applied.linked, applied.deactivated, applied.deleted
            );
            if applied.held_back > 0 {
                println!(
                    "held back: {} deactivations and deletions exceed the guard's limit; review them with `scim-bridge approve --target {target} --list`, then approve or reject",
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

/// Asks whether to apply; only an explicit yes applies.
fn confirm(
    input: &mut impl std::io::BufRead,
    out: &mut impl std::io::Write,
    summary: &str,
) -> bool {
    let _ = write!(out, "apply {summary}? [y/N] ");
    let _ = out.flush();
    let mut line = String::new();
    if input.read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

fn print_rows(items: &[&PlanItem]) {
    println!(
        "  {:<11} {:<6} {:<36} {:<24} WHAT",
        "ACTION", "TYPE", "NAME", "TARGET ID"
    );
    for i in items {
        println!(
            "  {:<11} {:<6} {:<36} {:<24} {}",
            i.action.name(),
            i.kind.name(),
            i.name,
            i.target_id.as_deref().unwrap_or("-"),
            i.detail
        );
    }
}

fn print_plan(p: &Plan) {
    println!(
        "target {}: bridge has {} users and {} groups ({} outside the target's scope), target has {} users and {} groups",
        p.target,
        p.desired_users,
        p.desired_groups,
        p.out_of_scope,
        p.target_users,
        p.target_groups
    );
    let section = |pred: &dyn Fn(Action) -> bool| -> Vec<&PlanItem> {
        p.items.iter().filter(|i| pred(i.action)).collect()
    };
    let planned = section(&Action::changes);
    let attention = section(&Action::needs_attention);
    let protected = section(&|a| a == Action::Protected);
    let unmanaged = section(&|a| a == Action::Unmanaged);
    if planned.is_empty() {
        println!("in sync: nothing to change");
    } else {
        println!("\nchanges ({}):", planned.len());
        print_rows(&planned);
    }
    if !attention.is_empty() {
        println!(
            "\nneeds your attention ({}): nothing is created or linked for these until fixed",
            attention.len()
        );
        print_rows(&attention);
    }
    if !protected.is_empty() {
        println!("\nprotected, left alone ({}):", protected.len());
        print_rows(&protected);
    }
    if !unmanaged.is_empty() {
        println!(
            "\nnot managed by the bridge, left alone ({}): accounts it neither created nor adopted",
            unmanaged.len()
        );
        for i in &unmanaged {
            println!("  {:<36} {}", i.name, i.target_id.as_deref().unwrap_or("-"));
        }
    }
    println!(
        "\nplan: {}; {} need attention, {} protected, {} not managed",
        p.summary(),
        attention.len(),
        protected.len(),
        unmanaged.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_yes_applies() {
        for (typed, applies) in [
            ("y\n", true),
            ("YES\n", true),
            ("\n", false),
            ("n\n", false),
            ("yes please\n", false),
            ("", false),
        ] {
            let mut out = Vec::new();
            assert_eq!(
                confirm(&mut typed.as_bytes(), &mut out, "1 create"),
                applies,
                "{typed:?}"
            );
            assert!(
                String::from_utf8(out)
                    .unwrap()
                    .contains("apply 1 create? [y/N]")
            );
        }
    }

    #[test]
    fn flags_choose_the_mode() {
        assert_eq!(Mode::from_flags(true, false), Mode::DryRun);
        assert_eq!(Mode::from_flags(false, true), Mode::Apply);
        assert_eq!(Mode::from_flags(false, false), Mode::Review);
    }
}

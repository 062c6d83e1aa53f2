//! `scim-bridge log`: the provisioning log across everyone — what each identity
//! provider changed (old → new) and what each target was sent and answered —
//! filtered by person, group, target, time, action and outcome, as a table, JSON
//! Lines or the CSV admins know from Entra's download. `scim-bridge log show ID`
//! prints one record in full with what it caused or what caused it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{Failure, setup};
use crate::clock::Clock;
use crate::config::Environment;
use crate::directory::log::{Filters, LogError, build, entry_json, linked, member_names};
use crate::provlog::render::{
    calls_summary, changes_summary, csv_header, csv_line, details, route, steps_summary,
};
use crate::provlog::{ActionOutcome, CHANGE, LogEntry};
use crate::store::{Store, StoreError};

/// `scim-bridge log` arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LogArgs {
    #[command(subcommand)]
    pub show: Option<LogCommand>,
    /// A person: userName, e-mail, displayName or SCIM id
    #[arg(long, conflicts_with = "group")]
    pub person: Option<String>,
    /// A group: displayName or SCIM id
    #[arg(long)]
    pub group: Option<String>,
    /// Only this identity provider
    #[arg(long)]
    pub provider: Option<String>,
    /// Only actions at this target
    #[arg(long)]
    pub target: Option<String>,
    /// Only `changes` received from identity providers, `actions` at targets, or what
    /// `operators` did (dead letters retried, guards approved)
    #[arg(long, value_parser = ["changes", "actions", "operators"])]
    pub only: Option<String>,
    /// create, update, delete, skip
    #[arg(long)]
    pub action: Option<String>,
    /// success, skipped, retrying, waiting, held, dead
    #[arg(long, value_parser = ActionOutcome::NAMES)]
    pub outcome: Option<String>,
    /// From this time: RFC 3339, a date (2026-12-01) or an age (15m, 2h, 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (same forms as --since)
    #[arg(long)]
    pub until: Option<String>,
    /// Records older than this log id (the next page)
    #[arg(long)]
    pub before: Option<i64>,
    /// At most this many records
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per line
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with the columns of Entra's provisioning-log download
    #[arg(long)]
    pub csv: bool,
}

/// `scim-bridge log show`.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// One record in full, with the records linked to it.
    Show {
        /// Its log id (the table's first column)
        id: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(
    args: LogArgs,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    let providers: Vec<String> = cfg.providers.iter().map(|p| p.name.clone()).collect();
    let store = setup::open_existing_store(&cfg).await?;
    let result = match args.show {
        Some(LogCommand::Show { id, json }) => show(store.as_ref(), id, json).await,
        None => list(store.as_ref(), &providers, &args, clock).await,
    };
    store.close().await;
    result
}

fn store_failure(e: StoreError) -> Failure {
    Failure::store(e.to_string())
}

impl LogArgs {
    fn filters(&self) -> Filters {
        Filters {
            person: self.person.clone(),
            group: self.group.clone(),
            provider: self.provider.clone(),
            target: self.target.clone(),
            only: self.only.clone(),
            action: self.action.clone(),
            outcome: self.outcome.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            before: self.before,
            limit: self.limit,
        }
    }
}

async fn list(
    store: &dyn Store,
    providers: &[String],
    args: &LogArgs,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let q = build(store, providers, &args.filters(), clock.now())
        .await
        .map_err(|e| match e {
            LogError::Invalid(m) => Failure::usage(m),
            LogError::Store(e) => store_failure(e),
        })?;
    let entries = store.log_query(&q).await.map_err(store_failure)?;
    if args.json {
        for e in &entries {
            println!("{}", entry_json(e));
        }
        return Ok(());
    }
    // Tables and CSV name a group change's members; JSON keeps the ids.
    let names = member_names(store, &entries, 2_000)
        .await
        .map_err(store_failure)?;
    let name = |id: &str| names.get(id).cloned();
    if args.csv {
        println!("{}", csv_header());
        for e in &entries {
            println!("{}", csv_line(e, &name));
        }
        return Ok(());
    }
    if entries.is_empty() {
        println!("No records match.");
        return Ok(());
    }
    print_table(&entries, &name);
    if entries.len() == q.limit
        && let Some(last) = entries.last()
    {
        println!(
            "\n{} records shown; older ones: add --before {}",
            entries.len(),
            last.id
        );
    }
    Ok(())
}

fn print_table(entries: &[LogEntry], names: &dyn Fn(&str) -> Option<String>) {
    let who: Vec<String> = entries
        .iter()
        .map(|e| e.resource().label().to_owned())
        .collect();
    let routes: Vec<String> = entries.iter().map(route).collect();
    let w_who = who
        .iter()
        .map(|w| w.chars().count())
        .max()
        .unwrap_or(3)
        .clamp(3, 40);
    let w_route = routes
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    println!(
        "{:<8} {:<19} {:<w_who$} {:<7} {:<w_route$} {:<8} DETAILS",
        "ID", "TIME (UTC)", "WHO", "ACTION", "ROUTE", "STATUS"
    );
    for ((e, w), r) in entries.iter().zip(&who).zip(&routes) {
        println!(
            "{:<8} {:<19} {:<w_who$} {:<7} {:<w_route$} {:<8} {}",
            e.id,
            e.at.format("%Y-%m-%d %H:%M:%S"),
            w,
            e.action(),
            r,
            e.outcome(),
            details(e, names)
        );
    }
}

async fn show(store: &dyn Store, id: i64, as_json_out: bool) -> Result<(), Failure> {
    let Some(e) = store.log_entry(id).await.map_err(store_failure)? else {
        return Err(Failure::runtime(format!("no log record {id}")));
    };
    let linked = linked(store, &e).await.map_err(store_failure)?;
    let mut all = vec![e.clone()];
    all.extend(linked.iter().cloned());
    let names: HashMap<String, String> = member_names(store, &all, 2_000)
        .await
        .map_err(store_failure)?;
    let name = |id: &str| names.get(id).cloned();
    if as_json_out {
        let out = json!({"record": entry_json(&e), "linked": linked.iter().map(entry_json).collect::<Vec<_>>()});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    print_record(&e, &name);
    if !linked.is_empty() {
        println!(
            "\n{}:",
            if e.kind == CHANGE {
                "What it caused"
            } else {
                "The changes it carried"
            }
        );
        print_table(&linked, &name);
    }
    Ok(())
}

fn print_record(e: &LogEntry, names: &dyn Fn(&str) -> Option<String>) {
    let r = e.resource();
    let text = |k: &str| e.body.get(k).and_then(Value::as_str).map(str::to_owned);
    println!(
        "Log record {} ({}), {}",
        e.id,
        e.kind,
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    println!(
        "  Who:         {} ({} {})",
        r.label(),
        r.kind.map_or("?", |k| k.name()),
        r.id
    );
    for (label, v) in [
        ("userName:", &r.user_name),
        ("displayName:", &r.display_name),
        ("externalId:", &r.external_id),
        ("E-mail:", &r.email),
        ("Target id:", &r.target_id),
    ] {
        if let Some(v) = v {
            println!("  {label:<12} {v}");
        }
    }
    println!("  Route:       {}", route(e));
    println!("  Action:      {}   Status: {}", e.action(), e.outcome());
    if let Some(seq) = e.seq {
        println!("  Chain seq:   {seq}");
    }
    for (label, key) in [
        ("Request:", "requestId"),
        ("Client:", "client"),
        ("Token id:", "token"),
        ("Next try:", "nextAt"),
    ] {
        if let Some(v) = text(key) {
            println!("  {label:<12} {v}");
        }
    }
    if let Some(attempt) = e.body.get("attempt").and_then(Value::as_u64) {
        println!(
            "  Attempt:     {attempt}, {} ms",
            e.body
                .get("durationMs")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        );
    }
    let changes = e.body.get("changes").and_then(Value::as_array);
    if changes.is_some_and(|c| !c.is_empty()) || e.body.get("members").is_some() {
        println!("  Modified properties:");
        for part in changes_summary(e, names).split("; ") {
            println!("    {part}");
        }
    }
    if let Some(steps) = e.body.get("steps").and_then(Value::as_array)
        && !steps.is_empty()
    {
        println!("  Steps:");
        for s in steps_summary(e).split("; ") {
            println!("    {s}");
        }
    }
    let calls = calls_summary(e);
    if !calls.is_empty() {
        println!("  Calls:");
        for c in calls {
            println!("    {c}");
        }
    }
    if let Some(err) = text("error") {
        println!("  Answer:      {err}");
    }
}

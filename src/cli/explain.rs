//! `scim-bridge explain WHO --target NAME [--json]`: what a target gets for one user or
//! group — every mapped field, its value, and the default or mapping line behind it.
//! Reads the store and the configuration only; nothing is sent anywhere.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Failure, setup};
use crate::config::{Config, Environment, TargetConfig};
use crate::delivery::matching::resource_label;
use crate::scim::ResourceKind;
use crate::store::{Lookup, Store, StoreError};
use crate::targets::Explained;
use crate::targets::explain::{Gets, Placement, gets, placement};

pub async fn run(
    who: &str,
    target: Option<&str>,
    as_json: bool,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    let Some(target) = target else {
        let store = setup::open_existing_store(&cfg).await?;
        let result = every_target(store.as_ref(), &cfg, who, as_json).await;
        store.close().await;
        return result;
    };
    let Some(t) = cfg.targets.iter().find(|t| t.name == target) else {
        let names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
        return Err(Failure {
            code: 2,
            message: format!(
                "no target named {target:?} (configured: {})",
                names.join(", ")
            ),
        });
    };
    let providers = providers_of(&cfg, t);
    let store = setup::open_existing_store(&cfg).await?;
    let result = explain(store.as_ref(), t, who, &providers, as_json).await;
    store.close().await;
    result
}

/// The providers whose changes `t` receives.
fn providers_of(cfg: &Config, t: &TargetConfig) -> Vec<String> {
    if t.providers.is_empty() {
        cfg.providers.iter().map(|p| p.name.clone()).collect()
    } else {
        t.providers.clone()
    }
}

/// One line per target: whether `who` is in its scope and why, and the account there.
async fn every_target(
    store: &dyn Store,
    cfg: &Config,
    who: &str,
    as_json: bool,
) -> Result<(), Failure> {
    let all: Vec<String> = cfg.providers.iter().map(|p| p.name.clone()).collect();
    let Some((provider, kind, r)) = find(store, who, &all).await? else {
        return Err(Failure {
            code: 1,
            message: format!("no user or group {who:?} (by id, userName or displayName)"),
        });
    };
    let label = resource_label(kind, &r.doc);
    let mut rows = Vec::new();
    for t in &cfg.targets {
        if !providers_of(cfg, t).contains(&provider) {
            rows.push(json!({"target": t.name, "in_scope": false,
                "why": format!("{} takes no changes from {provider}", t.name), "account": null}));
            continue;
        }
        let Placement { scope, account, .. } = placement(store, t, &provider, kind, &r)
            .await
            .map_err(store_failure)?;
        rows.push(
            json!({"target": t.name, "in_scope": scope.in_scope, "why": scope.why, "account": account}),
        );
    }
    if as_json {
        let out = json!({"provider": provider, "kind": kind.name(), "id": r.id, "name": label, "targets": rows});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    println!("{} {label} ({provider}, id {})", kind.name(), r.id);
    println!("  {:<16} {:<6} {:<40} WHY", "TARGET", "SCOPE", "ACCOUNT");
    for row in &rows {
        println!(
            "  {:<16} {:<6} {:<40} {}",
            row["target"].as_str().unwrap_or_default(),
            if row["in_scope"] == true { "in" } else { "out" },
            row["account"].as_str().unwrap_or("-"),
            row["why"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

fn store_failure(e: StoreError) -> Failure {
    Failure::store(e.to_string())
}

async fn find(
    store: &dyn Store,
    who: &str,
    providers: &[String],
) -> Result<Option<(String, ResourceKind, crate::store::StoredResource)>, Failure> {
    let err = store_failure;
    for p in providers {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let by_name = match kind {
                ResourceKind::User => Lookup::UserNames(vec![who.to_owned()]),
                ResourceKind::Group => Lookup::DisplayNames(vec![who.to_owned()]),
            };
            for lookup in [Lookup::Ids(vec![who.to_owned()]), by_name] {
                if let Some(r) = store.lookup(p, kind, lookup).await.map_err(err)?.pop() {
                    return Ok(Some((p.clone(), kind, r)));
                }
            }
        }
    }
    Ok(None)
}

async fn explain(
    store: &dyn Store,
    t: &TargetConfig,
    who: &str,
    providers: &[String],
    as_json: bool,
) -> Result<(), Failure> {
    let Some((provider, kind, r)) = find(store, who, providers).await? else {
        return Err(Failure {
            code: 1,
            message: format!(
                "no user or group {who:?} (by id, userName or displayName) from {} for target {}",
                providers.join(", "),
                t.name
            ),
        });
    };
    let Placement {
        scope,
        target_id,
        account,
    } = placement(store, t, &provider, kind, &r)
        .await
        .map_err(store_failure)?;
    let http =
        crate::oauth::build_client(std::time::Duration::from_secs(30)).map_err(Failure::runtime)?;
    let Gets { fields, note, .. } = gets(store, t, &provider, kind, &r, &http)
        .await
        .map_err(store_failure)?;
    let label = r
        .doc
        .get("userName")
        .or_else(|| r.doc.get("displayName"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match fields {
        Ok(fields) => {
            if as_json {
                let out = json!({"provider": provider, "kind": kind.name(), "id": r.id, "name": label,
                    "target": t.name, "target_id": target_id, "account": account,
                    "scope": {"in": scope.in_scope, "why": scope.why},
                    "fields": fields, "note": note});
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                return Ok(());
            }
            println!(
                "{} {label} ({provider}, id {}) → target {}, target id {}",
                kind.name(),
                r.id,
                t.name,
                target_id.as_deref().unwrap_or("(not delivered yet)")
            );
            println!(
                "scope: {} — {}",
                if scope.in_scope {
                    "in"
                } else {
                    "out, so nothing is sent (and an account sent before is deprovisioned)"
                },
                scope.why
            );
            println!("account: {account}");
            print_fields(&fields);
            if let Some(n) = note {
                println!("{n}");
            }
            Ok(())
        }
        Err(e) => Err(Failure {
            code: 1,
            message: format!(
                "{} {label} cannot be mapped for {}, so its deliveries are dead-lettered: {e}",
                kind.name(),
                t.name
            ),
        }),
    }
}

fn print_fields(fields: &[Explained]) {
    let shown = |v: &Option<Value>| match v {
        None => "(left out)".to_owned(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    };
    let width = fields
        .iter()
        .map(|f| f.field.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let vwidth = fields
        .iter()
        .map(|f| shown(&f.value).chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 48);
    println!("{:width$}  {:vwidth$}  FROM", "FIELD", "VALUE");
    for f in fields {
        println!(
            "{:width$}  {:vwidth$}  {}",
            f.field,
            shown(&f.value),
            f.source
        );
    }
}

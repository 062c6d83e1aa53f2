//! `scim-bridge trace WHO`: one user's or group's provisioning log, end to end — each
//! change the identity provider made (with its request id, which the access log and the
//! `X-Request-Id` response header carry) and each delivery attempt to each target with
//! its outcome and timing.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Failure, setup};
use crate::config::Environment;
use crate::scim::ResourceKind;
use crate::store::{Lookup, Store};

/// A resource found for WHO.
struct Found {
    provider: String,
    kind: ResourceKind,
    id: String,
    label: String,
}

pub async fn run(
    who: &str,
    provider: Option<&str>,
    as_json: bool,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    let providers: Vec<String> = match provider {
        Some(p) => vec![p.to_owned()],
        None => cfg.providers.iter().map(|p| p.name.clone()).collect(),
    };
    let store = setup::open_existing_store(&cfg).await?;
    let result = trace(store.as_ref(), who, &providers, as_json).await;
    store.close().await;
    result
}

async fn find(store: &dyn Store, who: &str, providers: &[String]) -> Result<Vec<Found>, Failure> {
    let err = |e: crate::store::StoreError| Failure::store(e.to_string());
    let mut out = Vec::new();
    for p in providers {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let by = match kind {
                ResourceKind::User => Lookup::UserNames(vec![who.to_owned()]),
                ResourceKind::Group => Lookup::DisplayNames(vec![who.to_owned()]),
            };
            let mut hits = store
                .lookup(p, kind, Lookup::Ids(vec![who.to_owned()]))
                .await
                .map_err(err)?;
            hits.extend(store.lookup(p, kind, by).await.map_err(err)?);
            for r in hits {
                let label = r
                    .doc
                    .get("userName")
                    .or_else(|| r.doc.get("displayName"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if !out.iter().any(|f: &Found| f.id == r.id && f.provider == *p) {
                    out.push(Found {
                        provider: p.clone(),
                        kind,
                        id: r.id,
                        label,
                    });
                }
            }
            // A deleted resource is found by id through its change events.
            if !out.iter().any(|f| f.id == who && f.provider == *p) {
                let events = store
                    .resource_events(p, kind, who, 0, i64::MAX)
                    .await
                    .map_err(err)?;
                if let Some(last) = events.last() {
                    let label = last.detail.name().unwrap_or("deleted").to_owned();
                    out.push(Found {
                        provider: p.clone(),
                        kind,
                        id: who.to_owned(),
                        label,
                    });
                }
            }
        }
    }
    Ok(out)
}

async fn trace(
    store: &dyn Store,
    who: &str,
    providers: &[String],
    as_json: bool,
) -> Result<(), Failure> {
    let err = |e: crate::store::StoreError| Failure::store(e.to_string());
    let found = find(store, who, providers).await?;
    if found.is_empty() {
        return Err(Failure::runtime(format!(
            "nothing found for {who:?}: give a SCIM id, a userName or a group's displayName"
        )));
    }
    let mut reports = Vec::new();
    for f in &found {
        let events = store
            .resource_events(&f.provider, f.kind, &f.id, 0, i64::MAX)
            .await
            .map_err(err)?;
        let attempts = store
            .delivery_attempts(&f.provider, f.kind, &f.id)
            .await
            .map_err(err)?;
        let mut lines: Vec<(DateTime<Utc>, i64, Value)> = Vec::new();
        for e in &events {
            lines.push((
                e.at,
                e.seq,
                json!({
                    "at": e.at, "source": "scim", "op": e.op.as_str(), "version": e.version,
                    "seq": e.seq, "request_id": e.request_id, "detail": e.detail,
                }),
            ));
        }
        for a in &attempts {
            lines.push((a.at, a.last_seq, json!({
                "at": a.at, "source": "delivery", "target": a.target, "outcome": a.outcome,
                "events": [a.from_seq + 1, a.last_seq], "duration_ms": a.duration_ms, "detail": a.detail,
            })));
        }
        lines.sort_by_key(|l| (l.0, l.1));
        reports.push((f, lines));
    }
    if as_json {
        let out: Vec<Value> = reports
            .iter()
            .map(|(f, lines)| json!({
                "provider": f.provider, "resourceType": f.kind.name(), "id": f.id, "name": f.label,
                "log": lines.iter().map(|l| l.2.clone()).collect::<Vec<_>>(),
            }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    for (f, lines) in reports {
        println!(
            "{} {} ({}), provider {}",
            f.kind.name(),
            f.id,
            f.label,
            f.provider
        );
        for (at, _, l) in lines {
            let when = at.format("%Y-%m-%d %H:%M:%S%.3f");
            if l["source"] == "scim" {
                println!(
                    "  {when}  SCIM {:<7} version {:<4} event #{:<8} request {}",
                    l["op"].as_str().unwrap_or("?"),
                    l["version"],
                    l["seq"],
                    l["request_id"].as_str().unwrap_or("-")
                );
            } else {
                println!(
                    "  {when}  -> {:<12} {:<11} events #{}..#{}  {} ms{}",
                    l["target"].as_str().unwrap_or("?"),
                    l["outcome"].as_str().unwrap_or("?"),
                    l["events"][0],
                    l["events"][1],
                    l["duration_ms"],
                    l["detail"]
                        .as_str()
                        .map(|d| format!("  {d}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

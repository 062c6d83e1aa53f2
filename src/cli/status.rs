//! `scim-bridge status`: what is stored, and whether the daemon is ready.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Failure, setup};
use crate::config::Environment;
use crate::store::StoreError;

pub async fn run(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    as_json: bool,
    env: &Environment,
) -> Result<(), Failure> {
    let loaded = setup::load_config(config, data_dir, None, env)?;
    let cfg = loaded.config;
    let store = crate::app::setup::open_store(&cfg).await?;
    let read = async { Ok::<_, StoreError>((store.status().await?, store.counts().await?)) };
    let read = read.await.map_err(|e| Failure::store(e.to_string()));
    store.close().await;
    let (s, n) = read?;
    let (ready, daemon) = match readyz(cfg.server.listen).await {
        Some((code, body)) => (code == 200, Some(body)),
        None => (false, None),
    };
    if as_json {
        println!(
            "{}",
            json!({
                "database": {
                    "engine": s.engine, "location": s.location,
                    "schema_version": s.schema_version, "users": n.users,
                    "groups": n.groups, "change_events": n.events,
                },
                "daemon": daemon.clone().unwrap_or(Value::Null),
            })
        );
    } else {
        println!(
            "database   {} ({}), schema v{}",
            s.location, s.engine, s.schema_version
        );
        println!("resources  {} users, {} groups", n.users, n.groups);
        println!(
            "outbox     {} change events (last #{})",
            n.events, s.last_event_seq
        );
        match &daemon {
            Some(d) => println!(
                "daemon     {} on {}",
                d.get("status").and_then(Value::as_str).unwrap_or("unknown"),
                cfg.server.listen
            ),
            None => println!("daemon     not reachable on {}", cfg.server.listen),
        }
        if let Some(d) = &daemon {
            if let Some(vault) = d.get("vault").and_then(Value::as_str) {
                println!("vault      {vault}");
            }
            for (name, t) in d
                .get("targets")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let auth = &t["auth"];
                let line = match auth.get("state").and_then(Value::as_str) {
                    None => "no OAuth token source".to_owned(),
                    Some("error") => format!(
                        "token endpoint failing since {}: {}",
                        auth["since"].as_str().unwrap_or("?"),
                        auth["error"].as_str().unwrap_or("?")
                    ),
                    Some(state) => format!(
                        "token {state}{}",
                        auth["token_expires"]
                            .as_str()
                            .map(|e| format!(", expires {e}"))
                            .unwrap_or_default()
                    ),
                };
                println!("target     {name}: {line}");
                let delivery = &t["delivery"];
                if let Some(q) = delivery.get("queued") {
                    println!(
                        "           delivery: {q} queued, {} retrying, {} dead letters",
                        delivery["retrying"], delivery["dead_letters"]
                    );
                }
                if delivery["guard"]["state"] == "tripped" {
                    println!(
                        "           GUARD TRIPPED since {}: {}; destructive changes paused. Release: {}",
                        delivery["guard"]["since"].as_str().unwrap_or("?"),
                        delivery["guard"]["reason"].as_str().unwrap_or("?"),
                        delivery["guard"]["release"].as_str().unwrap_or("?")
                    );
                }
                if let Some(reason) = delivery.get("reason").and_then(Value::as_str) {
                    println!("           delivery: {reason}");
                }
            }
            print_dropped(d);
        }
    }
    // Scripts and monitoring read the exit code: everything above is printed either way.
    match &daemon {
        None => Err(Failure::daemon(format!(
            "the daemon is not reachable on {}",
            cfg.server.listen
        ))),
        Some(d) if !ready => Err(Failure::daemon(format!(
            "the daemon on {} is not ready ({})",
            cfg.server.listen,
            d.get("status").and_then(Value::as_str).unwrap_or("unknown")
        ))),
        Some(_) => Ok(()),
    }
}

/// What providers sent that no schema declares and the bridge dropped, by name (the
/// daemon's log says once per attribute how to keep it).
fn print_dropped(daemon: &Value) {
    for a in daemon
        .get("dropped_attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |k: &str| a[k].as_str().unwrap_or("?").to_owned();
        println!(
            "dropped    {} sent {:?} {} time(s), first {}, last {}: no schema declares it (the daemon's log says how to keep it)",
            text("provider"),
            text("attribute"),
            a["count"],
            text("first_seen"),
            text("last_seen")
        );
    }
}

/// A minimal HTTP/1.0 GET of `/readyz`, its status code and body; the CLI carries no
/// HTTP client for this.
async fn readyz(addr: std::net::SocketAddr) -> Option<(u16, Value)> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, serde_json::from_str(body).ok()?))
    };
    tokio::time::timeout(Duration::from_secs(2), fetch)
        .await
        .ok()
        .flatten()
}

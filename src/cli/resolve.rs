//! `scim-bridge resolve --repository NAME --workitem FILE.json [--work-type T] [--explain]`:
//! finds a workitem's workspace the way the API does, bypassing the cache, and shows
//! the search it ran.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Failure, setup};
use crate::app::targets;
use crate::clock::{Clock, SystemClock};
use crate::config::Environment;
use crate::resolver::{Request, ResolveError};
use crate::store::Store;

/// Largest workitem file read.
const MAX_WORKITEM_BYTES: u64 = 1024 * 1024;

pub struct Args<'a> {
    pub repository: &'a str,
    pub workitem: &'a Path,
    pub work_type: Option<&'a str>,
    pub explain: bool,
    pub json: bool,
    /// Resolve as this person, with their linked account's rights.
    pub as_user: Option<&'a str>,
}

pub async fn run(
    args: Args<'_>,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
) -> Result<(), Failure> {
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    let workitem = read_workitem(args.workitem)?;
    let store: Arc<dyn Store> = setup::open_existing_store(&cfg).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (handles, deliverables, _) = targets::for_command(&cfg, env, &store).await?;
    let public_url = targets::public_url(&cfg);
    let resolver = targets::resolver(&cfg, &deliverables, &handles, &public_url, clock)
        .ok_or_else(|| Failure {
            code: 2,
            message: "no [[repositories]] are configured".into(),
        })?;
    let req = Request {
        repository: args.repository.to_owned(),
        work_type: args.work_type.map(str::to_owned),
        workitem,
        fresh: true,
        user: args.as_user.map(str::to_owned),
    };
    let outcome = resolver.resolve(&req).await;
    let requests = match &outcome {
        Ok(o) => o.requests.clone(),
        Err(_) => Vec::new(),
    };
    match outcome {
        Ok(o) => {
            if args.json {
                let mut out = serde_json::json!(o.resolution);
                if args.explain {
                    out["requests"] = serde_json::json!(requests);
                }
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                return Ok(());
            }
            let r = &o.resolution;
            if args.explain {
                println!("search:    {} ({} search)", r.query, r.matched_by);
                for line in &requests {
                    println!("request:   {line}");
                }
            }
            println!(
                "workspace: {} {:?} in {}",
                r.workspace_id, r.name, r.library
            );
            println!(
                "as:        {}",
                o.acted_as.as_deref().map_or_else(
                    || "the service account".to_owned(),
                    |u| format!("{u} (their linked account)")
                )
            );
            match (&r.folder_id, &r.folder_path) {
                (Some(id), Some(path)) => println!("folder:    {id} {path:?}"),
                _ => println!("folder:    (the workspace itself)"),
            }
            Ok(())
        }
        Err(e) => Err(Failure {
            code: exit_code(&e),
            message: e.to_string(),
        }),
    }
}

/// 2 when the input is wrong (unknown repository, workitem lacking a value); 1 when
/// nothing matched or iManage failed.
fn exit_code(e: &ResolveError) -> u8 {
    match e {
        ResolveError::UnknownRepository { .. }
        | ResolveError::BadWorkitem
        | ResolveError::Missing { .. }
        | ResolveError::NotScalar(_)
        | ResolveError::BadWorkspaceId(_)
        | ResolveError::WhichTarget(_) => 2,
        // Not linked (the message has the link URL), nothing matched, iManage failed.
        _ => 1,
    }
}

fn read_workitem(path: &Path) -> Result<serde_json::Value, Failure> {
    let bad = |m: String| Failure {
        code: 2,
        message: m,
    };
    let meta =
        std::fs::metadata(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX_WORKITEM_BYTES {
        return Err(bad(format!(
            "{} is larger than {MAX_WORKITEM_BYTES} bytes",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "{}:{}:{}: not JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    // Accept the workitem itself or the API's request shape.
    Ok(match v.get("workitem") {
        Some(w) if v.get("title").is_none() => w.clone(),
        _ => v,
    })
}

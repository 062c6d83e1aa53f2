//! `scim-bridge approve --target NAME`: releases a tripped mass-deprovisioning guard.

use std::path::{Path, PathBuf};

use chrono::Utc;

use super::{Failure, setup};
use crate::config::Environment;

pub async fn run(
    target: &str,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
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
    let store = setup::open_store(&cfg).await?;
    let result = async {
        let state = store.guard(target).await.map_err(|e| Failure::store(e.to_string()))?;
        let now = Utc::now();
        if !store
            .approve_guard(target, now, now + window)
            .await
            .map_err(|e| Failure::store(e.to_string()))?
        {
            return Err(Failure::runtime(format!(
                "the guard of {target} is not tripped; nothing to approve"
            )));
        }
        println!(
            "approved: {target}'s paused deactivations and deletions go ahead now (tripped: {}); the guard counts again from {}",
            state.reason.unwrap_or_default(),
            (now + window).format("%Y-%m-%d %H:%M:%S UTC")
        );
        Ok(())
    }
    .await;
    store.close().await;
    result
}

//! What an operator does from the command line (a dead letter retried or dropped, a
//! guard approved or rejected) recorded in the provisioning log, the audit trail
//! that also holds the console's actions. Who: the OS user running the command
//! (`SUDO_USER` when run through sudo). Anyone who can run these commands can write
//! the database directly too, so this records honest operators' actions; it does not
//! stop a dishonest one (see docs/provisioning-log.md, the threat model).

use crate::clock::Clock;
use crate::config::Environment;
use crate::provlog::{OperatorDraft, ResourceNames};
use crate::store::Store;

/// The OS user running the command.
pub(super) fn who(env: &Environment) -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| env.get(k).filter(|v| !v.is_empty()))
        .unwrap_or("unknown user")
        .to_owned()
}

/// Writes the record; a failure is printed (the action itself has happened).
pub(super) async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    who: &str,
    action: &'static str,
    target: Option<&str>,
    resource: Option<(String, ResourceNames)>,
    detail: String,
) {
    let row = OperatorDraft {
        via: "cli",
        who: who.to_owned(),
        action,
        target: target.map(str::to_owned),
        resource,
        detail,
    }
    .row(clock.now());
    if let Err(e) = store.log_append(row).await {
        eprintln!(
            "warning: the action is done but could not be recorded in the provisioning log: {e}"
        );
    }
}

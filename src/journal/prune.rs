//! Retention for a chained log (docs/provisioning-log.md §6): cut only at a seal the
//! key verifies, sign a checkpoint there first, then delete in batches, then the
//! older seals and checkpoints. Unchained or unsealed rows are never pruned, and an
//! interrupted run is carried on by the next (the checkpoint is already stored).

use chrono::{DateTime, Utc};

use super::{Journal, JournalError};
use crate::audit::{Checkpoint, parse_seal};
use crate::store::StoredCheckpoint;

/// Rows deleted per transaction, so SCIM writes never wait long behind it.
const BATCH: usize = 10_000;

pub(super) async fn prune(journal: &Journal, before: DateTime<Utc>) -> Result<usize, JournalError> {
    let Some(key) = journal.key.as_ref() else {
        return Ok(0);
    };
    let store = journal.store.as_ref();
    let next = match store.seal_before(before).await? {
        Some(stored) => {
            let seal = parse_seal(stored.line.as_bytes())?;
            if !seal.verify(key.verifying_key()) || seal.log != journal.log {
                return Err(JournalError::Invalid(format!(
                    "the audit seal of seq {} does not verify with this installation's key; nothing pruned",
                    stored.seq
                )));
            }
            let latest = store.latest_checkpoint().await?;
            if latest.as_ref().is_some_and(|c| c.next > seal.head.seq) {
                latest.map_or(0, |c| c.next)
            } else {
                let cp = Checkpoint::sign(key, &journal.log, seal.head, journal.clock.now())?;
                store.add_checkpoint(&StoredCheckpoint::of(&cp)).await?;
                cp.next
            }
        }
        // No seal old enough: a checkpoint from an earlier, interrupted run may still
        // have rows left behind it.
        None => match store.latest_checkpoint().await? {
            Some(c) => c.next,
            None => return Ok(0),
        },
    };
    let mut total = 0;
    loop {
        let n = store.prune_chained(next, BATCH).await?;
        total += n;
        if n == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    if total > 0 {
        tracing::info!(
            pruned = total,
            checkpoint = next,
            "provisioning-log records past their retention removed (a signed checkpoint carries the chain on)"
        );
    }
    Ok(total)
}

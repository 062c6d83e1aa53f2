//! The mass-deprovisioning guard: a mis-scoped IdP assignment can deactivate a whole
//! firm in minutes, so past a threshold of deactivations and deletions per window a
//! target's destructive deliveries pause (queued, not lost) until an admin approves.
//! Protected accounts are never deactivated or deleted at all.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::target::{Change, State};
use crate::scim::ResourceKind;
use crate::scim::username::comparison_key;
use crate::store::{Store, StoreError};

/// Thresholds and protected accounts of one target.
#[derive(Debug, Clone, Default)]
pub struct GuardConfig {
    pub max_deprovisions: Option<u64>,
    pub max_percent: Option<f64>,
    pub window: Duration,
    /// Lower-cased userNames.
    pub protected: Vec<String>,
}

/// A percentage limit never trips for fewer deprovisionings than this in one window,
/// so a small estate's ordinary leavers do not pause delivery.
pub const PERCENT_FLOOR: u64 = 10;

/// What a percentage limit is a share of: the accounts the bridge manages at the
/// target, or — for a target that keeps no ids (a webhook) or has none yet — the
/// provider's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub count: u64,
    /// For the reason shown: "accounts the bridge manages there", "users of entra".
    pub of: String,
}

impl Base {
    /// The managed accounts when there are any, else `fallback` (count, description).
    pub fn managed_or(managed: u64, fallback: (u64, String)) -> Base {
        if managed > 0 {
            Base {
                count: managed,
                of: "accounts the bridge manages there".into(),
            }
        } else {
            Base {
                count: fallback.0,
                of: fallback.1,
            }
        }
    }
}

/// Why `n` deprovisionings in one window are too many against `base`; `None` when
/// they are within the limits.
pub fn over_limit(cfg: &GuardConfig, n: u64, base: &Base) -> Option<String> {
    let managed = base.count;
    if let Some(max) = cfg.max_deprovisions.filter(|max| n > *max) {
        return Some(format!(
            "more than {max} deactivations and deletions within {}",
            crate::config::show_duration(cfg.window)
        ));
    }
    // Accounts already deprovisioned in this window still count towards the base.
    let whole = managed.max(n).max(1) as f64;
    let p = cfg
        .max_percent
        .filter(|p| n > PERCENT_FLOOR && n as f64 * 100.0 / whole > *p)?;
    Some(format!(
        "{n} deactivations and deletions within {}, more than {p}% of the {managed} {}",
        crate::config::show_duration(cfg.window),
        base.of
    ))
}

/// What to do with a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// A protected account would be deactivated or deleted.
    Protected(String),
    /// The guard is (or just got) tripped.
    Pause(String),
}

/// Counts destructive deliveries in a sliding window. The count lives in memory (a
/// restart starts a new window); the tripped state lives in the store, so a pause
/// survives restarts until approved.
#[derive(Debug)]
pub struct Guard {
    cfg: GuardConfig,
    /// When each resource counted in the window was first let through; a retry of the
    /// same resource's deprovisioning does not count twice.
    recent: Mutex<VecDeque<(DateTime<Utc>, String)>>,
}

/// The resource's userName, from its document or, once deleted, its delete event.
fn user_name(change: &Change) -> Option<String> {
    let from_doc = match &change.state {
        State::Present(doc) => doc.get("userName").and_then(Value::as_str),
        State::Deleted => None,
    };
    from_doc
        .or_else(|| {
            change
                .events
                .iter()
                .rev()
                .find_map(|e| e.detail.user_name())
        })
        .map(str::to_owned)
}

/// "deletion" or "deactivation" when the change takes access away.
pub fn destructive(change: &Change) -> Option<&'static str> {
    match (&change.state, change.kind) {
        (State::Deleted, _) => Some("deletion"),
        (State::Present(doc), ResourceKind::User)
            if doc.get("active").and_then(Value::as_bool) == Some(false) =>
        {
            Some("deactivation")
        }
        _ => None,
    }
}

impl Guard {
    pub fn new(mut cfg: GuardConfig) -> Self {
        // Compared as userNames are everywhere (a protected "Straße" protects "STRASSE").
        cfg.protected = cfg.protected.iter().map(|p| comparison_key(p)).collect();
        Self {
            cfg,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    pub async fn check(
        &self,
        store: &dyn Store,
        target: &str,
        change: &Change,
        now: DateTime<Utc>,
    ) -> Result<Verdict, StoreError> {
        let Some(what) = destructive(change) else {
            return Ok(Verdict::Proceed);
        };
        if change.kind == ResourceKind::User
            && let Some(name) = user_name(change)
            && self.cfg.protected.contains(&comparison_key(&name))
        {
            return Ok(Verdict::Protected(format!(
                "{name} is a protected account (targets.guard.protected): its {what} was not sent"
            )));
        }
        let state = store.guard(target).await?;
        if state.tripped_at.is_some() {
            return Ok(Verdict::Pause(state.reason.unwrap_or_default()));
        }
        if state.approved_until.is_some_and(|u| u > now) {
            return Ok(Verdict::Proceed);
        }
        let base = match self.cfg.max_percent {
            Some(_) => {
                let managed = store.count_managed(target, ResourceKind::User).await?;
                let users = if managed == 0 {
                    store.count(&change.provider, ResourceKind::User).await?
                } else {
                    0
                };
                Base::managed_or(managed, (users, format!("users of {}", change.provider)))
            }
            None => Base::managed_or(0, (0, String::new())),
        };
        let window = chrono::Duration::from_std(self.cfg.window).unwrap_or(chrono::Duration::MAX);
        let reason = {
            let mut recent = match self.recent.lock() {
                Ok(r) => r,
                Err(p) => p.into_inner(),
            };
            while recent.front().is_some_and(|(t, _)| now - *t >= window) {
                recent.pop_front();
            }
            let key = format!(
                "{}/{}/{}",
                change.provider,
                change.kind.name(),
                change.resource_id
            );
            if recent.iter().any(|(_, k)| *k == key) {
                return Ok(Verdict::Proceed);
            }
            let n = recent.len() as u64 + 1;
            let over = over_limit(&self.cfg, n, &base);
            if over.is_none() {
                recent.push_back((now, key));
            }
            over
        };
        match reason {
            None => Ok(Verdict::Proceed),
            Some(reason) => {
                tracing::warn!(target_name = %target, %reason, "mass-deprovisioning guard tripped: destructive changes paused until `scim-bridge approve --target {target}`");
                store.trip_guard(target, &reason, now).await?;
                Ok(Verdict::Pause(reason))
            }
        }
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    fn cfg(max: Option<u64>, percent: Option<f64>) -> GuardConfig {
        GuardConfig {
            max_deprovisions: max,
            max_percent: percent,
            window: Duration::from_secs(3600),
            protected: Vec::new(),
        }
    }

    #[test]
    fn the_default_is_relative_to_the_accounts_the_bridge_manages() {
        let c = cfg(None, Some(10.0));
        let managed = |n| Base::managed_or(n, (0, String::new()));
        // A small estate's leavers never trip it below the floor.
        assert_eq!(over_limit(&c, PERCENT_FLOOR, &managed(12)), None);
        // 400 managed: 40 is 10%, 41 is more.
        assert_eq!(over_limit(&c, 40, &managed(400)), None);
        let why = over_limit(&c, 41, &managed(400)).unwrap();
        assert!(
            why.contains("more than 10% of the 400 accounts the bridge manages"),
            "{why}"
        );
        // A target that keeps no ids (a webhook) counts against the provider's users.
        let users = Base::managed_or(0, (1000, "users of entra".into()));
        assert_eq!(over_limit(&c, 100, &users), None);
        let why = over_limit(&c, 101, &users).unwrap();
        assert!(why.contains("of the 1000 users of entra"), "{why}");
    }

    #[test]
    fn an_absolute_limit_counts_alone() {
        let c = cfg(Some(3), None);
        let base = Base::managed_or(10_000, (0, String::new()));
        assert_eq!(over_limit(&c, 3, &base), None);
        assert!(over_limit(&c, 4, &base).unwrap().contains("more than 3"));
    }
}

//! Webhooks: every change POSTed as a CloudEvents 1.0 JSON event, signed with
//! HMAC-SHA256 over the timestamp and the body.
//!
//! `X-Scim-Bridge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! Receivers recompute it, compare in constant time and reject old timestamps.
//!
//! What a receiver can rely on (the README shows a receiver):
//! * the event `id` names the span of changes it carries and stays the same across
//!   retries, restarts and another instance's takeover (the store retries a span it
//!   attempted unchanged), so de-duplicating on it is safe;
//! * a group's `data.members` is either `{"all": [...]}`, the whole list, or
//!   `{"added": [...], "removed": [...]}`, each member touched by the span listed once
//!   with where it ended up. Both are idempotent, so applying a group's events in the
//!   order they arrive yields the bridge's list, even when a retried span overlaps
//!   what the receiver already applied.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Sha256;

use super::http::{Reply, Shown, body_prefix, classify, send};
use crate::clock::Clock;
use crate::delivery::{Change, MemberNeeds, Pacer, State, Target, TargetError};
use crate::oauth::Credentials;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-scim-bridge-signature";

/// `t=…,v1=…` for `body` sent at `timestamp`.
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Posts changes to one URL.
pub struct WebhookTarget {
    name: String,
    url: String,
    secret: SecretString,
    http: reqwest::Client,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
    /// The target's request-rate ceiling.
    pacer: Arc<Pacer>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WebhookTarget {
    pub fn new(
        name: String,
        url: String,
        secret: SecretString,
        http: reqwest::Client,
        credentials: Credentials,
        clock: Arc<dyn Clock>,
        pacer: Arc<Pacer>,
    ) -> Self {
        Self {
            name,
            url,
            secret,
            http,
            credentials,
            clock,
            pacer,
        }
    }

    /// The CloudEvent for a change.
    pub fn event(&self, change: &Change) -> Value {
        let noun = change.kind.name().to_ascii_lowercase();
        let (verb, resource) = match &change.state {
            State::Present(doc) => ("upserted", doc.clone()),
            State::Deleted => ("deleted", Value::Null),
        };
        let mut data = json!({
            "provider": change.provider,
            "resourceType": change.kind.name(),
            "id": change.resource_id,
            "seq": change.seq,
            "changes": change.events.iter().map(|e| json!({
                "seq": e.seq, "op": e.op.as_str(), "version": e.version, "at": e.at,
            })).collect::<Vec<_>>(),
            "resource": resource,
        });
        if let Some(version) = change.events.last().map(|e| e.version) {
            data["version"] = json!(version);
        }
        if let Some(members) = members_of(change) {
            data["members"] = members;
        }
        let mut id = format!(
            "{}:{}:{}:{}",
            change.provider,
            change.kind.name(),
            change.resource_id,
            change.seq
        );
        if let (true, Some(at)) = (change.events.is_empty(), change.resync_at) {
            // No change event of its own: without this the id would repeat the one
            // of the last change delivered, and a de-duplicating receiver drop it.
            id.push_str(&format!(":resync:{}", at.timestamp_millis()));
        }
        json!({
            "specversion": "1.0",
            "id": id,
            "source": format!("scim-bridge/{}", change.provider),
            "type": format!("com.scim-bridge.{noun}.{verb}"),
            "subject": format!("{}s/{}", change.kind.name(), change.resource_id),
            "time": self.clock.now(),
            "datacontenttype": "application/json",
            "data": data,
        })
    }
}

/// A group's membership as the event states it: the whole list when the delivery
/// carries it, otherwise each member the span touched, once, by where it ended up.
fn members_of(change: &Change) -> Option<Value> {
    if let Some(all) = &change.members {
        let ids: Vec<&str> = all.iter().map(|m| m.value.as_str()).collect();
        return Some(json!({ "all": ids }));
    }
    let (added, removed) = change.member_deltas();
    (!added.is_empty() || !removed.is_empty())
        .then(|| json!({ "added": added, "removed": removed }))
}

#[async_trait::async_trait]
impl Target for WebhookTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn member_needs(&self) -> MemberNeeds {
        // The event carries the deltas of its own change events; with no ids of its own
        // a webhook would otherwise get the whole list read on every group delivery.
        MemberNeeds::EventsOnly
    }

    fn keeps_ids(&self) -> bool {
        false
    }

    async fn apply(&self, change: &Change) -> Result<Option<String>, TargetError> {
        let body = serde_json::to_vec(&self.event(change)).map_err(|e| TargetError::Permanent {
            message: format!("cannot encode the event: {e}"),
        })?;
        let Reply {
            status,
            retry_after,
            response,
        } = send(
            &self.pacer,
            &self.credentials,
            Shown {
                method: &reqwest::Method::POST,
                path: "(the webhook's URL)",
            },
            || {
                // Signed as each request is built, after the pacer's wait, so the timestamp
                // is the sending time.
                let signature = sign(&self.secret, self.clock.now().timestamp(), &body);
                self.http
                    .post(&self.url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/cloudevents+json",
                    )
                    .header(SIGNATURE_HEADER, signature)
                    .body(body.clone())
            },
        )
        .await?;
        let body = if status.is_success() {
            String::new()
        } else {
            body_prefix(response, 2048).await
        };
        classify(status, retry_after.as_deref(), &body, self.clock.now())?;
        // A webhook keeps no id of its own.
        Ok(None)
    }
}

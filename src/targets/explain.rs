//! What a target gets for one user or group, worked out from the store and the
//! configuration alone (nothing is sent): whether it is in the target's scope and
//! why, the account it has there, every field the target's mapping fills with the
//! rule behind it, and for a user of a SCIM app the role and manager the identity
//! rules give it. `scim-bridge explain` prints it and the console's person page shows
//! it, so both say what delivery would do, computed the way delivery computes it.

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::{TargetConfig, TargetKind, TargetSpec};
use crate::delivery::{Pacer, Target, TargetError, gather_relations, scoping};
use crate::identity::{Decision, ManagerLink, Relations, ScopeDecision};
use crate::oauth::Credentials;
use crate::scim::ResourceKind;
use crate::store::{Store, StoreError, StoredResource};

use super::{Explained, Mapping, ScimTarget};

/// Where a resource stands with one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub scope: ScopeDecision,
    /// The target's id for it, once delivered (or adopted).
    pub target_id: Option<String>,
    /// The account there in words: its id and how the bridge came to manage it, or
    /// what happens on its first delivery.
    pub account: String,
}

/// Whether `r` is in `t`'s scope, and the account it has there.
pub async fn placement(
    store: &dyn Store,
    t: &TargetConfig,
    provider: &str,
    kind: ResourceKind,
    r: &StoredResource,
) -> Result<Placement, StoreError> {
    let target_id = store.target_id(&t.name, provider, kind, &r.id).await?;
    let scope = scoping::decide(
        store,
        &t.name,
        t.scope.as_ref(),
        provider,
        kind,
        &r.id,
        &r.doc,
    )
    .await?;
    let origin = match &target_id {
        Some(tid) => store
            .target_owner(&t.name, kind, tid)
            .await?
            .map(|m| m.link.origin()),
        None => None,
    };
    let account = match (&target_id, origin) {
        (Some(tid), Some(origin)) => format!("{tid}, {origin}"),
        (Some(tid), None) => tid.clone(),
        (None, _) if t.kind() == TargetKind::Webhook => "-".into(),
        (None, _) if t.matching.of(kind).is_empty() => {
            "not at the target yet; it will be created (matching is off)".into()
        }
        (None, _) => format!(
            "not at the target yet; before creating one the bridge looks for an existing account by {} and adopts exactly one match",
            t.matching.of(kind).join(", then ")
        ),
    };
    Ok(Placement {
        scope,
        target_id,
        account,
    })
}

/// What a target gets for a resource.
#[derive(Debug)]
pub struct Gets {
    /// Every field and what produced it; an error is what delivery would dead-letter
    /// the resource for.
    pub fields: Result<Vec<Explained>, TargetError>,
    /// What the field list leaves unsaid (what goes as stored).
    pub note: Option<&'static str>,
    /// A SCIM app's user: the role attribute and what the rules decided, before the
    /// app's own copy is read (`None`: no role rules apply).
    pub role: Option<(String, Decision)>,
    /// A SCIM app's user: the manager the document names, with the manager's id at
    /// the target once they are there.
    pub manager: Option<ManagerLink>,
}

/// What `t` gets for `r`, as its delivery would build it. `http` is only held by a
/// SCIM app's handle, never used: nothing is sent.
pub async fn gets(
    store: &dyn Store,
    t: &TargetConfig,
    provider: &str,
    kind: ResourceKind,
    r: &StoredResource,
    http: &reqwest::Client,
) -> Result<Gets, StoreError> {
    let mapping = Mapping {
        user: t.user_mapping.clone(),
        group: t.group_mapping.clone(),
    };
    match &t.spec {
        TargetSpec::Imanage { .. } => Ok(Gets {
            fields: mapping.explain_imanage(kind, &r.doc),
            note: None,
            role: None,
            manager: None,
        }),
        TargetSpec::Scim { url, .. } => {
            // The target itself says what it would send; it is never asked to send.
            let app = ScimTarget::configured(
                t,
                url,
                http.clone(),
                Credentials::None,
                Arc::new(SystemClock),
                Arc::new(Pacer::new(None)),
            )
            .with_mapping(mapping);
            let relations = match kind {
                ResourceKind::User => {
                    gather_relations(
                        store,
                        &t.name,
                        app.relation_needs(provider),
                        provider,
                        &r.id,
                        &r.doc,
                    )
                    .await?
                }
                ResourceKind::Group => Relations::default(),
            };
            let role = match kind {
                ResourceKind::User => app
                    .explain_user(provider, &r.doc, &relations, None)
                    .ok()
                    .and_then(|(_, decided)| decided),
                ResourceKind::Group => None,
            };
            Ok(Gets {
                fields: app.explain(provider, kind, &r.doc, &relations),
                note: Some(
                    "every other attribute goes as stored (without id, meta, groups and members)",
                ),
                role,
                manager: relations.manager,
            })
        }
        TargetSpec::Webhook { .. } => Ok(Gets {
            fields: Ok(Vec::new()),
            note: Some("webhooks get the SCIM resource as stored, in a signed CloudEvent"),
            role: None,
            manager: None,
        }),
    }
}

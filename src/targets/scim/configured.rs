//! A SCIM app's handle as its `[[targets]]` table configures it: shared by the daemon,
//! which delivers through it, and by `explain` and the console, which only ask it
//! what it would send.

use std::sync::Arc;

use super::ScimTarget;
use crate::clock::Clock;
use crate::config::{TargetConfig, TargetSpec};
use crate::delivery::Pacer;
use crate::oauth::Credentials;

impl ScimTarget {
    /// The app `t` configures at `url`: deletion policy and retention, identity rules,
    /// nested groups and matching (the mapping is set apart, with
    /// [`ScimTarget::with_mapping`]).
    pub fn configured(
        t: &TargetConfig,
        url: &str,
        http: reqwest::Client,
        credentials: Credentials,
        clock: Arc<dyn Clock>,
        pacer: Arc<Pacer>,
    ) -> ScimTarget {
        let (on_delete, delete_after, roles, contact_types, expand_nested) = match &t.spec {
            TargetSpec::Scim {
                on_delete,
                delete_after,
                roles,
                contact_types,
                expand_nested,
                ..
            } => (
                *on_delete,
                *delete_after,
                roles.clone(),
                contact_types.clone(),
                *expand_nested,
            ),
            _ => Default::default(),
        };
        ScimTarget::new(
            t.name.clone(),
            url.to_owned(),
            http,
            credentials,
            clock,
            pacer,
        )
        .with_on_delete(on_delete)
        .with_identity(roles, contact_types)
        .with_retention(delete_after)
        .with_nested(expand_nested)
        .with_matching(t.matching.clone())
    }
}

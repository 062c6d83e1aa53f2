//! `scim-bridge explain` for a SCIM app: every field the app would get for a user or
//! group and what produced it, from the same mapping and role decision delivery uses.

use serde_json::Value;

use super::ScimTarget;
use crate::delivery::TargetError;
use crate::identity::{ENTERPRISE, Outcome, Relations, Unmatched, role_cleared, role_json};
use crate::scim::ResourceKind;
use crate::targets::Explained;

impl ScimTarget {
    /// The fields `doc` gets at this app: the mapped ones, then, for a user, the role
    /// (as [`ScimTarget::explain_user`] decides it before the app's copy is read),
    /// the manager and the renamed contact types. An error is what delivery would
    /// dead-letter the resource for.
    pub fn explain(
        &self,
        provider: &str,
        kind: ResourceKind,
        doc: &Value,
        relations: &Relations,
    ) -> Result<Vec<Explained>, TargetError> {
        let rendered = self.mapping.render(kind, doc)?;
        let set: serde_json::Map<String, Value> = rendered
            .into_iter()
            .filter_map(|(field, v)| Some((field, Value::String(v?))))
            .collect();
        let mut out = self.mapping.explain(kind, doc, &set, &[], "as stored")?;
        if kind == ResourceKind::User {
            out.extend(self.explain_identity(provider, doc, relations)?);
        }
        Ok(out)
    }

    /// The role, manager and contact types the identity rules give a user.
    fn explain_identity(
        &self,
        provider: &str,
        doc: &Value,
        relations: &Relations,
    ) -> Result<Vec<Explained>, TargetError> {
        let mut out = Vec::new();
        if let (Some(rules), (_, Some((field, d)))) = (
            self.rules(provider),
            self.explain_user(provider, doc, relations, None)?,
        ) {
            let value = match &d.outcome {
                Outcome::Set { value, .. } => Some(role_json(&field, value)),
                Outcome::Clear => Some(role_cleared(&field)),
                Outcome::Keep { .. } | Outcome::Leave => None,
            };
            let mut source = format!("role: {}", d.why);
            if rules.needs_current(doc, &relations.groups) {
                source.push_str(match rules.unmatched {
                    Unmatched::Keep => {
                        "; an account that already has a role keeps it when no rule matches, and a protected role is never lowered (read from the app at delivery)"
                    }
                    Unmatched::Reset => {
                        "; a protected role the account already has is never lowered (read from the app at delivery)"
                    }
                });
            }
            out.push(Explained {
                field,
                value,
                source,
            });
        }
        if let Some(m) = &relations.manager {
            out.push(Explained {
                field: format!("{ENTERPRISE}:manager.value"),
                value: m.target_id.clone().map(Value::String),
                source: match &m.target_id {
                    Some(_) => format!("manager {} as the target knows them", m.id),
                    None => format!(
                        "manager {} is not at the target yet: left out, and filled in once they are delivered",
                        m.id
                    ),
                },
            });
        }
        for rename in self.contact_types.iter() {
            out.push(Explained {
                field: rename
                    .attribute
                    .as_ref()
                    .map_or_else(|| "contact type".into(), |a| format!("{a}.type")),
                value: Some(Value::String(rename.to.clone())),
                source: rename.origin(),
            });
        }
        Ok(out)
    }
}

//! SCIM users and groups → iManage fields: fixed defaults, overridden per field by the
//! target's `[targets.user_mapping]` / `[targets.group_mapping]` templates.

use serde_json::{Map, Value, json};

use super::ids::{group_id, user_id};
use crate::delivery::TargetError;
use crate::scim::ResourceKind;
use crate::targets::mapping::{Explained, Mapping};

/// How the iManage fields are derived when no template is configured.
const USER_DEFAULTS: &[(&str, &str)] = &[
    (
        "id",
        "userName, upper-cased (iManage compares ids ignoring case)",
    ),
    (
        "full_name",
        "displayName, else name.givenName + name.familyName",
    ),
    (
        "email",
        "the primary email, else the work one, else the first",
    ),
    ("allow_logon", "active"),
];
const GROUP_DEFAULTS: &[(&str, &str)] = &[
    ("id", "displayName, upper-cased, spaces as _"),
    ("full_name", "displayName"),
];

/// An iManage user or group as the bridge wants it: its id and the other fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub id: String,
    pub fields: Map<String, Value>,
}

fn full_name(doc: &Value) -> Option<String> {
    doc["displayName"].as_str().map(str::to_owned).or_else(|| {
        let given = doc["name"]["givenName"].as_str().unwrap_or("");
        let family = doc["name"]["familyName"].as_str().unwrap_or("");
        let joined = format!("{given} {family}").trim().to_owned();
        (!joined.is_empty()).then_some(joined)
    })
}

fn primary_email(doc: &Value) -> Option<String> {
    let emails = doc["emails"].as_array()?;
    emails
        .iter()
        .find(|e| e["primary"] == true)
        .or_else(|| emails.iter().find(|e| e["type"] == "work"))
        .or_else(|| emails.first())
        .and_then(|e| e["value"].as_str())
        .map(str::to_owned)
}

/// Applies the rendered rules over the defaults in `fields`: a value sets the field, a
/// missing value removes it (iManage keeps what it has); a missing `id` is an error.
fn apply_rules(
    mapping: &Mapping,
    kind: ResourceKind,
    doc: &Value,
    fields: &mut Map<String, Value>,
) -> Result<(), TargetError> {
    for (field, value) in mapping.render(kind, doc)? {
        match value {
            Some(v) => {
                fields.insert(field, Value::String(v));
            }
            None if field == "id" => {
                let (table, root) = match kind {
                    ResourceKind::User => ("user_mapping", "user"),
                    ResourceKind::Group => ("group_mapping", "group"),
                };
                let path = mapping
                    .rules(kind)
                    .iter()
                    .find(|r| r.field == "id")
                    .map_or_else(|| root.to_owned(), |r| r.template.to_string());
                return Err(TargetError::Permanent {
                    message: format!("[targets.{table}] id: {path} has no value"),
                });
            }
            None => {
                fields.remove(&field);
            }
        }
    }
    Ok(())
}

impl Mapping {
    /// The iManage user for a SCIM user: `id` from userName (upper-cased), `full_name`
    /// from displayName or given + family name, `email` from the primary (else work)
    /// email, `allow_logon` from `active`; then the configured templates.
    pub fn imanage_user(&self, doc: &Value) -> Result<Mapped, TargetError> {
        let mut fields = Map::new();
        fields.insert("id".into(), doc["userName"].clone());
        if let Some(n) = full_name(doc) {
            fields.insert("full_name".into(), n.into());
        }
        if let Some(e) = primary_email(doc) {
            fields.insert("email".into(), e.into());
        }
        apply_rules(self, ResourceKind::User, doc, &mut fields)?;
        let raw = fields.remove("id").unwrap_or(Value::Null);
        let id = user_id(raw.as_str().unwrap_or(""))?;
        fields.insert(
            "allow_logon".into(),
            json!(doc["active"].as_bool().unwrap_or(true)),
        );
        Ok(Mapped { id, fields })
    }

    /// Every iManage field for `doc` and what produced it.
    pub fn explain_imanage(
        &self,
        kind: ResourceKind,
        doc: &Value,
    ) -> Result<Vec<Explained>, TargetError> {
        let (mapped, defaults) = match kind {
            ResourceKind::User => (self.imanage_user(doc)?, USER_DEFAULTS),
            ResourceKind::Group => (self.imanage_group(doc)?, GROUP_DEFAULTS),
        };
        let mut all = Map::new();
        all.insert("id".into(), Value::String(mapped.id));
        all.extend(mapped.fields);
        self.explain(kind, doc, &all, defaults, "fixed")
    }

    /// The iManage group for a SCIM group: `id` from displayName (upper-cased, spaces as
    /// `_`), `full_name` the displayName; then the configured templates.
    pub fn imanage_group(&self, doc: &Value) -> Result<Mapped, TargetError> {
        let mut fields = Map::new();
        let display = doc["displayName"].as_str().unwrap_or("");
        fields.insert("id".into(), display.into());
        fields.insert("full_name".into(), display.into());
        let configured_id = self.group.iter().any(|r| r.field == "id");
        apply_rules(self, ResourceKind::Group, doc, &mut fields)?;
        let raw = fields.remove("id").unwrap_or(Value::Null);
        let raw = raw.as_str().unwrap_or("");
        // A configured id is taken as written (still checked); the default is derived.
        let id = if configured_id {
            group_id(raw).map(|_| raw.trim().to_owned())?
        } else {
            group_id(raw)?
        };
        Ok(Mapped { id, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FieldMapping;
    use crate::template::Template;

    fn rule(field: &str, t: &str) -> FieldMapping {
        FieldMapping {
            field: field.into(),
            template: Template::parse(t).unwrap(),
        }
    }

    fn entra() -> Value {
        json!({"userName": "jsmith@firm.example", "active": false,
            "name": {"givenName": "Jo", "familyName": "Smith"},
            "emails": [{"type": "work", "value": "Jo.Smith@Firm.example"}],
            "addresses": [{"type": "work", "locality": "London"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "E123"}})
    }

    #[test]
    fn defaults_then_templates() {
        let plain = Mapping::default().imanage_user(&entra()).unwrap();
        assert_eq!(plain.id, "JSMITH@FIRM.EXAMPLE");
        assert_eq!(plain.fields["full_name"], "Jo Smith");
        assert_eq!(plain.fields["email"], "Jo.Smith@Firm.example");
        assert_eq!(plain.fields["allow_logon"], false);

        let m = Mapping {
            user: vec![
                rule(
                    "id",
                    "[user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber]",
                ),
                rule(
                    "full_name",
                    "[user.name.familyName | upper], [user.name.givenName]",
                ),
                rule("email", "[user.emails[type eq \"work\"].value | lower]"),
                rule("location", "[user.addresses[type eq \"work\"].locality]"),
                rule("phone", "[user.phoneNumbers[type eq \"work\"].value]"),
            ],
            group: vec![],
        };
        let u = m.imanage_user(&entra()).unwrap();
        assert_eq!(u.id, "E123");
        assert_eq!(u.fields["full_name"], "SMITH, Jo");
        assert_eq!(u.fields["email"], "jo.smith@firm.example");
        assert_eq!(u.fields["location"], "London");
        assert!(
            !u.fields.contains_key("phone"),
            "missing values are left out"
        );
    }

    #[test]
    fn a_mapping_that_cannot_be_filled_is_a_clear_permanent_error() {
        let m = Mapping {
            user: vec![rule("id", "[user.externalId]")],
            group: vec![rule("full_name", "[group.members]")],
        };
        let e = m.imanage_user(&entra()).unwrap_err().to_string();
        assert_eq!(
            e,
            "[targets.user_mapping] id: [user.externalId] has no value"
        );
        let e = m
            .imanage_group(
                &json!({"displayName": "G", "members": [{"value": "1"}, {"value": "2"}]}),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("[targets.group_mapping] full_name"), "{e}");
    }

    #[test]
    fn group_ids_default_or_configured() {
        let doc = json!({"displayName": "Litigation Team"});
        assert_eq!(
            Mapping::default().imanage_group(&doc).unwrap().id,
            "LITIGATION_TEAM"
        );
        let m = Mapping {
            user: vec![],
            group: vec![rule(
                "id",
                "DMS-[group.displayName | replace(\" \", \"-\") | lower]",
            )],
        };
        let g = m.imanage_group(&doc).unwrap();
        assert_eq!(g.id, "DMS-litigation-team");
        assert_eq!(g.fields["full_name"], "Litigation Team");
    }
}

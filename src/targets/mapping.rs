//! A target's `[targets.user_mapping]` and `[targets.group_mapping]`: templates that
//! fill the fields the target gets. Each target kind decides what the fields are
//! (iManage fields, SCIM attribute paths); this holds the rules and how they render.

use serde_json::{Map, Value};

use crate::config::FieldMapping;
use crate::delivery::TargetError;
use crate::identity::attr_at;
use crate::scim::{AttrPath, ResourceKind};
use crate::template::{Context, EvalError};

/// The target's configured mappings; empty means the target's defaults throughout.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub user: Vec<FieldMapping>,
    pub group: Vec<FieldMapping>,
}

/// What one rule gave: a value, or nothing (the template's path had no value).
pub(crate) type Rendered = (String, Option<String>);

/// One field a target gets, and what produced it; for `scim-bridge explain`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Explained {
    pub field: String,
    /// `None`: left out (the target keeps what it has).
    pub value: Option<Value>,
    pub source: String,
}

impl Mapping {
    pub(crate) fn rules(&self, kind: ResourceKind) -> &[FieldMapping] {
        match kind {
            ResourceKind::User => &self.user,
            ResourceKind::Group => &self.group,
        }
    }

    /// Renders `kind`'s rules over `doc`. An object or list where a value is needed is
    /// a permanent error naming the mapping, so a resource is never pushed half-filled.
    pub(crate) fn render(
        &self,
        kind: ResourceKind,
        doc: &Value,
    ) -> Result<Vec<Rendered>, TargetError> {
        let (root, table) = match kind {
            ResourceKind::User => ("user", "user_mapping"),
            ResourceKind::Group => ("group", "group_mapping"),
        };
        let ctx = Context::new().with(root, doc);
        self.rules(kind)
            .iter()
            .map(|rule| match rule.template.render(&ctx) {
                Ok(v) => Ok((rule.field.clone(), Some(v))),
                Err(EvalError::Missing { .. }) => Ok((rule.field.clone(), None)),
                Err(e) => Err(TargetError::Permanent {
                    message: format!("[targets.{table}] {}: {e}", rule.field),
                }),
            })
            .collect()
    }

    /// Explains `result` (the fields a target gets for `doc`): each configured rule with
    /// its template, each other field from `defaults` (field → how it is derived), or
    /// `otherwise` when neither names it.
    pub fn explain(
        &self,
        kind: ResourceKind,
        doc: &Value,
        result: &Map<String, Value>,
        defaults: &[(&str, &str)],
        otherwise: &str,
    ) -> Result<Vec<Explained>, TargetError> {
        let table = match kind {
            ResourceKind::User => "user_mapping",
            ResourceKind::Group => "group_mapping",
        };
        let rendered = self.render(kind, doc)?;
        let mut out = Vec::new();
        for (rule, (field, value)) in self.rules(kind).iter().zip(rendered) {
            let source = match value {
                Some(_) => format!("[targets.{table}] {field} = {:?}", rule.template.source()),
                None => format!(
                    "[targets.{table}] {field} = {:?}: no value, so left out (the target keeps what it has)",
                    rule.template.source()
                ),
            };
            out.push(Explained {
                value: result.get(&field).cloned(),
                field,
                source,
            });
        }
        for (field, value) in result {
            if out.iter().any(|e| e.field == *field) {
                continue;
            }
            let source = defaults
                .iter()
                .find(|(f, _)| f == field)
                .map_or(otherwise, |(_, how)| how);
            out.push(Explained {
                field: field.clone(),
                value: Some(value.clone()),
                source: format!("default: {source}"),
            });
        }
        Ok(out)
    }

    /// The SCIM document a SCIM app gets: the stored one with each mapped attribute
    /// set. A rule with no value removes its attribute: the mapping owns that field,
    /// so a value an option set refused (`oneof`) is never sent as the IdP spelled it.
    pub fn scim_document(&self, kind: ResourceKind, doc: &Value) -> Result<Value, TargetError> {
        self.scim_document_over(kind, doc, None)
    }

    /// [`Mapping::scim_document`] for an update of `have`, the app's current copy: a
    /// rule with no value sends what the app holds in that attribute, so the app keeps
    /// it. Leaving the attribute out would not do: a PUT replaces the whole resource,
    /// and apps differ on whether an attribute missing from it is cleared.
    pub fn scim_document_over(
        &self,
        kind: ResourceKind,
        doc: &Value,
        have: Option<&Value>,
    ) -> Result<Value, TargetError> {
        if self.rules(kind).is_empty() {
            return Ok(doc.clone());
        }
        let mut out = doc.clone();
        for (field, value) in self.render(kind, doc)? {
            match (
                value,
                have.and_then(|h| attr_at(h, &field))
                    .filter(|v| !v.is_null()),
            ) {
                (Some(v), _) => set_attr(&mut out, kind, &field, Value::String(v)),
                (None, Some(kept)) => set_attr(&mut out, kind, &field, kept.clone()),
                (None, None) => remove_attr(&mut out, &field),
            }
        }
        Ok(out)
    }

    /// The attributes `kind`'s rules leave without a value for `doc` (none when the
    /// mapping refuses it: that delivery dead-letters anyway).
    pub fn left_out(&self, kind: ResourceKind, doc: &Value) -> Vec<String> {
        self.render(kind, doc)
            .map(|r| {
                r.into_iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(f, _)| f)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Removes `path` from a SCIM document, if it is there.
pub(crate) fn remove_attr(doc: &mut Value, path: &str) {
    let Ok(p) = AttrPath::parse(path) else {
        return;
    };
    let container = match p.extension() {
        Some(urn) => doc.get_mut(urn),
        None => Some(doc),
    };
    let Some(container) = container.and_then(Value::as_object_mut) else {
        return;
    };
    match &p.sub {
        None => {
            container.remove(&p.name);
        }
        Some(sub) => {
            if let Some(parent) = container.get_mut(&p.name).and_then(Value::as_object_mut) {
                parent.remove(sub);
            }
        }
    }
}

/// Sets `path` (`title`, `name.formatted`, `urn:…:User:roleId`) in a SCIM document,
/// declaring an extension schema in `schemas` when it is new.
pub(crate) fn set_attr(doc: &mut Value, kind: ResourceKind, path: &str, value: Value) {
    let Ok(p) = AttrPath::parse(path) else {
        return;
    };
    let Some(root) = doc.as_object_mut() else {
        return;
    };
    let core = kind.core_schema();
    let container: &mut Map<String, Value> = match p.extension() {
        Some(urn) => {
            let schemas = root
                .entry("schemas")
                .or_insert_with(|| Value::Array(vec![Value::String(core.into())]));
            if let Some(list) = schemas.as_array_mut()
                && !list
                    .iter()
                    .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
            {
                list.push(Value::String(urn.to_owned()));
            }
            let ext = root
                .entry(urn.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !ext.is_object() {
                *ext = Value::Object(Map::new());
            }
            match ext.as_object_mut() {
                Some(m) => m,
                None => return,
            }
        }
        _ => root,
    };
    match &p.sub {
        None => {
            container.insert(p.name.clone(), value);
        }
        Some(sub) => {
            let parent = container
                .entry(p.name.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !parent.is_object() {
                *parent = Value::Object(Map::new());
            }
            if let Some(m) = parent.as_object_mut() {
                m.insert(sub.clone(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::template::Template;

    fn rule(field: &str, t: &str) -> FieldMapping {
        FieldMapping {
            field: field.into(),
            template: Template::parse(t).unwrap(),
        }
    }

    #[test]
    fn scim_attributes_are_set_by_path() {
        let m = Mapping {
            user: vec![
                rule("title", "[user.title | default(\"Associate\")]"),
                rule(
                    "name.formatted",
                    "[user.name.givenName] [user.name.familyName | upper]",
                ),
                rule(
                    "urn:example:clm:2.0:User:roleId",
                    "[user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department | lower]",
                ),
                rule("nickName", "[user.nickName]"),
            ],
            group: vec![],
        };
        let doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b",
            "nickName": "kept", "name": {"givenName": "Jo", "familyName": "Smith"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "LITIGATION"}});
        let out = m.scim_document(ResourceKind::User, &doc).unwrap();
        assert_eq!(out["title"], "Associate");
        assert_eq!(out["name"]["formatted"], "Jo SMITH");
        assert_eq!(out["name"]["givenName"], "Jo");
        assert_eq!(out["urn:example:clm:2.0:User:roleId"], Value::Null);
        assert_eq!(out["urn:example:clm:2.0:User"]["roleId"], "litigation");
        assert_eq!(out["schemas"][1], "urn:example:clm:2.0:User");
        // No value: the stored attribute stays.
        let bare = json!({"userName": "a@b", "nickName": "kept"});
        let out = m.scim_document(ResourceKind::User, &bare).unwrap();
        assert_eq!(out["nickName"], "kept");
        assert!(out.get("urn:example:clm:2.0:User").is_none());
        // No rules for groups: the document as stored.
        let g = json!({"displayName": "G"});
        assert_eq!(m.scim_document(ResourceKind::Group, &g).unwrap(), g);
    }

    /// "If the values cannot be mapped to the optionset then they are ignored": on an
    /// update the app's own value is sent back, so a PUT does not clear it.
    #[test]
    fn a_rule_without_value_keeps_the_apps_value_on_update() {
        let m = Mapping {
            user: vec![
                rule(
                    "name.honorificPrefix",
                    "[user.name.honorificPrefix | oneof(\"Mr\", \"Ms\", \"Dr\")]",
                ),
                rule("urn:example:app:2.0:User:grade", "[user.title]"),
            ],
            group: vec![],
        };
        let doc = json!({"userName": "a@b", "name": {"givenName": "Jo", "honorificPrefix": "Sir"}});
        let have = json!({"id": "7", "Name": {"HonorificPrefix": "Prof"},
            "urn:example:app:2.0:User": {"grade": "G7"}});
        let out = m
            .scim_document_over(ResourceKind::User, &doc, Some(&have))
            .unwrap();
        assert_eq!(out["name"]["honorificPrefix"], "Prof", "{out}");
        assert_eq!(out["name"]["givenName"], "Jo");
        assert_eq!(out["urn:example:app:2.0:User"]["grade"], "G7");
        assert_eq!(
            m.left_out(ResourceKind::User, &doc),
            ["name.honorificPrefix", "urn:example:app:2.0:User:grade"]
        );
        // The app holds nothing there: left out, never the IdP's spelling.
        let out = m
            .scim_document_over(ResourceKind::User, &doc, Some(&json!({"id": "7"})))
            .unwrap();
        assert!(out["name"].get("honorificPrefix").is_none(), "{out}");
        // In the set: the mapping's value, whatever the app holds.
        let dr = json!({"userName": "a@b", "name": {"honorificPrefix": "dr"}, "title": "G8"});
        let out = m
            .scim_document_over(ResourceKind::User, &dr, Some(&have))
            .unwrap();
        assert_eq!(out["name"]["honorificPrefix"], "Dr");
        assert_eq!(out["urn:example:app:2.0:User"]["grade"], "G8");
        assert!(m.left_out(ResourceKind::User, &dr).is_empty());
    }
}

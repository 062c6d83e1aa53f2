//! The error for a URN-qualified attribute no schema declares, naming the fix.
//!
//! An unqualified attribute the bridge does not know (`"nickname"` from an IdP's
//! default mapping) is dropped in the Entra and Okta dialects and counted, as before.
//! A URN-qualified one (`urn:ietf:params:scim:schemas:core:2.0:User:roleId`, or a key
//! inside a schema's object) is different: the IdP's admin mapped it on purpose,
//! usually by following a vendor's guide, and dropping it silently loses what the
//! guide was for (DiliTrust's role). So it is refused in every dialect, and the error
//! carries the `[[providers.schemas]]` lines that make the bridge keep it.

use serde_json::Value;

use crate::scim::error::ScimError;
use crate::scim::path::AttrPath;
use crate::scim::schema::{ENTERPRISE_USER_SCHEMA, ResourceKind, SchemaRegistry};

/// The error for `path` (schema-qualified, not declared for `kind`) sent with `value`.
pub(crate) fn undeclared(
    reg: &SchemaRegistry,
    kind: ResourceKind,
    path: &AttrPath,
    value: Option<&Value>,
) -> ScimError {
    let schema = path.schema.as_deref().unwrap_or(kind.core_schema());
    let qualified = path.qualified_name();
    let known = reg.schema_for(kind, schema);
    // `{"urn:x:acme:2.0:User": {…}}` names a whole schema the bridge does not know.
    if known.is_none()
        && path.sub.is_none()
        && let Some(Value::Object(attrs)) = value
    {
        let names: Vec<(&str, Option<&Value>)> =
            attrs.iter().map(|(k, v)| (k.as_str(), Some(v))).collect();
        let detail = format!(
            "schema {qualified} is not declared for {}s, so the bridge would drop its attributes; declare it in the bridge's configuration under this provider:\n{}",
            kind.name(),
            new_schema(&qualified, kind, &names)
        );
        return ScimError::invalid_value(detail).with_undeclared(&qualified);
    }
    let detail = match known {
        Some(s) if s.id.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA) => {
            let defined: Vec<&str> = s.attributes.iter().map(|a| a.name.as_str()).collect();
            format!(
                "{qualified} is not an attribute of the enterprise extension (RFC 7643 §4.3 defines {}), so the bridge would drop it; map the value to one of those, or to an attribute declared under [[providers.schemas]]",
                defined.join(", ")
            )
        }
        Some(s) => {
            let is_core = s.id.eq_ignore_ascii_case(kind.core_schema());
            let entry = if is_core {
                format!(
                    "[[providers.schemas]]\nid = {:?}\n{}",
                    s.id,
                    attribute_lines(&path.name, value)
                )
            } else {
                attribute_lines(&path.name, value)
            };
            format!(
                "{qualified} is not declared, so the bridge would drop it; declare it in the bridge's configuration under this provider's [[providers.schemas]] entry with id = {:?}{}:\n{entry}",
                s.id,
                if is_core {
                    " (start one if there is none)"
                } else {
                    ""
                }
            )
        }
        None => format!(
            "{qualified} belongs to schema {schema}, which is not declared for {}s, so the bridge would drop it; declare it in the bridge's configuration under this provider:\n{}",
            kind.name(),
            new_schema(schema, kind, &[(path.name.as_str(), value)])
        ),
    };
    ScimError::invalid_value(detail).with_undeclared(&qualified)
}

/// The lines of a new `[[providers.schemas]]` entry holding `attrs`.
fn new_schema(id: &str, kind: ResourceKind, attrs: &[(&str, Option<&Value>)]) -> String {
    let name = id.rsplit(':').next().unwrap_or(id);
    let mut out = format!("[[providers.schemas]]\nid = {id:?}\nname = {name:?}\n");
    if kind == ResourceKind::Group {
        out.push_str("resource = \"Group\"\n");
    }
    let attrs: Vec<String> = attrs.iter().map(|(n, v)| attribute_lines(n, *v)).collect();
    out.push_str(&attrs.join("\n"));
    out
}

/// `[[providers.schemas.attributes]]` for `name`, with the type the value suggests
/// (strings are the default and need no line).
pub(crate) fn attribute_lines(name: &str, value: Option<&Value>) -> String {
    let mut out = format!("[[providers.schemas.attributes]]\nname = {name:?}");
    let (first, multi) = match value {
        Some(Value::Array(items)) => (items.first(), true),
        other => (other, false),
    };
    let kind = match first {
        Some(Value::Bool(_)) => Some("boolean"),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some("integer"),
        Some(Value::Number(_)) => Some("decimal"),
        Some(Value::Object(_)) => Some("complex"),
        _ => None,
    };
    if let Some(k) = kind {
        out.push_str(&format!("\ntype = {k:?}"));
    }
    if multi {
        out.push_str("\nmulti_valued = true");
    }
    if kind == Some("complex") {
        out.push_str("\n# and one [[providers.schemas.attributes.sub_attributes]] per field");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(s: &str) -> AttrPath {
        AttrPath::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_core_schema_attribute_of_the_dilitrust_guide() {
        let reg = SchemaRegistry::new();
        let e = undeclared(
            &reg,
            ResourceKind::User,
            &path("urn:ietf:params:scim:schemas:core:2.0:User:roleId"),
            Some(&json!("6f1d…")),
        );
        assert_eq!(e.status, 400);
        assert_eq!(
            e.undeclared.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User:roleId")
        );
        assert!(
            e.detail.ends_with(
                "[[providers.schemas]]\nid = \"urn:ietf:params:scim:schemas:core:2.0:User\"\n[[providers.schemas.attributes]]\nname = \"roleId\""
            ),
            "{}",
            e.detail
        );
    }

    #[test]
    fn unknown_schemas_and_extensions() {
        let reg = SchemaRegistry::new();
        let e = undeclared(
            &reg,
            ResourceKind::Group,
            &path("urn:x:acme:2.0:Group"),
            Some(&json!({"costCenter": "7", "active": true})),
        );
        assert!(
            e.detail.ends_with(
                "id = \"urn:x:acme:2.0:Group\"\nname = \"Group\"\nresource = \"Group\"\n[[providers.schemas.attributes]]\nname = \"costCenter\"\n[[providers.schemas.attributes]]\nname = \"active\"\ntype = \"boolean\""
            ),
            "{}",
            e.detail
        );
        let e = undeclared(
            &reg,
            ResourceKind::User,
            &path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badge"),
            Some(&json!(["a"])),
        );
        assert!(e.detail.contains("employeeNumber"), "{}", e.detail);
    }
}

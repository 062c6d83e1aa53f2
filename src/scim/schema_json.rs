//! `/Schemas` (RFC 7643 §7) and `/ResourceTypes` (RFC 7643 §6) representations.

use serde_json::{Map, Value, json};

use crate::scim::schema::{
    AttrType, Attribute, LIST_RESPONSE_SCHEMA, ResourceKind, Schema, SchemaRegistry,
};

/// URN of schema representations.
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// URN of resource type representations.
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// URN of the service provider configuration (RFC 7643 §5).
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// The limits `/ServiceProviderConfig` advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertised {
    /// `bulk.maxOperations`.
    pub bulk_max_operations: usize,
    /// `bulk.maxPayloadSize`, in bytes.
    pub bulk_max_payload_bytes: usize,
    /// `filter.maxResults`: the largest page served.
    pub max_results: usize,
}

/// The service provider configuration (RFC 7643 §5) of the base at `base_url`.
pub fn service_provider_config_json(limits: Advertised, base_url: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "documentationUri": "https://github.com/scim-bridge/scim-bridge#readme",
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": limits.bulk_max_operations,
            "maxPayloadSize": limits.bulk_max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": limits.max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A long-lived token created with `scim-bridge token create --provider NAME`.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base_url}/ServiceProviderConfig"),
        },
    })
}

/// One attribute definition as JSON.
pub fn attribute_json(a: &Attribute) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(a.name));
    m.insert("type".into(), json!(a.attr_type.as_str()));
    m.insert("multiValued".into(), json!(a.multi_valued));
    m.insert("description".into(), json!(a.description));
    m.insert("required".into(), json!(a.required));
    if a.attr_type != AttrType::Complex {
        m.insert("caseExact".into(), json!(a.case_exact));
    }
    if !a.canonical_values.is_empty() {
        m.insert("canonicalValues".into(), json!(a.canonical_values));
    }
    if a.attr_type == AttrType::Reference {
        m.insert("referenceTypes".into(), json!(a.reference_types));
    }
    m.insert("mutability".into(), json!(a.mutability.as_str()));
    m.insert("returned".into(), json!(a.returned.as_str()));
    m.insert("uniqueness".into(), json!(a.uniqueness.as_str()));
    if a.attr_type == AttrType::Complex {
        let subs: Vec<Value> = a.sub_attributes.iter().map(attribute_json).collect();
        m.insert("subAttributes".into(), Value::Array(subs));
    }
    Value::Object(m)
}

fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// One schema resource, with `meta.location` under `base_url`.
pub fn schema_json(s: &Schema, base_url: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "attributes": s.attributes.iter().map(attribute_json).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{}/Schemas/{}", base(base_url), s.id)},
    })
}

/// One resource type resource.
pub fn resource_type_json(reg: &SchemaRegistry, kind: ResourceKind, base_url: &str) -> Value {
    let exts: Vec<Value> = reg
        .extensions(kind)
        .iter()
        .map(|e| json!({"schema": e.id, "required": false}))
        .collect();
    let mut v = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": kind.endpoint(),
        "description": reg.core(kind).description,
        "schema": kind.core_schema(),
        "meta": {"resourceType": "ResourceType", "location": format!("{}/ResourceTypes/{}", base(base_url), kind.name())},
    });
    if !exts.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        o.insert("schemaExtensions".into(), Value::Array(exts));
    }
    v
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

/// `/Schemas` as a ListResponse.
pub fn schemas_list_json(reg: &SchemaRegistry, base_url: &str) -> Value {
    list(
        reg.all()
            .into_iter()
            .map(|s| schema_json(s, base_url))
            .collect(),
    )
}

/// `/ResourceTypes` as a ListResponse.
pub fn resource_types_list_json(reg: &SchemaRegistry, base_url: &str) -> Value {
    list(
        [ResourceKind::User, ResourceKind::Group]
            .into_iter()
            .map(|k| resource_type_json(reg, k, base_url))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn representations() {
        let reg = SchemaRegistry::new();
        let l = schemas_list_json(&reg, "https://b.example/scim/v2/");
        assert_eq!(l["totalResults"], json!(3));
        let user = &l["Resources"][0];
        assert_eq!(
            user["id"],
            json!("urn:ietf:params:scim:schemas:core:2.0:User")
        );
        assert_eq!(user["meta"]["resourceType"], json!("Schema"));
        assert_eq!(
            user["meta"]["location"],
            json!("https://b.example/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        );
        let pw = user["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["name"] == "password"))
            .cloned();
        assert_eq!(
            pw.map(|p| (p["mutability"].clone(), p["returned"].clone())),
            Some((json!("writeOnly"), json!("never")))
        );
        let rt = resource_types_list_json(&reg, "https://b.example/scim/v2");
        assert_eq!(
            rt["Resources"][0]["schemaExtensions"][0]["schema"],
            json!("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(rt["Resources"][1]["endpoint"], json!("/Groups"));
        assert_eq!(
            rt["Resources"][1]["meta"]["location"],
            json!("https://b.example/scim/v2/ResourceTypes/Group")
        );
    }
}

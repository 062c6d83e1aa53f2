//! SCIM error values (RFC 7644 §3.12) and their JSON body.

use serde_json::{Value, json};

/// URN of the SCIM error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` detail codes of RFC 7644 §3.12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimType {
    /// The filter syntax is invalid or the filter is unsupported.
    InvalidFilter,
    /// The filter yields too many results to process.
    TooMany,
    /// One or more attribute values are already in use or reserved.
    Uniqueness,
    /// The attempted modification is not compatible with the attribute's mutability.
    Mutability,
    /// The request body structure was invalid.
    InvalidSyntax,
    /// The `path` attribute was invalid or malformed.
    InvalidPath,
    /// The `path` did not yield an attribute or value to operate on.
    NoTarget,
    /// A required value was missing or a value was incompatible.
    InvalidValue,
    /// The protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because of sensitive information in the URI.
    Sensitive,
}

impl ScimType {
    /// The wire spelling of this code.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

impl std::fmt::Display for ScimType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error the SCIM front answers with: HTTP status, optional `scimType`, human detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}{}: {detail}", .scim_type.map(|t| format!(" {t}")).unwrap_or_default())]
pub struct ScimError {
    /// HTTP status code.
    pub status: u16,
    /// RFC 7644 §3.12 detail code, when one applies.
    pub scim_type: Option<ScimType>,
    /// Human-readable explanation; never contains secrets.
    pub detail: String,
    /// The URN-qualified attribute (or schema) the request named and no schema
    /// declares, when that is the error: the directory logs it once per provider.
    pub undeclared: Option<String>,
}

impl ScimError {
    /// Builds an error from its parts.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            undeclared: None,
        }
    }

    /// Marks the error as naming an undeclared attribute (see `undeclared`).
    pub fn with_undeclared(mut self, attribute: &str) -> Self {
        self.undeclared = Some(attribute.to_owned());
        self
    }

    fn bad(t: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(t), detail)
    }

    /// 400 invalidFilter.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidFilter, detail)
    }
    /// 400 tooMany.
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::TooMany, detail)
    }
    /// 409 uniqueness.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    /// 400 mutability.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::Mutability, detail)
    }
    /// 400 invalidSyntax.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidSyntax, detail)
    }
    /// 400 invalidPath.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidPath, detail)
    }
    /// 400 noTarget.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::NoTarget, detail)
    }
    /// 400 invalidValue.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail)
    }
    /// 400 invalidVers.
    pub fn invalid_vers(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidVers, detail)
    }
    /// 403 sensitive.
    pub fn sensitive(detail: impl Into<String>) -> Self {
        Self::new(403, Some(ScimType::Sensitive), detail)
    }
    /// 404 without a scimType; Okta requires the detail to be present.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    /// 401 without a scimType.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    /// The RFC 7644 §3.12 error body; `status` is a string as the RFC requires.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        if let Some(obj) = body.as_object_mut() {
            obj.insert("detail".into(), Value::String(self.detail.clone()));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_has_string_status() {
        let cases = [
            (
                ScimError::invalid_filter("bad"),
                json!({"schemas":[ERROR_SCHEMA],"status":"400","scimType":"invalidFilter","detail":"bad"}),
            ),
            (
                ScimError::not_found("no such user"),
                json!({"schemas":[ERROR_SCHEMA],"status":"404","detail":"no such user"}),
            ),
            (
                ScimError::uniqueness("taken"),
                json!({"schemas":[ERROR_SCHEMA],"status":"409","scimType":"uniqueness","detail":"taken"}),
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_json(), want);
        }
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(
            ScimError::no_target("x").to_string(),
            "400 noTarget: x".to_string()
        );
        assert_eq!(ScimError::not_found("y").to_string(), "404: y");
    }
}

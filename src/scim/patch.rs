//! PATCH requests (RFC 7644 §3.5.2): the parsed operations and the member changes
//! returned for groups, whose members are stored outside the JSON document.

use serde_json::Value;

use crate::scim::dialect::{Dialect, Quirk, tolerate};
use crate::scim::error::ScimError;
use crate::scim::filter::Filter;
use crate::scim::json::get_ci;
use crate::scim::path::PatchPath;
use crate::scim::schema::{PATCH_OP_SCHEMA, ResourceKind};

pub use crate::scim::patch_apply::apply_patch;

/// The three PATCH operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// `add`
    Add,
    /// `remove`
    Remove,
    /// `replace`
    Replace,
}

/// One parsed PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// Operation.
    pub op: PatchOpKind,
    /// Target; `None` means the value is a set of attributes (add/replace only).
    pub path: Option<PatchPath>,
    /// Operation value, as sent.
    pub value: Option<Value>,
}

/// One group member as written by a client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberRef {
    /// Member resource id.
    pub value: String,
    /// `User` or `Group`, when sent.
    pub kind: Option<ResourceKind>,
    /// Display name, when sent.
    pub display: Option<String>,
}

/// A change to a group's member set, in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    /// Add these members (already-present ones are kept once).
    Add(Vec<MemberRef>),
    /// Remove the members with these ids.
    Remove(Vec<String>),
    /// Remove the members matching a filter over member elements (`value`, `type`, `display`).
    RemoveWhere(Filter),
    /// Remove every member.
    RemoveAll,
    /// Replace the member set with exactly these.
    ReplaceAll(Vec<MemberRef>),
}

/// Parses and checks a PATCH body: schema URN, `Operations`, op names, paths.
pub fn parse_patch(
    body: &Value,
    dialect: Dialect,
    quirks: &mut Vec<Quirk>,
) -> Result<Vec<PatchOp>, ScimError> {
    if !body.is_object() {
        return Err(ScimError::invalid_syntax(
            "PATCH body must be a JSON object",
        ));
    }
    let has_schema = get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            })
        });
    if !has_schema {
        tolerate(dialect, Quirk::PatchSchemaMissing, quirks, || {
            ScimError::invalid_syntax(format!("PATCH body must list {PATCH_OP_SCHEMA} in schemas"))
        })?;
    }
    let ops = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("PATCH body needs an \"Operations\" array"))?;
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_op(i, op, dialect, quirks))
        .collect()
}

fn parse_op(
    i: usize,
    op: &Value,
    dialect: Dialect,
    quirks: &mut Vec<Quirk>,
) -> Result<PatchOp, ScimError> {
    if !op.is_object() {
        return Err(ScimError::invalid_syntax(format!(
            "Operations[{i}] must be an object"
        )));
    }
    let name = get_ci(op, "op").and_then(Value::as_str).ok_or_else(|| {
        ScimError::invalid_syntax(format!("Operations[{i}] needs an \"op\" string"))
    })?;
    let kind = match name.to_ascii_lowercase().as_str() {
        "add" => PatchOpKind::Add,
        "remove" => PatchOpKind::Remove,
        "replace" => PatchOpKind::Replace,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}]: unknown op {name:?}; expected add, remove or replace"
            )));
        }
    };
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        tolerate(dialect, Quirk::CapitalisedOp, quirks, || {
            ScimError::invalid_syntax(format!("Operations[{i}]: op must be lower-case"))
        })?;
    }
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(PatchPath::parse(s)?),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "Operations[{i}]: path must be a string"
            )));
        }
    };
    let value = get_ci(op, "value").cloned();
    match (kind, &path, &value) {
        (PatchOpKind::Remove, None, _) => Err(ScimError::no_target(format!(
            "Operations[{i}]: remove needs a path"
        ))),
        (PatchOpKind::Add | PatchOpKind::Replace, _, None) => Err(ScimError::invalid_syntax(
            format!("Operations[{i}]: {name} needs a value"),
        )),
        (PatchOpKind::Add | PatchOpKind::Replace, None, Some(v)) if !v.is_object() => {
            Err(ScimError::invalid_syntax(format!(
                "Operations[{i}]: without a path, the value must be an object of attributes"
            )))
        }
        _ => Ok(PatchOp {
            op: kind,
            path,
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    }

    #[test]
    fn parses_and_rejects() {
        let cases = [
            (
                body(json!([{"op": "replace", "path": "active", "value": false}])),
                Dialect::Strict,
                Ok(vec![]),
            ),
            (
                body(json!([{"op": "Replace", "path": "active", "value": "False"}])),
                Dialect::Strict,
                Ok(vec![Quirk::CapitalisedOp]),
            ),
            (
                body(json!([{"op": "Add", "path": "members", "value": [{"value": "1"}]}])),
                Dialect::Entra,
                Ok(vec![Quirk::CapitalisedOp]),
            ),
            (
                json!({"Operations": [{"op": "add", "value": {"a": 1}}]}),
                Dialect::Okta,
                Ok(vec![Quirk::PatchSchemaMissing]),
            ),
            (
                json!({"Operations": []}),
                Dialect::Strict,
                Err("invalidSyntax"),
            ),
            (json!([]), Dialect::Entra, Err("invalidSyntax")),
            (
                json!({"schemas": [PATCH_OP_SCHEMA]}),
                Dialect::Entra,
                Err("invalidSyntax"),
            ),
            (
                body(json!([{"op": "move", "path": "a"}])),
                Dialect::Entra,
                Err("invalidSyntax"),
            ),
            (
                body(json!([{"op": "remove"}])),
                Dialect::Entra,
                Err("noTarget"),
            ),
            (
                body(json!([{"op": "add", "path": "a"}])),
                Dialect::Entra,
                Err("invalidSyntax"),
            ),
            (
                body(json!([{"op": "add", "value": [1]}])),
                Dialect::Entra,
                Err("invalidSyntax"),
            ),
            (
                body(json!([{"op": "add", "path": "emails[type eq]", "value": 1}])),
                Dialect::Entra,
                Err("invalidPath"),
            ),
            (
                body(json!([{"op": "add", "path": 3, "value": 1}])),
                Dialect::Entra,
                Err("invalidPath"),
            ),
            (body(json!(["x"])), Dialect::Entra, Err("invalidSyntax")),
        ];
        for (b, dialect, want) in cases {
            let mut q = Vec::new();
            let got = parse_patch(&b, dialect, &mut q);
            match want {
                Ok(quirks) => {
                    assert!(got.is_ok(), "{b}: {got:?}");
                    assert_eq!(q, quirks, "{b}");
                }
                Err(t) => assert_eq!(
                    got.err().and_then(|e| e.scim_type).map(|t| t.as_str()),
                    Some(t),
                    "{b}"
                ),
            }
        }
    }
}

//! Group `members` operations, turned into [`MemberOp`]s instead of document edits
//! because members are stored relationally (groups can have 100,000 of them).

use serde_json::Value;

use crate::scim::dialect::{Dialect, Quirk, tolerate};
use crate::scim::error::ScimError;
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::json::get_ci;
use crate::scim::patch::{MemberOp, MemberRef, PatchOpKind};
use crate::scim::path::PatchPath;
use crate::scim::schema::ResourceKind;

/// Translates one operation on `members` (with or without path) into member changes.
pub(crate) fn member_op(
    op: PatchOpKind,
    pp: &PatchPath,
    value: Option<&Value>,
    dialect: Dialect,
    quirks: &mut Vec<Quirk>,
) -> Result<Option<MemberOp>, ScimError> {
    if pp.attr.sub.is_some() || pp.sub.is_some() {
        return Err(ScimError::invalid_path(format!(
            "{pp}: member sub-attributes cannot be patched; add or remove whole members"
        )));
    }
    if let Some(filter) = &pp.filter {
        if op != PatchOpKind::Remove {
            return Err(ScimError::invalid_path(format!(
                "{pp}: a member filter is only supported with remove"
            )));
        }
        return Ok(Some(match member_ids(filter) {
            Some(ids) => MemberOp::Remove(ids),
            None => MemberOp::RemoveWhere(filter.clone()),
        }));
    }
    let value = value.filter(|v| !v.is_null());
    Ok(match (op, value) {
        (PatchOpKind::Add, None) => None,
        (PatchOpKind::Add, Some(v)) => Some(MemberOp::Add(member_refs(v, dialect, quirks)?)),
        (PatchOpKind::Replace, None) => Some(MemberOp::ReplaceAll(Vec::new())),
        (PatchOpKind::Replace, Some(v)) => {
            Some(MemberOp::ReplaceAll(member_refs(v, dialect, quirks)?))
        }
        (PatchOpKind::Remove, None) => Some(MemberOp::RemoveAll),
        (PatchOpKind::Remove, Some(v)) => {
            // Entra's legacy form: remove exactly the listed members, never all of them.
            tolerate(dialect, Quirk::RemoveWithValueList, quirks, || {
                ScimError::invalid_syntax("remove takes no value")
            })?;
            let refs = member_refs(v, dialect, quirks)?;
            Some(MemberOp::Remove(
                refs.into_iter().map(|r| r.value).collect(),
            ))
        }
    })
}

/// `value eq "x"`, or an or-list of those, as plain ids.
fn member_ids(filter: &Filter) -> Option<Vec<String>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(id),
        } if path.schema.is_none()
            && path.sub.is_none()
            && path.name.eq_ignore_ascii_case("value") =>
        {
            Some(vec![id.clone()])
        }
        Filter::Or(l, r) => {
            let mut ids = member_ids(l)?;
            ids.extend(member_ids(r)?);
            Some(ids)
        }
        _ => None,
    }
}

/// Parses a member list (or a single member) as sent in `value`.
pub fn member_refs(
    v: &Value,
    dialect: Dialect,
    quirks: &mut Vec<Quirk>,
) -> Result<Vec<MemberRef>, ScimError> {
    let items = match v {
        Value::Array(a) => a.iter().collect::<Vec<_>>(),
        single => {
            tolerate(dialect, Quirk::SingleValueWrapped, quirks, || {
                ScimError::invalid_value("members must be an array")
            })?;
            vec![single]
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let r = match item {
            Value::Object(_) => {
                let value = get_ci(item, "value")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ScimError::invalid_value("each member needs a non-empty \"value\"")
                    })?;
                let kind = match get_ci(item, "type") {
                    None | Some(Value::Null) => None,
                    Some(t) => match t.as_str().and_then(ResourceKind::from_member_type) {
                        Some(kind) => Some(kind),
                        None => {
                            return Err(ScimError::invalid_value(format!(
                                "member type must be \"User\" or \"Group\", got {t}"
                            )));
                        }
                    },
                };
                let display = get_ci(item, "display")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                MemberRef {
                    value: value.to_string(),
                    kind,
                    display,
                }
            }
            // No dialect tolerates a bare id: Entra and Okta send members as objects
            // (`{"value": id}`), so a bare string comes from a client that means
            // something else (a name, a path), and stored it reaches every target.
            Value::String(s) => {
                return Err(ScimError::invalid_value(format!(
                    "member {s:?} is a bare string; each member must be an object with \"value\" (the member's id), e.g. {{\"value\": \"2819c223-…\"}}"
                )));
            }
            _ => {
                return Err(ScimError::invalid_value(
                    "each member must be an object with \"value\"",
                ));
            }
        };
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn member_types_are_user_or_group_in_any_case_and_nothing_else() {
        let refs = member_refs(
            &json!([{"value": "a", "type": "user"}, {"value": "b", "type": "GROUP"}, {"value": "c"}]),
            Dialect::Strict,
            &mut Vec::new(),
        )
        .unwrap();
        let kinds: Vec<_> = refs.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [Some(ResourceKind::User), Some(ResourceKind::Group), None]
        );
        for bad in [json!("Users"), json!("Device"), json!(7)] {
            let err = member_refs(
                &json!([{"value": "a", "type": bad}]),
                Dialect::Strict,
                &mut Vec::new(),
            )
            .unwrap_err();
            assert_eq!(err.status, 400);
            assert_eq!(
                err.detail,
                format!("member type must be \"User\" or \"Group\", got {bad}")
            );
        }
    }
}

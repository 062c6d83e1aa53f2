//! `/Bulk` (RFC 7644 §3.7): operations run one by one through the same code as
//! single requests, with `bulkId` references resolved as their targets are created.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{Ctx, Directory};
use crate::scim::{Projection, ResourceKind, ScimError};

use crate::scim::schema::{
    BULK_REQUEST_SCHEMA as BULK_REQUEST, BULK_RESPONSE_SCHEMA as BULK_RESPONSE,
};

/// Limits advertised in `/ServiceProviderConfig` and enforced.
#[derive(Debug, Clone)]
pub struct BulkLimits {
    /// `maxOperations`.
    pub max_operations: usize,
    /// `maxPayloadSize` in bytes.
    pub max_payload_bytes: usize,
}

/// Status, location, version and body of a successful operation.
type OpOutcome = (u16, Option<String>, Option<i64>, Option<Value>);

struct Op {
    index: usize,
    method: String,
    bulk_id: Option<String>,
    version: Option<String>,
    path: String,
    data: Option<Value>,
}

impl Directory {
    /// Runs a BulkRequest and returns the BulkResponse.
    pub async fn bulk(&self, ctx: &mut Ctx, body: &Value) -> Result<Value, ScimError> {
        let Value::Object(o) = body else {
            return Err(ScimError::invalid_syntax(
                "a BulkRequest must be a JSON object",
            ));
        };
        let schemas_ok = o
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(BULK_REQUEST)));
        if !schemas_ok {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must contain {BULK_REQUEST}"
            )));
        }
        let fail_on_errors =
            match o.get("failOnErrors") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                    ScimError::invalid_value("failOnErrors must be an integer ≥ 1")
                })? as usize),
            };
        let ops = o
            .get("Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| ScimError::invalid_syntax("Operations must be an array"))?;
        if ops.len() > self.limits.bulk.max_operations {
            return Err(ScimError::new(
                413,
                None,
                format!(
                    "{} operations exceed maxOperations {}",
                    ops.len(),
                    self.limits.bulk.max_operations
                ),
            ));
        }
        let mut pending = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            pending.push(parse_op(index, op)?);
        }
        let mut results: Vec<Option<Value>> = vec![None; pending.len()];
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut errors = 0usize;
        // Operations run in request order, except that one referring to a bulkId not
        // yet created waits for it; what never resolves (a cycle) fails with 409.
        'passes: loop {
            let mut progressed = false;
            let mut waiting = Vec::new();
            for op in pending {
                if fail_on_errors.is_some_and(|n| errors >= n) {
                    break 'passes;
                }
                let mut refs = Vec::new();
                collect_refs(op.data.as_ref(), &op.path, &mut refs);
                if refs.iter().any(|r| !resolved.contains_key(r)) {
                    waiting.push(op);
                    continue;
                }
                progressed = true;
                let index = op.index;
                let result = self.run_op(ctx, &op, &resolved).await;
                if let Some((bulk_id, id)) = result.1 {
                    resolved.insert(bulk_id, id);
                }
                if result
                    .0
                    .get("status")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.starts_with('2'))
                {
                    errors += 1;
                }
                results[index] = Some(result.0);
            }
            pending = waiting;
            if pending.is_empty() {
                break;
            }
            if !progressed {
                for op in pending.drain(..) {
                    results[op.index] = Some(op_error(
                        &op,
                        &ScimError::new(
                            409,
                            Some(crate::scim::ScimType::InvalidValue),
                            "bulkId reference cannot be resolved (unknown or circular)",
                        ),
                    ));
                }
                break;
            }
        }
        Ok(json!({
            "schemas": [BULK_RESPONSE],
            "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
        }))
    }

    async fn run_op(
        &self,
        ctx: &mut Ctx,
        op: &Op,
        resolved: &HashMap<String, String>,
    ) -> (Value, Option<(String, String)>) {
        let path = substitute_str(&op.path, resolved);
        let data = op.data.clone().map(|d| substitute(d, resolved));
        let mut segs = path.trim_matches('/').split('/');
        let kind = match segs.next() {
            Some("Users") => ResourceKind::User,
            Some("Groups") => ResourceKind::Group,
            _ => {
                return (
                    op_error(
                        op,
                        &ScimError::invalid_path(format!("bad bulk path {path:?}")),
                    ),
                    None,
                );
            }
        };
        let id = segs.next().map(str::to_owned);
        let proj = Projection::default();
        let method = op.method.to_ascii_uppercase();
        let data_or_err = || {
            data.clone()
                .ok_or_else(|| ScimError::invalid_syntax(format!("{method} needs data")))
        };
        let outcome: Result<OpOutcome, ScimError> = async {
            match (method.as_str(), id.as_deref()) {
                ("POST", None) => {
                    let w = self.create(ctx, kind, data_or_err()?, &proj).await?;
                    Ok((201, Some(w.location), Some(w.version), w.body))
                }
                ("PUT", Some(id)) => {
                    let w = self
                        .replace(ctx, kind, id, data_or_err()?, op.version.as_deref(), &proj)
                        .await?;
                    Ok((200, Some(w.location), Some(w.version), None))
                }
                ("PATCH", Some(id)) => {
                    let w = self
                        .patch(ctx, kind, id, &data_or_err()?, op.version.as_deref(), &proj)
                        .await?;
                    Ok((200, Some(w.location), Some(w.version), None))
                }
                ("DELETE", Some(id)) => {
                    self.delete(ctx, kind, id, op.version.as_deref()).await?;
                    Ok((204, None, None, None))
                }
                _ => Err(ScimError::invalid_syntax(format!(
                    "{method} {path} is not a valid bulk operation"
                ))),
            }
        }
        .await;
        match outcome {
            Ok((status, location, version, body)) => {
                let mut r = Map::new();
                r.insert("method".into(), json!(op.method));
                if let Some(b) = &op.bulk_id {
                    r.insert("bulkId".into(), json!(b));
                }
                if let Some(v) = version {
                    r.insert("version".into(), json!(super::render::etag(v)));
                }
                if let Some(l) = &location {
                    r.insert("location".into(), json!(l));
                }
                r.insert("status".into(), json!(status.to_string()));
                let created = match (&op.bulk_id, &body) {
                    (Some(b), Some(body)) => body
                        .get("id")
                        .and_then(Value::as_str)
                        .map(|id| (b.clone(), id.to_owned())),
                    _ => None,
                };
                (Value::Object(r), created)
            }
            Err(e) => (op_error(op, &e), None),
        }
    }
}

fn parse_op(index: usize, v: &Value) -> Result<Op, ScimError> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let method = s("method").ok_or_else(|| {
        ScimError::invalid_syntax(format!("Operations[{index}].method is missing"))
    })?;
    let path = s("path")
        .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{index}].path is missing")))?;
    let bulk_id = s("bulkId");
    if method.eq_ignore_ascii_case("POST") && bulk_id.is_none() {
        return Err(ScimError::invalid_syntax(format!(
            "Operations[{index}]: POST requires a bulkId"
        )));
    }
    Ok(Op {
        index,
        method,
        bulk_id,
        version: s("version"),
        path,
        data: v.get("data").cloned(),
    })
}

fn op_error(op: &Op, e: &ScimError) -> Value {
    let mut r = Map::new();
    r.insert("method".into(), json!(op.method));
    if let Some(b) = &op.bulk_id {
        r.insert("bulkId".into(), json!(b));
    }
    r.insert("status".into(), json!(e.status.to_string()));
    r.insert("response".into(), e.to_json());
    Value::Object(r)
}

fn collect_refs(data: Option<&Value>, path: &str, out: &mut Vec<String>) {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                if let Some(id) = s.strip_prefix("bulkId:") {
                    out.push(id.to_owned());
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    if let Some(d) = data {
        walk(d, out);
    }
    for seg in path.split('/') {
        if let Some(id) = seg.strip_prefix("bulkId:") {
            out.push(id.to_owned());
        }
    }
}

fn substitute_str(s: &str, resolved: &HashMap<String, String>) -> String {
    s.split('/')
        .map(|seg| {
            seg.strip_prefix("bulkId:")
                .and_then(|b| resolved.get(b))
                .map_or(seg, String::as_str)
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn substitute(v: Value, resolved: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix("bulkId:").and_then(|b| resolved.get(b)) {
            Some(id) => Value::String(id.clone()),
            None => Value::String(s),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(|x| substitute(x, resolved)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (k, substitute(x, resolved)))
                .collect(),
        ),
        other => other,
    }
}

//! Evaluating a template against named JSON roots.

use serde_json::Value;

use crate::scim::json::get_ci;
use crate::scim::schema::{GROUP_SCHEMA, USER_SCHEMA};

use super::error::EvalError;
use super::{Expr, Part, Path, Step, Template};

/// The roots a template may read, by name (`user`, `group`, `workitem`).
#[derive(Debug, Default, Clone)]
pub struct Context<'a> {
    roots: Vec<(&'a str, &'a Value)>,
}

impl<'a> Context<'a> {
    pub fn new() -> Self {
        Context::default()
    }

    /// Adds a root; a later root of the same name shadows an earlier one.
    pub fn with(mut self, name: &'a str, value: &'a Value) -> Self {
        self.roots.push((name, value));
        self
    }

    fn root(&self, name: &str) -> Option<&'a Value> {
        self.roots
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

impl Template {
    /// Renders the template; fails on the first expression with no value.
    ///
    /// An empty string counts as no value, so a template never yields text with a hole
    /// in it (a search for `"12345."` instead of a clear "reference is missing").
    pub fn render(&self, ctx: &Context<'_>) -> Result<String, EvalError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Expr(e) => out.push_str(&e.evaluate(ctx)?),
            }
        }
        Ok(out)
    }
}

impl Expr {
    /// The expression's value after its transforms.
    pub fn evaluate(&self, ctx: &Context<'_>) -> Result<String, EvalError> {
        let mut value = self.path.lookup(ctx)?;
        for t in &self.transforms {
            value = t.apply(value);
        }
        match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(EvalError::Missing {
                path: self.path.to_string(),
            }),
        }
    }
}

impl Path {
    /// The value at the path as text, `None` when absent or null.
    pub fn lookup(&self, ctx: &Context<'_>) -> Result<Option<String>, EvalError> {
        let Some(root) = ctx.root(&self.root) else {
            return Ok(None);
        };
        let mut current: Vec<&Value> = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in current {
                match step {
                    // Core attributes live at the top of a resource, so a core schema
                    // step (`[user.urn:…:core:2.0:User:roleId]`, as vendor guides write
                    // attribute names) stays where it is.
                    Step::Schema(urn) if is_core_schema(urn) => next.push(v),
                    Step::Schema(urn) => next.extend(get_ci(v, urn)),
                    Step::Attr { name, filter } => {
                        let Some(found) = get_ci(v, name) else {
                            continue;
                        };
                        let elements: Vec<&Value> = match found {
                            Value::Array(items) => primary_first(items),
                            single => vec![single],
                        };
                        next.extend(elements.into_iter().filter(|e| {
                            !e.is_null()
                                && filter.as_ref().is_none_or(|f| f.matches_element(e, None))
                        }));
                    }
                }
            }
            current = next;
        }
        match current.first() {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(Value::Object(_)) => Err(self.not_scalar("an object")),
            Some(Value::Array(_)) => Err(self.not_scalar("a list")),
        }
    }

    fn not_scalar(&self, found: &'static str) -> EvalError {
        EvalError::NotScalar {
            path: self.to_string(),
            found,
        }
    }
}

/// A multi-valued attribute's elements with the `primary` one first (RFC 7643 §2.4).
fn primary_first(items: &[Value]) -> Vec<&Value> {
    let is_primary = |v: &Value| get_ci(v, "primary").and_then(Value::as_bool) == Some(true);
    let mut out: Vec<&Value> = items.iter().filter(|v| is_primary(v)).collect();
    out.extend(items.iter().filter(|v| !is_primary(v)));
    out
}

fn is_core_schema(urn: &str) -> bool {
    [USER_SCHEMA, GROUP_SCHEMA]
        .iter()
        .any(|core| core.eq_ignore_ascii_case(urn))
}

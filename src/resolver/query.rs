//! A repository's search rendered for one workitem, and which results it accepts.

use serde_json::Value;

use crate::config::WorkspaceSearch;
use crate::template::{Context, EvalError, Template};

/// The search to send: a title, or profile fields with their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Title(String),
    Fields(Vec<(String, String)>),
}

impl Query {
    /// Renders `search` for `workitem`; a missing value fails here, so no search ever
    /// runs with an empty value.
    pub fn render(search: &WorkspaceSearch, workitem: &Value) -> Result<Query, EvalError> {
        let ctx = Context::new().with("workitem", workitem);
        match search {
            WorkspaceSearch::Title(t) => Ok(Query::Title(value(t, &ctx)?)),
            WorkspaceSearch::Fields(fields) => fields
                .iter()
                .map(|a| Ok((a.key.clone(), value(&a.template, &ctx)?)))
                .collect::<Result<_, EvalError>>()
                .map(Query::Fields),
        }
    }

    /// `"title"` or `"fields"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Query::Title(_) => "title",
            Query::Fields(_) => "fields",
        }
    }

    /// The search's query parameters.
    pub fn params(&self) -> Vec<(&str, String)> {
        match self {
            Query::Title(t) => vec![("name", t.clone())],
            Query::Fields(f) => f.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
        }
    }

    /// Whether a search result really matches: iManage's `name` search is by words and
    /// its exact fields ignore case, so titles and exact fields are checked here too.
    pub fn accepts(&self, workspace: &Value) -> bool {
        match self {
            Query::Title(t) => same_text(&workspace["name"], t),
            Query::Fields(fields) => fields.iter().all(|(k, v)| match k.as_str() {
                "name" => same_text(&workspace["name"], v),
                k if is_exact_field(k) => match &workspace[k] {
                    Value::String(_) | Value::Number(_) => same_text(&workspace[k], v),
                    // Not returned in the result: the server's filter stands.
                    _ => true,
                },
                // Wildcard, range and free-text fields: the server's filter stands.
                _ => true,
            }),
        }
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Query::Title(t) => write!(f, "title {t:?}"),
            Query::Fields(fields) => {
                let shown: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                f.write_str(&shown.join(", "))
            }
        }
    }
}

/// A rendered search value, trimmed; blank counts as missing, since iManage would
/// refuse it or, worse, match everything.
fn value(t: &Template, ctx: &Context<'_>) -> Result<String, EvalError> {
    let v = t.render(ctx)?.trim().to_owned();
    if v.is_empty() {
        let path = t
            .exprs()
            .next()
            .map_or_else(|| t.source().to_owned(), |e| e.path.to_string());
        return Err(EvalError::Missing { path });
    }
    Ok(v)
}

/// iManage matches `custom1..12`, `custom29` and `custom30` exactly, ignoring case.
fn is_exact_field(key: &str) -> bool {
    key.strip_prefix("custom")
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=12).contains(&n) || n == 29 || n == 30)
}

fn same_text(found: &Value, want: &str) -> bool {
    let found = match found {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return false,
    };
    found.trim().to_lowercase() == want.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::is_search_field;
    use crate::template::parse_assignments;

    #[test]
    fn titles_are_matched_whole_not_by_words() {
        let q = Query::Title("Clio Operate Document Templates".into());
        assert!(q.accepts(&json!({"name": "  clio operate document templates "})));
        assert!(!q.accepts(&json!({"name": "Clio Operate Document Templates (old)"})));
        assert!(!q.accepts(&json!({"name": "Document Templates"})));
        assert!(!q.accepts(&json!({"id": "ACTIVE!1"})));
    }

    #[test]
    fn advanced_search_renders_and_checks_exact_fields() {
        let fields = parse_assignments(
            "custom1=[workitem.client.reference], custom2=[workitem.reference]",
            is_search_field,
            "",
            &["workitem"],
        )
        .unwrap();
        let search = WorkspaceSearch::Fields(fields);
        let wi = json!({"client": {"reference": 12345}, "reference": " 12345.00001 "});
        let q = Query::render(&search, &wi).unwrap();
        assert_eq!(
            q,
            Query::Fields(vec![
                ("custom1".into(), "12345".into()),
                ("custom2".into(), "12345.00001".into())
            ])
        );
        assert_eq!(q.to_string(), "custom1=\"12345\", custom2=\"12345.00001\"");
        assert!(q.accepts(&json!({"custom1": "12345", "custom2": "12345.00001"})));
        assert!(!q.accepts(&json!({"custom1": "12345", "custom2": "12345.00002"})));
        assert!(q.accepts(&json!({"name": "no fields returned"})));
        let missing = Query::render(&search, &json!({"reference": "1"})).unwrap_err();
        assert_eq!(missing.path(), "workitem.client.reference");
        let blank = json!({"client": {"reference": " \t"}, "reference": "1"});
        let missing = Query::render(&search, &blank).unwrap_err();
        assert_eq!(missing.path(), "workitem.client.reference");
    }

    #[test]
    fn a_title_template_renders_from_the_workitem() {
        let search = WorkspaceSearch::Title(Template::parse("[workitem.title]").unwrap());
        let q = Query::render(
            &search,
            &json!({"title": "CASE101: John Smith vs. Jane Doe"}),
        )
        .unwrap();
        assert_eq!(
            q.params(),
            [("name", "CASE101: John Smith vs. Jane Doe".to_string())]
        );
    }
}

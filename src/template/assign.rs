//! Lists of `key=template` pairs, such as iManage's advanced search
//! `custom1=[workitem.client.reference], custom2=[workitem.reference]`.

use super::error::TemplateError;
use super::split::split_top_level;
use super::{Part, Template};

/// One `key=template` pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub key: String,
    pub template: Template,
}

/// Whether every comma-separated piece of `text` looks like `key=…` with a key that
/// `accepts`; used to tell an advanced search from a title that happens to hold a comma.
pub fn looks_like_assignments(text: &str, accepts: impl Fn(&str) -> bool) -> bool {
    split_top_level(text, ',').iter().all(|(_, piece)| {
        piece
            .split_once('=')
            .is_some_and(|(key, _)| accepts(key.trim()) && !key.contains('['))
    })
}

/// Parses `key=template, key=template`; `accepts` says which keys are allowed and
/// `keys_hint` lists them for the error; templates may read only `roots`. Positions in
/// errors are within `text`.
pub fn parse_assignments(
    text: &str,
    accepts: impl Fn(&str) -> bool,
    keys_hint: &str,
    roots: &[&str],
) -> Result<Vec<Assignment>, TemplateError> {
    let mut out: Vec<Assignment> = Vec::new();
    for (offset, piece) in split_top_level(text, ',') {
        let lead = piece.len() - piece.trim_start().len();
        let Some((key, value)) = piece.split_once('=') else {
            return Err(TemplateError::new(
                text,
                offset + lead,
                format!(
                    "expected `field=[path]`, e.g. `custom1=[workitem.client.reference]`; fields are {keys_hint}"
                ),
            ));
        };
        let key = key.trim();
        if !accepts(key) {
            return Err(TemplateError::new(
                text,
                offset + lead,
                format!("unknown field `{key}`; fields are {keys_hint}"),
            ));
        }
        if out.iter().any(|a| a.key.eq_ignore_ascii_case(key)) {
            return Err(TemplateError::new(
                text,
                offset + lead,
                format!("field `{key}` is given twice"),
            ));
        }
        let value_offset = offset + piece.len() - value.len();
        let inner = value.len() - value.trim_start().len();
        let template = Template::parse(value.trim())
            .and_then(|t| t.check_roots(roots).map(|()| t))
            .map_err(|e| TemplateError::new(text, value_offset + inner + e.offset, e.message))?;
        if template.parts().is_empty() {
            return Err(TemplateError::new(
                text,
                value_offset,
                format!("field `{key}` has no value"),
            ));
        }
        out.push(Assignment {
            key: key.to_ascii_lowercase(),
            template: trim_literals(template),
        });
    }
    Ok(out)
}

/// The spaces around a value are layout, not part of it.
fn trim_literals(mut t: Template) -> Template {
    if let Some(Part::Literal(s)) = t.parts.first_mut() {
        *s = s.trim_start().to_string();
    }
    if let Some(Part::Literal(s)) = t.parts.last_mut() {
        *s = s.trim_end().to_string();
    }
    t.parts
        .retain(|p| !matches!(p, Part::Literal(s) if s.is_empty()));
    t
}

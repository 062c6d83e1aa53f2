//! Parse errors (with a caret under the position) and evaluation errors.

use std::fmt;

/// A template that cannot be parsed, or that reads something it may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The template text.
    pub source: String,
    /// Byte offset of the problem within `source`.
    pub offset: usize,
    pub message: String,
}

impl TemplateError {
    pub(crate) fn new(source: &str, offset: usize, message: impl Into<String>) -> Self {
        TemplateError {
            source: source.to_string(),
            offset: offset.min(source.len()),
            message: message.into(),
        }
    }

    /// 1-based column of the problem, counted in characters.
    pub fn column(&self) -> usize {
        let before = self.source.get(..self.offset).unwrap_or(&self.source);
        before.chars().count() + 1
    }

    /// The template on one line and a caret under the problem on the next.
    ///
    /// Control characters are shown as spaces so the caret stays under the right column.
    pub fn snippet(&self) -> String {
        let line: String = self
            .source
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("{line}\n{}^", " ".repeat(self.column() - 1))
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (column {})\n{}",
            self.message,
            self.column(),
            self.snippet()
        )
    }
}

impl std::error::Error for TemplateError {}

/// Why a template could not produce text for a given input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// The path has no value, or only an empty one, and no `default` covers it.
    Missing { path: String },
    /// The path lands on an object or list where one value is needed.
    NotScalar { path: String, found: &'static str },
}

impl EvalError {
    /// The path the error is about, as written in the template.
    pub fn path(&self) -> &str {
        match self {
            EvalError::Missing { path } | EvalError::NotScalar { path, .. } => path,
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Missing { path } => write!(f, "`{path}` has no value"),
            EvalError::NotScalar { path, found } => {
                write!(f, "`{path}` is {found}, not a single value")
            }
        }
    }
}

impl std::error::Error for EvalError {}

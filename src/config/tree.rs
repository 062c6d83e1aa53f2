//! An owned, position-tagged copy of the TOML document.
//!
//! The parser's tree borrows the text and carries byte spans, while
//! environment overrides splice in values that have no span at all; both are
//! turned into this one shape so the reader can report either origin the same
//! way.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::reader::{Ctx, join};
use super::secret::Environment;

/// Where a key or value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Loc {
    File { line: usize, column: usize },
    Env(String),
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub val: Val,
    pub loc: Loc,
    /// The text of an environment variable, kept because `"1.0"` or `true`
    /// there may be meant as a string even though it parses as TOML.
    pub raw: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) enum Val {
    Str(String),
    Int(i128),
    /// Rates take fractions; no setting takes a date-time, so only its type is kept.
    Float(f64),
    Bool(bool),
    Datetime,
    Array(Vec<Node>),
    Table(Vec<Entry>),
    /// Already reported (syntax error, out-of-range number): readers stay
    /// silent so one mistake gives one message.
    Invalid,
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub key: String,
    pub key_loc: Loc,
    pub node: Node,
}

impl Val {
    pub fn describe(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Int(_) => "an integer",
            Val::Float(_) => "a float",
            Val::Bool(_) => "a boolean",
            Val::Datetime => "a date-time",
            Val::Array(_) => "an array",
            Val::Table(_) => "a table",
            Val::Invalid => "an invalid value",
        }
    }
}

/// Byte offset → line and column, both 1-based, columns counted in characters.
pub(super) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    pub fn loc(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&start| start <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Loc::File { line, column }
    }

    pub fn snippet(&self, span: Range<usize>) -> &'a str {
        self.text.get(span).unwrap_or("")
    }
}

/// The toml parser already refuses deeper nesting; this only keeps our own
/// recursion bounded whatever the parser lets through.
const MAX_DEPTH: usize = 64;

pub(super) fn convert_document(
    doc: &Spanned<DeTable<'_>>,
    index: &LineIndex,
    ctx: &mut Ctx,
) -> Node {
    let locate = |span: Range<usize>| index.loc(span.start);
    let mut conv = Converter {
        locate: &locate,
        index: Some(index),
        ctx,
    };
    let entries = conv.table(doc.get_ref(), "", 0);
    Node {
        val: Val::Table(entries),
        loc: index.loc(0),
        raw: None,
    }
}

struct Converter<'c, 'x> {
    locate: &'c dyn Fn(Range<usize>) -> Loc,
    /// Present for file input: lets syntax errors be tied to the key whose
    /// value they sit in.
    index: Option<&'c LineIndex<'c>>,
    ctx: &'x mut Ctx,
}

impl Converter<'_, '_> {
    fn table(&mut self, table: &DeTable<'_>, path: &str, depth: usize) -> Vec<Entry> {
        table
            .iter()
            .map(|(key, value)| {
                let key_path = join(path, key.get_ref());
                // A `[header]` table's span encloses its own key; only values
                // written after `key =` can hold the syntax error of a key.
                let (key_span, value_span) = (key.span(), value.span());
                let inline =
                    !(value_span.start <= key_span.start && key_span.start < value_span.end);
                Entry {
                    key: key.get_ref().to_string(),
                    key_loc: (self.locate)(key_span),
                    node: self.value(value, &key_path, depth + 1, inline),
                }
            })
            .collect()
    }

    fn value(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        path: &str,
        depth: usize,
        inline: bool,
    ) -> Node {
        let span = value.span();
        let loc = (self.locate)(span.clone());
        let is_scalar = !matches!(value.get_ref(), DeValue::Array(_) | DeValue::Table(_));
        if inline && let Some(index) = self.index {
            let quoted = index.snippet(span.clone()).starts_with(['"', '\'']);
            self.ctx
                .attach_syntax_errors(span.clone(), path, is_scalar && !quoted);
        }
        let val = match value.get_ref() {
            DeValue::String(s) => Val::Str(s.to_string()),
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Val::Int(n),
                Err(_) => {
                    self.ctx
                        .error(&loc, path, format!("integer {i} is out of range"));
                    Val::Invalid
                }
            },
            DeValue::Float(f) => f
                .as_str()
                .replace('_', "")
                .parse()
                .map_or(Val::Invalid, Val::Float),
            DeValue::Boolean(b) => Val::Bool(*b),
            DeValue::Datetime(_) => Val::Datetime,
            DeValue::Array(_) | DeValue::Table(_) if depth > MAX_DEPTH => {
                self.ctx.error(&loc, path, "nested too deeply");
                Val::Invalid
            }
            DeValue::Array(items) => Val::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value(item, &format!("{path}[{i}]"), depth + 1, inline))
                    .collect(),
            ),
            DeValue::Table(table) => Val::Table(self.table(table, path, depth)),
        };
        Node {
            val,
            loc,
            raw: None,
        }
    }
}

/// Prefix of override variables; the double underscore keeps it apart from
/// ordinary variables such as a `SCIM_BRIDGE_CONFIG` the CLI may read.
pub(super) const ENV_PREFIX: &str = "SCIM_BRIDGE__";

/// Splices `SCIM_BRIDGE__SECTION__KEY=value` variables into the tree.
///
/// Values are read as TOML when they parse (numbers, booleans, inline tables
/// such as `{ file = "/etc/x" }`) and as plain strings otherwise. Entries of
/// arrays of tables (`[[providers]]`) cannot be overridden: an index syntax in
/// variable names would be fragile, and those entries are structure rather
/// than deployment settings.
pub(super) fn apply_env_overrides(root: &mut Node, env: &Environment, ctx: &mut Ctx) {
    for (name, value) in &env.vars {
        let Some(rest) = name
            .get(..ENV_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
            .and_then(|_| name.get(ENV_PREFIX.len()..))
        else {
            continue;
        };
        let loc = Loc::Env(name.clone());
        let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if segments.iter().any(String::is_empty) {
            ctx.error(
                &loc,
                "",
                "expected a name like SCIM_BRIDGE__SECTION__KEY, with parts separated by exactly two underscores",
            );
            continue;
        }
        let path = segments.iter().fold(String::new(), |p, s| join(&p, s));
        let node = env_value(value, &loc, &path, ctx);
        set_path(root, &segments, node, &loc, ctx);
    }
}

fn env_value(value: &str, loc: &Loc, path: &str, ctx: &mut Ctx) -> Node {
    match DeValue::parse(value) {
        Ok(parsed) => {
            let locate = |_: Range<usize>| loc.clone();
            let mut conv = Converter {
                locate: &locate,
                index: None,
                ctx,
            };
            let mut node = conv.value(&parsed, path, 0, false);
            if !matches!(node.val, Val::Table(_) | Val::Array(_)) {
                node.raw = Some(value.to_owned());
            }
            node
        }
        Err(_) => Node {
            val: Val::Str(value.to_owned()),
            loc: loc.clone(),
            raw: Some(value.to_owned()),
        },
    }
}

fn set_path(root: &mut Node, segments: &[String], node: Node, loc: &Loc, ctx: &mut Ctx) {
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let Val::Table(root_entries) = &mut root.val else {
        return;
    };
    let mut entries: &mut Vec<Entry> = root_entries;
    let mut path = String::new();
    for segment in parents {
        path = join(&path, segment);
        let index = match entries.iter().position(|e| &e.key == segment) {
            Some(i) => i,
            None => {
                entries.push(Entry {
                    key: segment.clone(),
                    key_loc: loc.clone(),
                    node: Node {
                        val: Val::Table(Vec::new()),
                        loc: loc.clone(),
                        raw: None,
                    },
                });
                entries.len() - 1
            }
        };
        let Some(entry) = entries.get_mut(index) else {
            return;
        };
        match &mut entry.node.val {
            Val::Table(children) => entries = children,
            Val::Array(_) => {
                ctx.error(
                    loc,
                    &path,
                    "entries of an array of tables (such as [[providers]]) cannot be overridden from the environment; edit the file instead",
                );
                return;
            }
            other => {
                let found = other.describe();
                ctx.error(
                    loc,
                    &path,
                    format!("cannot set a key inside {path}: it is {found}, not a table"),
                );
                return;
            }
        }
    }
    let entry = Entry {
        key: last.clone(),
        key_loc: loc.clone(),
        node,
    };
    match entries.iter_mut().find(|e| &e.key == last) {
        Some(existing) => *existing = entry,
        None => entries.push(entry),
    }
}

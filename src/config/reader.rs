//! A small reader over the tree that records every problem instead of
//! stopping at the first, so one run of `check-config` shows them all.

use std::collections::BTreeSet;
use std::ops::Range;

use super::error::ConfigError;
use super::tree::{Entry, Loc, Node, Val};

struct SyntaxError {
    offset: Option<usize>,
    loc: Option<Loc>,
    message: String,
    key_path: String,
    unquoted: bool,
}

/// Collects errors and warnings for one load.
pub(super) struct Ctx {
    origin: String,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    syntax: Vec<SyntaxError>,
    syntax_lines: BTreeSet<usize>,
}

impl Ctx {
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            errors: Vec::new(),
            warnings: Vec::new(),
            syntax: Vec::new(),
            syntax_lines: BTreeSet::new(),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn syntax_error(&mut self, span: Option<Range<usize>>, loc: Option<Loc>, message: &str) {
        if let Some(Loc::File { line, .. }) = &loc {
            self.syntax_lines.insert(*line);
        }
        // The parser says "expected nothing" when it means "unexpected text".
        let message = message.trim_end_matches(", expected nothing").to_owned();
        self.syntax.push(SyntaxError {
            offset: span.map(|s| s.start),
            loc,
            message,
            key_path: String::new(),
            unquoted: false,
        });
    }

    /// Ties syntax errors to the key whose value holds them; called for outer
    /// values first, so the innermost key wins.
    pub fn attach_syntax_errors(&mut self, span: Range<usize>, path: &str, unquoted_scalar: bool) {
        for error in &mut self.syntax {
            if error
                .offset
                .is_some_and(|o| span.start <= o && o <= span.end)
            {
                error.key_path = path.to_owned();
                error.unquoted = unquoted_scalar;
            }
        }
    }

    pub fn error(&mut self, loc: &Loc, path: &str, message: impl Into<String>) {
        // The recovered tree holds guesses on lines the parser choked on;
        // reporting those guesses too would bury the real message.
        if let Loc::File { line, .. } = loc
            && self.syntax_lines.contains(line)
        {
            return;
        }
        let error = self.make(loc, path, message.into());
        self.errors.push(error);
    }

    /// A missing key may well sit on a line the parser could not read, so
    /// these are only reported for syntactically valid input.
    pub fn missing(&mut self, loc: &Loc, path: &str, message: impl Into<String>) {
        if self.syntax.is_empty() {
            self.error(loc, path, message);
        }
    }

    pub fn warn(&mut self, path: &str, message: impl AsRef<str>) {
        self.warnings
            .push(format!("{}: {path}: {}", self.origin, message.as_ref()));
    }

    fn make(&self, loc: &Loc, path: &str, message: String) -> ConfigError {
        let (origin, line, column) = match loc {
            Loc::File { line, column } => (self.origin.clone(), Some(*line), Some(*column)),
            Loc::Env(var) => (format!("env {var}"), None, None),
        };
        ConfigError {
            origin,
            line,
            column,
            key_path: path.to_owned(),
            message,
        }
    }

    /// Errors in reading order: the file top to bottom, then the environment.
    pub fn finish(self) -> (Vec<ConfigError>, Vec<String>) {
        let mut errors: Vec<ConfigError> = self
            .syntax
            .iter()
            .map(|s| {
                let mut message = format!("invalid TOML: {}", s.message);
                if s.unquoted {
                    message.push_str(" (text values must be quoted, e.g. key = \"value\")");
                }
                match &s.loc {
                    Some(loc) => self.make(loc, &s.key_path, message),
                    None => ConfigError {
                        origin: self.origin.clone(),
                        line: None,
                        column: None,
                        key_path: s.key_path.clone(),
                        message,
                    },
                }
            })
            .collect();
        errors.extend(self.errors);
        let origin = self.origin;
        errors.sort_by(|a, b| {
            (a.origin != origin, a.line, a.column, &a.origin).cmp(&(
                b.origin != origin,
                b.line,
                b.column,
                &b.origin,
            ))
        });
        errors.dedup();
        (errors, self.warnings)
    }

    pub fn mismatch(&mut self, f: &Field<'_>, expected: &str) {
        let found = found(f.node);
        self.error(
            &f.node.loc,
            &f.path,
            format!("expected {expected}, found {found}"),
        );
    }

    /// Text of a scalar, or `None` after reporting that `expected` was wanted.
    pub fn text<'t>(&mut self, f: &Field<'t>, expected: &str) -> Option<&'t str> {
        let node: &'t Node = f.node;
        match &node.val {
            Val::Str(s) => Some(s.as_str()),
            Val::Invalid => None,
            _ => match &node.raw {
                Some(raw) => Some(raw.as_str()),
                None => {
                    self.mismatch(f, expected);
                    None
                }
            },
        }
    }

    pub fn string(&mut self, f: &Field<'_>) -> Option<String> {
        self.text(f, "a string").map(str::to_owned)
    }

    pub fn non_empty_string(&mut self, f: &Field<'_>) -> Option<String> {
        let s = self.text(f, "a non-empty string")?;
        if s.trim().is_empty() {
            self.error(&f.node.loc, &f.path, "expected a non-empty string");
            return None;
        }
        Some(s.to_owned())
    }

    /// A string run through `parse`, whose error text is the whole message.
    pub fn parse<T>(
        &mut self,
        f: &Field<'_>,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.text(f, expected)?;
        match parse(s) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(&f.node.loc, &f.path, message);
                None
            }
        }
    }

    pub fn bool(&mut self, f: &Field<'_>) -> Option<bool> {
        match &f.node.val {
            Val::Bool(b) => Some(*b),
            Val::Invalid => None,
            _ => {
                self.mismatch(f, "true or false");
                None
            }
        }
    }

    pub fn int(&mut self, f: &Field<'_>, min: i128, max: Option<i128>) -> Option<i128> {
        match &f.node.val {
            Val::Int(n) if *n >= min && max.is_none_or(|max| *n <= max) => Some(*n),
            Val::Int(n) => {
                let expected = match max {
                    Some(max) => format!("an integer from {min} to {max}"),
                    None => format!("an integer of at least {min}"),
                };
                self.error(
                    &f.node.loc,
                    &f.path,
                    format!("expected {expected}, found {n}"),
                );
                None
            }
            Val::Invalid => None,
            _ => {
                self.mismatch(f, "an integer");
                None
            }
        }
    }

    pub fn usize(&mut self, f: &Field<'_>, min: usize) -> Option<usize> {
        let max = i128::try_from(usize::MAX).ok();
        let min = i128::try_from(min).unwrap_or(0);
        self.int(f, min, max).and_then(|n| usize::try_from(n).ok())
    }

    pub fn u32(&mut self, f: &Field<'_>, min: u32, max: u32) -> Option<u32> {
        self.int(f, min.into(), Some(max.into()))
            .and_then(|n| u32::try_from(n).ok())
    }

    pub fn keyword<K: Keyword>(&mut self, f: &Field<'_>) -> Option<K> {
        let names: Vec<&'static str> = K::ALL.iter().map(|k| k.keyword()).collect();
        let expected = format!("one of {}", or_list(&names));
        let s = self.text(f, &expected)?;
        if let Some(k) = K::ALL.iter().find(|k| k.keyword() == s) {
            return Some(*k);
        }
        let hint = suggest(s, &names)
            .map(|n| format!(" (did you mean \"{n}\"?)"))
            .unwrap_or_default();
        self.error(
            &f.node.loc,
            &f.path,
            format!("expected {expected}, found {}{hint}", quote(s)),
        );
        None
    }

    pub fn table<'t>(&mut self, f: &Field<'t>) -> Option<Fields<'t>> {
        match &f.node.val {
            Val::Table(entries) => Some(Fields {
                entries,
                loc: &f.node.loc,
                path: f.path.clone(),
                known: Vec::new(),
            }),
            Val::Invalid => None,
            _ => {
                self.mismatch(f, "a table");
                None
            }
        }
    }

    pub fn array<'t>(&mut self, f: &Field<'t>, expected: &str) -> Option<Vec<Field<'t>>> {
        match &f.node.val {
            Val::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, node)| Field {
                        node,
                        path: format!("{}[{i}]", f.path),
                    })
                    .collect(),
            ),
            Val::Invalid => None,
            _ => {
                self.mismatch(f, expected);
                None
            }
        }
    }
}

/// A value together with the key path used in messages.
pub(super) struct Field<'t> {
    pub node: &'t Node,
    pub path: String,
}

impl Field<'_> {
    pub fn loc(&self) -> &Loc {
        &self.node.loc
    }
}

/// The keys of one table; keys never asked for are reported as unknown.
pub(super) struct Fields<'t> {
    entries: &'t [Entry],
    loc: &'t Loc,
    path: String,
    known: Vec<&'static str>,
}

impl<'t> Fields<'t> {
    pub fn root(node: &'t Node) -> Option<Self> {
        match &node.val {
            Val::Table(entries) => Some(Self {
                entries,
                loc: &node.loc,
                path: String::new(),
                known: Vec::new(),
            }),
            _ => None,
        }
    }

    pub fn loc(&self) -> &'t Loc {
        self.loc
    }

    pub fn get(&mut self, key: &'static str) -> Option<Field<'t>> {
        self.known.push(key);
        let entries: &'t [Entry] = self.entries;
        entries.iter().find(|e| e.key == key).map(|e| Field {
            node: &e.node,
            path: join(&self.path, key),
        })
    }

    /// Like [`Fields::get`], reporting the table's position when absent.
    pub fn require(&mut self, ctx: &mut Ctx, key: &'static str, what: &str) -> Option<Field<'t>> {
        let field = self.get(key);
        if field.is_none() {
            ctx.missing(
                self.loc,
                &join(&self.path, key),
                format!("missing required key \"{key}\" ({what})"),
            );
        }
        field
    }

    pub fn finish(self, ctx: &mut Ctx) {
        for entry in self.entries {
            if self.known.contains(&entry.key.as_str()) {
                continue;
            }
            let message = match suggest(&entry.key, &self.known) {
                Some(s) => format!("unknown key {} (did you mean \"{s}\"?)", quote(&entry.key)),
                None => format!(
                    "unknown key {}; expected one of: {}",
                    quote(&entry.key),
                    self.known.join(", ")
                ),
            };
            ctx.error(&entry.key_loc, &join(&self.path, &entry.key), message);
        }
    }
}

/// A closed set of string values, such as `"text"` / `"json"`.
pub(super) trait Keyword: Copy + 'static {
    const ALL: &'static [Self];
    fn keyword(self) -> &'static str;
}

/// `parent.key`, quoting keys that would make the path ambiguous.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if plain { key.to_owned() } else { quote(key) };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// A user-supplied string for a message: escaped, and cut short so a pasted
/// blob does not flood the terminal.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

fn found(node: &Node) -> String {
    match (&node.val, &node.raw) {
        (Val::Str(s), _) => quote(s),
        (Val::Table(_) | Val::Array(_), _) => node.val.describe().to_owned(),
        (_, Some(raw)) => quote(raw),
        (val, None) => val.describe().to_owned(),
    }
}

/// `"a", "b" or "c"`.
pub(super) fn or_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// Closest candidate within edit distance 2; spelling variants that differ
/// only in case or separators (`maxBodyBytes`) count as exact.
pub(super) fn suggest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let normalize = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = normalize(input);
    candidates
        .iter()
        .filter_map(|c| {
            let distance = if normalize(c) == wanted {
                0
            } else {
                levenshtein(input, c)
            };
            // Two edits turn any two-letter key into any other; that is noise.
            (distance <= 2 && distance < c.chars().count()).then_some((distance, *c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

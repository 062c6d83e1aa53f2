//! The template parser: literal text, `[path | transforms]`, and backslash escapes.

use crate::scim::{FilterLimits, parse_filter};

use super::error::TemplateError;
use super::transform::{Arg, Transform};
use super::{Expr, Part, Path, Step, Template};

/// Longest template accepted, in bytes; real ones are a line or two.
pub const MAX_TEMPLATE_LEN: usize = 4096;
/// Most transforms on one expression.
const MAX_TRANSFORMS: usize = 16;
/// Most steps in one path.
const MAX_STEPS: usize = 32;

impl Template {
    /// Parses template text; the error names the position of the first problem.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        if source.len() > MAX_TEMPLATE_LEN {
            return Err(TemplateError::new(
                source,
                MAX_TEMPLATE_LEN,
                format!(
                    "template is {} bytes, longer than the limit of {MAX_TEMPLATE_LEN}",
                    source.len()
                ),
            ));
        }
        let mut p = Parser {
            src: source,
            pos: 0,
        };
        let parts = p.template()?;
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }
}

struct Parser<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Parser<'s> {
    fn err(&self, at: usize, msg: impl Into<String>) -> TemplateError {
        TemplateError::new(self.src, at, msg)
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..)?.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.pos += want.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn template(&mut self) -> Result<Vec<Part>, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' => {
                    let at = self.pos;
                    self.bump();
                    match self.bump() {
                        Some(e @ ('[' | ']' | '\\')) => lit.push(e),
                        _ => {
                            return Err(self.err(
                                at,
                                "a backslash escapes only `[`, `]` or `\\`; write `\\\\` for a backslash",
                            ));
                        }
                    }
                }
                '[' => {
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Expr(self.expr()?));
                }
                ']' => {
                    return Err(self.err(
                        self.pos,
                        "`]` without an opening `[`; write `\\]` for a literal bracket",
                    ));
                }
                c => {
                    lit.push(c);
                    self.bump();
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(parts)
    }

    /// `[` path (`|` transform)* `]`, with the cursor on the `[`.
    fn expr(&mut self) -> Result<Expr, TemplateError> {
        let open = self.pos;
        self.bump();
        self.skip_ws();
        let path = self.path()?;
        self.skip_ws();
        let mut transforms = Vec::new();
        while self.eat('|') {
            if transforms.len() == MAX_TRANSFORMS {
                return Err(self.err(self.pos, format!("more than {MAX_TRANSFORMS} transforms")));
            }
            self.skip_ws();
            transforms.push(self.transform()?);
            self.skip_ws();
        }
        match self.peek() {
            Some(']') => {
                self.bump();
                Ok(Expr {
                    path,
                    transforms,
                    offset: open,
                })
            }
            None => Err(self.err(open, "unclosed `[`: the expression has no `]`")),
            Some(c) => Err(self.err(
                self.pos,
                format!("unexpected `{c}` in an expression; expected `|` or `]`"),
            )),
        }
    }

    fn path(&mut self) -> Result<Path, TemplateError> {
        let root = self.ident();
        if root.is_empty() {
            return Err(self.err(self.pos, "expected a path such as `user.userName`"));
        }
        let mut steps = Vec::new();
        while self.eat('.') {
            if steps.len() >= MAX_STEPS {
                return Err(self.err(self.pos, format!("path longer than {MAX_STEPS} steps")));
            }
            if self
                .rest()
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
            {
                steps.push(self.schema()?);
            }
            steps.push(self.attr()?);
        }
        Ok(Path {
            root: root.to_string(),
            steps,
        })
    }

    /// `urn:…:` up to the last colon before the attribute name; URNs contain dots.
    fn schema(&mut self) -> Result<Step, TemplateError> {
        let start = self.pos;
        let token_len = self
            .rest()
            .find(|c: char| c.is_whitespace() || matches!(c, '|' | ']' | '['))
            .unwrap_or(self.rest().len());
        let token = self.rest().get(..token_len).unwrap_or("");
        let urn_len = token.rfind(':').unwrap_or(0);
        let urn = token.get(..urn_len).unwrap_or("");
        if urn.len() <= 4 {
            return Err(self.err(
                start,
                "a schema step is `urn:…:attribute`, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`",
            ));
        }
        self.pos += urn_len + 1;
        Ok(Step::Schema(urn.to_string()))
    }

    /// An attribute name with an optional `[value filter]`.
    fn attr(&mut self) -> Result<Step, TemplateError> {
        let at = self.pos;
        let name = self.ident();
        if name.is_empty() {
            return Err(self.err(at, "expected an attribute name after `.`"));
        }
        let filter = if self.peek() == Some('[') {
            let open = self.pos;
            let body = self.bracketed()?;
            let f = parse_filter(body, &FilterLimits::default())
                .map_err(|e| self.err(open + 1, format!("bad value filter: {}", e.detail)))?;
            Some(f)
        } else {
            None
        };
        Ok(Step::Attr {
            name: name.to_string(),
            filter,
        })
    }

    /// The text between `[` and its `]`, skipping brackets inside quoted strings.
    fn bracketed(&mut self) -> Result<&'s str, TemplateError> {
        let open = self.pos;
        self.bump();
        let start = self.pos;
        let mut in_str = false;
        while let Some(c) = self.bump() {
            match c {
                '\\' if in_str => {
                    self.bump();
                }
                '"' => in_str = !in_str,
                '[' if !in_str => {
                    return Err(self.err(self.pos - 1, "value filters cannot nest"));
                }
                ']' if !in_str => return Ok(self.src.get(start..self.pos - 1).unwrap_or("")),
                _ => {}
            }
        }
        Err(self.err(open, "unclosed `[` in a value filter"))
    }

    fn ident(&mut self) -> &'s str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'))
        {
            self.bump();
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn transform(&mut self) -> Result<Transform, TemplateError> {
        let at = self.pos;
        let name = self.ident();
        if name.is_empty() {
            return Err(self.err(at, "expected a transform name after `|`"));
        }
        let mut args = Vec::new();
        self.skip_ws();
        if self.eat('(') {
            self.skip_ws();
            if !self.eat(')') {
                loop {
                    self.skip_ws();
                    args.push(self.arg()?);
                    self.skip_ws();
                    if self.eat(')') {
                        break;
                    }
                    if !self.eat(',') {
                        return Err(self.err(self.pos, "expected `,` or `)` in the arguments"));
                    }
                }
            }
        }
        Transform::build(name, args).map_err(|m| self.err(at, m))
    }

    fn arg(&mut self) -> Result<Arg, TemplateError> {
        let at = self.pos;
        match self.peek() {
            Some('"') => {
                self.bump();
                let mut s = String::new();
                loop {
                    let here = self.pos;
                    match self.bump() {
                        None => return Err(self.err(at, "unclosed string")),
                        Some('"') => return Ok(Arg::Str(s)),
                        Some('\\') => match self.bump() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some(c @ ('"' | '\\')) => s.push(c),
                            _ => {
                                return Err(self.err(
                                    here,
                                    "unknown escape in a string; use \\\", \\\\, \\n, \\t or \\r",
                                ));
                            }
                        },
                        Some(c) => s.push(c),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
                let digits = self.src.get(at..self.pos).unwrap_or("");
                digits
                    .parse()
                    .map(Arg::Int)
                    .map_err(|_| self.err(at, "number too large"))
            }
            _ => Err(self.err(at, "expected a quoted string or a whole number")),
        }
    }
}

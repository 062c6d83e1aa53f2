//! Filter text to AST: a tokenizer and a depth-bounded recursive-descent parser.

use serde_json::Value;

use crate::scim::error::ScimError;
use crate::scim::filter::{CompareOp, Filter, FilterLimits};
use crate::scim::path::AttrPath;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Word(String),
    Str(String),
    Num(serde_json::Number),
}

fn err(pos: usize, msg: impl std::fmt::Display) -> ScimError {
    ScimError::invalid_filter(format!("invalid filter at position {pos}: {msg}"))
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '$' | '-')
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, ScimError> {
    let mut toks = Vec::new();
    let mut it = input.char_indices().peekable();
    while let Some(&(pos, c)) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' | ')' | '[' | ']' => {
                it.next();
                let t = match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    _ => Tok::RBracket,
                };
                toks.push((t, pos));
            }
            '"' => {
                it.next();
                let mut escaped = false;
                let mut end = None;
                for (i, ch) in it.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if ch == '\\' {
                        escaped = true;
                    } else if ch == '"' {
                        end = Some(i);
                        break;
                    }
                }
                let end = end.ok_or_else(|| err(pos, "unterminated string"))?;
                let raw = input.get(pos..=end).ok_or_else(|| err(pos, "bad string"))?;
                let s: String = serde_json::from_str(raw)
                    .map_err(|e| err(pos, format!("bad string literal: {e}")))?;
                toks.push((Tok::Str(s), pos));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut end = pos;
                while let Some(&(i, ch)) = it.peek() {
                    if ch.is_ascii_digit() || matches!(ch, '.' | 'e' | 'E' | '+' | '-') {
                        end = i + ch.len_utf8();
                        it.next();
                    } else {
                        break;
                    }
                }
                let raw = input.get(pos..end).ok_or_else(|| err(pos, "bad number"))?;
                let n: serde_json::Number = serde_json::from_str(raw)
                    .map_err(|_| err(pos, format!("bad number {raw:?}")))?;
                toks.push((Tok::Num(n), pos));
            }
            c if is_word_char(c) => {
                let mut end = pos;
                while let Some(&(i, ch)) = it.peek() {
                    if is_word_char(ch) {
                        end = i + ch.len_utf8();
                        it.next();
                    } else {
                        break;
                    }
                }
                let raw = input.get(pos..end).ok_or_else(|| err(pos, "bad word"))?;
                toks.push((Tok::Word(raw.to_string()), pos));
            }
            other => return Err(err(pos, format!("unexpected character {other:?}"))),
        }
    }
    Ok(toks)
}

struct Parser<'l> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
    limits: &'l FilterLimits,
    in_value_filter: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, p)| *p)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    /// Called before every recursion so nesting is bounded before the stack grows.
    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(err(
                self.here(),
                format!("nested deeper than {} levels", self.limits.max_depth),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), ScimError> {
        let pos = self.here();
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(_) => Err(err(pos, format!("expected {what}"))),
            None => Err(err(pos, format!("expected {what} before end of input"))),
        }
    }

    fn parse_or(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.parse_and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.parse_atom()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.parse_atom()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_atom(&mut self) -> Result<Filter, ScimError> {
        let pos = self.here();
        match self.next() {
            Some(Tok::LParen) => {
                self.enter()?;
                let f = self.parse_or()?;
                self.expect(Tok::RParen, "')'")?;
                self.leave();
                Ok(f)
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") && !self.next_is_operator() => {
                self.enter()?;
                let inner = self.parse_atom()?;
                self.leave();
                Ok(Filter::Not(Box::new(inner)))
            }
            Some(Tok::Word(w)) => {
                let path = AttrPath::parse(&w)
                    .map_err(|_| err(pos, format!("invalid attribute path {w:?}")))?;
                if self.peek() == Some(&Tok::LBracket) {
                    self.parse_value_path(path)
                } else {
                    self.parse_comparison(path)
                }
            }
            Some(_) => Err(err(pos, "expected an attribute path, '(' or 'not'")),
            None => Err(err(pos, "unexpected end of filter")),
        }
    }

    fn next_is_operator(&self) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("pr") || CompareOp::parse(w).is_some())
    }

    fn parse_value_path(&mut self, attr: AttrPath) -> Result<Filter, ScimError> {
        let pos = self.here();
        if self.in_value_filter {
            return Err(err(pos, "value filters cannot be nested"));
        }
        if attr.sub.is_some() {
            return Err(err(pos, "a value filter must follow a top-level attribute"));
        }
        self.pos += 1;
        self.enter()?;
        self.in_value_filter = true;
        let inner = self.parse_or()?;
        self.expect(Tok::RBracket, "']'")?;
        self.in_value_filter = false;
        self.leave();
        // Entra sends `emails[type eq "work"].value eq "x"`: fold the trailing comparison
        // into the element filter, which selects exactly the same resources.
        let filter = match self.peek() {
            Some(Tok::Word(w)) if w.starts_with('.') => {
                let sub_pos = self.here();
                let sub = w.get(1..).unwrap_or_default().to_string();
                self.pos += 1;
                let sub_path = AttrPath::parse(&sub)
                    .ok()
                    .filter(|p| p.schema.is_none() && p.sub.is_none())
                    .ok_or_else(|| err(sub_pos, format!("invalid sub-attribute {sub:?}")))?;
                let cmp = self.parse_comparison(sub_path)?;
                Filter::And(Box::new(inner), Box::new(cmp))
            }
            _ => inner,
        };
        Ok(Filter::ValuePath {
            attr,
            filter: Box::new(filter),
        })
    }

    fn parse_comparison(&mut self, path: AttrPath) -> Result<Filter, ScimError> {
        let pos = self.here();
        let op = match self.next() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("pr") => return Ok(Filter::Present(path)),
            Some(Tok::Word(w)) => {
                CompareOp::parse(&w).ok_or_else(|| err(pos, format!("unknown operator {w:?}")))?
            }
            _ => return Err(err(pos, format!("expected an operator after {path}"))),
        };
        let vpos = self.here();
        let value = match self.next() {
            Some(Tok::Str(s)) => Value::String(s),
            Some(Tok::Num(n)) => Value::Number(n),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
            _ => return Err(err(vpos, "expected a string, number, true, false or null")),
        };
        Ok(Filter::Compare { path, op, value })
    }
}

/// Parses filter text, enforcing `limits` before doing any recursive work.
pub fn parse_filter(input: &str, limits: &FilterLimits) -> Result<Filter, ScimError> {
    if input.len() > limits.max_len {
        return Err(ScimError::invalid_filter(format!(
            "filter is {} bytes, longer than the limit of {}",
            input.len(),
            limits.max_len
        )));
    }
    let toks = lex(input)?;
    if toks.is_empty() {
        return Err(err(0, "empty filter"));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: input.len(),
        depth: 0,
        limits,
        in_value_filter: false,
    };
    let f = p.parse_or()?;
    if p.pos < p.toks.len() {
        return Err(err(p.here(), "unexpected trailing input"));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<Filter, ScimError> {
        parse_filter(s, &FilterLimits::default())
    }

    fn path(s: &str) -> AttrPath {
        AttrPath::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn cmp(p: &str, op: CompareOp, v: Value) -> Filter {
        Filter::Compare {
            path: path(p),
            op,
            value: v,
        }
    }

    fn b(f: Filter) -> Box<Filter> {
        Box::new(f)
    }

    #[test]
    fn parses_shapes() {
        let cases = [
            (
                "userName eq \"x\"",
                cmp("userName", CompareOp::Eq, json!("x")),
            ),
            (
                "USERNAME EQ \"x\"",
                cmp("USERNAME", CompareOp::Eq, json!("x")),
            ),
            ("title pr", Filter::Present(path("title"))),
            (
                "a pr or b pr and c pr",
                Filter::Or(
                    b(Filter::Present(path("a"))),
                    b(Filter::And(
                        b(Filter::Present(path("b"))),
                        b(Filter::Present(path("c"))),
                    )),
                ),
            ),
            (
                "(a pr or b pr) and c pr",
                Filter::And(
                    b(Filter::Or(
                        b(Filter::Present(path("a"))),
                        b(Filter::Present(path("b"))),
                    )),
                    b(Filter::Present(path("c"))),
                ),
            ),
            (
                "not (active eq true)",
                Filter::Not(b(cmp("active", CompareOp::Eq, json!(true)))),
            ),
            (
                "NOT(active eq TRUE)",
                Filter::Not(b(cmp("active", CompareOp::Eq, json!(true)))),
            ),
            ("x eq null", cmp("x", CompareOp::Eq, Value::Null)),
            ("x gt 10", cmp("x", CompareOp::Gt, json!(10))),
            ("x le -1.5e3", cmp("x", CompareOp::Le, json!(-1500.0))),
            (
                "x eq \"a\\\"b\\u00e9\"",
                cmp("x", CompareOp::Eq, json!("a\"bé")),
            ),
            (
                "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
                cmp(
                    "meta.lastModified",
                    CompareOp::Gt,
                    json!("2011-05-13T04:42:34Z"),
                ),
            ),
            (
                "emails[type eq \"work\" and primary eq true]",
                Filter::ValuePath {
                    attr: path("emails"),
                    filter: b(Filter::And(
                        b(cmp("type", CompareOp::Eq, json!("work"))),
                        b(cmp("primary", CompareOp::Eq, json!(true))),
                    )),
                },
            ),
            (
                "emails[type eq \"work\"].value eq \"a@b\"",
                Filter::ValuePath {
                    attr: path("emails"),
                    filter: b(Filter::And(
                        b(cmp("type", CompareOp::Eq, json!("work"))),
                        b(cmp("value", CompareOp::Eq, json!("a@b"))),
                    )),
                },
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"7\"",
                cmp(
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
                    CompareOp::Eq,
                    json!("7"),
                ),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_bad_input_with_position() {
        let cases = [
            ("", "position 0"),
            ("userName", "position 8"),
            ("userName eq", "position 11"),
            ("userName zz \"x\"", "position 9"),
            ("userName eq \"x", "position 12"),
            ("(userName pr", "position 12"),
            ("userName pr )", "position 12"),
            ("emails[type eq \"a\"", "position 18"),
            ("emails[x[y pr]]", "position 8"),
            ("a pr and", "position 8"),
            ("a eq 1.2.3", "position 5"),
            ("a eq @", "position 5"),
            ("userName+eq+\"x\"", "position 8"),
        ];
        for (input, want) in cases {
            match parse(input) {
                Err(e) => {
                    assert_eq!(e.status, 400);
                    assert_eq!(
                        e.scim_type,
                        Some(crate::scim::error::ScimType::InvalidFilter)
                    );
                    assert!(e.detail.contains(want), "{input}: {}", e.detail);
                }
                Ok(f) => panic!("{input} parsed as {f:?}"),
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}a pr{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse(&deep).is_err());
        let unlimited = FilterLimits {
            max_len: usize::MAX,
            max_depth: 64,
        };
        let started = std::time::Instant::now();
        let e = parse_filter(&deep, &unlimited);
        assert!(e.is_err_and(|e| e.detail.contains("nested deeper")));
        assert!(started.elapsed().as_secs() < 2);
        let nots = format!("{}a pr", "not ".repeat(100_000));
        assert!(parse_filter(&nots, &unlimited).is_err());
        let ok = format!("{}a pr{}", "(".repeat(64), ")".repeat(64));
        assert!(parse(&ok).is_ok());
        let too_deep = format!("{}a pr{}", "(".repeat(65), ")".repeat(65));
        assert!(parse(&too_deep).is_err());
    }

    #[test]
    fn long_flat_chain_is_fine() {
        // The longest chain the default length allows must display and drop on a test thread.
        let mut s = String::from("a pr");
        while s.len() + 8 < FilterLimits::default().max_len {
            s.push_str(" or a pr");
        }
        let f = parse(&s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.to_string(), s);
    }

    #[test]
    fn long_numbers_print_and_reparse_to_the_same_value() {
        // Found by the fuzzer: without correctly rounded float parsing, a long literal
        // printed and parsed again came back one ulp away.
        let text = format!("a le 1{}{}2", "3".repeat(15), "5".repeat(72));
        let f = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let again = parse(&f.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f, again);
    }
}

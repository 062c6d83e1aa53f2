//! Canonical JSON: the one byte form of a value, so a hash computed at append time
//! and one recomputed by `verify` on another machine agree.
//!
//! Rules (a subset of RFC 8785): object keys sorted by their UTF-8 bytes, no
//! insignificant white space, strings escaped only where JSON requires it (`"`, `\`
//! and control characters, the short forms `\b \f \n \r \t` where they exist, else
//! `\u00xx` in lower case), everything else written as UTF-8. Numbers must be
//! integers: the shortest form of a float differs between formatting libraries (and
//! serde_json has changed its own), so a float could hash differently after an
//! upgrade. Log bodies carry decimals as strings.
//!
//! Shared by the provisioning log, which writes its records' bodies in this form,
//! and the audit chain, which then hashes a stored body as it is
//! ([`is_canonical_object`]) instead of parsing and re-writing it.

use serde_json::Value;

/// A value with a float in it: it has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the number {0} is not an integer; audit bodies carry decimals as strings")]
pub struct NotInteger(String);

/// Append the canonical form of `value` to `out`.
pub fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), NotInteger> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_u64(out, u);
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(NotInteger(n.to_string()));
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Append `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short == 0 {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.push(b'\\');
            out.push(short);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append `n` in decimal.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(n.to_string().as_bytes());
}

/// Writes one canonical object whose fields the caller names in sorted order (the
/// fixed lines of the export format), without building a `Value` first.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    #[cfg(debug_assertions)]
    last_key: &'static str,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self {
            out,
            first: true,
            #[cfg(debug_assertions)]
            last_key: "",
        }
    }

    fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        // Canonical order is the caller's job; a debug build checks it.
        #[cfg(debug_assertions)]
        {
            debug_assert!(self.last_key < key, "{key} after {}", self.last_key);
            self.last_key = key;
        }
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    pub fn str(mut self, key: &'static str, value: &str) -> Self {
        write_str(self.key(key), value);
        self
    }

    pub fn u64(mut self, key: &'static str, value: u64) -> Self {
        write_u64(self.key(key), value);
        self
    }

    pub fn opt_u64(mut self, key: &'static str, value: Option<u64>) -> Self {
        let out = self.key(key);
        match value {
            Some(v) => write_u64(out, v),
            None => out.extend_from_slice(b"null"),
        }
        self
    }

    /// A string field written only when there is a value.
    pub fn some_str(self, key: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    pub fn i64(mut self, key: &'static str, value: i64) -> Self {
        let out = self.key(key);
        match u64::try_from(value) {
            Ok(v) => write_u64(out, v),
            Err(_) => out.extend_from_slice(value.to_string().as_bytes()),
        }
        self
    }

    pub fn bool(mut self, key: &'static str, value: bool) -> Self {
        let out = self.key(key);
        out.extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    pub fn value(mut self, key: &'static str, value: &Value) -> Result<Self, NotInteger> {
        write_value(self.key(key), value)?;
        Ok(self)
    }

    /// A field whose value the caller writes, in canonical form, straight into the
    /// output (a nested object or a list).
    pub fn with(mut self, key: &'static str, write: impl FnOnce(&mut Vec<u8>)) -> Self {
        write(self.key(key));
        self
    }

    /// A field whose value is canonical JSON text already.
    pub fn raw(self, key: &'static str, canonical: &str) -> Self {
        self.with(key, |out| out.extend_from_slice(canonical.as_bytes()))
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// Writes `items` as a JSON array, each by `each`.
pub fn write_list<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

/// Canonical bytes as the text they are (they are UTF-8: only `str`s and ASCII go in).
pub fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Nesting deeper than this takes the slow road (serde_json refuses 128 levels).
const MAX_DEPTH: usize = 64;

/// Whether `text` is a JSON object already in the form [`write_value`] writes, so
/// that writing what it parses to gives `text` back byte for byte. One pass over the
/// bytes, no value built: the audit chain hashes a body that passes as it is stored.
///
/// Conservative: what it is not sure of (an escape inside a key, a negative number
/// at the edge of `i64`, deep nesting) answers `false`, and the caller parses and
/// re-writes, which gives the same bytes for anything this accepts.
pub fn is_canonical_object(text: &str) -> bool {
    let mut s = Scan {
        b: text.as_bytes(),
        at: 0,
    };
    s.peek() == Some(b'{') && s.value(0) && s.at == s.b.len()
}

struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn word(&mut self, word: &[u8]) -> bool {
        let hit = self.b.get(self.at..).is_some_and(|r| r.starts_with(word));
        if hit {
            self.at += word.len();
        }
        hit
    }

    fn value(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut last: Option<&[u8]> = None;
        loop {
            let Some(key) = self.string() else {
                return false;
            };
            // Without escapes a key's bytes are its UTF-8, the order keys sort by;
            // strictly rising also rules out a key given twice.
            if key.contains(&b'\\') || last.is_some_and(|l| l >= key) {
                return false;
            }
            last = Some(key);
            if !self.eat(b':') || !self.value(depth + 1) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth + 1) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// A string escaped exactly as [`write_str`] escapes; answers its bytes between
    /// the quotes.
    fn string(&mut self) -> Option<&'a [u8]> {
        let b = self.b;
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        loop {
            match *b.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return b.get(start..self.at - 1);
                }
                b'\\' => match *b.get(self.at + 1)? {
                    b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
                    b'u' => {
                        // Only `\u00xx`, lower case, for a control character that
                        // has no short form.
                        let [b'0', b'0', hi @ (b'0' | b'1'), lo] =
                            *b.get(self.at + 2..self.at + 6)?
                        else {
                            return None;
                        };
                        let lo = match lo {
                            b'0'..=b'9' => lo - b'0',
                            b'a'..=b'f' => lo - b'a' + 10,
                            _ => return None,
                        };
                        if matches!((hi - b'0') * 16 + lo, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                            return None;
                        }
                        self.at += 6;
                    }
                    _ => return None,
                },
                0x00..=0x1f => return None,
                _ => self.at += 1,
            }
        }
    }

    /// An integer as [`write_value`] writes one: no sign on zero, no leading zero,
    /// no fraction or exponent, within what reads back as an integer.
    fn number(&mut self) -> bool {
        let b = self.b;
        let negative = self.eat(b'-');
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return false;
        }
        let Some(digits) = b.get(start..self.at) else {
            return false;
        };
        match digits {
            [] => false,
            // `-0` reads back as a float.
            [b'0'] => !negative,
            [b'0', ..] => false,
            _ => {
                let n = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse::<u64>().ok());
                match n {
                    None => false,
                    Some(n) => !negative || i64::try_from(n).is_ok(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keys_sorted_no_spaces_minimal_escapes() {
        let v = json!({"b": [1, -2, true, null], "a": "x\"\\\n\u{1}é€/", "Z": {}});
        assert_eq!(
            canon(&v),
            r#"{"Z":{},"a":"x\"\\\n\u0001é€/","b":[1,-2,true,null]}"#
        );
    }

    #[test]
    fn floats_are_refused() {
        let mut out = Vec::new();
        let err = write_value(&mut out, &json!({"x": 1.5})).unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{err}");
    }

    #[test]
    fn reparsing_the_canonical_form_gives_it_back() {
        let v = json!({"k": "\u{7f}\u{0}\t", "n": u64::MAX, "m": i64::MIN});
        let once = canon(&v);
        let again = canon(&serde_json::from_str(&once).unwrap());
        assert_eq!(once, again);
    }

    /// What the audit chain relies on: accepted text is exactly what writing its
    /// value gives back.
    fn round_trips(text: &str) -> bool {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return false;
        };
        let mut out = Vec::new();
        v.is_object() && write_value(&mut out, &v).is_ok() && out == text.as_bytes()
    }

    #[test]
    fn canonical_objects_are_recognised() {
        for ok in [
            "{}",
            r#"{"a":1}"#,
            r#"{"":null,"A":[],"a":{"b":[true,false,-5,0,18446744073709551615]}}"#,
            r#"{"s":"x\"\\\b\f\n\r\t\u0000\u001f\u000b/é€"}"#,
            "{\"s\":\"\u{7f}\u{2028}\"}",
            r#"{"n":-9223372036854775807}"#,
        ] {
            assert!(is_canonical_object(ok), "{ok}");
            assert!(round_trips(ok), "{ok}");
        }
    }

    #[test]
    fn anything_else_takes_the_slow_road() {
        for no in [
            "",
            "[]",
            "1",
            r#"{"a":1} "#,
            r#"{ "a":1}"#,
            r#"{"a": 1}"#,
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\u001F"}"#,
            r#"{"a":"\u00e9"}"#,
            "{\"a\":\"\n\"}",
            r#"{"a\"b":1}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":tru}"#,
            r#"{"a":1"#,
            r#"{"a""#,
        ] {
            assert!(!is_canonical_object(no), "{no}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(80), "]".repeat(80));
        assert!(!is_canonical_object(&deep));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[ -~\\t\\n\u{0}-\u{1f}é]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-zA-Z_é ]{0,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn body() -> impl Strategy<Value = Value> {
        prop::collection::vec(("[a-zA-Z_]{0,6}", json_value()), 0..6)
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn what_write_value_writes_is_recognised(v in body()) {
            let mut out = Vec::new();
            write_value(&mut out, &v).unwrap();
            let text = String::from_utf8(out).unwrap();
            prop_assert!(is_canonical_object(&text), "{}", text);
        }

        #[test]
        fn accepted_text_round_trips_after_any_edit(
            v in body(),
            at in any::<prop::sample::Index>(),
            edit in prop::sample::select(vec![
                "", " ", "\\", "\"", "\\u00", "0", "-", ".", "e", ",", ":", "{", "}", "[",
                "]", "\n", "\\/", "a", "1", "\\u001f", "\u{1}",
            ]),
            cut in 0usize..3,
        ) {
            let mut out = Vec::new();
            write_value(&mut out, &v).unwrap();
            let mut text = String::from_utf8(out).unwrap();
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            let end = (i + cut).min(text.len());
            if text.is_char_boundary(end) {
                text.replace_range(i..end, edit);
            }
            if is_canonical_object(&text) {
                prop_assert!(round_trips(&text), "accepted but not canonical: {}", text);
            }
        }
    }
}

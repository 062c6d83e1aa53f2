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

use serde_json::Value;

use super::AuditError;

/// Append the canonical form of `value` to `out`.
pub fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), AuditError> {
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
                return Err(AuditError::Invalid(format!(
                    "the number {n} is not an integer; audit bodies carry decimals as strings"
                )));
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

    pub fn value(mut self, key: &'static str, value: &Value) -> Result<Self, AuditError> {
        write_value(self.key(key), value)?;
        Ok(self)
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}

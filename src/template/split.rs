//! Splitting template text on a separator outside brackets, for lists of templates such
//! as `custom1=[workitem.client.reference], custom2=[workitem.reference]`.

/// Splits `s` on `sep` where it appears as literal text: not inside `[…]`, not inside a
/// quoted string within brackets, and not escaped. Each piece comes with its byte offset
/// in `s`, so errors in a piece can point into the whole.
pub fn split_top_level(s: &str, sep: char) -> Vec<(usize, &str)> {
    let mut pieces = Vec::new();
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if depth > 0 => in_str = !in_str,
            '[' if !in_str => depth += 1,
            ']' if !in_str => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 && !in_str => {
                pieces.push((start, s.get(start..i).unwrap_or("")));
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    pieces.push((start, s.get(start..).unwrap_or("")));
    pieces
}

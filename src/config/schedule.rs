//! Cron schedules: the standard five fields (`minute hour day month weekday`), checked
//! with an explanation of what is wrong rather than the `cron` crate's messages, which
//! speak of its own six- and seven-field form.

use std::str::FromStr;

const FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day of week", "0-7 or SUN-SAT (0 and 7 are Sunday)"),
];

/// The `cron` crate's form (seconds first) of a five-field expression, or what is wrong.
pub fn normalise(expr: &str) -> Result<String, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected a standard cron expression of 5 fields (minute hour day-of-month month day-of-week), like \"0 */6 * * *\"; found {} field(s) in {expr:?}",
            fields.len()
        ));
    }
    // The crate counts weekdays 1-7 from Sunday; standard cron counts 0-7 from Sunday.
    let weekday = shift_weekdays(fields[4]).ok_or_else(|| field_error(4, fields[4]))?;
    let six = format!(
        "0 {} {} {} {} {}",
        fields[0], fields[1], fields[2], fields[3], weekday
    );
    let schedule = match cron::Schedule::from_str(&six) {
        Ok(s) => s,
        Err(_) => {
            // Find the culprit by trying each field alone.
            for (i, f) in fields.iter().enumerate() {
                let mut probe = ["*"; 5];
                probe[i] = f;
                let w = if i == 4 {
                    weekday.clone()
                } else {
                    "*".to_owned()
                };
                let candidate = format!(
                    "0 {} {} {} {} {}",
                    probe[0], probe[1], probe[2], probe[3], w
                );
                if cron::Schedule::from_str(&candidate).is_err() {
                    return Err(field_error(i, f));
                }
            }
            return Err(format!("{expr:?} is not a valid cron expression"));
        }
    };
    if schedule.upcoming(chrono::Utc).next().is_none() {
        return Err(format!(
            "{expr:?} never fires (no such date, e.g. 30 February)"
        ));
    }
    Ok(six)
}

/// A five-field expression, parsed: [`normalise`], then the `cron` crate's schedule.
pub fn parse(expr: &str) -> Result<cron::Schedule, String> {
    let six = normalise(expr)?;
    cron::Schedule::from_str(&six).map_err(|e| format!("{expr:?}: {e}"))
}

fn field_error(i: usize, value: &str) -> String {
    let (name, range) = FIELDS[i];
    format!(
        "field {} ({name}) {value:?} is not valid: expected {range}, \"*\", lists (1,15), ranges (1-5) or steps (*/10)",
        i + 1
    )
}

/// Rewrites numeric weekdays from 0-7 (Sunday = 0 or 7) to the crate's 1-7 (Sunday = 1).
fn shift_weekdays(field: &str) -> Option<String> {
    let mut out = String::new();
    let mut number = String::new();
    let flush = |number: &mut String, out: &mut String| -> Option<()> {
        if number.is_empty() {
            return Some(());
        }
        let n: u32 = number.parse().ok()?;
        if n > 7 {
            return None;
        }
        out.push_str(&((n % 7) + 1).to_string());
        number.clear();
        Some(())
    };
    let mut after_slash = false;
    for c in field.chars() {
        if c.is_ascii_digit() && !after_slash {
            number.push(c);
        } else {
            flush(&mut number, &mut out)?;
            after_slash = c == '/' || (after_slash && c.is_ascii_digit());
            out.push(c);
        }
    }
    flush(&mut number, &mut out)?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_expressions_are_accepted_and_bad_ones_explained() {
        assert_eq!(normalise("0 */6 * * *").unwrap(), "0 0 */6 * * *");
        assert_eq!(normalise("30 2 * * 1-5").unwrap(), "0 30 2 * * 2-6");
        assert_eq!(normalise("0 0 * * 0,7").unwrap(), "0 0 0 * * 1,1");
        assert_eq!(normalise("15 3 1 JAN *").unwrap(), "0 15 3 1 JAN *");
        let e = normalise("0 25 * * *").unwrap_err();
        assert!(e.contains("field 2 (hour)") && e.contains("0-23"), "{e}");
        let e = normalise("0 */6 * *").unwrap_err();
        assert!(e.contains("5 fields") && e.contains("found 4"), "{e}");
        let e = normalise("0 0 * * 9").unwrap_err();
        assert!(e.contains("field 5 (day of week)"), "{e}");
        let e = normalise("0 0 30 2 *").unwrap_err();
        assert!(e.contains("never fires"), "{e}");
    }
}

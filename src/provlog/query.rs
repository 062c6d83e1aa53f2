//! What a reader asks of the provisioning log.

use chrono::{DateTime, Duration, Utc};

/// Who a query is about: the resources a name resolved to, and the names themselves
/// (so a person deleted since, with no resource left, is still found).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// Resource ids.
    pub ids: Vec<String>,
    /// userName comparison keys.
    pub user_name_keys: Vec<String>,
    /// displayNames, lower-cased.
    pub display_names: Vec<String>,
}

impl Subject {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.user_name_keys.is_empty() && self.display_names.is_empty()
    }
}

/// A query: every field narrows it; newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Records about these resources or names only.
    pub subject: Option<Subject>,
    pub provider: Option<String>,
    /// `User` or `Group`.
    pub resource_kind: Option<String>,
    pub target: Option<String>,
    /// `scim.change` or `delivery.action`.
    pub kind: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// From this time on (inclusive) …
    pub since: Option<DateTime<Utc>>,
    /// … to before this one.
    pub until: Option<DateTime<Utc>>,
    /// Records older than this id: the cursor of the next page.
    pub before_id: Option<i64>,
    /// Records about change events in this range (what a change caused).
    pub change_seq: Option<i64>,
    pub limit: usize,
}

/// The largest page a query answers.
pub const MAX_LIMIT: usize = 10_000;

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            subject: None,
            provider: None,
            resource_kind: None,
            target: None,
            kind: None,
            action: None,
            outcome: None,
            since: None,
            until: None,
            before_id: None,
            change_seq: None,
            limit: 100,
        }
    }
}

/// A time a reader types: RFC 3339 (`2026-12-01T09:00:00Z`), a date
/// (`2026-12-01`, midnight UTC), or an age before `now` (`90s`, `15m`, `2h`, `7d`).
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad_time(text))?;
    let age = match unit {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    }
    .ok_or_else(|| bad_time(text))?;
    now.checked_sub_signed(age).ok_or_else(|| bad_time(text))
}

fn bad_time(text: &str) -> String {
    format!(
        "{text:?} is not a time: give RFC 3339 (2026-12-01T09:00:00Z), a date (2026-12-01) or an age (15m, 2h, 7d)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_admins_type_them() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_time("2h", now).unwrap(), now - Duration::hours(2));
        assert_eq!(parse_time("7d", now).unwrap(), now - Duration::days(7));
        assert_eq!(
            parse_time("2026-12-01", now).unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-12-01T09:30:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T08:30:00+00:00"
        );
        for bad in ["", "2x", "h", "99999999999999999999d", "yesterday"] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}

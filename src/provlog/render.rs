//! The provisioning log as people read it: one-line summaries for tables and the CSV
//! admins know from Entra's "Download" (same column names, in the same spirit).

use serde_json::Value;

use super::record::{CHANGE, LogEntry, OPERATOR};

/// The CSV's columns, as Entra's provisioning-log download names them where it has
/// one.
pub const CSV_COLUMNS: [&str; 16] = [
    "Date (UTC)",
    "Identity",
    "User name",
    "Display name",
    "Action",
    "Source System",
    "Target System",
    "Status",
    "Modified Properties",
    "Steps",
    "Error Code",
    "Reason",
    "Duration (ms)",
    "Change ID",
    "Request ID",
    "Log ID",
];

/// A value of a change: a string, a list (`a, b`) or nothing (`(none)`).
fn shown(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "(empty)".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.is_empty() => "(none)".to_owned(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// `title: Associate → Partner; password: (changed, not shown)`, and for groups
/// `members: +3 −1`. `names` turns a member id into a name where one is known.
pub fn changes_summary(e: &LogEntry, names: &dyn Fn(&str) -> Option<String>) -> String {
    let mut parts = Vec::new();
    for c in e
        .body
        .get("changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let path = short_path(c.get("path").and_then(Value::as_str).unwrap_or("?"));
        if c.get("redacted").and_then(Value::as_bool) == Some(true) {
            parts.push(format!("{path}: (changed, not shown)"));
        } else {
            parts.push(format!(
                "{path}: {} → {}",
                shown(c.get("old")),
                shown(c.get("new"))
            ));
        }
    }
    if let Some(m) = e.body.get("members") {
        let list = |k: &str| -> Vec<String> {
            m.get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|id| names(id).unwrap_or_else(|| id.to_owned()))
                .collect()
        };
        let count = |k: &str, listed: usize| {
            m.get(format!("{k}Count").as_str())
                .and_then(Value::as_u64)
                .map_or(listed, |n| usize::try_from(n).unwrap_or(listed))
        };
        let (added, removed) = (list("added"), list("removed"));
        let replaced = m.get("replaced").and_then(Value::as_bool) == Some(true);
        let mut s = String::from(if replaced {
            "members replaced"
        } else {
            "members"
        });
        if !added.is_empty() {
            s.push_str(&format!(
                " +{} ({})",
                count("added", added.len()),
                brief(&added)
            ));
        }
        if !removed.is_empty() {
            s.push_str(&format!(
                " −{} ({})",
                count("removed", removed.len()),
                brief(&removed)
            ));
        }
        parts.push(s);
    }
    parts.join("; ")
}

/// A path as a summary shows it: an extension's attribute by its own name
/// (`urn:…:enterprise:2.0:User:department` reads `department`); the record keeps the
/// full path.
fn short_path(path: &str) -> &str {
    if path.starts_with("urn:") {
        path.rsplit(':').next().unwrap_or(path)
    } else {
        path
    }
}

/// The first few names of a list, and how many more.
fn brief(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

/// `scope: in; match: adopted (email); action: create`.
pub fn steps_summary(e: &LogEntry) -> String {
    e.body
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            let step = s.get("step").and_then(Value::as_str).unwrap_or("?");
            let result = s.get("result").and_then(Value::as_str).unwrap_or("?");
            match s.get("detail").and_then(Value::as_str) {
                Some(d) => format!("{step}: {result} ({d})"),
                None => format!("{step}: {result}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `POST /api/v2/users → 201 (12 ms)`, one per call.
pub fn calls_summary(e: &LogEntry) -> Vec<String> {
    e.body
        .get("calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let method = c.get("method").and_then(Value::as_str).unwrap_or("?");
            let path = c.get("path").and_then(Value::as_str).unwrap_or("?");
            let status = c
                .get("status")
                .and_then(Value::as_u64)
                .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            let ms = c.get("ms").and_then(Value::as_u64).unwrap_or(0);
            format!("{method} {path} → {status} ({ms} ms)")
        })
        .collect()
}

/// Where a record's action went: `entra → imanage`, `entra → scim-bridge` for a
/// change received, `console (token ab12) → imanage` for an operator's action.
pub fn route(e: &LogEntry) -> String {
    let to = e.target().unwrap_or("scim-bridge");
    if e.kind == OPERATOR {
        let text = |k: &str| e.body.get(k).and_then(Value::as_str).unwrap_or("?");
        return format!("{} ({}) → {to}", text("via"), text("who"));
    }
    format!("{} → {to}", e.provider().unwrap_or("?"))
}

/// A record in one line: a change's old → new values; an action's answer when it
/// failed, else its last call (and how many more) or its steps; what an operator did.
pub fn details(e: &LogEntry, names: &dyn Fn(&str) -> Option<String>) -> String {
    let text = |k: &str| e.body.get(k).and_then(Value::as_str);
    if e.kind == CHANGE {
        let s = changes_summary(e, names);
        return if s.is_empty() {
            "(no attribute changed)".into()
        } else {
            s
        };
    }
    if e.kind == OPERATOR {
        return text("detail").unwrap_or("").to_owned();
    }
    if let Some(err) = text("error") {
        return err.to_owned();
    }
    let calls = calls_summary(e);
    match calls.last() {
        Some(last) if calls.len() > 1 => format!("{last} (+{} calls)", calls.len() - 1),
        Some(last) => last.clone(),
        None => steps_summary(e),
    }
}

/// One CSV line (no line break) for `e`, in [`CSV_COLUMNS`] order.
pub fn csv_line(e: &LogEntry, names: &dyn Fn(&str) -> Option<String>) -> String {
    let r = e.resource();
    let text = |k: &str| {
        e.body
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let source = if e.kind == OPERATOR {
        format!("{} ({})", text("via"), text("who"))
    } else {
        text("provider")
    };
    let target = e.target().unwrap_or("scim-bridge").to_owned();
    let error = text("error");
    let code = error_code(&error);
    let change = e
        .change_seqs()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .unwrap_or_default();
    let fields = [
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        r.id.clone(),
        r.user_name.clone().unwrap_or_default(),
        r.display_name.clone().unwrap_or_default(),
        e.action().to_owned(),
        source,
        target,
        e.outcome().to_owned(),
        if e.kind == OPERATOR {
            text("detail")
        } else {
            changes_summary(e, names)
        },
        steps_summary(e),
        code,
        error,
        e.body
            .get("durationMs")
            .and_then(Value::as_u64)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        change,
        text("requestId"),
        e.id.to_string(),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// The header line of the CSV.
pub fn csv_header() -> String {
    CSV_COLUMNS.join(",")
}

/// An error's code: the HTTP status it starts with (`HTTP 409 Conflict: …`), if any.
fn error_code(error: &str) -> String {
    error
        .strip_prefix("HTTP ")
        .and_then(|r| r.get(..3))
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("")
        .to_owned()
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A
/// value a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR at the
/// start: an IdP attribute is attacker-controlled text) is prefixed with `'`, as
/// OWASP advises against CSV injection.
pub fn csv_field(s: &str) -> String {
    let mut v = String::with_capacity(s.len() + 2);
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        v.push('\'');
    }
    v.push_str(s);
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provlog::record::{ACTION, CHANGE};
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn entry(kind: &str, body: Value) -> LogEntry {
        LogEntry {
            id: 7,
            seq: None,
            at: DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap(),
            kind: kind.into(),
            body,
        }
    }

    #[test]
    fn a_change_reads_as_old_to_new_with_secrets_withheld() {
        let e = entry(
            CHANGE,
            json!({"op": "update", "changes": [
                {"path": "title", "old": "Associate", "new": "Partner"},
                {"path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "old": "Tax", "new": "Tax & Trusts"},
                {"path": "emails", "old": null, "new": ["work: a@x"]},
                {"path": "password", "redacted": true}
            ]}),
        );
        assert_eq!(
            changes_summary(&e, &|_| None),
            "title: Associate → Partner; department: Tax → Tax & Trusts; emails: (none) → work: a@x; password: (changed, not shown)"
        );
    }

    #[test]
    fn member_changes_name_the_members() {
        let e = entry(
            CHANGE,
            json!({"members": {"added": ["u1", "u2", "u3", "u4"], "addedCount": 1200, "removed": ["u9"]}}),
        );
        let names = |id: &str| (id == "u1").then(|| "ann".to_owned());
        assert_eq!(
            changes_summary(&e, &names),
            "members +1200 (ann, u2, u3 and 1 more) −1 (u9)"
        );
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
    }

    #[test]
    fn a_csv_line_has_every_column() {
        let e = entry(
            ACTION,
            json!({"target": "imanage", "provider": "entra", "action": "create", "outcome": "dead",
                   "resource": {"type": "User", "id": "u-1", "userName": "ann"},
                   "steps": [{"step": "scope", "result": "in"}], "calls": [],
                   "changeSeqs": [3, 5], "durationMs": 9, "error": "HTTP 409 Conflict: exists"}),
        );
        let line = csv_line(&e, &|_| None);
        let header_fields = csv_header().split(',').count();
        assert_eq!(header_fields, CSV_COLUMNS.len());
        assert!(line.starts_with("2026-"), "{line}");
        assert!(line.contains(",u-1,ann,,create,entra,imanage,dead,,scope: in,409,HTTP 409 Conflict: exists,9,4-5,,7"), "{line}");
    }
}

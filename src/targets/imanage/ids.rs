//! SCIM names → iManage ids, under iManage's rules for them, and ids into URL paths.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::delivery::TargetError;

/// What cannot stand raw in one path segment: `/` would split it (a group "IP/IT"),
/// `?` and `#` would end the path, `%` would start an escape, `\` is a separator to URL
/// parsers of http(s), and the rest is not allowed in URLs. RFC 3986's sub-delims, `:`
/// and `@` stay as they are, so everyday ids (`JSMITH@FIRM.EXAMPLE`, `ACTIVE!1002`)
/// read the same on the wire as before; non-ASCII is always encoded.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// `id` percent-encoded for one URL path segment (`users/{id}`, `groups/{gid}/members`):
/// every id, library and container put into an iManage path goes through here.
pub fn segment(id: &str) -> impl std::fmt::Display + '_ {
    utf8_percent_encode(id, SEGMENT)
}

/// Longest user id accepted (iManage logins are short; 64 is generous).
const MAX_USER_ID: usize = 64;
/// Longest group id iManage accepts.
const MAX_GROUP_ID: usize = 254;

/// An iManage user id for a SCIM userName: logins have no whitespace and are compared
/// case-insensitively, so they are sent upper-case.
pub fn user_id(user_name: &str) -> Result<String, TargetError> {
    let name = user_name.trim();
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.chars().any(char::is_whitespace) {
        Some("iManage user ids cannot contain whitespace")
    } else if name.chars().count() > MAX_USER_ID {
        Some("iManage user ids are at most 64 characters")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match why {
        Some(why) => Err(TargetError::Permanent {
            message: format!("userName {user_name:?} cannot be an iManage user id: {why}"),
        }),
        None => Ok(name.to_uppercase()),
    }
}

/// An iManage group id for a SCIM displayName: upper-case, whitespace as `_`.
pub fn group_id(display_name: &str) -> Result<String, TargetError> {
    let id: String = display_name
        .trim()
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    if id.is_empty() || id.chars().count() > MAX_GROUP_ID || id.chars().any(char::is_control) {
        return Err(TargetError::Permanent {
            message: format!(
                "displayName {display_name:?} cannot be an iManage group id (1 to 254 printable characters)"
            ),
        });
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_imanage_rules_with_clear_errors() {
        assert_eq!(
            user_id(" jsmith@firm.example ").unwrap(),
            "JSMITH@FIRM.EXAMPLE"
        );
        let e = user_id("John Smith").unwrap_err().to_string();
        assert!(
            e.contains("cannot be an iManage user id") && e.contains("whitespace"),
            "{e}"
        );
        assert!(user_id(&"x".repeat(65)).is_err());
        assert!(user_id("").is_err());
        assert_eq!(group_id("Litigation Team").unwrap(), "LITIGATION_TEAM");
        assert!(group_id(&"g".repeat(255)).is_err());
    }

    #[test]
    fn a_segment_keeps_its_slashes_and_everyday_ids_read_as_before() {
        assert_eq!(segment("IP/IT").to_string(), "IP%2FIT");
        assert_eq!(
            segment("JSMITH@FIRM.EXAMPLE").to_string(),
            "JSMITH@FIRM.EXAMPLE"
        );
        assert_eq!(segment("ACTIVE!1002").to_string(), "ACTIVE!1002");
        assert_eq!(segment("a b?c#d%e\\f").to_string(), "a%20b%3Fc%23d%25e%5Cf");
        assert_eq!(segment("ÄRZTE").to_string(), "%C3%84RZTE");
        // What a URL parser makes of it: the id is one segment and decodes back.
        let u = url::Url::parse(&format!(
            "https://dms.example/groups/{}/members",
            segment("IP/IT\\x")
        ))
        .unwrap();
        let parts: Vec<&str> = u.path_segments().unwrap().collect();
        assert_eq!(parts, ["groups", "IP%2FIT%5Cx", "members"]);
        let back = percent_encoding::percent_decode_str(parts[1])
            .decode_utf8()
            .unwrap();
        assert_eq!(back, "IP/IT\\x");
    }
}

//! SCIM names → iManage ids, under iManage's rules for them.

use crate::delivery::TargetError;

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
}

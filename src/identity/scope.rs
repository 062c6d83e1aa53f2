//! Scope: which of a provider's users and groups one target receives, like Entra's
//! assignment plus scoping filters. A user is in scope when it is a member of one of
//! the named groups (directly, or through nested groups where the target asks) and
//! matches the user filter; a group is in scope when it is one of the named groups.
//! Both parts are optional; a target with no scope receives everything.
//!
//! Pure: delivery gathers the user's group names first (see `delivery::relations`).

use serde_json::Value;

use crate::scim::{Filter, ResourceKind, SchemaRegistry};

/// `[targets.scope]` of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// displayNames of the groups whose members the target receives (compared ignoring
    /// case); these groups are also the only ones it receives. Empty: every user and
    /// every group.
    pub groups: Vec<String>,
    /// Members of groups nested in a named group count too.
    pub nested: bool,
    /// A SCIM filter the user must match, with its text for explanations.
    pub users: Option<(String, Filter)>,
    /// Where the scope was written (`targets[1].scope`), for explanations.
    pub origin: String,
}

/// Whether one resource is in a target's scope, and why, in words for `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeDecision {
    pub in_scope: bool,
    pub why: String,
}

impl Scope {
    /// Whether deciding a user's scope needs its group names.
    pub fn needs_groups(&self) -> bool {
        !self.groups.is_empty()
    }

    /// A user, given the display names of its groups (direct, plus nested ones when
    /// `nested` is set).
    pub fn user(&self, doc: &Value, groups: &[String]) -> ScopeDecision {
        let mut reasons = Vec::new();
        if !self.groups.is_empty() {
            match groups
                .iter()
                .find(|g| self.groups.iter().any(|s| s.eq_ignore_ascii_case(g)))
            {
                Some(g) => reasons.push(format!("member of {g:?}")),
                None => {
                    return ScopeDecision {
                        in_scope: false,
                        why: format!(
                            "not a member of any group in {}.groups ({}){}",
                            self.origin,
                            self.groups
                                .iter()
                                .map(|g| format!("{g:?}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            if self.nested {
                                ", nested groups included"
                            } else {
                                ""
                            }
                        ),
                    };
                }
            }
        }
        if let Some((text, filter)) = &self.users {
            if filter.matches(doc, ResourceKind::User, &SchemaRegistry::new()) {
                reasons.push(format!("matches {text}"));
            } else {
                return ScopeDecision {
                    in_scope: false,
                    why: format!("does not match {}.users: {text}", self.origin),
                };
            }
        }
        ScopeDecision {
            in_scope: true,
            why: format!("in {}: {}", self.origin, reasons.join(", ")),
        }
    }

    /// A group: in scope when it is one of the named groups (or no groups are named).
    pub fn group(&self, doc: &Value) -> ScopeDecision {
        let name = doc.get("displayName").and_then(Value::as_str).unwrap_or("");
        if self.groups.is_empty() {
            return ScopeDecision {
                in_scope: true,
                why: format!("{} names no groups, so every group is sent", self.origin),
            };
        }
        let named = self.groups.iter().any(|g| g.eq_ignore_ascii_case(name));
        ScopeDecision {
            in_scope: named,
            why: if named {
                format!("{name:?} is named in {}.groups", self.origin)
            } else {
                format!("{name:?} is not named in {}.groups", self.origin)
            },
        }
    }

    /// Whether `name` is one of the named groups.
    pub fn names(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g.eq_ignore_ascii_case(name))
    }
}

/// The scope decision for a document of either kind; `None` scope: everything is in.
pub fn decide(
    scope: Option<&Scope>,
    kind: ResourceKind,
    doc: &Value,
    groups: &[String],
) -> ScopeDecision {
    match (scope, kind) {
        (None, _) => ScopeDecision {
            in_scope: true,
            why: "the target has no [targets.scope], so it receives everything".into(),
        },
        (Some(s), ResourceKind::User) => s.user(doc, groups),
        (Some(s), ResourceKind::Group) => s.group(doc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::parse_filter;
    use serde_json::json;

    fn scope(groups: &[&str], users: Option<&str>) -> Scope {
        Scope {
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            nested: false,
            users: users.map(|u| {
                (
                    u.to_owned(),
                    parse_filter(u, &Default::default()).expect("filter"),
                )
            }),
            origin: "targets[1].scope".into(),
        }
    }

    #[test]
    fn users_need_a_named_group_and_the_filter() {
        let s = scope(&["Claras Users"], Some("userType eq \"Employee\""));
        let employee = json!({"userName": "a@firm", "userType": "Employee"});
        let contractor = json!({"userName": "b@firm", "userType": "Contractor"});
        let d = s.user(&employee, &["claras users".into()]);
        assert!(d.in_scope, "{}", d.why);
        assert!(d.why.contains("member of \"claras users\""), "{}", d.why);
        let d = s.user(&employee, &["DiliTrust Admins".into()]);
        assert!(!d.in_scope);
        assert!(d.why.contains("not a member of any group"), "{}", d.why);
        let d = s.user(&contractor, &["Claras Users".into()]);
        assert!(!d.in_scope);
        assert!(d.why.contains("does not match"), "{}", d.why);
    }

    #[test]
    fn only_named_groups_are_sent() {
        let s = scope(&["Claras Users"], None);
        assert!(s.group(&json!({"displayName": "CLARAS USERS"})).in_scope);
        assert!(
            !s.group(&json!({"displayName": "DiliTrust Admins"}))
                .in_scope
        );
        let everyone = scope(&[], Some("active eq true"));
        assert!(everyone.group(&json!({"displayName": "Anything"})).in_scope);
        assert!(decide(None, ResourceKind::User, &json!({}), &[]).in_scope);
    }
}

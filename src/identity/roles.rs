//! One role per user, the way the seed products assign them: from an explicit
//! attribute (DiliTrust's `roleId`, Clio Operate's first `roles` value or `userType`),
//! from group membership in a privilege order (Claras: Owner > Manager > Adviser >
//! Assistant), or from condition rules over attributes and groups (Clumio). Which
//! source wins is configurable; within a source the most privileged role wins.
//!
//! Two rules protect what people set by hand in the app: a user no rule matches keeps
//! the role the app already holds, and a protected role (Claras' Owner) is never
//! lowered automatically. Both need the app's current role, so [`RoleRules::resolve`]
//! takes it and [`RoleRules::needs_current`] says when reading it is worth a request.

use std::fmt;

use serde_json::Value;

use crate::scim::{Filter, ResourceKind, SchemaRegistry};
use crate::template::{Context, Template};

/// Where a role can come from, in the order a target's `precedence` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSource {
    Attribute,
    Groups,
    Conditions,
}

impl RoleSource {
    pub const ALL: [RoleSource; 3] = [
        RoleSource::Attribute,
        RoleSource::Groups,
        RoleSource::Conditions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RoleSource::Attribute => "attribute",
            RoleSource::Groups => "groups",
            RoleSource::Conditions => "conditions",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        RoleSource::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
    }
}

/// A condition rule: the role applies when the filter matches the user and, if
/// `member_of` is not empty, the user is in at least one of those groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub role: String,
    pub when: Option<(String, Filter)>,
    pub member_of: Vec<String>,
    /// Where it was written, for `explain`: `targets[1].roles.rules[0]`.
    pub origin: String,
}

/// One target's role rules (for the providers it names, or all of them).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleRules {
    /// Providers these rules apply to; empty means every provider.
    pub providers: Vec<String>,
    /// The SCIM attribute the role is written to at the target (`roles`, `userType`,
    /// `urn:…:User:roleId`).
    pub field: String,
    /// Every role, most privileged first.
    pub order: Vec<String>,
    /// Given to a new account no rule matches.
    pub default: Option<String>,
    /// Roles never lowered automatically.
    pub protected: Vec<String>,
    pub precedence: Vec<RoleSource>,
    /// A template naming the role, or its value at the target.
    pub attribute: Option<Template>,
    /// Role → the value the target stores for it (DiliTrust's role UUIDs); a role
    /// without one is sent by name.
    pub values: Vec<(String, String)>,
    /// Role → the group names that grant it.
    pub groups: Vec<(String, Vec<String>)>,
    pub conditions: Vec<Condition>,
    /// Whether membership of a group nested in a named group counts (Clumio: it does not).
    pub expand_nested: bool,
    /// Where the rules were written, for `explain`: `targets[1].roles`.
    pub origin: String,
}

/// What the rules decided for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Write this role (by its target value).
    Set { role: String, value: String },
    /// Write back the value the target holds.
    Keep { value: String },
    /// No role: the field is left out.
    Leave,
}

/// A decision and the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub why: String,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

/// A role found by one source, with its reason.
struct Found {
    role: String,
    why: String,
}

impl RoleRules {
    /// Whether these rules apply to `provider`'s users.
    pub fn applies_to(&self, provider: &str) -> bool {
        self.providers.is_empty() || self.providers.iter().any(|p| p == provider)
    }

    /// Whether the user's groups matter (so group changes re-evaluate their members).
    pub fn uses_groups(&self) -> bool {
        (self.precedence.contains(&RoleSource::Groups) && !self.groups.is_empty())
            || (self.precedence.contains(&RoleSource::Conditions)
                && self.conditions.iter().any(|c| !c.member_of.is_empty()))
    }

    fn rank(&self, role: &str) -> Option<usize> {
        self.order.iter().position(|r| r.eq_ignore_ascii_case(role))
    }

    /// The role's canonical spelling (as in `order`).
    fn canonical(&self, role: &str) -> Option<&str> {
        self.rank(role).map(|i| self.order[i].as_str())
    }

    /// What the target stores for `role`.
    pub fn value_of(&self, role: &str) -> String {
        self.values
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(role))
            .map_or_else(|| role.to_owned(), |(_, v)| v.clone())
    }

    /// The role a value names: a role's target value or the role's name.
    pub fn role_of_value(&self, value: &str) -> Option<&str> {
        let value = value.trim();
        self.values
            .iter()
            .find(|(_, v)| v.eq_ignore_ascii_case(value))
            .and_then(|(r, _)| self.canonical(r))
            .or_else(|| self.canonical(value))
    }

    /// Whether `role` is never lowered or deleted automatically.
    pub fn is_protected(&self, role: &str) -> bool {
        self.protected.iter().any(|p| p.eq_ignore_ascii_case(role))
    }

    /// The most privileged of `roles` (all in `order`).
    fn best(&self, found: impl Iterator<Item = Found>) -> Option<Found> {
        found.min_by_key(|f| self.rank(&f.role).unwrap_or(usize::MAX))
    }

    fn by_attribute(&self, user: &Value, notes: &mut Vec<String>) -> Option<Found> {
        let template = self.attribute.as_ref()?;
        let ctx = Context::new().with("user", user);
        match template.render(&ctx) {
            Ok(v) => match self.role_of_value(&v) {
                Some(role) => Some(Found {
                    role: role.to_owned(),
                    why: format!("{}.attribute {:?} = {v:?}", self.origin, template.source()),
                }),
                None => {
                    notes.push(format!(
                        "{}.attribute gave {v:?}, which names no role in the order; ignored",
                        self.origin
                    ));
                    None
                }
            },
            Err(_) => None,
        }
    }

    fn by_groups(&self, groups: &[String]) -> Option<Found> {
        let found = self.groups.iter().filter_map(|(role, names)| {
            let g = names
                .iter()
                .find(|n| groups.iter().any(|g| g.eq_ignore_ascii_case(n)))?;
            Some(Found {
                role: role.clone(),
                why: format!("member of group {g:?} ({}.groups.{role})", self.origin),
            })
        });
        self.best(found)
    }

    fn by_conditions(&self, user: &Value, groups: &[String]) -> Option<Found> {
        let reg = SchemaRegistry::new();
        let found = self.conditions.iter().filter_map(|c| {
            let filter_ok = c
                .when
                .as_ref()
                .is_none_or(|(_, f)| f.matches(user, ResourceKind::User, &reg));
            let group = c
                .member_of
                .iter()
                .find(|n| groups.iter().any(|g| g.eq_ignore_ascii_case(n)));
            let group_ok = c.member_of.is_empty() || group.is_some();
            if !(filter_ok && group_ok) {
                return None;
            }
            let mut why = c.origin.clone();
            if let Some((text, _)) = &c.when {
                why.push_str(&format!(": {text}"));
            }
            if let Some(g) = group {
                why.push_str(&format!(", member of {g:?}"));
            }
            Some(Found {
                role: c.role.clone(),
                why,
            })
        });
        self.best(found)
    }

    /// The role the first source in precedence finds, and notes on values ignored.
    fn matched(&self, user: &Value, groups: &[String]) -> (Option<Found>, Vec<String>) {
        let mut notes = Vec::new();
        for source in &self.precedence {
            let found = match source {
                RoleSource::Attribute => self.by_attribute(user, &mut notes),
                RoleSource::Groups => self.by_groups(groups),
                RoleSource::Conditions => self.by_conditions(user, groups),
            };
            if found.is_some() {
                return (found, notes);
            }
        }
        (None, notes)
    }

    /// Whether [`RoleRules::resolve`] could decide differently knowing the target's
    /// current role: no rule matches (keep it), or a protected role outranks the match
    /// (it may be a downgrade).
    pub fn needs_current(&self, user: &Value, groups: &[String]) -> bool {
        match self.matched(user, groups).0 {
            None => true,
            Some(f) => {
                let rank = self.rank(&f.role).unwrap_or(usize::MAX);
                self.protected
                    .iter()
                    .any(|p| self.rank(p).is_some_and(|r| r < rank))
            }
        }
    }

    /// The role `user` (in `groups`) gets, given the value the target holds now
    /// (`None` for a new account, or one without a role).
    pub fn resolve(&self, user: &Value, groups: &[String], current: Option<&str>) -> Decision {
        let (found, notes) = self.matched(user, groups);
        let current = current.map(str::trim).filter(|c| !c.is_empty());
        let current_role = current.and_then(|c| self.role_of_value(c));
        let note = |why: String| {
            if notes.is_empty() {
                why
            } else {
                format!("{why} ({})", notes.join("; "))
            }
        };
        match (found, current, current_role) {
            (Some(f), Some(value), Some(cur))
                if self.is_protected(cur)
                    && self.rank(&f.role).unwrap_or(usize::MAX)
                        > self.rank(cur).unwrap_or(usize::MAX) =>
            {
                Decision {
                    outcome: Outcome::Keep {
                        value: value.to_owned(),
                    },
                    why: note(format!(
                        "{cur} is protected ({}.protected) and never lowered automatically; the rules give {} by {}",
                        self.origin, f.role, f.why
                    )),
                }
            }
            (Some(f), _, _) => Decision {
                outcome: Outcome::Set {
                    value: self.value_of(&f.role),
                    role: f.role,
                },
                why: note(f.why),
            },
            (None, Some(value), _) => Decision {
                outcome: Outcome::Keep {
                    value: value.to_owned(),
                },
                why: note(format!(
                    "no rule matches, so the current role {value:?} is kept"
                )),
            },
            (None, None, _) => match &self.default {
                Some(d) => Decision {
                    outcome: Outcome::Set {
                        role: d.clone(),
                        value: self.value_of(d),
                    },
                    why: note(format!("no rule matches: {}.default", self.origin)),
                },
                None => Decision {
                    outcome: Outcome::Leave,
                    why: note("no rule matches and there is no default: left to the app".into()),
                },
            },
        }
    }
}

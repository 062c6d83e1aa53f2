//! One role per user, the way the seed products assign them: from an explicit
//! attribute (DiliTrust's `roleId`, Clio Operate's first `roles` value or `userType`),
//! from group membership in a privilege order (Claras: Owner > Manager > Adviser >
//! Assistant), or from condition rules over attributes and groups (Clumio). Which
//! source wins is configurable; within a source the most privileged role wins.
//!
//! Two rules protect what people set by hand in the app: a user no rule matches keeps
//! the role the app already holds (unless the target says roles come only from the
//! rules, [`Unmatched::Reset`], as Clumio evaluates every user by its rules), and a
//! protected role (Claras' Owner) is never lowered automatically, whichever way. Both
//! need the app's current role, so [`RoleRules::resolve`] takes it and
//! [`RoleRules::needs_current`] says when reading it is worth a request.

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

/// What a user no rule matches gets (`[targets.roles] unmatched`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unmatched {
    /// The role the app holds stays (set by hand there, or by a rule that no longer
    /// matches); a new account gets the default.
    #[default]
    Keep,
    /// Roles come only from the rules: the default role, or no role without one.
    Reset,
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
    /// Given to a new account no rule matches (to every such account with
    /// [`Unmatched::Reset`]).
    pub default: Option<String>,
    /// What a user no rule matches gets.
    pub unmatched: Unmatched,
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
    /// No role, and one the app holds is removed: the field is sent empty (`[]` or
    /// `null`, which RFC 7643 §2.5 makes equal to unassigned), since an app may read
    /// an attribute left out of a PUT as "not asserted" and keep its value.
    Clear,
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

/// What the rules give a user, before the app's current role is considered.
enum Given {
    Role(Found),
    /// Roles come only from the rules, none matches and there is no default.
    NoRole(String),
    /// No rule matches and the app's role stays ([`Unmatched::Keep`]).
    Unmatched,
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
    /// current role: no rule matches (keep it, unless roles come only from the rules),
    /// or a protected role outranks what the rules give (it may be a downgrade).
    pub fn needs_current(&self, user: &Value, groups: &[String]) -> bool {
        let rank = match self.given(user, groups).0 {
            Given::Unmatched => return true,
            Given::Role(f) => self.rank(&f.role).unwrap_or(usize::MAX),
            Given::NoRole(_) => usize::MAX,
        };
        self.protected
            .iter()
            .any(|p| self.rank(p).is_some_and(|r| r < rank))
    }

    /// What the rules give `user` before the app's current role is considered.
    fn given(&self, user: &Value, groups: &[String]) -> (Given, Vec<String>) {
        let (found, notes) = self.matched(user, groups);
        let given = match (found, self.unmatched, &self.default) {
            (Some(f), _, _) => Given::Role(f),
            (None, Unmatched::Keep, _) => Given::Unmatched,
            (None, Unmatched::Reset, default) => {
                let reset = format!(
                    "no rule matches, and roles come only from the rules ({}.unmatched = \"reset\")",
                    self.origin
                );
                match default {
                    Some(d) => Given::Role(Found {
                        role: d.clone(),
                        why: format!("{reset}: {}.default", self.origin),
                    }),
                    None => Given::NoRole(format!("{reset} and there is no default: no role")),
                }
            }
        };
        (given, notes)
    }

    /// The role `user` (in `groups`) gets, given the value the target holds now
    /// (`None` for a new account, or one without a role).
    pub fn resolve(&self, user: &Value, groups: &[String], current: Option<&str>) -> Decision {
        let (given, notes) = self.given(user, groups);
        let current = current.map(str::trim).filter(|c| !c.is_empty());
        let current_role = current.and_then(|c| self.role_of_value(c));
        let note = |why: String| {
            if notes.is_empty() {
                why
            } else {
                format!("{why} ({})", notes.join("; "))
            }
        };
        // A protected role the app holds is never replaced by a lower one, nor by none.
        let lowered = match &given {
            Given::Role(f) => Some((
                self.rank(&f.role).unwrap_or(usize::MAX),
                format!("the rules give {} by {}", f.role, f.why),
            )),
            Given::NoRole(why) => Some((usize::MAX, why.clone())),
            Given::Unmatched => None,
        };
        if let (Some((rank, gives)), Some(value), Some(cur)) = (lowered, current, current_role)
            && self.is_protected(cur)
            && rank > self.rank(cur).unwrap_or(usize::MAX)
        {
            return Decision {
                outcome: Outcome::Keep {
                    value: value.to_owned(),
                },
                why: note(format!(
                    "{cur} is protected ({}.protected) and never lowered automatically; {gives}",
                    self.origin
                )),
            };
        }
        match (given, current) {
            (Given::Role(f), _) => Decision {
                outcome: Outcome::Set {
                    value: self.value_of(&f.role),
                    role: f.role,
                },
                why: note(f.why),
            },
            (Given::NoRole(why), Some(value)) => Decision {
                outcome: Outcome::Clear,
                why: note(format!("{why}, so {value:?} is removed")),
            },
            (Given::NoRole(why), None) => Decision {
                outcome: Outcome::Clear,
                why: note(why),
            },
            (Given::Unmatched, Some(value)) => Decision {
                outcome: Outcome::Keep {
                    value: value.to_owned(),
                },
                why: note(format!(
                    "no rule matches, so the current role {value:?} is kept"
                )),
            },
            (Given::Unmatched, None) => match &self.default {
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

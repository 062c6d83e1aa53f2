//! `[targets.roles]` (or `[[targets.roles]]`, one per group of providers): how a
//! target's single role per user is chosen. See [`crate::identity::RoleRules`].

use super::reader::{Ctx, Field, quote};
use super::schema::{ProviderConfig, TargetKind};
use super::tree::Val;
use crate::identity::{Condition, RoleRules, RoleSource};
use crate::scim::{AttrPath, FilterLimits, ResourceKind, parse_filter};
use crate::template::Template;

/// Reads `roles` as one table or an array of tables.
pub(super) fn read_roles(
    ctx: &mut Ctx,
    f: &Field<'_>,
    kind: TargetKind,
    providers: &[ProviderConfig],
) -> Vec<RoleRules> {
    if kind != TargetKind::Scim {
        ctx.error(
            f.loc(),
            &f.path,
            "only SCIM apps take roles: iManage's REST API has no user roles (give access through groups) and webhooks carry the resource as stored",
        );
        return Vec::new();
    }
    let items = match &f.node.val {
        Val::Array(_) => ctx
            .array(f, "an array of tables ([[targets.roles]])")
            .unwrap_or_default(),
        _ => vec![Field {
            node: f.node,
            path: f.path.clone(),
        }],
    };
    let several = items.len() > 1;
    let mut out: Vec<RoleRules> = Vec::new();
    for item in items {
        if let Some(r) = read_one(ctx, &item, providers) {
            if several && r.providers.is_empty() && out.iter().any(|o| o.providers.is_empty()) {
                ctx.error(
                    item.loc(),
                    &item.path,
                    "two role tables without `providers`: the second would never apply; name the providers each one is for",
                );
            }
            out.push(r);
        }
    }
    out
}

/// The non-empty strings of an array (each wrong item reported).
pub(super) fn strings(ctx: &mut Ctx, f: &Field<'_>, expected: &str) -> Vec<String> {
    ctx.array(f, expected)
        .unwrap_or_default()
        .iter()
        .filter_map(|i| ctx.non_empty_string(i))
        .collect()
}

fn read_one(ctx: &mut Ctx, f: &Field<'_>, idps: &[ProviderConfig]) -> Option<RoleRules> {
    let mut t = ctx.table(f)?;
    let order = t.require(
        ctx,
        "order",
        "every role, most privileged first, like [\"Owner\", \"Manager\", \"Adviser\", \"Assistant\"]",
    );
    let providers = t.get("providers");
    let field = t.get("field");
    let default = t.get("default");
    let unmatched = t.get("unmatched");
    let protected = t.get("protected");
    let precedence = t.get("precedence");
    let attribute = t.get("attribute");
    let values = t.get("values");
    let groups = t.get("groups");
    let rules = t.get("rules");
    t.finish(ctx);

    let order: Vec<String> = order
        .map(|o| strings(ctx, &o, "an array of role names"))
        .unwrap_or_default();
    for (i, role) in order.iter().enumerate() {
        if order[..i].iter().any(|r| r.eq_ignore_ascii_case(role)) {
            ctx.error(
                f.loc(),
                &format!("{}.order", f.path),
                format!("{} is listed twice", quote(role)),
            );
        }
    }
    let known = |ctx: &mut Ctx, item: &Field<'_>, role: &str| -> Option<String> {
        match order.iter().find(|r| r.eq_ignore_ascii_case(role)) {
            Some(r) => Some(r.clone()),
            None => {
                ctx.error(
                    item.loc(),
                    &item.path,
                    format!(
                        "{} is not in {}.order ({})",
                        quote(role),
                        f.path,
                        order.join(" > ")
                    ),
                );
                None
            }
        }
    };
    let providers = providers
        .map(|p| strings(ctx, &p, "an array of provider names like [\"entra\"]"))
        .unwrap_or_default();
    let field = match field {
        Some(ff) => {
            let text = ctx.non_empty_string(&ff)?;
            if AttrPath::parse(&text).is_err() {
                ctx.error(
                    ff.loc(),
                    &ff.path,
                    format!(
                        "{} is not a SCIM attribute path like \"roles\", \"userType\" or \"urn:…:User:roleId\"",
                        quote(&text)
                    ),
                );
            }
            text
        }
        None => "roles".to_owned(),
    };
    let default = default.and_then(|d| {
        let s = ctx.non_empty_string(&d)?;
        known(ctx, &d, &s)
    });
    let unmatched = unmatched.and_then(|u| ctx.keyword(&u)).unwrap_or_default();
    let protected = protected
        .and_then(|p| ctx.array(&p, "an array of role names like [\"Owner\"]"))
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            let s = ctx.non_empty_string(i)?;
            known(ctx, i, &s)
        })
        .collect();
    let precedence = match precedence {
        None => vec![
            RoleSource::Attribute,
            RoleSource::Groups,
            RoleSource::Conditions,
        ],
        Some(p) => ctx
            .array(
                &p,
                "an array like [\"attribute\", \"groups\", \"conditions\"]",
            )
            .unwrap_or_default()
            .iter()
            .filter_map(|i| {
                let s = ctx.non_empty_string(i)?;
                let found = RoleSource::parse(&s);
                if found.is_none() {
                    ctx.error(
                        i.loc(),
                        &i.path,
                        format!(
                            "unknown role source {}; expected \"attribute\", \"groups\" or \"conditions\"",
                            quote(&s)
                        ),
                    );
                }
                found
            })
            .collect(),
    };
    let attribute = attribute.and_then(|a| {
        let text = ctx.text(&a, "a template like \"[user.roles.value]\"")?;
        match Template::parse(text).and_then(|t| t.check_roots(&["user"]).map(|()| t)) {
            Ok(t) => {
                super::known_attrs::check(
                    ctx,
                    a.loc(),
                    &a.path,
                    &t,
                    "user",
                    ResourceKind::User,
                    idps,
                );
                Some(t)
            }
            Err(e) => {
                ctx.error(a.loc(), &a.path, e.to_string());
                None
            }
        }
    });
    let values = values
        .map(|v| read_values(ctx, &v, &known))
        .unwrap_or_default();
    let groups = groups
        .map(|g| read_groups(ctx, &g, &known))
        .unwrap_or_default();
    let conditions = rules
        .map(|r| read_conditions(ctx, &r, &known))
        .unwrap_or_default();
    Some(RoleRules {
        providers,
        field,
        order,
        default,
        unmatched,
        protected,
        precedence,
        attribute,
        values,
        groups,
        conditions,
        // Set from the target (`[[targets]] expand_nested`), which owns membership.
        expand_nested: false,
        origin: f.path.clone(),
    })
}

type Known<'a> = dyn Fn(&mut Ctx, &Field<'_>, &str) -> Option<String> + 'a;

/// A table keyed by role (`values`, `groups`), each entry read by `entry`; entries
/// for roles not in the order are reported and skipped.
fn read_by_role<T>(
    ctx: &mut Ctx,
    f: &Field<'_>,
    expected: &str,
    known: &Known<'_>,
    entry: impl Fn(&mut Ctx, &Field<'_>) -> Option<T>,
) -> Vec<(String, T)> {
    let Val::Table(entries) = &f.node.val else {
        ctx.mismatch(f, expected);
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        let item = Field {
            node: &e.node,
            path: format!("{}.{}", f.path, e.key),
        };
        let role = known(ctx, &item, &e.key);
        if let (Some(role), Some(v)) = (role, entry(ctx, &item)) {
            out.push((role, v));
        }
    }
    out
}

/// `values = { Administrator = "3f1c…" }`: role → what the target stores.
fn read_values(ctx: &mut Ctx, f: &Field<'_>, known: &Known<'_>) -> Vec<(String, String)> {
    read_by_role(
        ctx,
        f,
        "a table of role = \"value at the target\"",
        known,
        |ctx, item| ctx.non_empty_string(item),
    )
}

/// `groups = { Manager = ["Claras-Managers"] }`: role → group names. Blank lists are
/// allowed: not every role needs a group (Claras leaves unused fields blank).
fn read_groups(ctx: &mut Ctx, f: &Field<'_>, known: &Known<'_>) -> Vec<(String, Vec<String>)> {
    read_by_role(
        ctx,
        f,
        "a table of role = [\"group name\", …]",
        known,
        |ctx, item| {
            Some(match &item.node.val {
                Val::Str(_) => ctx.non_empty_string(item).into_iter().collect(),
                _ => strings(ctx, item, "a group name or an array of group names"),
            })
        },
    )
}

/// `[[targets.roles.rules]]`: `role`, and `when` (a SCIM filter over the user) and/or
/// `member_of` (group names, any of).
fn read_conditions(ctx: &mut Ctx, f: &Field<'_>, known: &Known<'_>) -> Vec<Condition> {
    let Some(items) = ctx.array(f, "an array of tables ([[targets.roles.rules]])") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(mut t) = ctx.table(&item) else {
            continue;
        };
        let role = t.require(ctx, "role", "the role this rule gives");
        let when = t.get("when");
        let member_of = t.get("member_of");
        t.finish(ctx);
        let role = role.and_then(|r| {
            let s = ctx.non_empty_string(&r)?;
            known(ctx, &r, &s)
        });
        let when = when.and_then(|w| {
            let text = ctx.non_empty_string(&w)?;
            match parse_filter(&text, &FilterLimits::default()) {
                Ok(filter) => Some((text, filter)),
                Err(e) => {
                    ctx.error(w.loc(), &w.path, format!("not a SCIM filter: {}", e.detail));
                    None
                }
            }
        });
        let member_of = member_of
            .map(|m| strings(ctx, &m, "an array of group names"))
            .unwrap_or_default();
        if when.is_none() && member_of.is_empty() {
            ctx.error(
                item.loc(),
                &item.path,
                "a rule needs `when` (a SCIM filter such as 'title sw \"Head\"') or `member_of` (group names), or both",
            );
            continue;
        }
        if let Some(role) = role {
            out.push(Condition {
                role,
                when,
                member_of,
                origin: item.path.clone(),
            });
        }
    }
    out
}

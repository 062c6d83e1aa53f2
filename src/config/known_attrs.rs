//! Whether a template's `[user.…]` / `[group.…]` paths name attributes the bridge
//! keeps. The SCIM front drops attributes no schema declares (or refuses them, in the
//! strict dialect), so a path to one would never have a value: a typo such as
//! `[user.nmae.givenName]` is refused at load instead of leaving a field empty for ever.
//! Attributes a provider adds to a core schema (`[[providers.schemas]]` with the core
//! User URN as `id`) count as core attributes.

use super::reader::{Ctx, quote};
use super::schema::{ProviderConfig, ResourceSetting};
use super::tree::Loc;
use crate::scim::{ResourceKind, SchemaRegistry};
use crate::template::{Step, Template};

/// Attributes every resource has (RFC 7643 §3.1).
const COMMON: &[&str] = &["id", "externalId", "meta"];

/// Reports, at `loc`/`path`, each path in `template` rooted at `root` whose first
/// attribute no schema of `kind` declares (core, the enterprise extension, or a
/// provider's `[[providers.schemas]]`).
pub(super) fn check(
    ctx: &mut Ctx,
    loc: &Loc,
    path: &str,
    template: &Template,
    root: &str,
    kind: ResourceKind,
    providers: &[ProviderConfig],
) {
    let registry = SchemaRegistry::new();
    let setting = match kind {
        ResourceKind::User => ResourceSetting::User,
        ResourceKind::Group => ResourceSetting::Group,
    };
    let custom = || {
        providers
            .iter()
            .flat_map(|p| p.schemas.iter())
            .filter(move |s| s.resource == setting)
    };
    for expr in template.exprs() {
        if !expr.path.root.eq_ignore_ascii_case(root) {
            continue;
        }
        let (schema, name) = match expr.path.steps.as_slice() {
            [Step::Schema(urn), Step::Attr { name, .. }, ..] => (Some(urn.as_str()), name),
            [Step::Attr { name, .. }, ..] => (None, name),
            _ => continue,
        };
        let core_id = &registry.core(kind).id;
        let in_core = || {
            registry.core(kind).attr(name).is_some()
                || COMMON.iter().any(|c| c.eq_ignore_ascii_case(name))
                || custom().any(|s| {
                    s.id.eq_ignore_ascii_case(core_id)
                        && s.attributes
                            .iter()
                            .any(|a| a.name.eq_ignore_ascii_case(name))
                })
        };
        let known = match schema {
            None => in_core(),
            Some(urn) if urn.eq_ignore_ascii_case(core_id) => in_core(),
            Some(urn) => {
                let builtin = registry
                    .extensions(kind)
                    .iter()
                    .find(|s| s.id.eq_ignore_ascii_case(urn))
                    .map(|s| s.attr(name).is_some());
                let declared = custom().find(|s| s.id.eq_ignore_ascii_case(urn)).map(|s| {
                    s.attributes
                        .iter()
                        .any(|a| a.name.eq_ignore_ascii_case(name))
                });
                match builtin.or(declared) {
                    Some(found) => found,
                    None => {
                        ctx.error(
                            loc,
                            path,
                            format!(
                                "{}: no schema {} is declared for {}s (add it under [[providers.schemas]])",
                                expr.path,
                                quote(urn),
                                kind.name()
                            ),
                        );
                        continue;
                    }
                }
            }
        };
        if !known {
            let place = schema.unwrap_or("the core schema");
            ctx.error(
                loc,
                path,
                format!(
                    "{}: {} has no attribute {}, so the bridge never keeps a value for it",
                    expr.path,
                    place,
                    quote(name)
                ),
            );
        }
    }
}

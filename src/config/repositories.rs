//! `[[repositories]]` and `[resolver]`: where each kind of work keeps its documents in
//! iManage, found through templated workspace searches.

use std::collections::BTreeMap;

use super::reader::{Ctx, Field};
use super::schema::{
    RepositoryConfig, ResolverConfig, TargetConfig, TargetKind, WorkTypeConfig, WorkspaceSearch,
};
use super::tree::Loc;
use super::values;
use super::walk::unique_name;
use crate::template::{Template, TemplateError, looks_like_assignments, parse_assignments};

/// The roots a repository's templates may read.
const ROOTS: &[&str] = &["workitem"];
/// The profile fields an advanced search may use.
pub const SEARCH_FIELDS_HINT: &str = "name, description, custom1 … custom30";
/// Most resolutions a cache may be asked to hold.
const MAX_CACHE_SIZE: usize = 10_000_000;

/// Whether iManage's workspace search takes `key` as a filter.
pub fn is_search_field(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "name"
        || key == "description"
        || key
            .strip_prefix("custom")
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=30).contains(&n))
}

/// How `workspace` text is read: told outright, or guessed from its shape.
#[derive(Clone, Copy)]
enum Mode {
    Auto,
    Title,
    Fields,
}

pub(super) fn read_repositories(
    ctx: &mut Ctx,
    f: &Field<'_>,
    targets: &[TargetConfig],
) -> Vec<RepositoryConfig> {
    let Some(items) = ctx.array(f, "an array of tables ([[repositories]])") else {
        return Vec::new();
    };
    let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
    let mut out = Vec::new();
    for item in items {
        let Some(mut t) = ctx.table(&item) else {
            continue;
        };
        let name = t.require(ctx, "name", "expected a repository name like \"matters\"");
        let target = t.require(ctx, "target", "the name of an iManage target");
        let workspace = t.require(
            ctx,
            "workspace",
            "a title such as \"[workitem.title]\" or fields such as \"custom1=[workitem.client.reference], custom2=[workitem.reference]\"",
        );
        let search = t.get("search");
        let folder = t.get("folder");
        let libraries = t.get("libraries");
        let work_types = t.get("work_types");
        t.finish(ctx);

        let name = name.and_then(|f| {
            unique_name(
                ctx,
                &f,
                &mut seen,
                "repository",
                "a repository name like \"matters\"",
            )
        });
        let target = target.and_then(|f| read_target(ctx, &f, targets));
        let mode = search
            .and_then(|f| read_mode(ctx, &f))
            .unwrap_or(Mode::Auto);
        let search = workspace.and_then(|f| read_search(ctx, &f, mode));
        let folder = folder.and_then(|f| read_folder(ctx, &f));
        let libraries = libraries
            .map(|f| read_libraries(ctx, &f))
            .unwrap_or_default();
        let work_types = work_types
            .map(|f| read_work_types(ctx, &f))
            .unwrap_or_default();
        if let (Some(name), Some(target), Some(search)) = (name, target, search) {
            out.push(RepositoryConfig {
                name,
                target,
                search,
                folder,
                libraries,
                work_types,
            });
        }
    }
    out
}

pub(super) fn read_resolver(ctx: &mut Ctx, f: &Field<'_>) -> ResolverConfig {
    let mut out = ResolverConfig::default();
    let Some(mut t) = ctx.table(f) else {
        return out;
    };
    let ttl = t.get("cache_ttl");
    let size = t.get("cache_size");
    t.finish(ctx);
    if let Some(v) = ttl.and_then(|f| ctx.parse(&f, values::DURATION_EXPECTED, values::duration)) {
        out.cache_ttl = v;
    }
    if let Some(v) = size.and_then(|f| ctx.usize(&f, 1)) {
        out.cache_size = v.min(MAX_CACHE_SIZE);
    }
    out
}

fn read_target(ctx: &mut Ctx, f: &Field<'_>, targets: &[TargetConfig]) -> Option<String> {
    let name = ctx.non_empty_string(f)?;
    match targets.iter().find(|t| t.name == name) {
        Some(t) if t.kind() == TargetKind::Imanage => Some(name),
        Some(_) => {
            ctx.error(
                f.loc(),
                &f.path,
                format!(
                    "target {name:?} is not an iManage target; workspaces are found in iManage"
                ),
            );
            None
        }
        None => {
            let known: Vec<&str> = targets
                .iter()
                .filter(|t| t.kind() == TargetKind::Imanage)
                .map(|t| t.name.as_str())
                .collect();
            let known = if known.is_empty() {
                "none is configured; add a [[targets]] with kind = \"imanage\"".to_string()
            } else {
                format!("iManage targets: {}", known.join(", "))
            };
            ctx.error(
                f.loc(),
                &f.path,
                format!("no target named {name:?} ({known})"),
            );
            None
        }
    }
}

fn read_mode(ctx: &mut Ctx, f: &Field<'_>) -> Option<Mode> {
    let s = ctx.text(f, "\"title\" or \"fields\"")?;
    match s {
        "auto" => Some(Mode::Auto),
        "title" => Some(Mode::Title),
        "fields" => Some(Mode::Fields),
        other => {
            ctx.error(
                f.loc(),
                &f.path,
                format!("expected \"title\" (default search), \"fields\" (advanced search) or \"auto\", found {other:?}"),
            );
            None
        }
    }
}

fn template_error(ctx: &mut Ctx, f: &Field<'_>, e: &TemplateError) {
    ctx.error(f.loc(), &f.path, e.to_string());
}

fn read_search(ctx: &mut Ctx, f: &Field<'_>, mode: Mode) -> Option<WorkspaceSearch> {
    let text = ctx.text(f, "a workspace title or search fields")?;
    if text.trim().is_empty() {
        ctx.error(f.loc(), &f.path, "the workspace search is empty");
        return None;
    }
    let fields = match mode {
        Mode::Fields => true,
        Mode::Title => false,
        Mode::Auto => looks_like_assignments(text, is_search_field),
    };
    let parsed = if fields {
        parse_assignments(text, is_search_field, SEARCH_FIELDS_HINT, ROOTS)
            .map(WorkspaceSearch::Fields)
    } else {
        Template::parse(text).and_then(|t| {
            t.check_roots(ROOTS)?;
            Ok(WorkspaceSearch::Title(t))
        })
    };
    match parsed {
        Ok(s) => Some(s),
        Err(e) => {
            template_error(ctx, f, &e);
            None
        }
    }
}

fn read_folder(ctx: &mut Ctx, f: &Field<'_>) -> Option<String> {
    let s = ctx.non_empty_string(f)?;
    let parts: Vec<&str> = s.split('/').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        ctx.error(
            f.loc(),
            &f.path,
            format!("expected a folder path like \"Documents\" or \"Correspondence/Inbound\", found {s:?}"),
        );
        return None;
    }
    Some(parts.join("/"))
}

fn read_libraries(ctx: &mut Ctx, f: &Field<'_>) -> Vec<String> {
    let Some(items) = ctx.array(
        f,
        "an array of library names like [\"ACTIVE\", \"ARCHIVE\"]",
    ) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let s = ctx.non_empty_string(item)?;
            if s.contains(|c: char| c.is_whitespace() || c == '/' || c == '!') {
                ctx.error(
                    item.loc(),
                    &item.path,
                    format!("{s:?} is not an iManage library name"),
                );
                return None;
            }
            Some(s)
        })
        .collect()
}

fn read_work_types(ctx: &mut Ctx, f: &Field<'_>) -> Vec<WorkTypeConfig> {
    let Some(items) = ctx.array(f, "an array of tables ([[repositories.work_types]])") else {
        return Vec::new();
    };
    let mut out: Vec<WorkTypeConfig> = Vec::new();
    for item in items {
        let Some(mut t) = ctx.table(&item) else {
            continue;
        };
        let name = t.require(ctx, "name", "the work type, e.g. \"Conveyancing\"");
        let workspace = t.get("workspace");
        let search = t.get("search");
        let folder = t.get("folder");
        let libraries = t.get("libraries");
        t.finish(ctx);
        let Some(name) = name.and_then(|f| {
            let n = ctx.non_empty_string(&f)?;
            if out.iter().any(|w| w.name.eq_ignore_ascii_case(&n)) {
                ctx.error(f.loc(), &f.path, format!("work type {n:?} is listed twice"));
                return None;
            }
            Some(n)
        }) else {
            continue;
        };
        let mode = search
            .and_then(|f| read_mode(ctx, &f))
            .unwrap_or(Mode::Auto);
        out.push(WorkTypeConfig {
            name,
            search: workspace.and_then(|f| read_search(ctx, &f, mode)),
            folder: folder.and_then(|f| read_folder(ctx, &f)),
            libraries: libraries.map(|f| read_libraries(ctx, &f)),
        });
    }
    out
}

//! Listing and searching: filter planning onto indexes, sorting, paging, projection.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use super::document::{Document, Rendered};
use super::render::scim_from;
use super::text;
use super::{Ctx, Directory, store_error};
use crate::scim::schema::LIST_RESPONSE_SCHEMA;
use crate::scim::username::comparison_key;
use crate::scim::{
    AttrPath, CompareOp, Filter, ListParams, ResourceKind, ScimError, compare_for_sort,
    project_owned,
};
use crate::store::{Lookup, StoredResource};

/// Rows fetched per round trip when a filter has to scan.
const SCAN_BATCH: usize = 1000;

impl Directory {
    /// A ListResponse over `kinds` (one kind for `/Users`, both for root `/.search`).
    pub async fn list(
        &self,
        ctx: &Ctx,
        kinds: &[ResourceKind],
        params: &ListParams,
    ) -> Result<Document, ScimError> {
        let proj = &params.projection;
        let provider = ctx.provider.clone();
        let filter = params.filter.as_ref();
        let start = params.start_index;
        let count = params
            .count
            .unwrap_or(self.limits.default_page_size)
            .min(self.limits.max_page_size);
        let sort = params.sort.as_ref();

        if let Some(answer) = self.user_name_lookup(ctx, kinds, params, count).await? {
            return Ok(answer);
        }

        // Unfiltered, unsorted, one type: page straight from the store.
        if let ([kind], None, None) = (kinds, filter, sort) {
            let total = self
                .store
                .count(&provider.name, *kind)
                .await
                .map_err(store_error)?;
            let mut resources = Vec::new();
            if count > 0 {
                let page = self
                    .store
                    .scan(&provider.name, *kind, 0, start - 1, count)
                    .await
                    .map_err(store_error)?;
                for r in &page.items {
                    resources.push(self.render_streamed(ctx, r, proj).await?);
                }
            }
            return Ok(list_response(total as usize, start, resources));
        }

        let mut matched: Vec<(StoredResource, Value)> = Vec::new();
        for &kind in kinds {
            let need_members =
                kind == ResourceKind::Group && filter.is_some_and(|f| f.reads_attribute("members"));
            match filter.and_then(|f| plan(f, kind)) {
                Some(lookups) => {
                    let mut seen = std::collections::BTreeSet::new();
                    for l in lookups {
                        for r in self
                            .store
                            .lookup(&provider.name, kind, l)
                            .await
                            .map_err(store_error)?
                        {
                            if seen.insert(r.seq) {
                                let (r, full) = self.candidate(ctx, r, need_members).await?;
                                if filter.is_none_or(|f| f.matches(&full, kind, &provider.registry))
                                {
                                    matched.push((r, full));
                                }
                            }
                        }
                    }
                }
                None => {
                    let mut after = 0;
                    loop {
                        let page = self
                            .store
                            .scan(&provider.name, kind, after, 0, SCAN_BATCH)
                            .await
                            .map_err(store_error)?;
                        for r in page.items {
                            let (r, full) = self.candidate(ctx, r, need_members).await?;
                            if filter.is_none_or(|f| f.matches(&full, kind, &provider.registry)) {
                                matched.push((r, full));
                            }
                        }
                        match page.next {
                            Some(n) => after = n,
                            None => break,
                        }
                    }
                }
            }
        }
        if let Some(sort) = sort {
            matched.sort_by(|(ra, a), (rb, b)| {
                let o = if ra.kind == rb.kind {
                    compare_for_sort(a, b, &sort.by, ra.kind, &provider.registry)
                } else {
                    Ordering::Equal
                };
                if sort.descending { o.reverse() } else { o }
            });
        } else {
            matched.sort_by_key(|(r, _)| (r.kind == ResourceKind::Group, r.seq));
        }
        let total = matched.len();
        let mut resources = Vec::new();
        for (r, full) in matched.into_iter().skip(start - 1).take(count) {
            if r.kind == ResourceKind::Group
                && proj.wants_members()
                && full.get("members").is_none()
            {
                resources.push(self.render_streamed(ctx, &r, proj).await?);
                continue;
            }
            resources.push(Rendered::Whole(project_owned(
                full,
                r.kind,
                &provider.registry,
                &proj.attributes,
                &proj.excluded,
            )));
        }
        Ok(list_response(total, start, resources))
    }
}

impl Directory {
    /// `filter=userName eq "…"` on `/Users` with no sort and no projection, answered
    /// from the stored text (see [`super::text`]); `None` for any other request, or
    /// when a candidate needs the `Value` path, which then answers the whole request.
    async fn user_name_lookup(
        &self,
        ctx: &Ctx,
        kinds: &[ResourceKind],
        params: &ListParams,
        count: usize,
    ) -> Result<Option<Document>, ScimError> {
        let ([ResourceKind::User], Some(filter), None) = (kinds, &params.filter, &params.sort)
        else {
            return Ok(None);
        };
        let Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(name),
        } = filter
        else {
            return Ok(None);
        };
        if params.projection.is_requested() {
            return Ok(None);
        }
        let lookup = match indexed(path, ResourceKind::User, name) {
            Some(mut l) if l.len() == 1 && matches!(l[0], Lookup::UserNames(_)) => l.remove(0),
            _ => return Ok(None),
        };
        let found = self
            .store
            .lookup_text(&ctx.provider.name, ResourceKind::User, lookup)
            .await
            .map_err(store_error)?;
        let want = comparison_key(name);
        let mut matched = Vec::with_capacity(found.len());
        for r in &found {
            match text::user(&ctx.base_url, r, &ctx.provider.registry, &want) {
                text::Candidate::Rendered(t) => matched.push(t),
                text::Candidate::NoMatch => {}
                text::Candidate::Parse => return Ok(None),
            }
        }
        // The store answers in creation order, as the general path sorts users.
        let total = matched.len();
        let page: Vec<String> = matched
            .into_iter()
            .skip(params.start_index - 1)
            .take(count)
            .collect();
        Ok(Some(Document::text(text::list(
            total,
            params.start_index,
            &page,
        ))))
    }

    /// A resource rendered for filter evaluation (members only when the filter needs them).
    async fn candidate(
        &self,
        ctx: &Ctx,
        mut r: StoredResource,
        need_members: bool,
    ) -> Result<(StoredResource, Value), ScimError> {
        let members = if need_members {
            Some(
                self.store
                    .members(&ctx.provider.name, &r.id)
                    .await
                    .map_err(store_error)?,
            )
        } else {
            None
        };
        // A group may still be rendered from `r` (its members streamed); a user is
        // answered from `full` alone, so its document moves instead of being copied.
        let doc = match r.kind {
            ResourceKind::User => std::mem::take(&mut r.doc),
            ResourceKind::Group => r.doc.clone(),
        };
        let full = scim_from(&ctx.base_url, &r, doc, members.as_deref());
        Ok((r, full))
    }
}

/// The ListResponse; its resources' large member lists are read as it is sent.
fn list_response(total: usize, start: usize, resources: Vec<Rendered>) -> Document {
    let count = resources.len();
    // Nothing to stream (every lookup by userName): one value, written once, as before.
    if resources.iter().all(|r| matches!(r, Rendered::Whole(_))) {
        let items = resources
            .into_iter()
            .filter_map(|r| match r {
                Rendered::Whole(v) => Some(v),
                Rendered::Group { .. } => None,
            })
            .collect();
        return Document::whole(&list_value(total, start, count, items));
    }
    match list_value(total, start, count, Vec::new()) {
        Value::Object(o) => Document::with_array(&o, "Resources", resources),
        other => Document::whole(&other),
    }
}

/// [`list_value`] for `text`'s tests, which hold its ListResponse to this one.
#[cfg(test)]
pub(super) fn list_value_for_tests(total: usize, start: usize, items: Vec<Value>) -> Value {
    list_value(total, start, items.len(), items)
}

fn list_value(total: usize, start: usize, count: usize, items: Vec<Value>) -> Value {
    // Built by hand: `json!` would serialise `items` into a second copy of every
    // resource (it takes each value through `to_value`), a tenth of a lookup's CPU.
    let mut o = Map::with_capacity(5);
    o.insert("schemas".into(), json!([LIST_RESPONSE_SCHEMA]));
    o.insert("totalResults".into(), total.into());
    o.insert("startIndex".into(), start.into());
    o.insert("itemsPerPage".into(), count.into());
    o.insert("Resources".into(), Value::Array(items));
    Value::Object(o)
}

/// Index lookups that return a superset of what `f` matches, or `None` when only a
/// scan can answer it. The filter is still evaluated on every candidate.
fn plan(f: &Filter, kind: ResourceKind) -> Option<Vec<Lookup>> {
    match f {
        Filter::And(l, r) => plan(l, kind).or_else(|| plan(r, kind)),
        Filter::Or(l, r) => {
            let mut a = plan(l, kind)?;
            a.extend(plan(r, kind)?);
            Some(a)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(v),
        } => indexed(path, kind, v),
        Filter::ValuePath { attr, filter } if attr.sub.is_none() => {
            let Filter::Compare {
                path,
                op: CompareOp::Eq,
                value: Value::String(v),
            } = filter.as_ref()
            else {
                return match filter.as_ref() {
                    Filter::And(l, _) => plan(
                        &Filter::ValuePath {
                            attr: attr.clone(),
                            filter: l.clone(),
                        },
                        kind,
                    ),
                    _ => None,
                };
            };
            if path.sub.is_some() || path.schema.is_some() {
                return None;
            }
            let full = AttrPath {
                schema: attr.schema.clone(),
                name: attr.name.clone(),
                sub: Some(path.name.clone()),
            };
            indexed(&full, kind, v)
        }
        _ => None,
    }
}

fn indexed(path: &AttrPath, kind: ResourceKind, v: &str) -> Option<Vec<Lookup>> {
    if let Some(s) = &path.schema
        && !s.eq_ignore_ascii_case(kind.core_schema())
    {
        return None;
    }
    let name = path.name.to_ascii_lowercase();
    let sub = path.sub.as_deref().map(str::to_ascii_lowercase);
    let one = vec![v.to_owned()];
    Some(vec![match (name.as_str(), sub.as_deref(), kind) {
        ("id", None, _) => Lookup::Ids(one),
        ("username", None, ResourceKind::User) => Lookup::UserNames(one),
        ("externalid", None, _) => Lookup::ExternalIds(one),
        ("displayname", None, _) => Lookup::DisplayNames(one),
        ("emails", Some("value"), ResourceKind::User) => Lookup::Emails(one),
        _ => return None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::{FilterLimits, parse_filter};

    fn p(s: &str, kind: ResourceKind) -> Option<Vec<Lookup>> {
        plan(&parse_filter(s, &FilterLimits::default()).unwrap(), kind)
    }

    #[test]
    fn idp_lookups_use_indexes() {
        let u = ResourceKind::User;
        assert_eq!(
            p(r#"userName eq "a""#, u),
            Some(vec![Lookup::UserNames(vec!["a".into()])])
        );
        assert_eq!(
            p(r#"externalId eq "x""#, u),
            Some(vec![Lookup::ExternalIds(vec!["x".into()])])
        );
        assert_eq!(
            p(r#"emails.value eq "m""#, u),
            Some(vec![Lookup::Emails(vec!["m".into()])])
        );
        assert_eq!(
            p(r#"emails[type eq "work" and value eq "m"]"#, u),
            None,
            "first conjunct is not indexable; scanning is correct, just slower"
        );
        assert_eq!(
            p(r#"emails[value eq "m"]"#, u),
            Some(vec![Lookup::Emails(vec!["m".into()])])
        );
        assert_eq!(
            p(
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#,
                u
            ),
            Some(vec![Lookup::UserNames(vec!["a".into()])])
        );
        assert_eq!(
            p(
                r#"displayName eq "G" and externalId eq "e""#,
                ResourceKind::Group
            ),
            Some(vec![Lookup::DisplayNames(vec!["G".into()])])
        );
        assert_eq!(
            p(r#"userName eq "a" or userName eq "b""#, u).map(|v| v.len()),
            Some(2)
        );
        assert_eq!(p(r#"userName eq "a" or title eq "b""#, u), None);
        assert_eq!(p(r#"userName co "a""#, u), None);
        assert_eq!(p(r#"not (userName eq "a")"#, u), None);
        assert_eq!(p(r#"userName eq "a""#, ResourceKind::Group), None);
    }
}

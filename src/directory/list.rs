//! Listing and searching: filter planning onto indexes, sorting, paging, projection.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::render::to_scim;
use super::write::Projection;
use super::{Ctx, Directory, store_error};
use crate::scim::dialect::normalize_filter_text;
use crate::scim::schema::LIST_RESPONSE_SCHEMA;
use crate::scim::{
    AttrPath, CompareOp, Filter, ResourceKind, ScimError, compare_for_sort, parse_attr_list,
    parse_filter, project,
};
use crate::store::{Lookup, StoredResource};

/// Rows fetched per round trip when a filter has to scan.
const SCAN_BATCH: usize = 1000;

/// Query parameters of `GET /Users` or the body of `POST /.search`.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `filter`.
    pub filter: Option<String>,
    /// `startIndex` (1-based).
    pub start_index: Option<i64>,
    /// `count`.
    pub count: Option<i64>,
    /// `sortBy`.
    pub sort_by: Option<String>,
    /// `sortOrder`: `ascending` (default) or `descending`.
    pub sort_order: Option<String>,
    /// `attributes`.
    pub attributes: Option<String>,
    /// `excludedAttributes`.
    pub excluded_attributes: Option<String>,
}

impl ListParams {
    /// The projection these parameters ask for.
    pub fn projection(&self) -> Result<Projection, ScimError> {
        Ok(Projection {
            attributes: self
                .attributes
                .as_deref()
                .map(parse_attr_list)
                .transpose()?
                .unwrap_or_default(),
            excluded: self
                .excluded_attributes
                .as_deref()
                .map(parse_attr_list)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// Reads a SearchRequest body (RFC 7644 §3.4.3).
    pub fn from_search_request(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(o) = body else {
            return Err(ScimError::invalid_syntax(
                "a SearchRequest must be a JSON object",
            ));
        };
        let get = |k: &str| {
            o.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        let string = |k: &str| -> Result<Option<String>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!("{k} must be a string"))),
            }
        };
        let list = |k: &str| -> Result<Option<String>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_value(format!("{k} must list strings"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| Some(v.join(","))),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{k} must be an array of strings"
                ))),
            }
        };
        let int = |k: &str| -> Result<Option<i64>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .map(Some)
                    .ok_or_else(|| ScimError::invalid_value(format!("{k} must be an integer"))),
            }
        };
        Ok(ListParams {
            filter: string("filter")?,
            start_index: int("startIndex")?,
            count: int("count")?,
            sort_by: string("sortBy")?,
            sort_order: string("sortOrder")?,
            attributes: list("attributes")?,
            excluded_attributes: list("excludedAttributes")?,
        })
    }
}

impl Directory {
    /// A ListResponse over `kinds` (one kind for `/Users`, both for root `/.search`).
    pub async fn list(
        &self,
        ctx: &mut Ctx,
        kinds: &[ResourceKind],
        params: &ListParams,
    ) -> Result<Value, ScimError> {
        let proj = params.projection()?;
        let provider = ctx.provider.clone();
        let filter = match params.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                let text = normalize_filter_text(raw, provider.dialect, &mut ctx.quirks);
                Some(parse_filter(&text, &self.limits.filter)?)
            }
        };
        let start = params.start_index.unwrap_or(1).max(1) as usize;
        let count = params
            .count
            .map_or(self.limits.default_page_size, |c| c.max(0) as usize)
            .min(self.limits.max_page_size);
        let sort = match params.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => {
                let desc = match params.sort_order.as_deref().map(str::to_ascii_lowercase) {
                    None => false,
                    Some(o) if o == "ascending" => false,
                    Some(o) if o == "descending" => true,
                    Some(o) => {
                        return Err(ScimError::invalid_value(format!(
                            "sortOrder must be ascending or descending, not {o:?}"
                        )));
                    }
                };
                Some((AttrPath::parse(s)?, desc))
            }
        };

        // Unfiltered, unsorted, one type: page straight from the store.
        if let ([kind], None, None) = (kinds, &filter, &sort) {
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
                    resources.push(self.render(ctx, r, &proj).await?);
                }
            }
            return Ok(list_response(total as usize, start, resources));
        }

        let mut matched: Vec<(StoredResource, Value)> = Vec::new();
        for &kind in kinds {
            let need_members = kind == ResourceKind::Group
                && filter
                    .as_ref()
                    .is_some_and(|f| f.to_string().to_ascii_lowercase().contains("members"));
            match filter.as_ref().and_then(|f| plan(f, kind)) {
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
                                if filter
                                    .as_ref()
                                    .is_none_or(|f| f.matches(&full, kind, &provider.registry))
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
                            if filter
                                .as_ref()
                                .is_none_or(|f| f.matches(&full, kind, &provider.registry))
                            {
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
        if let Some((path, desc)) = &sort {
            matched.sort_by(|(ra, a), (rb, b)| {
                let o = if ra.kind == rb.kind {
                    compare_for_sort(a, b, path, ra.kind, &provider.registry)
                } else {
                    Ordering::Equal
                };
                if *desc { o.reverse() } else { o }
            });
        } else {
            matched.sort_by_key(|(r, _)| (r.kind == ResourceKind::Group, r.seq));
        }
        let total = matched.len();
        let mut resources = Vec::new();
        for (r, full) in matched.into_iter().skip(start - 1).take(count) {
            let full = if r.kind == ResourceKind::Group
                && proj.wants_members()
                && full.get("members").is_none()
            {
                let members = self
                    .store
                    .members(&provider.name, &r.id)
                    .await
                    .map_err(store_error)?;
                to_scim(&ctx.base_url, &r, Some(&members))
            } else {
                full
            };
            resources.push(project(
                &full,
                r.kind,
                &provider.registry,
                &proj.attributes,
                &proj.excluded,
            ));
        }
        Ok(list_response(total, start, resources))
    }
}

impl Directory {
    /// A resource rendered for filter evaluation (members only when the filter needs them).
    async fn candidate(
        &self,
        ctx: &Ctx,
        r: StoredResource,
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
        let full = to_scim(&ctx.base_url, &r, members.as_deref());
        Ok((r, full))
    }
}

fn list_response(total: usize, start: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
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
    use crate::scim::FilterLimits;

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

//! Reads and writes of single resources: POST, GET, PUT, PATCH, DELETE.

use serde_json::Value;

use super::document::Document;
use super::render::{if_match_allows, member_json, to_scim};
use super::{Ctx, Directory, group_store_error, store_error};
use crate::entropy::uuid_v7;
use crate::provlog::{Between, ChangeOp, Origin, PreparedChange, ResourceNames};
use crate::scim::json::remove_ci;
use crate::scim::{
    AttrPath, MemberOp, MemberRef, Projection, ResourceKind, ScimError, apply_patch,
    check_immutable, member_refs, normalize_resource, parse_patch, project,
};
use crate::store::{MemberChange, Mutation, MutationKind, StoreError, StoredResource};

/// Concurrent PATCHes to one resource retry their read-modify-write this many times
/// before giving up with 409; only a client's own `If-Match` turns a race into 412.
const MAX_ATTEMPTS: usize = 8;

/// A written resource, rendered.
#[derive(Debug)]
pub struct Written {
    /// The SCIM representation (projected), or `None` when the answer is 204.
    pub body: Option<Value>,
    /// `meta.location`.
    pub location: String,
    /// The new version (for the ETag header).
    pub version: i64,
}

impl Directory {
    /// Loads a resource or answers 404.
    async fn load(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
    ) -> Result<StoredResource, ScimError> {
        self.store
            .get(&ctx.provider.name, kind, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ScimError::not_found(format!("{} {id} not found", kind.name())))
    }

    /// Renders `r` with members when the projection needs them.
    pub(super) async fn render(
        &self,
        ctx: &Ctx,
        r: &StoredResource,
        proj: &Projection,
    ) -> Result<Value, ScimError> {
        let members = if r.kind == ResourceKind::Group && proj.wants_members() {
            Some(
                self.store
                    .members(&ctx.provider.name, &r.id)
                    .await
                    .map_err(store_error)?,
            )
        } else {
            None
        };
        let full = to_scim(&ctx.base_url, r, members.as_deref());
        Ok(project(
            &full,
            r.kind,
            &ctx.provider.registry,
            &proj.attributes,
            &proj.excluded,
        ))
    }

    /// `GET /{kind}/{id}`: the body (a large group's members read as it is sent),
    /// the version and `meta.location` when the projection keeps it.
    pub async fn get(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        proj: &Projection,
    ) -> Result<(Document, i64, Option<String>), ScimError> {
        let r = self.load(ctx, kind, id).await?;
        let rendered = self.render_streamed(ctx, &r, proj).await?;
        let location = rendered.location();
        Ok((Document::resource(rendered), r.version, location))
    }

    /// Validates a POST/PUT body; splits group members off the document.
    fn prepare(
        &self,
        ctx: &mut Ctx,
        kind: ResourceKind,
        body: Value,
    ) -> Result<(Value, Option<Vec<MemberRef>>), ScimError> {
        let provider = ctx.provider.clone();
        let who = person(&body);
        let mut doc = normalize_resource(
            body,
            kind,
            &provider.registry,
            provider.dialect,
            &mut ctx.quirks,
        )
        .map_err(|e| provider.undeclared(e, &who))?;
        let mut members = None;
        if let Value::Object(o) = &mut doc {
            remove_ci(o, "id");
            remove_ci(o, "meta");
            if kind == ResourceKind::Group
                && let Some(m) = remove_ci(o, "members")
            {
                members = Some(if m.is_null() {
                    Vec::new()
                } else {
                    member_refs(&m, provider.dialect, &mut ctx.quirks)?
                });
            }
        }
        Ok((doc, members))
    }

    fn mutation(&self, ctx: &Ctx, kind: ResourceKind, id: &str, change: MutationKind) -> Mutation {
        Mutation {
            provider: ctx.provider.name.clone(),
            kind,
            id: id.to_owned(),
            expected_version: None,
            at: self.clock.now(),
            request_id: ctx.request_id.clone(),
            // What IdPs send as members reaches every target: it must name a resource.
            check_members: true,
            change,
            log: None,
        }
    }

    /// The provisioning-log record of a write that takes the resource from `old` to
    /// `new` and is answered with `status`: names, and attributes old → new.
    fn record(
        ctx: &Ctx,
        op: ChangeOp,
        kind: ResourceKind,
        id: &str,
        (old, new): (Option<&Value>, Option<&Value>),
        status: u16,
    ) -> PreparedChange {
        let names = new.or(old).map_or_else(
            || ResourceNames {
                kind: Some(kind),
                id: id.to_owned(),
                ..ResourceNames::default()
            },
            |doc| ResourceNames::of(kind, id, doc),
        );
        let origin = Origin {
            provider: ctx.provider.name.clone(),
            request_id: ctx.request_id.clone(),
            client: ctx.client.clone(),
            token: ctx.token.clone(),
        };
        let between = Between {
            kind,
            registry: &ctx.provider.registry,
            old,
            new,
        };
        // Rendered here, on the request's task, not in the store's writer.
        PreparedChange::of(origin, op, names, between, status)
    }

    /// `POST /{kind}`: 201 with the new resource.
    pub async fn create(
        &self,
        ctx: &mut Ctx,
        kind: ResourceKind,
        body: Value,
        proj: &Projection,
    ) -> Result<Written, ScimError> {
        let (doc, members) = self.prepare(ctx, kind, body)?;
        let now_ms = u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0);
        let id = uuid_v7(now_ms, self.entropy.as_ref());
        let members = members.unwrap_or_default();
        let mut m = self.mutation(
            ctx,
            kind,
            &id,
            MutationKind::Create {
                doc: doc.clone(),
                members: members.clone(),
            },
        );
        m.log = Some(Self::record(
            ctx,
            ChangeOp::Create,
            kind,
            &id,
            (None, Some(&doc)),
            201,
        ));
        let at = m.at;
        let c = self
            .store
            .apply(m)
            .await
            .map_err(|e| group_store_error(e, &doc))?;
        let stored = StoredResource {
            seq: 0,
            provider: ctx.provider.name.clone(),
            kind,
            id,
            version: c.version,
            created: at,
            last_modified: at,
            doc,
        };
        let full = to_scim(&ctx.base_url, &stored, Some(&members));
        Ok(Written {
            location: super::render::location(&ctx.base_url, kind, &stored.id),
            body: Some(project(
                &full,
                kind,
                &ctx.provider.registry,
                &proj.attributes,
                &proj.excluded,
            )),
            version: c.version,
        })
    }

    /// `PUT /{kind}/{id}`: full replacement, immutable attributes enforced.
    pub async fn replace(
        &self,
        ctx: &mut Ctx,
        kind: ResourceKind,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> Result<Written, ScimError> {
        let (doc, members) = self.prepare(ctx, kind, body)?;
        for _ in 0..MAX_ATTEMPTS {
            let cur = self.load(ctx, kind, id).await?;
            precondition(if_match, cur.version)?;
            check_immutable(&cur.doc, &doc, kind, &ctx.provider.registry)?;
            // PUT replaces every attribute, members included: absent means none.
            let changes = if kind == ResourceKind::Group {
                vec![MemberChange::ReplaceAll(
                    members.clone().unwrap_or_default(),
                )]
            } else {
                Vec::new()
            };
            let mut m = self.mutation(
                ctx,
                kind,
                id,
                MutationKind::Update {
                    doc: Some(doc.clone()),
                    members: changes,
                },
            );
            m.expected_version = Some(cur.version);
            m.log = Some(Self::record(
                ctx,
                ChangeOp::Update,
                kind,
                id,
                (Some(&cur.doc), Some(&doc)),
                200,
            ));
            match self.store.apply(m).await {
                Ok(_) => return self.written(ctx, kind, id, proj, true).await,
                Err(StoreError::VersionMismatch { .. }) if if_match.is_none() => continue,
                Err(e) => return Err(group_store_error(e, &doc)),
            }
        }
        Err(contended(id))
    }

    /// `PATCH /{kind}/{id}`. Users answer 200 with the resource; groups answer 204
    /// unless a projection is requested, so that a member change never has to render
    /// a 100,000-member group (RFC 7644 §3.5.2 allows either).
    pub async fn patch(
        &self,
        ctx: &mut Ctx,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> Result<Written, ScimError> {
        let provider = ctx.provider.clone();
        let ops = parse_patch(body, provider.dialect, &mut ctx.quirks)?;
        for _ in 0..MAX_ATTEMPTS {
            let cur = self.load(ctx, kind, id).await?;
            precondition(if_match, cur.version)?;
            let mut doc = cur.doc.clone();
            // Okta repeats the resource's `id` in a path-less replace; with the id in
            // the document the patch engine can accept it as an unchanged read-only value.
            if let Value::Object(o) = &mut doc {
                o.insert("id".into(), Value::String(id.to_owned()));
            }
            let member_ops = apply_patch(
                &mut doc,
                kind,
                &provider.registry,
                &ops,
                provider.dialect,
                &mut ctx.quirks,
            )
            .map_err(|e| provider.undeclared(e, &person(&cur.doc)))?;
            if let Value::Object(o) = &mut doc {
                remove_ci(o, "id");
            }
            let mut changes = Vec::with_capacity(member_ops.len());
            for op in member_ops {
                changes.push(match op {
                    MemberOp::Add(refs) => MemberChange::Add(refs),
                    MemberOp::Remove(ids) => MemberChange::Remove(ids),
                    MemberOp::RemoveAll => MemberChange::RemoveAll,
                    MemberOp::ReplaceAll(refs) => MemberChange::ReplaceAll(refs),
                    MemberOp::RemoveWhere(filter) => {
                        let members = self
                            .store
                            .members(&provider.name, id)
                            .await
                            .map_err(store_error)?;
                        let attr = provider.registry.find(kind, &AttrPath::simple("members"));
                        MemberChange::Remove(
                            members
                                .iter()
                                .filter(|m| {
                                    filter.matches_element(&member_json(&ctx.base_url, m), attr)
                                })
                                .map(|m| m.value.clone())
                                .collect(),
                        )
                    }
                });
            }
            // Member-only changes commute row by row, so concurrent member PATCHes to
            // one large group (Entra sends many) need no version check and never retry.
            let doc_changed = doc != cur.doc;
            let with_body = kind == ResourceKind::User || proj.is_requested();
            let record = Self::record(
                ctx,
                ChangeOp::Update,
                kind,
                id,
                (Some(&cur.doc), Some(&doc)),
                if with_body { 200 } else { 204 },
            );
            let mut m = self.mutation(
                ctx,
                kind,
                id,
                MutationKind::Update {
                    doc: doc_changed.then_some(doc),
                    members: changes,
                },
            );
            m.expected_version = (doc_changed || if_match.is_some()).then_some(cur.version);
            m.log = Some(record);
            match self.store.apply(m).await {
                Ok(_) => {
                    return self.written(ctx, kind, id, proj, with_body).await;
                }
                Err(StoreError::VersionMismatch { .. }) if if_match.is_none() => continue,
                Err(e) => return Err(group_store_error(e, &cur.doc)),
            }
        }
        Err(contended(id))
    }

    async fn written(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        proj: &Projection,
        with_body: bool,
    ) -> Result<Written, ScimError> {
        let r = self.load(ctx, kind, id).await?;
        let body = if with_body {
            Some(self.render(ctx, &r, proj).await?)
        } else {
            None
        };
        Ok(Written {
            body,
            location: super::render::location(&ctx.base_url, kind, id),
            version: r.version,
        })
    }

    /// `DELETE /{kind}/{id}`.
    pub async fn delete(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        let mut m = self.mutation(ctx, kind, id, MutationKind::Delete);
        // The names come from the store, which reads the row it deletes.
        m.log = Some(Self::record(
            ctx,
            ChangeOp::Delete,
            kind,
            id,
            (None, None),
            204,
        ));
        if let Some(h) = if_match {
            let cur = self.load(ctx, kind, id).await?;
            precondition(Some(h), cur.version)?;
            m.expected_version = Some(cur.version);
        }
        self.store.apply(m).await.map_err(store_error)?;
        Ok(())
    }
}

/// Who a document is about, for logs: its userName, else its displayName.
fn person(doc: &Value) -> String {
    ["userName", "displayName"]
        .iter()
        .find_map(|k| crate::scim::json::get_ci(doc, k).and_then(Value::as_str))
        .unwrap_or("(unnamed)")
        .to_owned()
}

fn precondition(if_match: Option<&str>, version: i64) -> Result<(), ScimError> {
    match if_match {
        Some(h) if !if_match_allows(h, version) => Err(ScimError::new(
            412,
            None,
            format!("If-Match {h} does not match the current version W/\"{version}\""),
        )),
        _ => Ok(()),
    }
}

fn contended(id: &str) -> ScimError {
    ScimError::new(
        409,
        None,
        format!("{id} is being changed concurrently; retry the request"),
    )
}

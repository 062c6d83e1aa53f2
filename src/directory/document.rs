//! Answer bodies whose large groups' members are read as the client takes them.
//!
//! A group of 50,000 members rendered whole is a `Value` of 50,000 maps and then a
//! string of several megabytes, per reader at once. A [`Document`] instead holds the
//! text around each large `members` array and reads the members a page at a time
//! from the store while the body is sent, so a reader costs one rendered page. The
//! bytes are the ones `serde_json` would have written for the whole value: the text
//! is written key by key with the same compact serialiser, and each page is
//! projected exactly as the whole array would have been (projection treats the
//! elements of a multi-valued attribute one by one).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::render::{member_json, to_scim};
use super::{Ctx, store_error};
use crate::scim::{MemberRef, Projection, ResourceKind, ScimError, project_owned};
use crate::store::{Store, StoreError, StoredResource};

/// Members read per store round trip. A group with fewer is rendered whole.
pub(super) const MEMBER_PAGE: usize = 1000;

/// A SCIM answer body, in pieces.
pub struct Document {
    pieces: Vec<Piece>,
}

enum Piece {
    Text(String),
    Members(MemberPages),
}

/// The members of one group still to be read, from a first page already read.
pub(super) struct MemberPages {
    group_seq: i64,
    version: i64,
    first: Vec<(i64, MemberRef)>,
    base_url: Arc<str>,
    ctx_provider: Arc<super::Provider>,
    projection: Projection,
}

/// Why a body could not be finished after its first bytes were sent.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The group changed (or went away) while its members were being sent; the
    /// answer is cut rather than mixing two versions.
    #[error("group changed while its members were being sent")]
    Changed,
    /// The store failed.
    #[error("store failure while sending group members: {0}")]
    Store(#[from] StoreError),
}

impl Document {
    /// A body rendered whole.
    pub fn whole(v: &Value) -> Document {
        // Straight into a byte buffer: `Display` goes through `fmt::Write` a piece at
        // a time. Serialising a `Value` cannot fail (its keys are strings); the
        // fallback only keeps that true without a panic.
        let text = serde_json::to_string(v).unwrap_or_else(|_| v.to_string());
        Document {
            pieces: vec![Piece::Text(text)],
        }
    }

    /// A body already written out.
    pub fn text(text: String) -> Document {
        Document {
            pieces: vec![Piece::Text(text)],
        }
    }

    /// The whole text when nothing is left to read (small answers), else `Err(self)`.
    pub fn into_text(mut self) -> Result<String, Document> {
        match self.pieces.as_mut_slice() {
            [Piece::Text(t)] => Ok(std::mem::take(t)),
            _ => Err(self),
        }
    }

    /// The body's chunks: text as is, members a page at a time.
    pub fn into_chunks(
        self,
        store: Arc<dyn Store>,
    ) -> impl futures_util::Stream<Item = Result<Vec<u8>, StreamError>> + Send + 'static {
        futures_util::stream::try_unfold(
            (self.pieces.into_iter(), None::<Cursor>, store),
            |(mut pieces, cursor, store)| async move {
                if let Some(mut c) = cursor
                    && let Some(chunk) = c.next(store.as_ref()).await?
                {
                    return Ok(Some((chunk, (pieces, Some(c), store))));
                }
                match pieces.next() {
                    None => Ok(None),
                    Some(Piece::Text(t)) => Ok(Some((t.into_bytes(), (pieces, None, store)))),
                    Some(Piece::Members(m)) => {
                        let chunk = m.render(&m.first, false);
                        let cursor = Cursor {
                            after: m.first.last().map(|(pos, _)| *pos),
                            done: m.first.len() < MEMBER_PAGE,
                            pages: m,
                        };
                        Ok(Some((chunk, (pieces, Some(cursor), store))))
                    }
                }
            },
        )
    }
}

/// Where a group's member stream is.
struct Cursor {
    pages: MemberPages,
    after: Option<i64>,
    done: bool,
}

impl Cursor {
    /// The next page, rendered with its leading comma, or `None` after the last.
    async fn next(&mut self, store: &dyn Store) -> Result<Option<Vec<u8>>, StreamError> {
        if self.done {
            return Ok(None);
        }
        let p = &self.pages;
        let page = store
            .members_page(p.group_seq, p.version, self.after, MEMBER_PAGE)
            .await?
            .ok_or(StreamError::Changed)?;
        self.done = page.len() < MEMBER_PAGE;
        let Some((last, _)) = page.last() else {
            return Ok(None);
        };
        self.after = Some(*last);
        Ok(Some(p.render(&page, true)))
    }
}

impl MemberPages {
    /// Members as the projected `members` array would hold them, comma-separated.
    fn render(&self, page: &[(i64, MemberRef)], leading_comma: bool) -> Vec<u8> {
        let array = page
            .iter()
            .map(|(_, m)| member_json(&self.base_url, m))
            .collect();
        let mut holder = Map::new();
        holder.insert("members".into(), Value::Array(array));
        let projected = project_owned(
            Value::Object(holder),
            ResourceKind::Group,
            &self.ctx_provider.registry,
            &self.projection.attributes,
            &self.projection.excluded,
        );
        let mut out = Vec::with_capacity(page.len() * 160);
        let items = projected
            .get("members")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (i, item) in items.iter().enumerate() {
            if i > 0 || leading_comma {
                out.push(b',');
            }
            // Writing a `Value` to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, item);
        }
        out
    }
}

/// A rendered resource: whole, or a large group whose members follow page by page.
pub(super) enum Rendered {
    Whole(Value),
    Group {
        /// The projected group with `"members": []`.
        skeleton: Map<String, Value>,
        pages: Box<MemberPages>,
    },
}

impl Rendered {
    /// `meta.location`, when the projection keeps it.
    pub(super) fn location(&self) -> Option<String> {
        let meta = match self {
            Rendered::Whole(v) => v.get("meta"),
            Rendered::Group { skeleton, .. } => skeleton.get("meta"),
        };
        meta.and_then(|m| m.get("location"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The resource as pieces of a body.
    fn push_to(self, pieces: &mut Vec<Piece>) {
        match self {
            Rendered::Whole(v) => push_text(pieces, v.to_string()),
            Rendered::Group { skeleton, pages } => {
                let (head, tail) = split_around(&skeleton, "members");
                push_text(pieces, head + "[");
                pieces.push(Piece::Members(*pages));
                push_text(pieces, "]".to_owned() + &tail);
            }
        }
    }
}

impl Document {
    /// One resource.
    pub(super) fn resource(r: Rendered) -> Document {
        let mut pieces = Vec::new();
        r.push_to(&mut pieces);
        Document { pieces }
    }

    /// `list` with its `key` array replaced by `items`, in order.
    pub(super) fn with_array(list: &Map<String, Value>, key: &str, items: Vec<Rendered>) -> Self {
        let (head, tail) = split_around(list, key);
        let mut pieces = Vec::new();
        push_text(&mut pieces, head + "[");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                push_text(&mut pieces, ",".to_owned());
            }
            item.push_to(&mut pieces);
        }
        push_text(&mut pieces, "]".to_owned() + &tail);
        Document { pieces }
    }
}

/// Appends text, joined to the text before it so that small answers stay one piece.
fn push_text(pieces: &mut Vec<Piece>, text: String) {
    if let Some(Piece::Text(t)) = pieces.last_mut() {
        t.push_str(&text);
    } else {
        pieces.push(Piece::Text(text));
    }
}

/// The compact serialisation of `obj` before and after the value of `key`, which
/// `obj` holds: `{"a":1,"key":` and `,"b":2}`.
fn split_around(obj: &Map<String, Value>, key: &str) -> (String, String) {
    let (mut head, mut tail) = (String::from("{"), String::new());
    let mut seen = false;
    for (i, (k, v)) in obj.iter().enumerate() {
        let out = if seen { &mut tail } else { &mut head };
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(k.clone()).to_string());
        out.push(':');
        if k == key && !seen {
            seen = true;
            continue;
        }
        out.push_str(&v.to_string());
    }
    tail.push('}');
    (head, tail)
}

impl super::Directory {
    /// Renders `r` projected, reading a large group's members as the body is sent.
    pub(super) async fn render_streamed(
        &self,
        ctx: &Ctx,
        r: &StoredResource,
        proj: &Projection,
    ) -> Result<Rendered, ScimError> {
        if r.kind != ResourceKind::Group || !proj.wants_members() {
            return Ok(Rendered::Whole(self.render(ctx, r, proj).await?));
        }
        let first = self
            .store
            .members_page(r.seq, r.version, None, MEMBER_PAGE)
            .await
            .map_err(store_error)?;
        let first = match first {
            // Small enough to render whole, or changed since `r` was read: the
            // whole rendering reads the members again, as it always has.
            Some(page) if page.len() < MEMBER_PAGE => {
                let members: Vec<MemberRef> = page.into_iter().map(|(_, m)| m).collect();
                let full = to_scim(&ctx.base_url, r, Some(&members));
                return Ok(Rendered::Whole(self.projected(ctx, r, full, proj)));
            }
            None => return Ok(Rendered::Whole(self.render(ctx, r, proj).await?)),
            Some(page) => page,
        };
        let full = to_scim(&ctx.base_url, r, Some(&[]));
        let skeleton = match self.projected(ctx, r, full, proj) {
            Value::Object(o) if o.contains_key("members") => o,
            // The projection dropped `members` after all.
            other => return Ok(Rendered::Whole(other)),
        };
        Ok(Rendered::Group {
            skeleton,
            pages: Box::new(MemberPages {
                group_seq: r.seq,
                version: r.version,
                first,
                base_url: Arc::from(ctx.base_url.as_str()),
                ctx_provider: Arc::clone(&ctx.provider),
                projection: proj.clone(),
            }),
        })
    }

    fn projected(&self, ctx: &Ctx, r: &StoredResource, full: Value, proj: &Projection) -> Value {
        project_owned(
            full,
            r.kind,
            &ctx.provider.registry,
            &proj.attributes,
            &proj.excluded,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn split_around_writes_what_serde_json_writes() {
        let v = json!({"schemas": ["s"], "id": "a\"b", "members": [1], "meta": {"x": 1.5}});
        let Value::Object(o) = &v else { unreachable!() };
        let (head, tail) = split_around(o, "members");
        assert_eq!(format!("{head}[1]{tail}"), v.to_string());
        let (head, tail) = split_around(o, "meta");
        assert_eq!(format!("{head}{}{tail}", json!({"x": 1.5})), v.to_string());
    }
}

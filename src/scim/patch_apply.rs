//! Applying PATCH operations to a resource document (RFC 7644 §3.5.2.1–3).

use serde_json::{Map, Value};

use crate::scim::coerce::Coercer;
use crate::scim::dialect::{Dialect, Quirk, tolerate};
use crate::scim::error::ScimError;
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::json::{get_ci, get_ci_mut, is_empty, key_ci, remove_ci};
use crate::scim::members::member_op;
use crate::scim::patch::{MemberOp, PatchOp, PatchOpKind};
use crate::scim::path::{AttrPath, PatchPath};
use crate::scim::schema::{AttrType, Attribute, Mutability, ResourceKind, SchemaRegistry};
use crate::scim::undeclared::undeclared;

/// Applies `ops` atomically: on error `resource` is left untouched.
///
/// For groups, operations on `members` never touch `resource["members"]`; they are
/// returned as [`MemberOp`]s in request order for the store to apply.
pub fn apply_patch(
    resource: &mut Value,
    kind: ResourceKind,
    reg: &SchemaRegistry,
    ops: &[PatchOp],
    dialect: Dialect,
    quirks: &mut Vec<Quirk>,
) -> Result<Vec<MemberOp>, ScimError> {
    let mut doc = resource.clone();
    let mut cx = Cx {
        kind,
        reg,
        dialect,
        quirks,
        members: Vec::new(),
    };
    for op in ops {
        match &op.path {
            Some(path) => cx.apply_path(&mut doc, op.op, path, op.value.as_ref())?,
            None => {
                let Some(Value::Object(obj)) = &op.value else {
                    return Err(ScimError::invalid_syntax(
                        "without a path, the value must be an object",
                    ));
                };
                for (key, v) in obj {
                    cx.apply_key(&mut doc, op.op, key, v)?;
                }
            }
        }
    }
    check_required(&doc, kind, reg)?;
    *resource = doc;
    Ok(cx.members)
}

/// Fails when a required attribute (userName, Group displayName) is unassigned.
pub(crate) fn check_required(
    doc: &Value,
    kind: ResourceKind,
    reg: &SchemaRegistry,
) -> Result<(), ScimError> {
    for attr in reg.core(kind).attributes.iter().filter(|a| a.required) {
        if get_ci(doc, &attr.name).is_none_or(is_empty) {
            return Err(ScimError::invalid_value(format!(
                "{} is required",
                attr.name
            )));
        }
    }
    Ok(())
}

struct Cx<'a, 'q> {
    kind: ResourceKind,
    reg: &'a SchemaRegistry,
    dialect: Dialect,
    quirks: &'q mut Vec<Quirk>,
    members: Vec<MemberOp>,
}

/// Where a resolved target lives.
struct Target<'a> {
    extension: Option<&'a str>,
    attr: &'a Attribute,
}

impl<'a> Cx<'a, '_> {
    fn coercer(&mut self) -> Coercer<'_> {
        Coercer {
            dialect: self.dialect,
            quirks: self.quirks,
        }
    }

    fn unknown(&mut self, what: &str) -> Result<(), ScimError> {
        tolerate(
            self.dialect,
            Quirk::UnknownAttributeIgnored(what.to_owned()),
            self.quirks,
            || ScimError::invalid_path(format!("unknown attribute {what:?}")),
        )
    }

    /// One key of a path-less add/replace value.
    fn apply_key(
        &mut self,
        doc: &mut Value,
        op: PatchOpKind,
        key: &str,
        v: &Value,
    ) -> Result<(), ScimError> {
        if key.eq_ignore_ascii_case("schemas") {
            return Ok(());
        }
        let is_urn = key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        if !is_urn && (key.contains('.') || key.contains('[')) {
            tolerate(self.dialect, Quirk::DottedKeyInValue, self.quirks, || {
                ScimError::invalid_path(format!(
                    "attribute key {key:?} is a path; use the \"path\" member"
                ))
            })?;
        }
        let pp = match PatchPath::parse(key) {
            Ok(pp) => pp,
            Err(_) => return self.unknown(key),
        };
        self.apply_path(doc, op, &pp, Some(v))
    }

    fn apply_path(
        &mut self,
        doc: &mut Value,
        op: PatchOpKind,
        pp: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let reg = self.reg;
        if pp.filter.is_none() && pp.attr.sub.is_none() && pp.attr.schema.is_some() {
            let urn = pp.attr.qualified_name();
            if let Some(ext) = reg.extension_for(self.kind, &urn) {
                return self.apply_extension(doc, op, &ext.id, value);
            }
            if reg.core(self.kind).id.eq_ignore_ascii_case(&urn) {
                return self.apply_core(doc, op, value);
            }
        }
        let Some(r) = reg.resolve(self.kind, &pp.attr.parent()) else {
            // A URN-qualified attribute was mapped on purpose: refuse it, naming the
            // configuration that keeps it, rather than drop it (see `undeclared`).
            if pp.attr.schema.is_some() {
                return Err(undeclared(reg, self.kind, &pp.attr.parent(), value));
            }
            return self.unknown(&pp.to_string());
        };
        if self.kind == ResourceKind::Group && r.extension.is_none() && r.attr.name == "members" {
            let mop = member_op(op, pp, value, self.dialect, self.quirks)?;
            self.members.extend(mop);
            return Ok(());
        }
        let target = Target {
            extension: r.extension,
            attr: r.attr,
        };
        let sub_name = pp.attr.sub.as_deref().or(pp.sub.as_deref());
        let sub = match sub_name {
            Some(s) => match r.attr.sub(s) {
                Some(sub) => Some(sub),
                None => return self.unknown(&pp.to_string()),
            },
            None => None,
        };
        if let Some(filter) = &pp.filter {
            if !r.attr.is_multi_complex() {
                return Err(ScimError::invalid_path(format!(
                    "{}: value filters apply only to multi-valued complex attributes",
                    r.attr.name
                )));
            }
            return self.apply_filtered(doc, op, &target, filter, sub, value);
        }
        match sub {
            Some(sub) => self.apply_sub(doc, op, &target, sub, value),
            None => self.apply_whole(doc, op, &target, value),
        }
    }

    fn apply_extension(
        &mut self,
        doc: &mut Value,
        op: PatchOpKind,
        urn: &str,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        match (op, value) {
            (PatchOpKind::Remove, _) | (_, Some(Value::Null)) => {
                if let Some(obj) = doc.as_object_mut() {
                    remove_ci(obj, urn);
                }
                Ok(())
            }
            (_, Some(Value::Object(attrs))) => self.apply_object(doc, op, urn, attrs),
            _ => Err(ScimError::invalid_value(format!("{urn} must be an object"))),
        }
    }

    /// The core schema's URN as a key, its value an object of core attributes
    /// (`{"urn:…:core:2.0:User": {"roleId": …}}`): each applied as a qualified path.
    fn apply_core(
        &mut self,
        doc: &mut Value,
        op: PatchOpKind,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let urn = self.reg.core(self.kind).id.clone();
        match (op, value) {
            (PatchOpKind::Add | PatchOpKind::Replace, Some(Value::Object(attrs))) => {
                self.apply_object(doc, op, &urn, attrs)
            }
            _ => Err(ScimError::invalid_path(format!(
                "{urn} names the whole core schema: add or replace it with an object of attributes, or name one attribute (\"{urn}:title\")"
            ))),
        }
    }

    /// A schema's object of attributes (`{"urn:…:User": {"roleId": …}}`): each key
    /// applied as that schema's qualified path.
    fn apply_object(
        &mut self,
        doc: &mut Value,
        op: PatchOpKind,
        urn: &str,
        attrs: &Map<String, Value>,
    ) -> Result<(), ScimError> {
        // Clients repeat `schemas` inside the object; it is not one of its attributes.
        for (k, v) in attrs
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
        {
            if !crate::scim::path::is_attr_name(k) {
                self.unknown(k)?;
                continue;
            }
            let pp = PatchPath {
                attr: AttrPath {
                    schema: Some(urn.to_string()),
                    name: k.clone(),
                    sub: None,
                },
                filter: None,
                sub: None,
            };
            self.apply_path(doc, op, &pp, Some(v))?;
        }
        Ok(())
    }

    /// Read-only and immutable attributes: allow only writes that change nothing.
    fn check_mutability(
        &mut self,
        attr: &Attribute,
        label: &str,
        current: Option<&Value>,
        new: Option<&Value>,
    ) -> Result<(), ScimError> {
        match attr.mutability {
            Mutability::ReadOnly => {
                if current.is_some() && current == new {
                    self.quirks.push(Quirk::ReadOnlyValueUnchanged);
                    Ok(())
                } else {
                    Err(ScimError::mutability(format!("{label} is read-only")))
                }
            }
            Mutability::Immutable if current.is_some_and(|c| !is_empty(c)) && current != new => {
                Err(ScimError::mutability(format!(
                    "{label} is immutable once set"
                )))
            }
            _ => Ok(()),
        }
    }

    fn container<'d>(
        &self,
        doc: &'d mut Value,
        t: &Target<'_>,
        create: bool,
    ) -> Option<&'d mut Map<String, Value>> {
        let root = doc.as_object_mut()?;
        let Some(urn) = t.extension else {
            return Some(root);
        };
        if key_ci(root, urn).is_none() {
            if !create {
                return None;
            }
            root.insert(urn.to_string(), Value::Object(Map::new()));
            add_schema_urn(root, urn);
        }
        get_ci_mut(root, urn)?.as_object_mut()
    }

    /// Drops an attribute left unassigned, and an extension object left empty.
    fn cleanup(&self, doc: &mut Value, t: &Target<'_>) {
        let Some(root) = doc.as_object_mut() else {
            return;
        };
        let unassigned = |v: &Value| match v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        match t.extension {
            Some(urn) => {
                let Some(key) = key_ci(root, urn) else { return };
                let mut drop_ext = false;
                if let Some(Value::Object(ext)) = root.get_mut(&key) {
                    if ext.get(&t.attr.name).is_some_and(unassigned) {
                        ext.shift_remove(&t.attr.name);
                    }
                    drop_ext = ext.is_empty();
                }
                if drop_ext {
                    root.shift_remove(&key);
                }
            }
            None => {
                if root.get(&t.attr.name).is_some_and(unassigned) {
                    root.shift_remove(&t.attr.name);
                }
            }
        }
    }

    /// add/replace/remove of a whole attribute.
    fn apply_whole(
        &mut self,
        doc: &mut Value,
        op: PatchOpKind,
        t: &Target<'_>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let attr = t.attr;
        let name = attr.name.as_str();
        let new = match (op, value) {
            (PatchOpKind::Remove, _) => None,
            (_, Some(v)) => Some(self.coercer().attr(attr, v, name)?),
            (_, None) => None,
        };
        let current = self
            .container(doc, t, false)
            .and_then(|c| get_ci_mut(c, name))
            .map(|v| v.clone());
        let unassign = op == PatchOpKind::Remove || new.as_ref().is_none_or(Value::is_null);
        if attr.mutability == Mutability::ReadOnly || attr.mutability == Mutability::Immutable {
            let new_view = if unassign { None } else { new.as_ref() };
            self.check_mutability(attr, name, current.as_ref(), new_view)?;
            if attr.mutability == Mutability::ReadOnly {
                return Ok(());
            }
        }
        if op == PatchOpKind::Remove && attr.multi_valued && value.is_some_and(|v| !v.is_null()) {
            return self.remove_listed(doc, t, value);
        }
        if unassign {
            if op == PatchOpKind::Add {
                return Ok(());
            }
            if let Some(c) = self.container(doc, t, false) {
                remove_ci(c, name);
            }
            self.cleanup(doc, t);
            return Ok(());
        }
        let Some(new) = new else { return Ok(()) };
        let Some(c) = self.container(doc, t, true) else {
            return Err(ScimError::invalid_value("resource is not an object"));
        };
        let merged = match (attr.multi_valued, attr.attr_type, get_ci_mut(c, name)) {
            (true, _, Some(Value::Array(existing))) if op == PatchOpKind::Add => {
                let mut all = existing.clone();
                let added: Vec<Value> = new.as_array().cloned().unwrap_or_default();
                for v in added {
                    if !all.contains(&v) {
                        all.push(v);
                    }
                }
                Value::Array(all)
            }
            (false, AttrType::Complex, Some(Value::Object(existing))) => {
                let mut m = existing.clone();
                if let Value::Object(n) = &new {
                    for (k, v) in n {
                        m.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(m)
            }
            _ => new,
        };
        let mut merged = merged;
        if attr.is_multi_complex() {
            keep_one_primary(&mut merged, None);
        }
        remove_ci(c, name);
        c.insert(attr.name.clone(), merged);
        self.cleanup(doc, t);
        Ok(())
    }

    /// Legacy `remove` with a value list: remove only the listed values, never all.
    fn remove_listed(
        &mut self,
        doc: &mut Value,
        t: &Target<'_>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        tolerate(
            self.dialect,
            Quirk::RemoveWithValueList,
            self.quirks,
            || ScimError::invalid_syntax("remove takes no value"),
        )?;
        let listed: Vec<Value> = match value {
            Some(Value::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        };
        let value_def = t.attr.sub("value");
        let Some(c) = self.container(doc, t, false) else {
            return Ok(());
        };
        if let Some(Value::Array(items)) = get_ci_mut(c, &t.attr.name) {
            items.retain(|item| {
                !listed.iter().any(|l| {
                    let lv = get_ci(l, "value").unwrap_or(l);
                    let iv = get_ci(item, "value").unwrap_or(item);
                    item == l
                        || crate::scim::filter_eval::order(iv, lv, value_def)
                            .is_some_and(|o| o == std::cmp::Ordering::Equal)
                })
            });
        }
        self.cleanup(doc, t);
        Ok(())
    }

    /// `name.givenName`, `manager.value`, or `emails.type` (every element).
    fn apply_sub(
        &mut self,
        doc: &mut Value,
        op: PatchOpKind,
        t: &Target<'_>,
        sub: &Attribute,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let label = format!("{}.{}", t.attr.name, sub.name);
        let new = match (op, value) {
            (PatchOpKind::Remove, _) | (_, None) => Value::Null,
            (_, Some(v)) => self.coercer().attr(sub, v, &label)?,
        };
        let current = self
            .container(doc, t, false)
            .and_then(|c| get_ci_mut(c, &t.attr.name))
            .and_then(|v| {
                if v.is_object() {
                    get_ci(v, &sub.name).cloned()
                } else {
                    None
                }
            });
        if t.attr.mutability == Mutability::ReadOnly || sub.mutability != Mutability::ReadWrite {
            let m = if t.attr.mutability == Mutability::ReadOnly {
                t.attr
            } else {
                sub
            };
            let new_view = if new.is_null() { None } else { Some(&new) };
            self.check_mutability(m, &label, current.as_ref(), new_view)?;
            if m.mutability == Mutability::ReadOnly {
                return Ok(());
            }
        }
        let create = !new.is_null();
        let Some(c) = self.container(doc, t, create) else {
            return Ok(());
        };
        if key_ci(c, &t.attr.name).is_none() {
            if !create {
                return Ok(());
            }
            let fresh = if t.attr.multi_valued {
                Value::Array(vec![Value::Object(Map::new())])
            } else {
                Value::Object(Map::new())
            };
            c.insert(t.attr.name.clone(), fresh);
        }
        if let Some(slot) = get_ci_mut(c, &t.attr.name) {
            match &mut *slot {
                Value::Array(items) => {
                    for item in items.iter_mut() {
                        set_sub(item, &sub.name, &new);
                    }
                    items.retain(|i| !is_empty(i));
                }
                other => set_sub(other, &sub.name, &new),
            }
            if t.attr.is_multi_complex() {
                keep_one_primary(slot, None);
            }
        }
        self.cleanup(doc, t);
        Ok(())
    }

    /// `emails[type eq "work"]` and `emails[type eq "work"].value`.
    fn apply_filtered(
        &mut self,
        doc: &mut Value,
        op: PatchOpKind,
        t: &Target<'_>,
        filter: &Filter,
        sub: Option<&Attribute>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let attr = t.attr;
        let label = match sub {
            Some(s) => format!("{}[{filter}].{}", attr.name, s.name),
            None => format!("{}[{filter}]", attr.name),
        };
        let new = match (op, value, sub) {
            (PatchOpKind::Remove, _, _) | (_, None, _) => Value::Null,
            (_, Some(v), Some(s)) => self.coercer().attr(s, v, &label)?,
            (_, Some(v), None) => self.coercer().single(attr, v, &label)?,
        };
        let m = if attr.mutability == Mutability::ReadOnly {
            Some(attr)
        } else {
            sub.filter(|s| s.mutability == Mutability::ReadOnly)
        };
        if let Some(m) = m {
            return Err(ScimError::mutability(format!("{} is read-only", m.name)));
        }
        let pinned = pinned_values(filter, attr);
        let dialect = self.dialect;
        let Some(c) = self.container(doc, t, op != PatchOpKind::Remove) else {
            return Ok(());
        };
        let mut items = match key_ci(c, &attr.name).and_then(|k| c.get(&k)) {
            Some(Value::Array(items)) => items.clone(),
            Some(other) => vec![other.clone()],
            None => Vec::new(),
        };
        let hits: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, el)| filter.matches_element(el, Some(attr)))
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            let quirk = match op {
                PatchOpKind::Add => Quirk::AddToMissingFilteredElement,
                PatchOpKind::Replace => Quirk::ReplaceMissingFilteredElement,
                PatchOpKind::Remove => Quirk::RemoveMatchedNothing,
            };
            let none = || ScimError::no_target(format!("{label} matched no value"));
            tolerate(dialect, quirk, self.quirks, none)?;
            if op == PatchOpKind::Remove || new.is_null() {
                return Ok(());
            }
            let Some(mut el) = pinned.clone() else {
                return Err(ScimError::no_target(format!(
                    "{label} matched no value and the filter does not describe one to create"
                )));
            };
            match (sub, &new) {
                (Some(s), v) => {
                    el.insert(s.name.clone(), v.clone());
                }
                (None, Value::Object(fields)) => {
                    for (k, v) in fields {
                        el.insert(k.clone(), v.clone());
                    }
                }
                _ => {}
            }
            let created = items.len();
            items.push(Value::Object(el));
            let mut arr = Value::Array(items);
            keep_one_primary(&mut arr, Some(created));
            remove_ci(c, &attr.name);
            c.insert(attr.name.clone(), arr);
            self.cleanup(doc, t);
            return Ok(());
        }
        // Descending indices, each checked by get_mut, so the removals below stay in bounds.
        for &i in hits.iter().rev() {
            let Some(el) = items.get_mut(i) else { continue };
            match (op, sub) {
                (PatchOpKind::Remove, None) => {
                    items.remove(i);
                }
                (PatchOpKind::Remove, Some(s)) => {
                    set_sub(el, &s.name, &Value::Null);
                    let only_pinned = el.as_object().is_some_and(|o| {
                        o.keys()
                            .all(|k| pinned.as_ref().is_some_and(|p| key_ci(p, k).is_some()))
                    });
                    if only_pinned {
                        items.remove(i);
                    }
                }
                (_, Some(s)) => set_sub(el, &s.name, &new),
                (PatchOpKind::Add, None) => {
                    if let (Value::Object(e), Value::Object(n)) = (el, &new) {
                        for (k, v) in n {
                            e.insert(k.clone(), v.clone());
                        }
                    }
                }
                (PatchOpKind::Replace, None) => {
                    // Keep what the filter pinned (e.g. `type`) unless the new value restates it.
                    let mut fresh = pinned.clone().unwrap_or_default();
                    if let Value::Object(n) = &new {
                        for (k, v) in n {
                            fresh.insert(k.clone(), v.clone());
                        }
                    }
                    *el = Value::Object(fresh);
                }
            }
        }
        let mut arr = Value::Array(items);
        if op != PatchOpKind::Remove {
            keep_one_primary(&mut arr, hits.first().copied());
        }
        remove_ci(c, &attr.name);
        c.insert(attr.name.clone(), arr);
        self.cleanup(doc, t);
        Ok(())
    }
}

fn set_sub(el: &mut Value, name: &str, v: &Value) {
    if let Value::Object(o) = el {
        remove_ci(o, name);
        if !v.is_null() {
            o.insert(name.to_string(), v.clone());
        }
    }
}

fn add_schema_urn(root: &mut Map<String, Value>, urn: &str) {
    if let Some(Value::Array(schemas)) = get_ci_mut(root, "schemas")
        && !schemas
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    {
        schemas.push(Value::String(urn.to_string()));
    }
}

/// RFC 7643 §2.4: at most one `primary: true`; the one just written wins.
fn keep_one_primary(arr: &mut Value, winner: Option<usize>) {
    let Value::Array(items) = arr else { return };
    let primaries: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, el)| get_ci(el, "primary") == Some(&Value::Bool(true)))
        .map(|(i, _)| i)
        .collect();
    if primaries.len() < 2 {
        return;
    }
    let keep = winner
        .filter(|w| primaries.contains(w))
        .or(primaries.last().copied());
    for i in primaries {
        if Some(i) != keep
            && let Some(Value::Object(o)) = items.get_mut(i)
        {
            o.insert("primary".into(), Value::Bool(false));
        }
    }
}

/// The element a conjunction of `eq` terms describes: `type eq "mobile"` → `{type: "mobile"}`.
pub(crate) fn pinned_values(filter: &Filter, parent: &Attribute) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.schema.is_none() && path.sub.is_none() && !value.is_null() => {
            let name = parent
                .sub(&path.name)
                .map_or(path.name.clone(), |s| s.name.clone());
            let mut m = Map::new();
            m.insert(name, value.clone());
            Some(m)
        }
        Filter::And(l, r) => {
            let mut m = pinned_values(l, parent)?;
            m.extend(pinned_values(r, parent)?);
            Some(m)
        }
        _ => None,
    }
}

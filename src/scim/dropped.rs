//! The fix for an attribute a lenient dialect dropped because no schema declares it
//! (`"nickname"` from an IdP's default mapping, `"manager.foo"` inside a declared
//! complex attribute): the declared attribute it probably meant, or the
//! `[[providers.schemas]]` lines that make the bridge keep it. Shown once per provider
//! and attribute in the log, so an admin sees what a mapping loses without reading
//! every request.

use crate::scim::schema::{ResourceKind, SchemaRegistry};
use crate::scim::undeclared::attribute_lines;

/// Names longer than this are not compared: nothing declared is that long, and edit
/// distance is quadratic.
const MAX_COMPARED: usize = 64;

/// How far (in edits) a declared name may be from the sent one to be suggested.
const MAX_EDITS: usize = 2;

/// The fix for `name` (as sent; `parent.sub` for a sub-attribute) dropped from a
/// `kind` resource.
pub fn dropped_fix(reg: &SchemaRegistry, kind: ResourceKind, name: &str) -> String {
    if let Some(meant) = close_match(reg, kind, name) {
        return format!(
            "the IdP's mapping probably meant the declared attribute {meant:?}: change the mapping's target attribute to it"
        );
    }
    let core = reg.core(kind);
    match name.split_once('.') {
        Some((parent, sub)) => format!(
            "declare it as a sub-attribute of {parent:?} in the bridge's configuration, under this provider's [[providers.schemas]] entry with id = {:?}:\n[[providers.schemas.attributes.sub_attributes]]\nname = {sub:?}",
            core.id
        ),
        None => format!(
            "declare it in the bridge's configuration under this provider (extend the entry with this id if there is one):\n[[providers.schemas]]\nid = {:?}\n{}",
            core.id,
            attribute_lines(name, None)
        ),
    }
}

/// The declared attribute `name` is closest to: the same name in another case, or an
/// extension's attribute sent unqualified, or one at most [`MAX_EDITS`] edits away.
fn close_match(reg: &SchemaRegistry, kind: ResourceKind, name: &str) -> Option<String> {
    if name.len() > MAX_COMPARED {
        return None;
    }
    // (the name compared, the path to suggest)
    let mut declared: Vec<(String, String)> = Vec::new();
    match name.split_once('.') {
        Some((parent, _)) => {
            let attr = reg.core(kind).attr(parent).or_else(|| {
                reg.common()
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(parent))
            })?;
            for s in &attr.sub_attributes {
                let path = format!("{}.{}", attr.name, s.name);
                declared.push((path.clone(), path));
            }
        }
        None => {
            for a in reg.common().iter().chain(&reg.core(kind).attributes) {
                declared.push((a.name.clone(), a.name.clone()));
            }
            for ext in reg.extensions(kind) {
                for a in &ext.attributes {
                    declared.push((a.name.clone(), format!("{}:{}", ext.id, a.name)));
                }
            }
        }
    }
    let sent = name.to_lowercase();
    declared
        .into_iter()
        .map(|(compared, path)| (edits(&sent, &compared.to_lowercase()), path))
        .filter(|(d, _)| *d <= MAX_EDITS)
        .min_by_key(|(d, _)| *d)
        .map(|(_, path)| path)
}

/// Levenshtein distance between `a` and `b`, by characters.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let swap = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = swap.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_name_is_suggested_else_the_declaration() {
        let reg = SchemaRegistry::new();
        let fix = dropped_fix(&reg, ResourceKind::User, "dispayName");
        assert!(fix.contains("\"displayName\""), "{fix}");
        // An extension's attribute sent unqualified: the qualified path.
        let fix = dropped_fix(&reg, ResourceKind::User, "employeenumber");
        assert!(
            fix.contains(
                "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber\""
            ),
            "{fix}"
        );
        let fix = dropped_fix(&reg, ResourceKind::User, "favouriteColour");
        assert!(
            fix.ends_with(
                "[[providers.schemas]]\nid = \"urn:ietf:params:scim:schemas:core:2.0:User\"\n[[providers.schemas.attributes]]\nname = \"favouriteColour\""
            ),
            "{fix}"
        );
        let fix = dropped_fix(&reg, ResourceKind::User, "name.givenNme");
        assert!(fix.contains("\"name.givenName\""), "{fix}");
        let fix = dropped_fix(&reg, ResourceKind::User, "name.nickname");
        assert!(
            fix.contains("sub_attributes]]\nname = \"nickname\""),
            "{fix}"
        );
    }

    #[test]
    fn edit_distance() {
        assert_eq!(edits("kitten", "sitting"), 3);
        assert_eq!(edits("", "ab"), 2);
        assert_eq!(edits("title", "title"), 0);
    }
}

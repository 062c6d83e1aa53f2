//! Attributes identity providers sent that no schema declares, which the bridge
//! dropped: counted by provider and name, with when each was first and last seen, for
//! `/metrics` and `status`. The IdP chooses the names, so the labels are bounded: past
//! [`MAX_PER_PROVIDER`] distinct names a provider's further ones share [`OTHER`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// Distinct attribute names kept per provider.
pub const MAX_PER_PROVIDER: usize = 100;

/// The label of the names past the bound (parenthesised: no attribute is named so).
pub const OTHER: &str = "(other)";

/// Longer names are cut to this many characters (the IdP could send anything).
const MAX_NAME_CHARS: usize = 128;

/// One attribute a provider sent and the bridge dropped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DroppedAttribute {
    pub provider: String,
    pub attribute: String,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

#[derive(Debug)]
struct Tally {
    count: u64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

/// The tallies, by provider and attribute.
#[derive(Debug, Default)]
pub(super) struct Dropped {
    by: BTreeMap<String, BTreeMap<String, Tally>>,
}

impl Dropped {
    /// Counts `attribute` dropped from `provider`'s request at `at`; true the first
    /// time this provider's attribute (or, past the bound, any further one) is seen, so
    /// the caller says so once.
    pub(super) fn note(&mut self, provider: &str, attribute: &str, at: DateTime<Utc>) -> bool {
        let names = self.by.entry(provider.to_owned()).or_default();
        let name: String = attribute.chars().take(MAX_NAME_CHARS).collect();
        let label = if names.contains_key(&name) || names.len() < MAX_PER_PROVIDER {
            name
        } else {
            OTHER.to_owned()
        };
        match names.get_mut(&label) {
            Some(t) => {
                t.count += 1;
                t.last_seen = at;
                false
            }
            None => {
                names.insert(
                    label,
                    Tally {
                        count: 1,
                        first_seen: at,
                        last_seen: at,
                    },
                );
                true
            }
        }
    }

    pub(super) fn list(&self) -> Vec<DroppedAttribute> {
        self.by
            .iter()
            .flat_map(|(provider, names)| {
                names.iter().map(|(attribute, t)| DroppedAttribute {
                    provider: provider.clone(),
                    attribute: attribute.clone(),
                    count: t.count,
                    first_seen: t.first_seen,
                    last_seen: t.last_seen,
                })
            })
            .collect()
    }

    pub(super) fn render(&self, out: &mut String) {
        out.push_str("# HELP scim_bridge_dropped_attributes_total Attributes an IdP sent that no schema declares, dropped, by provider and attribute (at most 100 names per provider, then \"(other)\").\n# TYPE scim_bridge_dropped_attributes_total counter\n");
        for (provider, names) in &self.by {
            for (attribute, t) in names {
                let _ = writeln!(
                    out,
                    "scim_bridge_dropped_attributes_total{{provider=\"{}\",attribute=\"{}\"}} {}",
                    super::escape(provider),
                    super::escape(attribute),
                    t.count
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_provider_and_attribute_and_bounded() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let t1 = t0 + chrono::Duration::seconds(5);
        let mut d = Dropped::default();
        assert!(d.note("entra", "nickname", t0));
        assert!(!d.note("entra", "nickname", t1));
        assert!(d.note("okta", "nickname", t1));
        let l = d.list();
        assert_eq!(l[0].attribute, "nickname");
        assert_eq!((l[0].count, l[0].first_seen, l[0].last_seen), (2, t0, t1));
        for i in 1..MAX_PER_PROVIDER {
            assert!(d.note("entra", &format!("a{i}"), t0));
        }
        // The bound is reached: the next new names share one label, said once.
        assert!(d.note("entra", "more", t0));
        assert!(!d.note("entra", "again", t0));
        assert!(!d.note("entra", "nickname", t0));
        let entra: Vec<_> = d
            .list()
            .into_iter()
            .filter(|a| a.provider == "entra")
            .collect();
        assert_eq!(entra.len(), MAX_PER_PROVIDER + 1);
        let other = entra.iter().find(|a| a.attribute == OTHER).map(|a| a.count);
        assert_eq!(other, Some(2));
        let mut text = String::new();
        d.render(&mut text);
        assert!(text.contains(
            "scim_bridge_dropped_attributes_total{provider=\"okta\",attribute=\"nickname\"} 1\n"
        ));
    }
}

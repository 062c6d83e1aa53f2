//! What a change event records beyond its operation: the contract between the
//! store, which writes it (built once, by [`plan`](super::plan)), and delivery and
//! the targets, which read it.
//!
//! Delivery reads a resource's current state when it pushes, so an event keeps only
//! what cannot be read back: a group's member deltas and, for a deletion, the names a
//! target needs to find its copy. Stored as JSON in the shape every earlier version
//! wrote (`{}`, `{"added": …}`, `{"added": …, "removed": …}`, `{"replaced": true}`,
//! `{"userName": …, "externalId": …, "displayName": …[, "removed": …]}`), so rows
//! written before this type existed read back unchanged.

use serde_json::{Map, Value};

/// The detail of one change event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum EventDetail {
    /// A user created or changed: its document is read at delivery, so nothing is
    /// kept (`{}`).
    #[default]
    Plain,
    /// A group created with these members, in the order given (`{"added": […]}`).
    Created {
        /// Member ids.
        added: Vec<String>,
    },
    /// A group's members changed; each member touched is listed once, where it
    /// ended up (`{"added": […], "removed": […]}`).
    Updated {
        /// Ids that are members afterwards and were not before.
        added: Vec<String>,
        /// Ids that were members before and are not afterwards.
        removed: Vec<String>,
    },
    /// A group's member list was replaced wholesale: delivery reads the set instead
    /// of a delta (`{"replaced": true}`).
    Replaced,
    /// A resource deleted: the names it had, and a group's members at deletion
    /// (targets that cannot delete groups empty them first).
    Deleted {
        /// `userName` (users).
        user_name: Option<String>,
        /// `externalId`.
        external_id: Option<String>,
        /// `displayName`.
        display_name: Option<String>,
        /// A group's members, in member order; `None` for a user.
        removed: Option<Vec<String>>,
    },
}

const ADDED: &str = "added";
const REMOVED: &str = "removed";
const REPLACED: &str = "replaced";
const USER_NAME: &str = "userName";
const EXTERNAL_ID: &str = "externalId";
const DISPLAY_NAME: &str = "displayName";

impl EventDetail {
    /// The detail of a deleted resource, from its last stored document.
    pub(crate) fn deleted(doc: &Value, removed: Option<Vec<String>>) -> Self {
        let name = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        EventDetail::Deleted {
            user_name: name(USER_NAME),
            external_id: name(EXTERNAL_ID),
            display_name: name(DISPLAY_NAME),
            removed,
        }
    }

    /// For a deletion, fills in the names the deleted resource had wherever `names`
    /// has none, and answers true; any other event leaves them and answers false.
    /// How every provisioning-log record names a resource that is gone.
    pub fn fill_deleted_names(&self, names: &mut crate::provlog::ResourceNames) -> bool {
        let EventDetail::Deleted {
            user_name,
            external_id,
            display_name,
            ..
        } = self
        else {
            return false;
        };
        names.user_name = names.user_name.take().or_else(|| user_name.clone());
        names.display_name = names.display_name.take().or_else(|| display_name.clone());
        names.external_id = names.external_id.take().or_else(|| external_id.clone());
        true
    }

    /// Member ids this event added.
    pub fn added(&self) -> &[String] {
        match self {
            EventDetail::Created { added } | EventDetail::Updated { added, .. } => added,
            _ => &[],
        }
    }

    /// Member ids this event removed (a deleted group's included).
    pub fn removed(&self) -> &[String] {
        match self {
            EventDetail::Updated { removed, .. } => removed,
            EventDetail::Deleted {
                removed: Some(removed),
                ..
            } => removed,
            _ => &[],
        }
    }

    /// Whether the member list was replaced wholesale.
    pub fn replaced(&self) -> bool {
        matches!(self, EventDetail::Replaced)
    }

    /// A deleted resource's `userName`.
    pub fn user_name(&self) -> Option<&str> {
        match self {
            EventDetail::Deleted { user_name, .. } => user_name.as_deref(),
            _ => None,
        }
    }

    /// A deleted resource's name for people: its `userName`, else its `displayName`.
    pub fn name(&self) -> Option<&str> {
        match self {
            EventDetail::Deleted {
                user_name,
                display_name,
                ..
            } => user_name.as_deref().or(display_name.as_deref()),
            _ => None,
        }
    }

    /// The stored (and shown) JSON.
    pub fn to_json(&self) -> Value {
        let ids = |v: &[String]| Value::from(v.to_vec());
        let mut o = Map::new();
        match self {
            EventDetail::Plain => {}
            EventDetail::Created { added } => {
                o.insert(ADDED.into(), ids(added));
            }
            EventDetail::Updated { added, removed } => {
                o.insert(ADDED.into(), ids(added));
                o.insert(REMOVED.into(), ids(removed));
            }
            EventDetail::Replaced => {
                o.insert(REPLACED.into(), Value::Bool(true));
            }
            EventDetail::Deleted {
                user_name,
                external_id,
                display_name,
                removed,
            } => {
                let name = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
                o.insert(USER_NAME.into(), name(user_name));
                o.insert(EXTERNAL_ID.into(), name(external_id));
                o.insert(DISPLAY_NAME.into(), name(display_name));
                if let Some(removed) = removed {
                    o.insert(REMOVED.into(), ids(removed));
                }
            }
        }
        Value::Object(o)
    }

    /// Reads a stored detail. A deletion is known by its names, a replacement by its
    /// flag, an update by its `removed` list, a group's creation by `added` alone;
    /// anything else (`{}`) records nothing, as readers always took it.
    pub fn from_json(v: &Value) -> Self {
        let ids = |k: &str| -> Option<Vec<String>> {
            v.get(k).and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
        };
        let has = |k: &str| v.get(k).is_some();
        if has(USER_NAME) || has(EXTERNAL_ID) || has(DISPLAY_NAME) {
            return EventDetail::deleted(v, ids(REMOVED));
        }
        if v.get(REPLACED) == Some(&Value::Bool(true)) {
            return EventDetail::Replaced;
        }
        match (ids(ADDED), ids(REMOVED)) {
            (added, Some(removed)) => EventDetail::Updated {
                added: added.unwrap_or_default(),
                removed,
            },
            (Some(added), None) => EventDetail::Created { added },
            (None, None) => EventDetail::Plain,
        }
    }

    /// Reads the stored text. Both engines store what [`EventDetail::to_json`]
    /// wrote; text that is not JSON (never written by the bridge) reads as recording
    /// nothing rather than making the resource's events unreadable.
    pub(crate) fn parse(text: &str) -> Self {
        serde_json::from_str::<Value>(text)
            .map(|v| Self::from_json(&v))
            .unwrap_or_default()
    }
}

impl serde::Serialize for EventDetail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for EventDetail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|v| Self::from_json(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::EventDetail;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// Every shape the engines have ever stored, read and written back byte for byte.
    #[test]
    fn stored_shapes_read_back_as_they_were_written() {
        let cases = [
            (json!({}), EventDetail::Plain),
            (
                json!({"added": ["a", "b"]}),
                EventDetail::Created {
                    added: s(&["a", "b"]),
                },
            ),
            (json!({"added": []}), EventDetail::Created { added: vec![] }),
            (
                json!({"added": ["c"], "removed": ["b"]}),
                EventDetail::Updated {
                    added: s(&["c"]),
                    removed: s(&["b"]),
                },
            ),
            (
                json!({"added": [], "removed": []}),
                EventDetail::Updated {
                    added: vec![],
                    removed: vec![],
                },
            ),
            (json!({"replaced": true}), EventDetail::Replaced),
            (
                json!({"userName": "bob", "externalId": null, "displayName": null}),
                EventDetail::Deleted {
                    user_name: Some("bob".into()),
                    external_id: None,
                    display_name: None,
                    removed: None,
                },
            ),
            (
                json!({"userName": null, "externalId": "x1", "displayName": "Board",
                       "removed": ["b", "a"]}),
                EventDetail::Deleted {
                    user_name: None,
                    external_id: Some("x1".into()),
                    display_name: Some("Board".into()),
                    removed: Some(s(&["b", "a"])),
                },
            ),
        ];
        for (stored, detail) in cases {
            assert_eq!(EventDetail::parse(&stored.to_string()), detail, "{stored}");
            assert_eq!(detail.to_json(), stored);
            assert_eq!(serde_json::to_value(&detail).unwrap(), stored);
            assert_eq!(
                serde_json::from_value::<EventDetail>(stored.clone()).unwrap(),
                detail
            );
        }
    }

    #[test]
    fn readers_see_deltas_names_and_replacement() {
        let d = EventDetail::Updated {
            added: s(&["a"]),
            removed: s(&["b"]),
        };
        assert_eq!(
            (d.added(), d.removed(), d.replaced()),
            (&s(&["a"])[..], &s(&["b"])[..], false)
        );
        let gone = EventDetail::parse(
            r#"{"userName":null,"externalId":null,"displayName":"G","removed":["m"]}"#,
        );
        assert_eq!(gone.removed(), &s(&["m"])[..]);
        assert_eq!(gone.name(), Some("G"));
        assert_eq!(gone.user_name(), None);
        assert!(EventDetail::parse(r#"{"replaced":true}"#).replaced());
        assert_eq!(EventDetail::parse("not json"), EventDetail::Plain);
        assert_eq!(EventDetail::parse("null"), EventDetail::Plain);
    }
}

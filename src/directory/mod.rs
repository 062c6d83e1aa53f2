//! SCIM operations over the store: what a provider's `/Users` and `/Groups` do,
//! independent of HTTP so that single requests and `/Bulk` share one implementation.
//!
//! Dependencies run one way: [`crate::scim`] (pure protocol) and [`crate::store`]
//! (durable state) below, [`crate::server`] above.

mod bulk;
mod document;
mod list;
pub mod log;
mod operator;
mod render;
mod text;
mod write;

pub use crate::scim::{ListParams, Projection};
pub use bulk::BulkLimits;
pub use document::{Document, StreamError};
pub use operator::TokenFailure;
pub use render::etag as etag_of;
pub use write::Written;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::entropy::Entropy;
use crate::scim::schema_json::Advertised;
use crate::scim::{Dialect, FilterLimits, Quirk, SchemaRegistry, ScimError};
use crate::store::{Store, StoreError};

/// One identity provider's SCIM endpoint: its name, dialect and schemas.
#[derive(Debug)]
pub struct Provider {
    /// Path segment under `/scim/v2/`.
    pub name: String,
    /// Which IdP quirks are tolerated.
    pub dialect: Dialect,
    /// Core, enterprise and the provider's custom schemas.
    pub registry: SchemaRegistry,
    /// Undeclared URN-qualified attributes already logged: an IdP sends one with every
    /// user of every cycle, and the log should say it once.
    warned: Mutex<BTreeSet<String>>,
}

impl Provider {
    /// A provider serving `registry` in `dialect`.
    pub fn new(name: String, dialect: Dialect, registry: SchemaRegistry) -> Self {
        Provider {
            name,
            dialect,
            registry,
            warned: Mutex::new(BTreeSet::new()),
        }
    }

    /// Adds the provider to an undeclared-attribute error and logs it the first time
    /// (`who`: the person or group the request was about).
    pub(crate) fn undeclared(&self, e: ScimError, who: &str) -> ScimError {
        let Some(attribute) = e.undeclared.clone() else {
            return e;
        };
        let first = self
            .warned
            .lock()
            .map(|mut w| w.insert(attribute.to_ascii_lowercase()))
            .unwrap_or(true);
        if first {
            tracing::warn!(
                provider = %self.name,
                attribute = %attribute,
                first_seen_on = %who,
                "the identity provider sends {attribute}, which no schema of provider {} declares; every such request is refused until [[providers.schemas]] declares it (the SCIM error tells the IdP the lines to add; logged once)",
                self.name
            );
        }
        ScimError {
            detail: format!("provider {:?}: {}", self.name, e.detail),
            ..e
        }
    }
}

/// Paging and filter limits shared by every provider.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Filter length and depth.
    pub filter: FilterLimits,
    /// `count` when the client sends none.
    pub default_page_size: usize,
    /// Largest `count` honoured.
    pub max_page_size: usize,
    /// Bulk limits, advertised in `/ServiceProviderConfig`.
    pub bulk: BulkLimits,
}

impl Limits {
    /// What `/ServiceProviderConfig` tells clients of these limits.
    pub fn advertised(&self) -> Advertised {
        Advertised {
            bulk_max_operations: self.bulk.max_operations,
            bulk_max_payload_bytes: self.bulk.max_payload_bytes,
            max_results: self.max_page_size,
        }
    }
}

/// The SCIM resource service.
pub struct Directory {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    providers: BTreeMap<String, Arc<Provider>>,
    limits: Limits,
    /// Verified bearer tokens, so most requests' token checks read no row.
    tokens: crate::tokens::TokenCache,
}

/// Per-request context: who is calling, where resources live, what was tolerated.
#[derive(Debug)]
pub struct Ctx {
    /// The provider the request is for.
    pub provider: Arc<Provider>,
    /// Absolute SCIM base URL of the provider, for `meta.location`.
    pub base_url: String,
    /// Request id, recorded with change events.
    pub request_id: Option<String>,
    /// The client's address (the trusted proxy's forwarded one), for the
    /// provisioning log.
    pub client: Option<String>,
    /// The public id of the token the request came with; never the token.
    pub token: Option<String>,
    /// Quirks tolerated while serving the request (counted in `/metrics`).
    pub quirks: Vec<Quirk>,
}

impl Directory {
    /// A directory over `store` serving `providers`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        providers: Vec<Provider>,
        limits: Limits,
    ) -> Self {
        Directory {
            store,
            clock,
            entropy,
            providers: providers
                .into_iter()
                .map(|p| (p.name.clone(), Arc::new(p)))
                .collect(),
            limits,
            tokens: crate::tokens::TokenCache::default(),
        }
    }

    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<Arc<Provider>> {
        self.providers.get(name).cloned()
    }

    /// All providers, by name.
    pub fn providers(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.providers.values()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The store underneath, for the daemon's composition (start-up, background
    /// tasks); HTTP goes through the methods above and in `operator`.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// [`store_error`] for a change to the group whose document is `doc`: refused members
/// are reported with the group's name, so the IdP's log says which group to fix.
pub(crate) fn group_store_error(e: StoreError, doc: &serde_json::Value) -> ScimError {
    match e {
        StoreError::Members(p) => {
            let name = doc
                .get("displayName")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("(no displayName)");
            ScimError::invalid_value(format!("group {name:?}: {p}"))
        }
        other => store_error(other),
    }
}

/// Maps storage failures to SCIM errors. Operational failures become a 500/503 whose
/// detail says nothing about internals; the cause is logged.
pub fn store_error(e: StoreError) -> ScimError {
    match e {
        StoreError::NotFound => ScimError::not_found("resource not found"),
        StoreError::Uniqueness { attribute, value } => {
            ScimError::uniqueness(format!("{attribute} {value:?} is already in use"))
        }
        StoreError::Members(p) => ScimError::invalid_value(p.to_string()),
        StoreError::DuplicateId(id) => {
            ScimError::uniqueness(format!("a resource with id {id:?} already exists"))
        }
        StoreError::VersionMismatch { .. } => ScimError::new(
            412,
            None,
            "the resource was modified since the given ETag (If-Match does not match)",
        ),
        StoreError::Closed => ScimError::new(503, None, "the service is shutting down"),
        other => {
            tracing::error!(error = %other, "store failure");
            ScimError::new(500, None, "internal storage error; see the server log")
        }
    }
}

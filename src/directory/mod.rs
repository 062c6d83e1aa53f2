//! SCIM operations over the store: what a provider's `/Users` and `/Groups` do,
//! independent of HTTP so that single requests and `/Bulk` share one implementation.
//!
//! Dependencies run one way: [`crate::scim`] (pure protocol) and [`crate::store`]
//! (durable state) below, [`crate::server`] above.

mod bulk;
mod list;
mod render;
mod write;

pub use bulk::BulkLimits;
pub use list::ListParams;
pub use render::etag as etag_of;
pub use write::{Projection, Written};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::entropy::Entropy;
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

/// The SCIM resource service.
pub struct Directory {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    providers: BTreeMap<String, Arc<Provider>>,
    limits: Limits,
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

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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

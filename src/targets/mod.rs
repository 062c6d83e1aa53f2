//! Downstream targets: implementations of [`crate::delivery::Target`].

pub mod explain;
mod http;
pub mod imanage;
mod mapping;
mod scim;
mod webhook;

pub use http::classify;
pub use imanage::{ImanageClient, ImanageTarget};
pub use mapping::{Explained, Mapping};
pub use scim::ScimTarget;
pub use webhook::{SIGNATURE_HEADER, WebhookTarget, sign};

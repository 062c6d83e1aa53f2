//! Downstream targets: implementations of [`crate::delivery::Target`].

mod http;
mod scim;
mod webhook;

pub use http::classify;
pub use scim::ScimTarget;
pub use webhook::{SIGNATURE_HEADER, WebhookTarget, sign};

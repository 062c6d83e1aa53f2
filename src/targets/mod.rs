//! Downstream targets: implementations of [`crate::delivery::Target`].

mod http;
mod imanage;
mod scim;
mod webhook;

pub use http::classify;
pub use imanage::ImanageTarget;
pub use scim::ScimTarget;
pub use webhook::{SIGNATURE_HEADER, WebhookTarget, sign};

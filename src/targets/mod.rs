//! Downstream targets: implementations of [`crate::delivery::Target`].

mod http;
mod webhook;

pub use http::classify;
pub use webhook::{SIGNATURE_HEADER, WebhookTarget, sign};

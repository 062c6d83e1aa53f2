//! scim-bridge: a SCIM 2.0 provisioning bridge from identity providers (Entra ID,
//! Okta) to downstream systems.
//!
//! Layers, in the one direction dependencies run: [`scim`] (protocol, no I/O) →
//! [`store`] (durable state and the outbox) → [`server`] (HTTP). [`config`] describes
//! the deployment; [`app`] builds the daemon from it and serves it; [`cli`] is the
//! process around it (arguments, logging, signals, the one-shot commands).

// The daemon answers bad input with errors, never by panicking: these hold in
// library code (tests are exempt through clippy.toml). `cargo clippy -D warnings`
// in CI keeps the record.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod app;
#[cfg(test)]
mod architecture;
pub mod audit;
pub mod canonical;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod delivery;
pub mod directory;
pub mod entropy;
pub mod identity;
pub mod journal;
pub mod metrics;
pub mod oauth;
pub mod provlog;
pub mod resolver;
pub mod scim;
pub mod server;
pub mod store;
pub mod targets;
pub mod template;
pub mod tokens;
pub mod vault;

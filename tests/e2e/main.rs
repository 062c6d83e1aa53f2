//! Every integration test, in one binary: each test file used to link its own copy of
//! the crate and its dependencies, which on a small machine cost more than running
//! them. The modules are the former test files; `common` is their shared kit (the
//! in-process daemon, the real binary, the fakes of iManage, OAuth and webhooks).

mod common;

mod alerting;
mod app;
mod audit;
mod cli;
mod console;
mod console_browser;
mod console_oidc;
mod console_ondemand;
mod console_overview;
mod delivery;
mod deployment;
mod durability;
mod fake_imanage_oauth;
mod identity;
mod imanage;
mod linked_accounts;
mod names;
mod oauth;
mod packaging;
mod postgres;
mod provisioning_log;
mod reload;
mod resolver;
mod scim_idp_dialects;
mod scim_protocol;
mod scim_target;
mod target_auth;
mod vault;

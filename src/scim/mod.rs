//! SCIM 2.0 protocol core (RFC 7643/7644): schema, paths, filters, PATCH, projection,
//! sorting, validation and IdP dialects. Pure: no I/O, no clock, no global state.

mod coerce;
pub mod dialect;
mod dropped;
pub mod error;
pub mod filter;
mod filter_eval;
mod filter_parse;
pub mod json;
pub mod list_params;
mod members;
pub mod patch;
mod patch_apply;
pub mod path;
pub mod project;
pub mod schema;
mod schema_core;
pub mod schema_json;
pub mod sort;
mod undeclared;
pub mod username;
pub mod validate;

pub use dialect::{Dialect, Quirk};
pub use dropped::dropped_fix;
pub use error::{ScimError, ScimType};
pub use filter::{CompareOp, Filter, FilterLimits, parse_filter};
pub use members::member_refs;
pub use patch::{MemberOp, MemberRef, PatchOp, PatchOpKind, apply_patch, parse_patch};
pub use path::{AttrPath, PatchPath};
pub use schema::{
    AttrType, Attribute, Mutability, ResourceKind, Returned, Schema, SchemaRegistry, Uniqueness,
    ValueRule,
};

pub use list_params::{ListParams, Sort};
pub use project::{DefaultKeep, Projection, default_keep, parse_attr_list, project, project_owned};
pub use sort::compare_for_sort;
pub use validate::{check_immutable, normalize_resource};

#[cfg(test)]
mod patch_tests;
#[cfg(test)]
mod proptests;

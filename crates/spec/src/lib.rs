//! Turns an OCI bundle (`config.json` plus a root filesystem) into a [`Bundle`] whose
//! configuration has been checked field by field. Everything after this crate trusts
//! what it returns: no other crate parses `config.json`.
//!
//! Pure: no syscalls beyond reading the bundle, so it can be unit-tested and fuzzed.
#![forbid(unsafe_code)]

mod error;
mod load;
pub mod mount_options;
pub mod namespaces;
mod sysctl;
mod validate;

pub use error::SpecError;
pub use load::{load_bundle, parse_config, Bundle};
pub use mount_options::{MountOptions, Propagation};
pub use namespaces::{NamespaceKind, NamespacePlan};
pub use oci_spec::runtime;
pub use validate::{rootfs_idmapped, validate, ROOTFS_IDMAP};

//! Turns an OCI bundle (`config.json` plus a root filesystem) into a [`Config`]: every
//! field checked and decided for this host, in the types the later stages apply. Nothing
//! after this crate reads a raw option of `config.json`.
//!
//! Pure: no syscalls beyond reading the bundle (the host's facts come in as a [`Host`]),
//! so planning is unit-tested without root and fuzzed.
#![forbid(unsafe_code)]

mod capabilities;
mod config;
mod error;
pub mod hooks;
mod host;
pub mod ids;
pub mod linux;
mod load;
pub mod mount_options;
pub mod mounts;
pub mod namespaces;
mod process;
mod sysctl;

pub use capabilities::{CapSet, Capabilities};
pub use caps::Capability;
pub use config::{Config, Landlock, Planned, Root, RootEntry, LANDLOCK, ROOTFS_IDMAP};
pub use error::SpecError;
pub use host::Host;
pub use load::{load_bundle, parse_config, plan_json};
pub use mount_options::{MountOptions, Propagation};
pub use namespaces::{NamespaceKind, NamespacePlan};
pub use oci_spec::runtime;
pub use process::{CpuList, IoPriority, ProcessConfig, Rlimit, Scheduler, User};

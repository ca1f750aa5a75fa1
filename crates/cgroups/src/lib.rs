//! Cgroups for bulwark containers: one [`CgroupManager`] interface with a cgroup v1
//! implementation (also used on hybrid hosts, where the unified hierarchy only places
//! processes) and a cgroup v2 implementation, chosen at run time from the host's
//! [`Layout`].
//!
//! The data flow is `linux.resources` -> [`controllers::plan`] (pure: a list of
//! [`Setting`]s, one file per controller) -> a manager writing them into the
//! container's cgroup directories. A value the host cannot apply is an error naming the
//! `linux.resources...` field; nothing is skipped silently.
//!
//! A runtime without root uses only what was delegated to its user ([`delegation`]).
//!
//! cgroup v2 has no device files: [`device_program`] compiles `linux.resources.devices`
//! into the eBPF program the v2 manager attaches to the container's cgroup.
#![forbid(unsafe_code)]

pub mod controllers;
mod delegation;
mod device_filter;
mod device_rules;
mod entry;
mod error;
mod files;
pub mod layout;
mod manager;
pub mod path;
pub mod stats;
mod sub;
mod v1;
mod v2;
mod v2_devices;

pub use bulwark_sys::bpf::Insn;
pub use controllers::{plan, Setting, Version};
pub use delegation::{delegated_default_path, delegation, Delegation, Refusal};
pub use device_filter::device_program;
pub use entry::{Entry, TaskFile};
pub use error::{CgroupError, Result};
pub use layout::{Hierarchy, Layout, Mode};
pub use manager::{manager_at, manager_for, CgroupManager};
pub use path::{default_cgroups_path, CgroupsPath};
pub use stats::{CpuStats, Limit, MemoryStats, PidsStats, Stats};
pub use sub::SubCgroups;

//! Launch plan -> running, isolated process.
//!
//! A container comes to life in up to three processes (see `docs/architecture.md`):
//! - the **parent** ([`parent`]) is the runtime command itself; it forks, writes user
//!   namespace maps, runs the runtime-namespace hooks and waits for the child's report;
//! - the **intermediate** ([`intermediate`]) exists only when namespaces must be joined by
//!   path or a time namespace needs offsets: it joins and unshares, then forks the init;
//! - the **init** ([`init`]) builds the root filesystem, applies the process settings,
//!   waits for `start` on the exec fifo, and execs the user's program.
//!
//! `exec` into a running container reuses the same stages ([`exec`]).
//! The stages talk over a socket in typed [`message`]s.
#![forbid(unsafe_code)]

mod cgroupfs;
mod console;
mod devices;
mod error;
pub mod exec;
pub mod hooks;
mod idmap;
pub mod idmapped;
mod init;
mod intermediate;
pub mod landlock;
pub mod message;
mod mounts;
mod parent;
mod paths;
mod pivot;
mod plan;
mod process;
mod protocol;
mod seccomp;
mod sysctl;

pub use error::{LaunchError, StepError};
pub use hooks::{HookError, HookFailure};
pub use idmap::id_map_helper;
pub use idmapped::closed_to_others;
pub use parent::{spawn_container, ParentHooks, Spawned};
pub use plan::{ContainerPlan, ExecPlan, Stdio};
pub use process::{no_capabilities, resolve_executable};

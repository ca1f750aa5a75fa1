//! The container lifecycle of the OCI runtime spec (create, start, state, kill, delete)
//! plus exec, over a state directory with one lock per container.
#![forbid(unsafe_code)]

mod cgroups;
mod container;
mod error;
mod hooks;
mod id;
mod lifecycle;
mod procs;
mod resources;
pub mod rootless;
mod seccomp;
mod seccomp_cache;
mod state;

pub use bulwark_cgroups::{Limit, Stats};
pub use container::{Container, StateRoot};
pub use error::RuntimeError;
pub use id::validate_id;
pub use lifecycle::{
    create, delete, exec, kill, parse_signal, processes, start, state_of, CreateOptions, Created,
    ExecOptions,
};
pub use procs::container_pids;
pub use resources::{pause, resume, stats, update};
pub use seccomp_cache::{file_identity, SEALED_COPY_PREFIX};
pub use state::{OciState, Status};

//! The container lifecycle of the OCI runtime spec (create, start, state, kill, delete)
//! plus exec, over a state directory with one lock per container. One file per verb.
#![forbid(unsafe_code)]

mod cgroups;
mod container;
mod create;
mod delete;
mod error;
mod exec;
mod hooks;
pub mod host;
mod id;
mod procs;
mod resources;
pub mod rootless;
pub mod seal;
mod seccomp;
mod seccomp_cache;
mod signal;
mod start;
mod state;

pub use bulwark_cgroups::{CgroupError, Limit, Stats, SubCgroups};
pub use container::{Container, StateRoot};
pub use create::{create, CreateOptions, Created};
pub use delete::delete;
pub use error::RuntimeError;
pub use exec::{exec, ExecOptions, Execed};
pub use id::validate_id;
pub use procs::container_pids;
pub use resources::{pause, resume, stats, update};
pub use seccomp_cache::{file_identity, SEALED_COPY_PREFIX};
pub use signal::{kill, parse_signal, processes};
pub use start::start;
pub use state::{state_of, LandlockReport, OciState, Status};

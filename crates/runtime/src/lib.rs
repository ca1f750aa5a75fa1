//! The container lifecycle of the OCI runtime spec (create, start, state, kill, delete)
//! plus exec, over a state directory with one lock per container.
#![forbid(unsafe_code)]

mod container;
mod error;
mod hooks;
mod id;
mod lifecycle;
mod procs;
mod state;

pub use container::{Container, StateRoot};
pub use error::RuntimeError;
pub use id::validate_id;
pub use lifecycle::{
    create, delete, exec, kill, parse_signal, start, state_of, CreateOptions, ExecOptions,
};
pub use procs::container_pids;
pub use state::{OciState, Status};

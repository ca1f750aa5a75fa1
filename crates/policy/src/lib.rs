//! Security policy as data: the profiles in `policy/profiles/` and the seccomp profiles
//! in `policy/seccomp/`, compiled in, and the starting OCI config each profile gives.
//! `bulwark-runtime spec` writes it to a bundle; the engine starts every container from
//! it.
#![forbid(unsafe_code)]

mod default_config;
mod profiles;

pub use default_config::default_config;
pub use profiles::{profile, seccomp, MemoryLimit, Profile, DEFAULT};

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown profile {value:?}: expected {expected}")]
    UnknownProfile { value: String, expected: String },
    #[error("{what}: {reason}")]
    Damaged { what: String, reason: String },
}

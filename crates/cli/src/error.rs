//! What the command line reports: errors of the library crates, kept typed, and the ones
//! the command line itself finds (flags, files it was given, its own setup).
use std::path::PathBuf;

use bulwark_runtime::{CgroupError, RuntimeError};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Runtime(Box<RuntimeError>),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A flag's value that cannot be used.
    #[error("{flag} {value:?} is not valid (expected {expected})")]
    Flag {
        flag: &'static str,
        value: String,
        expected: String,
    },
    /// A file a flag names, or stdin (`-`), could not be read.
    #[error("cannot read {flag} {}: {source}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file a flag names is not the JSON expected.
    #[error("{flag} {}: {source}", path.display())]
    Json {
        flag: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A command given what it cannot work with.
    #[error("{0}")]
    Usage(&'static str),
    #[error("{} already exists (remove it first)", .0.display())]
    ConfigExists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A policy profile compiled into the binary, or asked for by name.
    #[error("policy {what}: {reason}")]
    Policy { what: String, reason: String },
    /// XDG_RUNTIME_DIR, where a runtime without root keeps its state.
    #[error("XDG_RUNTIME_DIR {dir:?} is not valid (expected an absolute path); or give --root")]
    RuntimeDirRelative { dir: PathBuf },
    #[error("XDG_RUNTIME_DIR is not set: without root (uid {uid}), bulwark-runtime keeps its state in $XDG_RUNTIME_DIR/bulwark-runtime (usually /run/user/{uid}); set it or give --root")]
    NoRuntimeDir { uid: u32 },
    /// One of the command line's own steps (sealing its binary, relaying a terminal).
    #[error("{what}: {source}")]
    Setup {
        what: &'static str,
        source: std::io::Error,
    },
}

impl From<RuntimeError> for CliError {
    fn from(e: RuntimeError) -> Self {
        CliError::Runtime(Box::new(e))
    }
}

impl CliError {
    /// A failed step of the command line's own, from an errno.
    pub fn sys(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> CliError {
        move |errno| CliError::Setup {
            what,
            source: std::io::Error::from(errno),
        }
    }

    /// A failed step of the command line's own, from an I/O error.
    pub fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> CliError {
        move |source| CliError::Setup { what, source }
    }
}

impl From<bulwark_policy::PolicyError> for CliError {
    fn from(e: bulwark_policy::PolicyError) -> Self {
        match e {
            bulwark_policy::PolicyError::UnknownProfile { value, expected } => CliError::Flag {
                flag: "--profile",
                value,
                expected,
            },
            bulwark_policy::PolicyError::Damaged { what, reason } => {
                CliError::Policy { what, reason }
            }
        }
    }
}

//! Errors of lifecycle operations, worded for the user (and for engines that match on
//! runc's wording, such as "does not exist").
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container id {id:?} is not valid (expected 1-1024 characters of letters, digits, _ + - . and not . or ..)")]
    InvalidId { id: String },
    #[error("container with id {0} already exists")]
    Exists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {id} is {status}: {action} needs it to be {expected}")]
    WrongStatus {
        id: String,
        status: String,
        action: &'static str,
        expected: &'static str,
    },
    #[error(transparent)]
    Spec(#[from] bulwark_spec::SpecError),
    #[error(transparent)]
    Seccomp(#[from] bulwark_seccomp::SeccompError),
    #[error(transparent)]
    Launch(#[from] bulwark_sandbox::LaunchError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {errno}")]
    Sys {
        what: String,
        errno: nix::errno::Errno,
    },
}

impl RuntimeError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let path = path.into();
        move |source| RuntimeError::Io { what, path, source }
    }

    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> RuntimeError {
        let what = what.into();
        move |errno| RuntimeError::Sys { what, errno }
    }
}

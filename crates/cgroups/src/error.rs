//! Errors of the cgroup managers. Each names the cgroup file or directory involved and,
//! when a user's configuration caused it, the `linux.resources...` field and its value.
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while detecting, creating, configuring or removing cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A configured value is malformed or out of range; nothing was written.
    #[error("config.json: {field} {value} is not valid (expected {expected})")]
    Invalid {
        field: String,
        value: String,
        expected: String,
    },
    /// A configured value this cgroup layout cannot express at all.
    #[error("config.json: {field} {value} is not supported: {reason}")]
    Unsupported {
        field: String,
        value: String,
        reason: String,
    },
    /// A configured value the host refused or cannot take (missing controller or file,
    /// kernel rejected the value).
    #[error("config.json: {field} {value} cannot be applied: {path}: {reason}")]
    Apply {
        field: String,
        value: String,
        path: PathBuf,
        reason: String,
    },
    /// An `exec --cgroup` argument that cannot be used.
    #[error("--cgroup {arg:?} is not valid: {reason}")]
    SubCgroup { arg: String, reason: String },
    /// `linux.cgroupsPath` is not a path bulwark accepts.
    #[error("config.json: linux.cgroupsPath {value:?} is not valid: {reason}")]
    Path { value: String, reason: String },
    /// A filesystem operation on a cgroup file or directory failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A kernel file (mountinfo, /proc/self/cgroup, a cgroup file) did not have the
    /// expected shape.
    #[error("{path}: unexpected content {content:?} (expected {expected})")]
    Malformed {
        path: PathBuf,
        content: String,
        expected: String,
    },
    /// The host's cgroup mounts are not a layout bulwark can manage.
    #[error("cgroup layout at {path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    /// The kernel did not reach the wanted state in time.
    #[error("{path}: {what} did not happen within {waited:?}")]
    Timeout {
        path: PathBuf,
        what: String,
        waited: Duration,
    },
}

/// Results of this crate.
pub type Result<T, E = CgroupError> = std::result::Result<T, E>;

impl CgroupError {
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        CgroupError::Invalid {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    pub(crate) fn unsupported(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        CgroupError::Unsupported {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        CgroupError::Io {
            action: action.into(),
            path: path.into(),
            source,
        }
    }

    pub(crate) fn path(value: &str, reason: impl Into<String>) -> Self {
        CgroupError::Path {
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

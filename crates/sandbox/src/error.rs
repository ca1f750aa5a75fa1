//! Errors from launching a container process.
use bulwark_sys::Errno;

/// A step of container setup that failed, with the kernel's reason.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{step}: {errno}")]
    Sys { step: String, errno: Errno },
    #[error("{0}")]
    Message(String),
    /// A hook failed: the spec has the lifecycle go on to delete (and poststop).
    #[error("{0}")]
    Hook(String),
}

impl StepError {
    pub fn sys(step: impl Into<String>) -> impl FnOnce(Errno) -> StepError {
        let step = step.into();
        move |errno| StepError::Sys { step, errno }
    }

    pub fn msg(text: impl Into<String>) -> StepError {
        StepError::Message(text.into())
    }
}

impl From<std::io::Error> for StepError {
    fn from(e: std::io::Error) -> Self {
        StepError::Message(e.to_string())
    }
}

/// Why a container or exec process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Setup(#[from] StepError),
    #[error("container init: {0}")]
    Child(String),
    #[error("container init exited before reporting (status {0})")]
    ChildDied(String),
    #[error("{0}")]
    Hook(String),
    #[error("cgroups: {0}")]
    Cgroup(String),
    #[error("seccomp agent (linux.seccomp.listenerPath): {0}")]
    Seccomp(String),
}

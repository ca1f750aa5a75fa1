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
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// The program could not be executed (worded as engines expect, to pick 126 or 127).
    #[error("exec: {program:?}: {}", exec_reason(*errno))]
    Exec { program: String, errno: Errno },
    /// No program of that name in the container's `PATH`.
    #[error("exec: {program:?}: executable file not found in $PATH")]
    NotInPath { program: String },
}

fn exec_reason(errno: Errno) -> String {
    match errno {
        Errno::ENOENT => "no such file or directory".into(),
        Errno::EACCES => "permission denied".into(),
        other => other.desc().to_lowercase(),
    }
}

impl StepError {
    pub fn sys(step: impl Into<String>) -> impl FnOnce(Errno) -> StepError {
        let step = step.into();
        move |errno| StepError::Sys { step, errno }
    }

    /// A failed I/O step, as [`StepError::sys`] words a failed system call.
    pub fn io(step: impl Into<String>) -> impl FnOnce(std::io::Error) -> StepError {
        let step = step.into();
        move |e| StepError::Message(format!("{step}: {e}"))
    }

    pub fn msg(text: impl Into<String>) -> StepError {
        StepError::Message(text.into())
    }

    /// The exit status a process reports this failure with, as a shell (and runc) would:
    /// 127 for a program not found, 126 for one that cannot be executed, and 1 for the
    /// runtime's own steps.
    pub fn exit_code(&self) -> i32 {
        match self {
            StepError::NotInPath { .. }
            | StepError::Exec {
                errno: Errno::ENOENT,
                ..
            } => 127,
            StepError::Exec { .. } => 126,
            _ => 1,
        }
    }
}

/// Why a container or exec process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Setup(#[from] StepError),
    #[error("container init: {0}")]
    Child(String),
    /// An exec'd process failed to start (worded as runc words it).
    #[error("exec failed: {0}")]
    Exec(String),
    #[error(
        "the container's process ended while the runtime waited for {waiting_for}: it {status}"
    )]
    ChildDied {
        waiting_for: &'static str,
        status: String,
    },
    /// A hook the runtime ran (prestart, createRuntime) failed.
    #[error(transparent)]
    Hook(crate::hooks::HookError),
    /// A createContainer hook, run by the init, failed.
    #[error("{0}")]
    ContainerHook(String),
    #[error("the stage protocol was broken: {0}")]
    Protocol(String),
    #[error("the runtime lost track of the container's init process")]
    LostInit,
    #[error("seccomp agent (linux.seccomp.listenerPath): {0}")]
    Seccomp(String),
}

impl LaunchError {
    /// A hook failed: the spec has the lifecycle go on to delete, which runs poststop.
    pub fn is_hook(&self) -> bool {
        matches!(self, LaunchError::Hook(_) | LaunchError::ContainerHook(_))
    }
}

//! Errors of lifecycle operations, worded for the user (and for engines that match on
//! runc's wording, such as "does not exist"). Errors of the crates below stay typed.
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
    #[error(transparent)]
    Cgroup(#[from] bulwark_cgroups::CgroupError),
    #[error(transparent)]
    Hook(#[from] bulwark_sandbox::HookError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {errno}")]
    Sys {
        what: String,
        errno: nix::errno::Errno,
    },
    #[error("{}: {source} (the file is damaged; `delete --force` removes the container)", path.display())]
    DamagedState {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("state root {} is not valid: it is {kind} of uid {uid} with mode {mode:o} (expected a directory of uid {euid} that no one else can write; give --root another one)", path.display())]
    UntrustedStateRoot {
        path: PathBuf,
        kind: &'static str,
        uid: u32,
        mode: u32,
        euid: u32,
    },
    #[error("process.terminal is true but no --console-socket was given to receive the pty (or use run without --detach)")]
    NoConsoleSocket,
    #[error("config.json: linux.cgroupsPath {path:?} is not valid (expected a cgroup no process is in; it holds {count} processes, e.g. another container's)")]
    CgroupInUse { path: String, count: usize },
    #[error("config.json: {field} {value:?} needs the {controller} cgroup controller, which this rootless runtime (uid {euid}) cannot use at {}: {reason}. A rootless container gets cgroup limits only in a subtree delegated to its user: have root (or systemd, with Delegate=yes) make a cgroup owned by uid {euid} and set linux.cgroupsPath below it, or remove the limit", dir.display())]
    NotDelegated {
        field: String,
        value: String,
        controller: String,
        dir: PathBuf,
        reason: String,
        euid: u32,
    },
    #[error("container {id} has no cgroups to {action} (a rootless container has them only in a cgroup subtree delegated to its user; see linux.cgroupsPath)")]
    NoCgroups { id: String, action: &'static str },
    #[error("container {id}: its init exited before it could start ({status})")]
    InitGone { id: String, status: String },
    #[error("bulwark-runtime needs Linux 5.12 or newer (open_tree, mount_setattr, openat2, clone3 with CLONE_INTO_CGROUP); this kernel is {release}")]
    KernelTooOld { release: String },
    #[error("signal {0:?} is not valid (expected a name such as TERM or KILL, or a number from 1 to 64)")]
    InvalidSignal(String),
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

//! What to launch: the planned configuration plus the choices the command line made.
use std::os::fd::OwnedFd;

use bulwark_cgroups::Entry;
use bulwark_spec::{Config, NamespaceKind, ProcessConfig};
use nix::unistd::Pid;

/// How the process's stdio is wired.
#[derive(Debug, Default)]
pub struct Stdio {
    /// A connected console socket: the pty master is sent over it when
    /// `process.terminal` is true.
    pub console: Option<OwnedFd>,
    /// How many fds after stdio (3, 4, ...) the process inherits.
    pub preserve_fds: u32,
}

impl Stdio {
    /// The fds a forked stage keeps: stdio, the preserved fds, the console socket.
    pub fn inherited_fds(&self) -> Vec<std::os::fd::RawFd> {
        let mut fds: Vec<std::os::fd::RawFd> = (0..3 + self.preserve_fds as i32).collect();
        fds.extend(self.console.as_ref().map(std::os::fd::AsRawFd::as_raw_fd));
        fds
    }
}

/// A new container.
#[derive(Debug)]
pub struct ContainerPlan {
    pub id: String,
    pub config: Config,
    /// The exec fifo the init blocks on until `start`, as an `O_PATH` fd opened by the
    /// runtime: an init whose root is an unprivileged host id may not be able to reach the
    /// state directory by path, and after `pivot_root` no init can.
    pub exec_fifo: OwnedFd,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub stdio: Stdio,
    /// How the first process enters the container's cgroups: created inside the cgroup2
    /// directory, and/or joining each v1 hierarchy itself before anything else.
    pub placement: Entry,
    /// `linux.seccomp`, compiled by the runtime.
    pub seccomp: Option<bulwark_seccomp::Filter>,
}

impl ContainerPlan {
    /// The namespaces the first clone creates. When the process joins v1 hierarchies
    /// itself, its cgroup namespace waits until it has, so the namespace is rooted there.
    pub fn clone_flags(&self) -> u64 {
        let flags = self.config.namespaces().new_flags();
        if self.placement.joins_after_clone() {
            flags & !(libc::CLONE_NEWCGROUP as u64)
        } else {
            flags
        }
    }

    /// An intermediate process is needed when namespaces are joined by path (they must be
    /// joined before new ones are created, and a pid or time namespace only applies to
    /// children) or when a time namespace needs offsets written before anyone enters it.
    pub fn needs_intermediate(&self) -> bool {
        let namespaces = self.config.namespaces();
        !namespaces.join.is_empty() || namespaces.creates(NamespaceKind::Time)
    }

    pub fn creates_user_namespace(&self) -> bool {
        self.config.namespaces().creates(NamespaceKind::User)
    }
}

/// A new process in a running container.
#[derive(Debug)]
pub struct ExecPlan {
    /// How the process enters the container's cgroups (as for the init).
    pub placement: Entry,
    /// The container's init process, whose namespaces are joined.
    pub container_pid: Pid,
    /// The namespace kinds the container has (its config's `linux.namespaces`).
    pub namespaces: Vec<NamespaceKind>,
    /// The container has no mount namespace: the process chroots into the init's root.
    pub chroot: bool,
    pub process: ProcessConfig,
    pub stdio: Stdio,
    pub no_new_keyring: bool,
    /// Landlock on for this process (the container's rule, for this process's bounding
    /// set).
    pub landlock: bool,
    /// `linux.personality` of the container.
    pub personality: Option<u32>,
    /// The container's `linux.seccomp`, compiled by the runtime: exec'd processes get it too.
    pub seccomp: Option<bulwark_seccomp::Filter>,
    /// The container's user namespace denies setgroups(2) (see
    /// [`Config::setgroups_denied`]).
    pub setgroups_denied: bool,
}

//! What to launch: the validated bundle plus the choices the command line made.
use std::os::fd::OwnedFd;

use bulwark_cgroups::Entry;
use bulwark_spec::runtime::Process;
use bulwark_spec::{Bundle, NamespaceKind, NamespacePlan};
use nix::unistd::Pid;

/// The process to run and how its stdio is wired.
#[derive(Debug)]
pub struct ProcessPlan {
    pub process: Process,
    /// A connected console socket: the pty master is sent over it when
    /// `process.terminal` is true.
    pub console: Option<OwnedFd>,
    /// How many fds after stdio (3, 4, ...) the process inherits.
    pub preserve_fds: u32,
}

impl ProcessPlan {
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
    pub bundle: Bundle,
    pub namespaces: NamespacePlan,
    /// The exec fifo the init blocks on until `start`, as an `O_PATH` fd opened by the
    /// runtime: an init whose root is an unprivileged host id may not be able to reach the
    /// state directory by path, and after `pivot_root` no init can.
    pub exec_fifo: OwnedFd,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub process: ProcessPlan,
    /// How the first process enters the container's cgroups: created inside the cgroup2
    /// directory, and/or joining each v1 hierarchy itself before anything else.
    pub placement: Entry,
    /// `linux.seccomp`, compiled by the runtime.
    pub seccomp: Option<bulwark_seccomp::Filter>,
    /// The runtime lacks the host's root privileges (a user, or root of another user
    /// namespace): devices are bound from the host rather than made.
    pub rootless: bool,
    /// The user namespace the runtime makes denies setgroups(2) (see
    /// [`crate::spec_denies_setgroups`], asked by the runtime before any stage runs).
    pub setgroups_denied: bool,
}

impl ContainerPlan {
    /// The namespaces the first clone creates. When the process joins v1 hierarchies
    /// itself, its cgroup namespace waits until it has, so the namespace is rooted there.
    pub fn clone_flags(&self) -> u64 {
        let flags = self.namespaces.new_flags();
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
        !self.namespaces.join.is_empty() || self.namespaces.creates(NamespaceKind::Time)
    }

    pub fn creates_user_namespace(&self) -> bool {
        self.namespaces.creates(NamespaceKind::User)
    }

    /// Whether the container runs in a user namespace other than the host's: one of its
    /// own, or the one a rootless runtime itself runs in.
    pub fn in_user_namespace(&self) -> bool {
        self.namespaces.contains(NamespaceKind::User) || self.rootless
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
    pub process: ProcessPlan,
    /// The container's `noNewPrivileges`-independent settings come from the process.
    pub no_new_keyring: bool,
    /// Landlock on (the container's `bulwark.landlock` annotation is not "false").
    pub landlock: bool,
    /// The container's `linux.seccomp`, compiled by the runtime: exec'd processes get it too.
    pub seccomp: Option<bulwark_seccomp::Filter>,
    /// The container's user namespace denies setgroups(2) (see
    /// [`crate::spec_denies_setgroups`]).
    pub setgroups_denied: bool,
}

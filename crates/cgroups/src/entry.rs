//! How a container's first process (or an exec'd one) gets into its cgroup without
//! another process moving it there.
//!
//! Moving a process by pid (writing it to `cgroup.procs`) write-locks the kernel's global
//! threadgroup semaphore, and taking that lock when nobody has lately waits for a whole
//! RCU grace period: 5 to 15 ms on an idle host, paid by every container. Two ways in skip
//! the lock:
//! - cgroup2: `clone3(CLONE_INTO_CGROUP)` creates the process inside the cgroup;
//! - cgroup v1: a single-threaded process writes `0` to each hierarchy's `tasks` file,
//!   moving only itself, which the kernel does without the global lock.
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{CgroupError, Result};

/// What a new process needs to enter a container's cgroups by itself.
#[derive(Debug, Default)]
pub struct Entry {
    /// The cgroup2 directory (pure v2, or the process-tracking one of a hybrid host),
    /// opened for `clone3(CLONE_INTO_CGROUP)`.
    pub clone_into: Option<OwnedFd>,
    /// The `tasks` file of the container's cgroup in each v1 hierarchy, opened for
    /// writing by the runtime; the new process joins with [`Entry::join_self`].
    pub tasks: Vec<TaskFile>,
}

/// A v1 `tasks` file, opened before the process that writes to it is created.
#[derive(Debug)]
pub struct TaskFile {
    path: PathBuf,
    file: File,
}

impl Entry {
    /// Moves the calling process into every v1 hierarchy's cgroup. It must be
    /// single-threaded: only the calling thread moves.
    pub fn join_self(&self) -> Result<()> {
        self.tasks.iter().try_for_each(|task| {
            (&task.file)
                .write_all(b"0")
                .map_err(|e| CgroupError::io("join (write \"0\" to)", &task.path, e))
        })
    }

    /// Whether the process joins v1 hierarchies after it is created (so a cgroup
    /// namespace must wait until it has).
    pub fn joins_after_clone(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// The fds a forked stage must keep open until it has joined.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.clone_into
            .iter()
            .map(AsRawFd::as_raw_fd)
            .chain(self.tasks.iter().map(|t| t.file.as_raw_fd()))
            .collect()
    }
}

/// Opens `dir` for `CLONE_INTO_CGROUP`.
pub(crate) fn open_for_clone(dir: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    nix::fcntl::open(dir, flags, Mode::empty()).map_err(|e| {
        CgroupError::io(
            "open for CLONE_INTO_CGROUP",
            dir,
            std::io::Error::from_raw_os_error(e as i32),
        )
    })
}

/// Opens the v1 `tasks` file of `dir` for writing (close-on-exec).
pub(crate) fn open_tasks(dir: &Path) -> Result<TaskFile> {
    let path = dir.join("tasks");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| CgroupError::io("open for joining", &path, e))?;
    Ok(TaskFile { path, file })
}

//! The one place where bulwark makes raw system calls. Every `unsafe` block in the
//! runtime lives here, with a `SAFETY:` comment; callers get owned fds and typed results.
//!
//! Modules: [`process`] (clone3, exit, pidfds), [`mount`] (the new mount API and
//! mount_setattr), [`fs`] (path resolution that cannot leave a root), [`copy`] (copying a
//! tree between two open directories), [`tune`] (per-process knobs the libc crates do not
//! wrap: io priority, scheduler, memory policy, keyrings), [`bpf`] (cgroup v2 device
//! programs: load, attach, query, detach), [`seccomp`] (installing a syscall filter).

pub mod bpf;
pub mod copy;
pub mod fs;
pub mod landlock;
pub mod mount;
pub mod net;
pub mod phase;
pub mod process;
pub mod seccomp;
pub mod socket;
pub mod tty;
pub mod tune;

pub use nix::errno::Errno;

/// Result of a system call, carrying the kernel's errno.
pub type SysResult<T> = Result<T, Errno>;

/// Converts a raw syscall return value into a result.
fn check(ret: libc::c_long) -> SysResult<libc::c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

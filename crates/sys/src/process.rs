//! Creating processes in new namespaces, and leaving them.
use std::os::fd::{FromRawFd, OwnedFd};

use nix::unistd::Pid;

use crate::{check, Errno, SysResult};

/// What `clone3` returned in the calling process.
#[derive(Debug)]
pub enum Forked {
    /// We are the parent: the child's pid and a pidfd for it.
    Parent { pid: Pid, pidfd: OwnedFd },
    /// We are the child.
    Child,
}

/// The kernel's `struct clone_args` (v2, with the cgroup field).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Set in every process `clone_process` creates: such a process starts with one thread,
/// and the runtime's stages never start another.
static FORKED_STAGE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn single_threaded() -> bool {
    FORKED_STAGE.load(std::sync::atomic::Ordering::Relaxed)
        || std::fs::read_dir("/proc/self/task").is_ok_and(|dir| dir.count() == 1)
}

/// Forks like fork(2), but with `flags` (namespace flags such as `CLONE_NEWPID`) applied
/// to the child in the same step. The parent gets a pidfd for the child.
///
/// Refuses (`EDEADLK`) when the process has more than one thread: a raw fork of a
/// threaded process can leave locks held forever in the child.
pub fn clone_process(flags: u64) -> SysResult<Forked> {
    clone_into(flags, None)
}

/// [`clone_process`], with the child created directly in the cgroup v2 directory `cgroup`
/// (`CLONE_INTO_CGROUP`), so it never runs outside its limits.
pub fn clone_into(flags: u64, cgroup: Option<std::os::fd::BorrowedFd<'_>>) -> SysResult<Forked> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    if !single_threaded() {
        return Err(Errno::EDEADLK);
    }
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = std::os::fd::AsRawFd::as_raw_fd(&fd) as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed, and `pidfd` outlives the call.
    // No stack is given, so the child continues on a copy of this stack like fork(2). The
    // process is single-threaded (checked above), so no lock can be held by another thread
    // in the child.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    if ret == 0 {
        FORKED_STAGE.store(true, std::sync::atomic::Ordering::Relaxed);
        return Ok(Forked::Child);
    }
    // SAFETY: the kernel stored a new pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Forked::Parent {
        pid: Pid::from_raw(ret as i32),
        pidfd,
    })
}

/// Ends the calling process at once, without running atexit handlers or flushing the
/// parent's stdio buffers a forked child shares.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Opens a pidfd for a process.
pub fn pidfd_open(pid: Pid) -> SysResult<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid.as_raw()).ok_or(Errno::ESRCH)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| Errno::from_raw(e.raw_os_error()))
}

/// Sends a signal through a pidfd, so it cannot reach a recycled pid.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> SysResult<()> {
    // SAFETY: a plain syscall on a valid pidfd with a null siginfo.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(pidfd),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Marks every fd from `first` up as close-on-exec, so only the fds below `first` reach
/// the program exec'd next (CVE-2024-21626: no runtime fd leaks into the container).
pub fn cloexec_from(first: u32) -> SysResult<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on fds; no memory is touched.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

/// Sets the NIS domain name of the current uts namespace.
pub fn set_domainname(name: &str) -> SysResult<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } as libc::c_long)
        .map(drop)
}

/// Closes every fd from 3 up except those in `keep`, so a freshly forked stage holds
/// nothing of the runtime's (state locks, log files) beyond what it was handed.
pub fn close_fds_except(keep: &[std::os::fd::RawFd]) -> SysResult<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|fd| **fd >= 3)
        .map(|fd| *fd as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    for fd in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if fd > first {
            // SAFETY: close_range takes plain integers; the fds closed are ones this freshly
            // forked process owns and no Rust object here still refers to (the caller keeps
            // the fds it uses in `keep`).
            check(unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) })?;
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

/// The kernel's `struct sigaction` for `rt_sigaction` (x86_64 and aarch64 layout).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Gives every signal its default action and unblocks them all, for a process about to
/// exec a container's program: an ignored signal and the signal mask survive exec, and
/// the runtime ignores SIGPIPE (Rust does) and blocks the signals it forwards. The raw
/// system call reaches the two real-time signals that glibc keeps to itself.
pub fn reset_signals() {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler, so no code of ours can run from a signal;
        // the kernel only reads `default`, which outlives the call, and the size given is
        // that of its 64-bit mask.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signo,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            );
        }
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// Takes ownership of a descriptor this process inherited by number (from its parent, as
/// named in an environment variable). Refuses a number that is not open, one below 3
/// (stdio) and one taken before, so two owners can never close the same descriptor.
pub fn take_inherited_fd(fd: std::os::fd::RawFd) -> SysResult<OwnedFd> {
    use std::sync::Mutex;
    static TAKEN: Mutex<Vec<std::os::fd::RawFd>> = Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if fd < 3 || taken.contains(&fd) {
        return Err(Errno::EBADF);
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; any number is safe to ask about.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) } as libc::c_long)?;
    taken.push(fd);
    // SAFETY: the descriptor is open (checked above), inherited rather than opened by any
    // object in this process, and handed out once (the list above), so this is its one owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Gives what the allocator holds free back to the kernel (glibc's `malloc_trim`): a
/// long-lived process (the container monitor) calls it once its setup is done, so the
/// heap that setup needed is not kept resident for the container's life.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim walks only the allocator's own free lists and takes no pointer
    // from the caller; it is safe to call at any time from a single-threaded process.
    unsafe {
        libc::malloc_trim(0);
    }
}

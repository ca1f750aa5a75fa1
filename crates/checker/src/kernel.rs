//! The few kernel queries that neither `nix` nor procfs answer. Each is a read-only
//! wrapper around one syscall or ioctl; this is the only module with `unsafe`.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use libc::{c_int, c_long, c_ulong};
use nix::errno::Errno;

/// `ioprio_get(IOPRIO_WHO_PROCESS, 0)`: the raw I/O priority of this process.
pub fn io_priority() -> nix::Result<i64> {
    const IOPRIO_WHO_PROCESS: c_long = 1;
    // SAFETY: ioprio_get takes two integers and passes no memory between us and the kernel.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0 as c_long) };
    Errno::result(ret)
}

/// `sched_getscheduler(0)`: the scheduling policy, possibly with SCHED_RESET_ON_FORK set.
pub fn scheduler_policy() -> nix::Result<c_int> {
    // SAFETY: sched_getscheduler takes a pid and passes no memory.
    Errno::result(unsafe { libc::sched_getscheduler(0) })
}

/// `sched_getparam(0)`: the static (real-time) priority.
pub fn scheduler_priority() -> nix::Result<c_int> {
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, writable sched_param that lives across the call,
    // which writes only that struct.
    Errno::result(unsafe { libc::sched_getparam(0, &mut param) })?;
    Ok(param.sched_priority)
}

/// The nice value. The raw syscall returns `20 - nice` (1..=40), so unlike the libc
/// wrapper a -1 can only mean an error.
pub fn nice() -> nix::Result<i64> {
    // SAFETY: getpriority takes two integers and passes no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_getpriority,
            libc::PRIO_PROCESS as c_long,
            0 as c_long,
        )
    };
    Errno::result(ret).map(|raw| 20 - raw)
}

/// `get_mempolicy(&mode, NULL, 0, NULL, 0)`: the NUMA policy mode, with mode flags.
pub fn memory_policy() -> nix::Result<c_int> {
    let mut mode: c_int = 0;
    // SAFETY: `mode` is a valid, writable int that lives across the call. The node mask
    // pointer is NULL with maxnode 0, the address is NULL and flags are 0, so the kernel
    // writes only `mode`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut c_int,
            std::ptr::null_mut::<c_ulong>(),
            0 as c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            0 as c_ulong,
        )
    };
    Errno::result(ret)?;
    Ok(mode)
}

/// `ioctl(fd, TIOCGWINSZ)`: the terminal's (rows, cols).
pub fn window_size(fd: BorrowedFd<'_>) -> nix::Result<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which is valid and
    // writable for the call; the fd is borrowed, so it stays open meanwhile.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    Errno::result(ret)?;
    Ok((size.ws_row, size.ws_col))
}

extern "C" fn ignore_signal(_: c_int) {}

/// Installs a do-nothing handler for each signal. With a handler in place the signal
/// shows in `SigCgt` (how a test sees the checker is ready) and is delivered even to
/// a pid-namespace init; the caller has blocked the signals and takes them with sigwait.
pub fn catch_signals(signals: &[nix::sys::signal::Signal]) -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let action = SigAction::new(
        SigHandler::Handler(ignore_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for &signal in signals {
        // SAFETY: the handler does nothing at all, so it is async-signal-safe, and the
        // previous action is not used again.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// A raw system call with integer arguments, for the seccomp tests: the filter sees the
/// number and the six argument registers whatever the call does with them.
pub fn raw_syscall(number: c_long, args: [c_ulong; 6]) -> nix::Result<c_long> {
    // SAFETY: the probe passes integers only. Tests use syscalls that ignore their
    // arguments (getppid, getuid, ...) or give them values the kernel checks before use
    // (0 for pointers, which fails with EFAULT), so no memory of ours is touched.
    let ret =
        unsafe { libc::syscall(number, args[0], args[1], args[2], args[3], args[4], args[5]) };
    Errno::result(ret)
}

/// Pushes `byte` into the input queue of the terminal `fd` (TIOCSTI), as a keystroke.
pub fn push_input(fd: BorrowedFd<'_>, byte: u8) -> nix::Result<()> {
    // SAFETY: TIOCSTI reads one byte from the pointer, which points at `byte` for the
    // whole call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSTI, &byte as *const u8) };
    Errno::result(ret).map(drop)
}

/// Forks a child that only waits to be killed; returns its pid.
pub fn fork_paused() -> nix::Result<nix::unistd::Pid> {
    // SAFETY: the checker is single-threaded, and the child only calls pause(2), which
    // is async-signal-safe, until it is killed.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(child),
        nix::unistd::ForkResult::Child => loop {
            // SAFETY: pause takes no arguments and touches no memory.
            unsafe {
                libc::pause();
            }
        },
    }
}

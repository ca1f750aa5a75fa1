//! Installing a seccomp BPF program on the calling thread (`seccomp(2)`).
use std::os::fd::{FromRawFd, OwnedFd};

use crate::{check, SysResult};

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: the call returns a notification fd.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;

/// Installs `program` with `flags` (`SECCOMP_FILTER_FLAG_*`). Returns the notification
/// listener when `flags` asks for one. The caller must have no_new_privs set or
/// CAP_SYS_ADMIN in its user namespace; the filter then holds for this thread and
/// everything it execs, for good.
pub fn install(program: &[SockFilter], flags: u32) -> SysResult<Option<OwnedFd>> {
    let len = u16::try_from(program.len()).map_err(|_| crate::Errno::E2BIG)?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `program`, which outlives the call and has `len`
    // instructions of the kernel's layout (SockFilter is repr(C) like sock_filter); the
    // kernel copies the program and does not keep the pointer.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    })?;
    if flags & FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER a successful call returns a new fd that only we hold.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }))
}

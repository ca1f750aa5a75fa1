//! Per-process settings that the libc wrappers do not cover: io priority, scheduler
//! attributes, NUMA memory policy and the session keyring.
use crate::{check, SysResult};

/// Sets the io priority of the calling process (`class` 1 = RT, 2 = BE, 3 = IDLE).
pub fn set_io_priority(class: u32, level: u32) -> SysResult<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = (class << 13) | level;
    // SAFETY: plain integer arguments; `0` means the calling process.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) }).map(drop)
}

/// The kernel's `struct sched_attr`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// Sets the calling process's scheduling policy and attributes.
pub fn set_scheduler(mut attr: SchedAttr) -> SysResult<()> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid sched_attr whose size field matches; it outlives the call.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) })
        .map(drop)
}

/// Sets the NUMA memory policy of the calling thread. `nodes` is a bitmask of node ids.
pub fn set_memory_policy(mode: i32, nodes: &[u64]) -> SysResult<()> {
    let (ptr, maxnode) = if nodes.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (nodes.as_ptr(), nodes.len() as u64 * 64 + 1)
    };
    // SAFETY: `ptr` is null or points at `nodes`, which holds `maxnode - 1` bits and
    // outlives the call.
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

/// Gives the calling process a new, anonymous session keyring, so containers do not
/// share the keys of whoever started them.
pub fn join_new_session_keyring() -> SysResult<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: a null name asks the kernel for a new anonymous keyring; no memory is passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    })
    .map(drop)
}

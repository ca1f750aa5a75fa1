//! Asking the kernel which Landlock ABI it offers (the sandbox applies rules with the
//! `landlock` crate; this only tells `state` whether a domain can exist at all).
use crate::check;

/// The kernel's Landlock ABI version, or `None` where Landlock is not built in or is off.
pub fn abi_version() -> Option<i64> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag the kernel only
    // returns a number; no memory is read or written.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    });
    ret.ok().filter(|v| *v > 0)
}

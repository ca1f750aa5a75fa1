//! Giving up root once the sockets are bound: the resolver parses untrusted packets for
//! the rest of its life, so it does that as `nobody` with no way back.
use nix::sys::prctl;
use nix::unistd::{geteuid, setgroups, setresgid, setresuid, Gid, Uid};

use crate::error::Error;

/// The uid and gid of `nobody`.
pub const NOBODY: u32 = 65534;

/// Switches to `nobody` when running as root (returning true), then forbids gaining
/// privileges again through exec. Must run before any thread is started.
pub fn drop_to_nobody() -> Result<bool, Error> {
    let failed = |step| {
        move |source| Error::DropPrivileges {
            id: NOBODY,
            step,
            source,
        }
    };
    let was_root = geteuid().is_root();
    if was_root {
        let gid = Gid::from_raw(NOBODY);
        let uid = Uid::from_raw(NOBODY);
        setgroups(&[]).map_err(failed("setgroups"))?;
        setresgid(gid, gid, gid).map_err(failed("setresgid"))?;
        setresuid(uid, uid, uid).map_err(failed("setresuid"))?;
    }
    prctl::set_no_new_privs().map_err(failed("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    Ok(was_root)
}

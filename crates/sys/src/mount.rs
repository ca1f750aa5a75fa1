//! Mounts made through file descriptors: detached trees from `open_tree`, attributes set
//! with `mount_setattr` (recursively where asked), attached with `move_mount`.
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::mount::{MoveMountFlags, OpenTreeFlags};

use crate::{check, Errno, SysResult};

fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;
pub const ATTR_ATIME_MASK: u64 = 0x70;
pub const ATTR_RELATIME: u64 = 0x0;
pub const ATTR_NOATIME: u64 = 0x10;
pub const ATTR_STRICTATIME: u64 = 0x20;
pub const ATTR_NODIRATIME: u64 = 0x80;
pub const ATTR_NOSYMFOLLOW: u64 = 0x200000;
const ATTR_IDMAP: u64 = 0x100000;

/// Mount attributes to set and clear, in mount_setattr's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub set: u64,
    pub clear: u64,
}

impl Attrs {
    /// Translates `MS_*` flags to set and to clear into mount attributes.
    pub fn from_ms(set: u64, clear: u64) -> Attrs {
        let pairs = [
            (libc::MS_RDONLY, ATTR_RDONLY),
            (libc::MS_NOSUID, ATTR_NOSUID),
            (libc::MS_NODEV, ATTR_NODEV),
            (libc::MS_NOEXEC, ATTR_NOEXEC),
            (libc::MS_NODIRATIME, ATTR_NODIRATIME),
            (libc::MS_NOSYMFOLLOW, ATTR_NOSYMFOLLOW),
        ];
        let mut attrs = Attrs::default();
        for (ms, attr) in pairs {
            if set & ms as u64 != 0 {
                attrs.set |= attr;
            }
            if clear & ms as u64 != 0 {
                attrs.clear |= attr;
            }
        }
        // The access-time mode is one field: setting any mode clears the whole field.
        let atime = if set & libc::MS_NOATIME as u64 != 0 {
            Some(ATTR_NOATIME)
        } else if set & libc::MS_STRICTATIME as u64 != 0 {
            Some(ATTR_STRICTATIME)
        } else if set & libc::MS_RELATIME as u64 != 0 {
            Some(ATTR_RELATIME)
        } else {
            None
        };
        if let Some(mode) = atime {
            attrs.set |= mode;
            attrs.clear |= ATTR_ATIME_MASK;
        }
        attrs
    }

    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Clones the mount at `source` (and, if `recursive`, every mount below it) into a
/// detached tree, as a bind mount would.
pub fn clone_tree(source: &Path, recursive: bool) -> SysResult<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    rustix::mount::open_tree(rustix::fs::CWD, source, flags).map_err(errno)
}

/// Clones the mount an open file descriptor lies on (see [`clone_tree`]).
pub fn clone_tree_fd(source: BorrowedFd<'_>, recursive: bool) -> SysResult<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    rustix::mount::open_tree(source, "", flags).map_err(errno)
}

/// Changes attributes of the mount `fd` refers to, and of every mount below it if
/// `recursive`. `propagation` is 0 or one of `MS_SHARED`/`MS_SLAVE`/`MS_PRIVATE`/`MS_UNBINDABLE`.
pub fn set_attrs(
    fd: BorrowedFd<'_>,
    attrs: Attrs,
    propagation: u64,
    recursive: bool,
) -> SysResult<()> {
    if attrs.is_empty() && propagation == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        attr_set: attrs.set,
        attr_clr: attrs.clear,
        propagation,
        userns_fd: 0,
    };
    mount_setattr(fd, &attr, recursive)
}

/// Makes the detached tree `fd` (from [`clone_tree`], not yet attached) show file ids
/// through the id mappings of the user namespace `userns`, on its top mount or, if
/// `recursive`, on every mount of the tree. Needs CAP_SYS_ADMIN over the filesystem,
/// so for host filesystems the host's root.
pub fn set_idmap(fd: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> SysResult<()> {
    let attr = MountAttr {
        attr_set: ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    mount_setattr(fd, &attr, recursive)
}

/// `mount_setattr(2)` on `fd` itself (and every mount below it if `recursive`).
fn mount_setattr(fd: BorrowedFd<'_>, attr: &MountAttr, recursive: bool) -> SysResult<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `attr` is a valid mount_attr of the size passed (any userns fd in it is
    // open, borrowed by the caller), and the path is a valid empty C string; all outlive
    // the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Attaches a detached tree (from [`clone_tree`]) on top of `target`.
pub fn attach(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> SysResult<()> {
    rustix::mount::move_mount(
        tree,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_flags_become_attrs() {
        let a = Attrs::from_ms(
            (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOATIME) as u64,
            libc::MS_NOEXEC as u64,
        );
        assert_eq!(a.set, ATTR_RDONLY | ATTR_NOSUID | ATTR_NOATIME);
        assert_eq!(a.clear, ATTR_NOEXEC | ATTR_ATIME_MASK);
        assert!(Attrs::from_ms(0, 0).is_empty());
    }
}

//! Preparing the root mount and switching the process into it.
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use bulwark_spec::linux::RootPropagation;
use bulwark_sys::mount::{attach, clone_tree_fd, set_attrs, Attrs, ATTR_RDONLY};
use bulwark_sys::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::StepError;

/// Opens `root.path` while the process still has the host's root as its owner (before it
/// becomes root of a user namespace mapped elsewhere), so a bundle directory only root
/// can search still works. The handle is to the directory the rootfs mount will cover.
pub fn open_rootfs(rootfs: &Path) -> Result<OwnedFd, StepError> {
    nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(StepError::sys(format!(
        "opening root.path {}",
        rootfs.display()
    )))
}

/// Stops mount events of the new mount namespace reaching the host, and mounts the rootfs
/// (`rootfs`, from [`open_rootfs`]) on itself as a private mount of its own (pivot_root
/// needs one): a recursive bind, or `idmapped`, the idmapped tree the parent made.
/// Returns a handle to the root of that mount.
pub fn prepare_root(
    rootfs: OwnedFd,
    root_propagation: Option<RootPropagation>,
    idmapped: Option<OwnedFd>,
) -> Result<OwnedFd, StepError> {
    let host_side = match root_propagation {
        Some(p) if p.is_private() => MsFlags::MS_PRIVATE,
        _ => MsFlags::MS_SLAVE,
    };
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        host_side | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(StepError::sys("making / a slave mount"))?;
    let tree = match idmapped {
        Some(tree) => tree,
        None => clone_tree_fd(rootfs.as_fd(), true)
            .map_err(StepError::sys("cloning root.path for its bind mount"))?,
    };
    attach(tree.as_fd(), rootfs.as_fd()).map_err(StepError::sys("mounting root.path on itself"))?;
    // The rootfs mount must not be shared, or pivot_root refuses.
    set_attrs(
        tree.as_fd(),
        Attrs::default(),
        libc::MS_PRIVATE as u64,
        false,
    )
    .map_err(StepError::sys("making the rootfs private"))?;
    Ok(tree)
}

/// How the process makes the rootfs its `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// pivot_root, then detach the old root.
    Pivot,
    /// `--no-pivot`: move the rootfs mount over `/` and chroot into it.
    MoveAndChroot,
    /// No mount namespace of its own: only chroot, leaving every mount as it is.
    Chroot,
}

/// Makes the rootfs (`root`, a handle to it) the process's `/`.
pub fn enter_root(root: &OwnedFd, entry: Entry, rootfs: &Path) -> Result<(), StepError> {
    nix::unistd::fchdir(root).map_err(StepError::sys("entering the rootfs"))?;
    match entry {
        Entry::Chroot => {
            nix::unistd::chroot(".").map_err(StepError::sys("chroot into the rootfs"))?;
        }
        Entry::MoveAndChroot => {
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .map_err(StepError::sys("moving the rootfs over / (--no-pivot)"))?;
            nix::unistd::chroot(".").map_err(StepError::sys("chroot"))?;
        }
        Entry::Pivot => {
            nix::unistd::pivot_root(".", ".").map_err(|errno| match errno {
                Errno::EINVAL => StepError::msg(format!(
                    "pivot_root into root.path {}: {errno} (the kernel refuses pivot_root when / is the initial ramdisk or the rootfs is not a mount point of its own; on such a host use --no-pivot)",
                    rootfs.display()
                )),
                _ => StepError::sys(format!("pivot_root into root.path {}", rootfs.display()))(errno),
            })?;
            // The old root now sits on top of the new one; detach it without the unmount
            // reaching the host.
            mount(
                None::<&str>,
                ".",
                None::<&str>,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(StepError::sys("making the old root a slave"))?;
            umount2(".", MntFlags::MNT_DETACH).map_err(StepError::sys("detaching the old root"))?;
        }
    }
    nix::unistd::chdir("/").map_err(StepError::sys("chdir /"))
}

/// Applies `linux.rootfsPropagation` to the new root.
pub fn set_root_propagation(propagation: RootPropagation) -> Result<(), StepError> {
    let mut flags = MsFlags::from_bits_retain(propagation.flag as libc::c_ulong);
    if propagation.recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(StepError::sys("setting linux.rootfsPropagation"))
}

/// Makes `/` read-only (`root.readonly`), changing only that one attribute so flags the
/// kernel locked (nosuid, nodev in a user namespace) stay as they are.
pub fn make_root_readonly() -> Result<(), StepError> {
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(StepError::sys("opening /"))?;
    set_attrs(
        root.as_fd(),
        Attrs {
            set: ATTR_RDONLY,
            clear: 0,
        },
        0,
        false,
    )
    .map_err(StepError::sys("making root.readonly"))
}

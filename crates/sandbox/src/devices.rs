//! Device nodes and the standard `/dev` links inside the container.
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use bulwark_spec::linux::{DeviceKind, DeviceNode};
use bulwark_sys::fs::{mkdir_all_in_root, open_path_in_root, reopen, touch_in_root};
use bulwark_sys::mount::{attach, clone_tree};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use rustix::fs::OFlags;

use crate::StepError;

/// Creates the container's device nodes (planned: the defaults and `linux.devices`) under
/// `root`. In a user namespace mknod is not allowed, so the host's node is bind-mounted
/// instead.
pub fn create_all(
    root: BorrowedFd<'_>,
    devices: &[DeviceNode],
    in_userns: bool,
) -> Result<(), StepError> {
    for device in devices {
        let result = if in_userns {
            bind_host_device(root, device)
        } else {
            make_node(root, device)
        };
        result.map_err(|e| StepError::msg(format!("device {}: {e}", device.path.display())))?;
    }
    Ok(())
}

fn kind(device: &DeviceNode) -> SFlag {
    match device.kind {
        DeviceKind::Char => SFlag::S_IFCHR,
        DeviceKind::Block => SFlag::S_IFBLK,
        DeviceKind::Fifo => SFlag::S_IFIFO,
    }
}

fn make_node(root: BorrowedFd<'_>, device: &DeviceNode) -> Result<(), StepError> {
    let parent = device.path.parent().unwrap_or(Path::new("/dev"));
    let name = device.path.file_name().unwrap_or_default();
    let dir =
        mkdir_all_in_root(root, parent, 0o755).map_err(StepError::sys("creating its directory"))?;
    let dir = reopen(dir.as_fd(), OFlags::DIRECTORY | OFlags::RDONLY)
        .map_err(StepError::sys("opening its directory"))?;
    match nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(StepError::sys("removing what was there")(e)),
    }
    mknodat(
        &dir,
        name,
        kind(device),
        Mode::from_bits_truncate(device.mode),
        makedev(device.major, device.minor),
    )
    .map_err(StepError::sys("mknod"))?;
    // mknod applies the umask; set the exact mode and owner asked for.
    nix::sys::stat::fchmodat(
        &dir,
        name,
        Mode::from_bits_truncate(device.mode),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .map_err(StepError::sys("chmod"))?;
    nix::unistd::fchownat(
        &dir,
        name,
        Some(nix::unistd::Uid::from_raw(device.uid)),
        Some(nix::unistd::Gid::from_raw(device.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(StepError::sys("chown"))
}

fn bind_host_device(root: BorrowedFd<'_>, device: &DeviceNode) -> Result<(), StepError> {
    let target = touch_in_root(root, &device.path, 0o000)
        .map_err(StepError::sys("creating the mount point"))?;
    let tree = clone_tree(&device.path, false)
        .map_err(StepError::sys("cloning the host's device node"))?;
    attach(tree.as_fd(), target.as_fd())
        .map_err(StepError::sys("bind-mounting the host's device node"))
}

/// `/dev/fd`, `/dev/std{in,out,err}` and `/dev/ptmx`, unless the image has its own.
pub fn create_links(root: BorrowedFd<'_>) -> Result<(), StepError> {
    let dev = match open_path_in_root(root, Path::new("/dev")) {
        Ok(dev) => reopen(dev.as_fd(), OFlags::DIRECTORY | OFlags::RDONLY)
            .map_err(StepError::sys("opening /dev"))?,
        Err(_) => return Ok(()),
    };
    let has_pts = open_path_in_root(root, Path::new("/dev/pts/ptmx")).is_ok();
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    for (name, target) in links {
        if name == "ptmx" && !has_pts {
            continue;
        }
        match nix::unistd::symlinkat(target, &dev, name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(StepError::sys(format!("creating /dev/{name}"))(e)),
        }
    }
    Ok(())
}

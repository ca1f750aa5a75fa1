//! Device nodes and the standard `/dev` links inside the container.
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use bulwark_spec::runtime::{LinuxDevice, LinuxDeviceType};
use bulwark_sys::fs::{mkdir_all_in_root, open_path_in_root, reopen, touch_in_root};
use bulwark_sys::mount::{attach, clone_tree};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use rustix::fs::OFlags;

use crate::StepError;

/// A device to create: the default set plus `linux.devices`.
#[derive(Debug, Clone)]
struct Device {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The devices every container gets, as the runtime spec lists them.
fn default_devices() -> Vec<Device> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Device {
        path: PathBuf::from("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

fn from_config(device: &LinuxDevice) -> Device {
    let kind = match device.typ() {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    Device {
        path: device.path().clone(),
        kind,
        major: device.major() as u64,
        minor: device.minor() as u64,
        mode: device.file_mode().unwrap_or(0o666) & 0o7777,
        uid: device.uid().unwrap_or(0),
        gid: device.gid().unwrap_or(0),
    }
}

/// Creates the default devices and `linux.devices` under `root`. In a user namespace
/// mknod is not allowed, so the host's node is bind-mounted instead.
pub fn create_all(
    root: BorrowedFd<'_>,
    configured: &[LinuxDevice],
    in_userns: bool,
) -> Result<(), StepError> {
    let mut devices = default_devices();
    for device in configured.iter().map(from_config) {
        devices.retain(|d| d.path != device.path);
        devices.push(device);
    }
    for device in &devices {
        let result = if in_userns {
            bind_host_device(root, device)
        } else {
            make_node(root, device)
        };
        result.map_err(|e| StepError::msg(format!("device {}: {e}", device.path.display())))?;
    }
    Ok(())
}

fn make_node(root: BorrowedFd<'_>, device: &Device) -> Result<(), StepError> {
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
        device.kind,
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

fn bind_host_device(root: BorrowedFd<'_>, device: &Device) -> Result<(), StepError> {
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

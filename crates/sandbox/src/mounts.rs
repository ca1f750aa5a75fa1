//! The container's mounts, made inside its root without following any path out of it.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use bulwark_spec::mount_options::MountOptions;
use bulwark_spec::mounts::{MountConfig, MountKind};
use bulwark_sys::copy::{copy_dir_attributes, copy_tree};
use bulwark_sys::fs::{fd_path, mkdir_all_in_root, open_path_in_root, reopen, touch_in_root};
use bulwark_sys::mount::{attach, clone_tree, set_attrs, Attrs};
use bulwark_sys::Errno;
use nix::mount::MsFlags;
use rustix::fs::OFlags;

use crate::idmapped::{Target, Trees};
use crate::StepError;

/// What about the container changes how its mounts are made.
#[derive(Debug, Clone, Copy)]
pub struct MountContext {
    /// In a user namespace: sysfs may need a bind instead.
    pub in_userns: bool,
    /// In its own cgroup namespace: cgroup filesystems may be mounted fresh.
    pub own_cgroup_namespace: bool,
}

/// Makes every mount under `root` (a handle to the container's root), in order, so
/// later mounts can land inside earlier ones.
pub fn mount_all(
    root: BorrowedFd<'_>,
    mounts: &[MountConfig],
    idmapped: &mut Trees,
    ctx: MountContext,
) -> Result<(), StepError> {
    for mount in mounts {
        let tree = idmapped.take(Target::Mount(mount.index));
        mount_one(root, mount, tree, ctx)
            .map_err(|e| StepError::msg(format!("{}: {e}", mount.describe())))?;
    }
    Ok(())
}

fn mount_one(
    root: BorrowedFd<'_>,
    mount: &MountConfig,
    idmapped: Option<OwnedFd>,
    ctx: MountContext,
) -> Result<(), StepError> {
    let destination = &mount.destination;
    let options = &mount.options;
    match &mount.kind {
        MountKind::Bind { source, recursive } => {
            let target = bind_target(root, source, destination)?;
            let tree = match idmapped {
                Some(tree) => tree,
                None => clone_tree(source, *recursive)
                    .map_err(StepError::sys(format!("cloning {}", source.display())))?,
            };
            bind(tree, target.as_fd(), options)?;
        }
        MountKind::Cgroup => {
            return crate::cgroupfs::mount(root, destination, options, ctx.own_cgroup_namespace);
        }
        MountKind::Filesystem { typ, source } => {
            let target = mkdir_all_in_root(root, destination, 0o755)
                .map_err(StepError::sys("creating the mount point"))?;
            check_special_target(typ, target.as_fd())?;
            let image_dir = copy_up_source(options, target.as_fd())?;
            match new_filesystem(typ, source, options, target.as_fd()) {
                // sysfs can only be mounted by the owner of the network namespace; in a user
                // namespace sharing the host's network, bind the host's /sys read-only instead.
                Err(StepError::Sys {
                    errno: Errno::EPERM,
                    ..
                }) if typ == "sysfs" && ctx.in_userns => {
                    let mut options = options.clone();
                    options.recursive_set |= libc::MS_RDONLY as u64;
                    let tree = clone_tree(Path::new("/sys"), true)
                        .map_err(StepError::sys("cloning /sys"))?;
                    bind(tree, target.as_fd(), &options)?;
                }
                other => other?,
            }
            if typ == "proc" {
                check_proc_mounted(root, destination)?;
            }
            if let Some(image_dir) = image_dir {
                copy_up(root, destination, image_dir, options)?;
            }
        }
    }
    finish_attached(root, destination, options)
}

/// The mount point for a bind: a directory for a directory source, a file otherwise.
fn bind_target(
    root: BorrowedFd<'_>,
    source: &Path,
    destination: &Path,
) -> Result<OwnedFd, StepError> {
    let meta = std::fs::metadata(source)
        .map_err(|e| StepError::msg(format!("source {}: {e}", source.display())))?;
    if meta.is_dir() {
        mkdir_all_in_root(root, destination, 0o755)
    } else {
        touch_in_root(root, destination, 0o644)
    }
    .map_err(StepError::sys("creating the mount point"))
}

/// A bind mount made as a detached tree (`tree`, from `clone_tree`): flags set on the
/// tree before it becomes visible.
fn bind(tree: OwnedFd, target: BorrowedFd<'_>, options: &MountOptions) -> Result<(), StepError> {
    set_attrs(
        tree.as_fd(),
        Attrs::from_ms(options.set, options.clear),
        0,
        false,
    )
    .map_err(StepError::sys("setting mount flags"))?;
    set_attrs(
        tree.as_fd(),
        Attrs::from_ms(options.recursive_set, options.recursive_clear),
        0,
        true,
    )
    .map_err(StepError::sys("setting recursive mount flags"))?;
    attach(tree.as_fd(), target).map_err(StepError::sys("attaching the mount"))
}

/// proc and sysfs must land on a real directory of the image, never through a symlink
/// the image planted (the CVE-2025-31133 family).
fn check_special_target(typ: &str, target: BorrowedFd<'_>) -> Result<(), StepError> {
    if matches!(typ, "proc" | "sysfs") {
        let stat =
            nix::sys::stat::fstat(target).map_err(StepError::sys("inspecting the mount point"))?;
        if stat.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(StepError::msg("the mount point is not a directory"));
        }
    }
    Ok(())
}

/// For `tmpcopyup`: the image's directory under the destination, opened before the
/// tmpfs hides it.
fn copy_up_source(
    options: &MountOptions,
    target: BorrowedFd<'_>,
) -> Result<Option<OwnedFd>, StepError> {
    if !options.copy_up {
        return Ok(None);
    }
    let dir = reopen(target, OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(StepError::sys("opening the directory to copy up"))?;
    Ok(Some(dir))
}

/// Copies the image's files into the new tmpfs, which is made read-only only afterwards.
fn copy_up(
    root: BorrowedFd<'_>,
    destination: &Path,
    image_dir: OwnedFd,
    options: &MountOptions,
) -> Result<(), StepError> {
    let mounted =
        open_path_in_root(root, destination).map_err(StepError::sys("reopening the mount"))?;
    let tmpfs = reopen(mounted.as_fd(), OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(StepError::sys("opening the new tmpfs"))?;
    copy_tree(image_dir.as_fd(), tmpfs.as_fd())
        .map_err(StepError::sys("copying the image's files into the tmpfs"))?;
    // The tmpfs root looks like the directory it covers, unless the options say otherwise.
    let given = |key: &str| options.data.iter().any(|d| d.starts_with(key));
    copy_dir_attributes(
        image_dir.as_fd(),
        tmpfs.as_fd(),
        !given("uid=") && !given("gid="),
        !given("mode="),
    )
    .map_err(StepError::sys("copying the directory's owner and mode"))?;
    if options.read_only() {
        set_attrs(
            mounted.as_fd(),
            Attrs::from_ms(libc::MS_RDONLY as u64, 0),
            0,
            false,
        )
        .map_err(StepError::sys("making the tmpfs read-only"))?;
    }
    Ok(())
}

fn new_filesystem(
    typ: &str,
    source: &Path,
    options: &MountOptions,
    target: BorrowedFd<'_>,
) -> Result<(), StepError> {
    let mut set = options.set & !(libc::MS_REMOUNT as u64);
    if options.copy_up {
        // Written to first; copy_up makes it read-only after.
        set &= !(libc::MS_RDONLY as u64);
    }
    let flags = MsFlags::from_bits_retain(set as libc::c_ulong);
    let data = options.data_string();
    nix::mount::mount(
        Some(source),
        &fd_path(target),
        Some(typ),
        flags,
        data.as_deref(),
    )
    .map_err(StepError::sys(format!("mounting {typ}")))?;
    Ok(())
}

/// A new procfs must be what the destination now shows: a swapped path would leave the
/// container with a /proc the runtime did not make.
fn check_proc_mounted(root: BorrowedFd<'_>, destination: &Path) -> Result<(), StepError> {
    let mounted =
        open_path_in_root(root, destination).map_err(StepError::sys("reopening the mount"))?;
    let magic = bulwark_sys::fs::fs_magic(mounted.as_fd())
        .map_err(StepError::sys("checking the new /proc"))?;
    if magic != bulwark_sys::fs::PROC_SUPER_MAGIC {
        return Err(StepError::msg("the new mount is not procfs"));
    }
    Ok(())
}

/// Applies what can only be set once the mount is attached: recursive attributes of a
/// new filesystem and propagation changes.
fn finish_attached(
    root: BorrowedFd<'_>,
    destination: &Path,
    options: &MountOptions,
) -> Result<(), StepError> {
    let is_bind = options.bind.is_some();
    let recursive = Attrs::from_ms(options.recursive_set, options.recursive_clear);
    if options.propagation.is_empty() && (is_bind || recursive.is_empty()) {
        return Ok(());
    }
    let mounted =
        open_path_in_root(root, destination).map_err(StepError::sys("reopening the mount"))?;
    if !is_bind {
        set_attrs(mounted.as_fd(), recursive, 0, true)
            .map_err(StepError::sys("setting recursive mount flags"))?;
    }
    for p in &options.propagation {
        set_attrs(mounted.as_fd(), Attrs::default(), p.flag, p.recursive)
            .map_err(StepError::sys("setting mount propagation"))?;
    }
    Ok(())
}

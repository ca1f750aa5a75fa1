//! The container's mounts, made inside its root without following any path out of it.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use bulwark_spec::mount_options::{Bind, MountOptions};
use bulwark_spec::runtime::Mount;
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

/// One `mounts[i]` entry, ready to be made.
struct MountSpec<'a> {
    index: usize,
    mount: &'a Mount,
    options: MountOptions,
    typ: &'a str,
}

impl MountSpec<'_> {
    fn describe(&self) -> String {
        format!(
            "mounts[{}] ({} on {})",
            self.index,
            if self.options.bind.is_some() {
                "bind"
            } else {
                self.typ
            },
            self.mount.destination().display()
        )
    }
}

/// Makes every mount of `config.json` under `root` (a handle to the container's root),
/// in order, so later mounts can land inside earlier ones.
pub fn mount_all(
    root: BorrowedFd<'_>,
    bundle_dir: &Path,
    mounts: &[Mount],
    idmapped: &mut Trees,
    ctx: MountContext,
) -> Result<(), StepError> {
    for (index, mount) in mounts.iter().enumerate() {
        let options = MountOptions::parse(
            mount.options().as_deref().unwrap_or_default(),
            &format!("mounts[{index}].options"),
        )
        .map_err(|e| StepError::msg(e.to_string()))?;
        let spec = MountSpec {
            index,
            mount,
            typ: mount.typ().as_deref().unwrap_or("bind"),
            options,
        };
        let tree = idmapped.take(Target::Mount(index));
        mount_one(root, bundle_dir, &spec, tree, ctx)
            .map_err(|e| StepError::msg(format!("{}: {e}", spec.describe())))?;
    }
    Ok(())
}

fn mount_one(
    root: BorrowedFd<'_>,
    bundle_dir: &Path,
    spec: &MountSpec,
    idmapped: Option<OwnedFd>,
    ctx: MountContext,
) -> Result<(), StepError> {
    let in_userns = ctx.in_userns;
    let destination = spec.mount.destination();
    if spec.options.copy_up && (spec.typ != "tmpfs" || spec.options.bind.is_some()) {
        return Err(StepError::msg(format!(
            "option \"tmpcopyup\" is only for a tmpfs, not for type {:?}{}",
            spec.typ,
            if spec.options.bind.is_some() {
                " with bind"
            } else {
                ""
            }
        )));
    }
    if spec.options.bind.is_some() || spec.typ == "bind" {
        let source = bind_source(
            bundle_dir,
            spec.mount.source().as_deref().unwrap_or(Path::new("")),
        );
        let recursive = spec.options.bind == Some(Bind::Recursive);
        let target = bind_target(root, &source, destination)?;
        let tree = match idmapped {
            Some(tree) => tree,
            None => clone_tree(&source, recursive)
                .map_err(StepError::sys(format!("cloning {}", source.display())))?,
        };
        bind(tree, target.as_fd(), &spec.options)?;
    } else if spec.typ == "cgroup" {
        return crate::cgroupfs::mount(root, destination, &spec.options, ctx.own_cgroup_namespace);
    } else {
        let target = mkdir_all_in_root(root, destination, 0o755)
            .map_err(StepError::sys("creating the mount point"))?;
        check_special_target(spec.typ, target.as_fd())?;
        let image_dir = copy_up_source(spec, target.as_fd())?;
        match new_filesystem(spec, target.as_fd()) {
            // sysfs can only be mounted by the owner of the network namespace; in a user
            // namespace sharing the host's network, bind the host's /sys read-only instead.
            Err(StepError::Sys {
                errno: Errno::EPERM,
                ..
            }) if spec.typ == "sysfs" && in_userns => {
                let mut options = spec.options.clone();
                options.recursive_set |= libc::MS_RDONLY as u64;
                let tree =
                    clone_tree(Path::new("/sys"), true).map_err(StepError::sys("cloning /sys"))?;
                bind(tree, target.as_fd(), &options)?;
            }
            other => other?,
        }
        if spec.typ == "proc" {
            check_proc_mounted(root, destination)?;
        }
        if let Some(image_dir) = image_dir {
            copy_up(root, destination, image_dir, &spec.options)?;
        }
    }
    finish_attached(root, destination, &spec.options)
}

/// Where a bind mount's source lives on the host: relative sources are taken from the bundle.
fn bind_source(bundle_dir: &Path, source: &Path) -> PathBuf {
    if source.is_absolute() {
        source.to_path_buf()
    } else {
        bundle_dir.join(source)
    }
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
fn copy_up_source(spec: &MountSpec, target: BorrowedFd<'_>) -> Result<Option<OwnedFd>, StepError> {
    if !spec.options.copy_up {
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

fn new_filesystem(spec: &MountSpec, target: BorrowedFd<'_>) -> Result<(), StepError> {
    let mut set = spec.options.set & !(libc::MS_REMOUNT as u64);
    if spec.options.copy_up {
        // Written to first; copy_up makes it read-only after.
        set &= !(libc::MS_RDONLY as u64);
    }
    let flags = MsFlags::from_bits_retain(set as libc::c_ulong);
    let source = spec
        .mount
        .source()
        .as_deref()
        .map(|s| s.to_path_buf())
        .unwrap_or_else(|| PathBuf::from(spec.typ));
    let data = spec.options.data_string();
    nix::mount::mount(
        Some(&source),
        &fd_path(target),
        Some(spec.typ),
        flags,
        data.as_deref(),
    )
    .map_err(StepError::sys(format!("mounting {}", spec.typ)))?;
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

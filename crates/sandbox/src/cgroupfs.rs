//! The `cgroup` mount type. On a pure cgroup v2 host it is a cgroup2 mount. On a v1 or
//! hybrid host it is a tmpfs holding one mount per hierarchy the host has (with the
//! host's names and symlinks such as `cpu -> cpu,cpuacct`), so programs inside find the
//! layout they expect. In a cgroup namespace each shows the namespace's root.
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use bulwark_spec::mount_options::MountOptions;
use bulwark_sys::fs::{fd_path, fs_magic, mkdir_all_in_root, open_path_in_root, reopen};
use bulwark_sys::mount::{attach, clone_tree, set_attrs, Attrs, ATTR_RDONLY};
use nix::mount::MsFlags;
use rustix::fs::OFlags;

use crate::StepError;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const HOST_ROOT: &str = "/sys/fs/cgroup";

/// One hierarchy mounted under the host's /sys/fs/cgroup.
struct Hierarchy {
    name: String,
    fstype: String,
    /// The superblock options naming its controllers (`cpu,cpuacct`, `name=systemd`).
    controllers: String,
}

fn host_hierarchies() -> Result<Vec<Hierarchy>, StepError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(StepError::io("reading /proc/self/mountinfo"))?;
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        let mut right = right.split(' ');
        let fstype = right.next().unwrap_or_default();
        let super_options = right.nth(1).unwrap_or_default();
        let Some(name) = mount_point.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if !matches!(fstype, "cgroup" | "cgroup2") || name.contains('/') {
            continue;
        }
        let controllers = super_options
            .split(',')
            .filter(|o| {
                !matches!(
                    *o,
                    "rw" | "ro"
                        | "nsdelegate"
                        | "memory_recursiveprot"
                        | "xattr"
                        | "clone_children"
                        | "noprefix"
                ) && !o.starts_with("release_agent")
            })
            .collect::<Vec<_>>()
            .join(",");
        found.push(Hierarchy {
            name: name.to_string(),
            fstype: fstype.to_string(),
            controllers,
        });
    }
    Ok(found)
}

/// Mounts the cgroup filesystem at `destination` inside `root`.
/// Without its own cgroup namespace (`own_namespace` false) the container gets bind mounts
/// of its own cgroup in each hierarchy, never a hierarchy's root, which would show every
/// other cgroup on the host.
pub fn mount(
    root: BorrowedFd<'_>,
    destination: &Path,
    options: &MountOptions,
    own_namespace: bool,
) -> Result<(), StepError> {
    let flags = MsFlags::from_bits_retain(
        (options.set & !(libc::MS_RDONLY | libc::MS_REMOUNT) as u64) as libc::c_ulong,
    );
    let target = mkdir_all_in_root(root, destination, 0o755)
        .map_err(StepError::sys("creating the mount point"))?;
    let host = nix::fcntl::open(
        HOST_ROOT,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(StepError::sys("opening the host's /sys/fs/cgroup"))?;
    if fs_magic(host.as_fd()).map_err(StepError::sys("inspecting /sys/fs/cgroup"))?
        == CGROUP2_SUPER_MAGIC
    {
        if own_namespace {
            nix::mount::mount(
                Some("cgroup2"),
                &fd_path(target.as_fd()),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .map_err(StepError::sys("mounting cgroup2"))?;
        } else {
            bind_own_cgroup(Path::new(HOST_ROOT), "", target.as_fd())?;
        }
    } else {
        mount_v1_layout(root, destination, target.as_fd(), flags, own_namespace)?;
    }
    if options.read_only() {
        let mounted = open_path_in_root(root, destination)
            .map_err(StepError::sys("reopening the cgroup mount"))?;
        set_attrs(
            mounted.as_fd(),
            Attrs {
                set: ATTR_RDONLY,
                clear: 0,
            },
            0,
            true,
        )
        .map_err(StepError::sys("making the cgroup mount read-only"))?;
    }
    Ok(())
}

fn mount_v1_layout(
    root: BorrowedFd<'_>,
    destination: &Path,
    target: BorrowedFd<'_>,
    flags: MsFlags,
    own_namespace: bool,
) -> Result<(), StepError> {
    nix::mount::mount(
        Some("tmpfs"),
        &fd_path(target),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(StepError::sys("mounting the tmpfs for cgroup hierarchies"))?;
    for hierarchy in host_hierarchies()? {
        let sub = destination.join(&hierarchy.name);
        let dir = mkdir_all_in_root(root, &sub, 0o755)
            .map_err(StepError::sys(format!("creating {}", sub.display())))?;
        if !own_namespace {
            let host = PathBuf::from(HOST_ROOT).join(&hierarchy.name);
            let key = if hierarchy.fstype == "cgroup2" {
                ""
            } else {
                hierarchy.controllers.as_str()
            };
            bind_own_cgroup(&host, key, dir.as_fd())?;
            continue;
        }
        let data = (hierarchy.fstype == "cgroup").then_some(hierarchy.controllers.as_str());
        let mounted = nix::mount::mount(
            Some(hierarchy.fstype.as_str()),
            &fd_path(dir.as_fd()),
            Some(hierarchy.fstype.as_str()),
            flags,
            data,
        );
        if mounted.is_err() {
            // Without the right to mount it (a user namespace sharing the host's cgroup
            // namespace), show the host's hierarchy instead.
            let source = PathBuf::from(HOST_ROOT).join(&hierarchy.name);
            let tree = clone_tree(&source, true)
                .map_err(StepError::sys(format!("cloning {}", source.display())))?;
            attach(tree.as_fd(), dir.as_fd())
                .map_err(StepError::sys(format!("binding {}", source.display())))?;
        }
    }
    copy_symlinks(root, destination)
}

/// Bind-mounts the process's own cgroup of the hierarchy mounted at `host` (named by its
/// controllers in /proc/self/cgroup, "" for cgroup2) onto `target`.
fn bind_own_cgroup(
    host: &Path,
    controllers: &str,
    target: BorrowedFd<'_>,
) -> Result<(), StepError> {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(StepError::io("reading /proc/self/cgroup"))?;
    let path = own
        .lines()
        .filter_map(|l| {
            let mut fields = l.splitn(3, ':').skip(1);
            fields.next().zip(fields.next())
        })
        .find(|(c, _)| *c == controllers)
        .map(|(_, p)| p.trim_start_matches('/').to_string())
        .ok_or_else(|| {
            StepError::msg(format!(
                "no entry for cgroup hierarchy {controllers:?} in /proc/self/cgroup"
            ))
        })?;
    let source = host.join(path);
    let tree = clone_tree(&source, true)
        .map_err(StepError::sys(format!("cloning {}", source.display())))?;
    attach(tree.as_fd(), target).map_err(StepError::sys(format!("binding {}", source.display())))
}

/// The host's aliases (`cpu -> cpu,cpuacct`).
fn copy_symlinks(root: BorrowedFd<'_>, destination: &Path) -> Result<(), StepError> {
    let dir =
        open_path_in_root(root, destination).map_err(StepError::sys("opening the cgroup tmpfs"))?;
    let dir = reopen(dir.as_fd(), OFlags::DIRECTORY | OFlags::RDONLY)
        .map_err(StepError::sys("opening the cgroup tmpfs"))?;
    for entry in std::fs::read_dir(HOST_ROOT)
        .map_err(StepError::io(format!("reading {HOST_ROOT}")))?
        .flatten()
    {
        if !entry.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if link.is_absolute() || link.components().count() != 1 {
            continue;
        }
        match nix::unistd::symlinkat(&link, &dir, entry.file_name().as_os_str()) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(StepError::sys("linking a cgroup alias")(e)),
        }
    }
    Ok(())
}

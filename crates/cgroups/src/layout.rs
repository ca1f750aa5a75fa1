//! Which cgroup layout the host uses (v1, hybrid or v2) and where each hierarchy is
//! mounted, found from `statfs(/sys/fs/cgroup)`, `/proc/self/mountinfo` and
//! `/proc/self/cgroup`. Parsing is pure; [`Layout::detect`] only reads those files.
use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};
use crate::path::{parse_proc_cgroup, ProcCgroup};

/// Where the host mounts its cgroup hierarchies.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";

/// The v1 controllers the kernel knows; other cgroup mount options are not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only v1 hierarchies, one (or a few joined) controllers each.
    V1,
    /// v1 hierarchies for the controllers plus a cgroup2 mount (usually
    /// `/sys/fs/cgroup/unified`) that only tracks processes.
    Hybrid,
    /// One cgroup2 hierarchy at `/sys/fs/cgroup` holding every controller.
    V2,
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    mount_point: PathBuf,
    /// v1: its controllers (`cpu`, `cpuacct`) and names (`name=systemd`); v2: empty.
    controllers: Vec<String>,
    /// The calling process's cgroup in this hierarchy, relative to `mount_point`;
    /// `None` when it lies outside what the mount shows.
    own_cgroup: Option<PathBuf>,
}

impl Hierarchy {
    /// A hierarchy mounted at `mount_point` with these controllers (empty for cgroup2),
    /// in which the calling process sits at `own_cgroup` (relative to the mount point).
    pub fn new<S: Into<String>>(
        mount_point: impl Into<PathBuf>,
        controllers: impl IntoIterator<Item = S>,
        own_cgroup: Option<PathBuf>,
    ) -> Self {
        Hierarchy {
            mount_point: mount_point.into(),
            controllers: controllers.into_iter().map(Into::into).collect(),
            own_cgroup,
        }
    }

    /// Where it is mounted.
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// Its v1 controllers and names (`name=systemd`); empty for cgroup2.
    pub fn controllers(&self) -> &[String] {
        &self.controllers
    }

    /// The calling process's cgroup in it, relative to the mount point.
    pub fn own_cgroup(&self) -> Option<&Path> {
        self.own_cgroup.as_deref()
    }

    /// Whether it carries `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The host's cgroup layout: its mode and every hierarchy bulwark places processes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    mode: Mode,
    v1: Vec<Hierarchy>,
    unified: Option<Hierarchy>,
}

impl Layout {
    /// Detects the layout of this host from `/sys/fs/cgroup`.
    pub fn detect() -> Result<Layout> {
        Self::detect_at(Path::new(CGROUP_ROOT))
    }

    /// Detects the layout with the cgroup filesystems mounted under `root`.
    pub fn detect_at(root: &Path) -> Result<Layout> {
        let mountinfo = read(Path::new(MOUNTINFO))?;
        let mounts = parse_mountinfo(&mountinfo, Path::new(MOUNTINFO))?;
        let own = parse_proc_cgroup(&read(Path::new(PROC_CGROUP))?, Path::new(PROC_CGROUP))?;
        match filesystem_at(root)? {
            Filesystem::Cgroup2 => {
                let unified = unified_hierarchy(root, &mounts, &own);
                Self::from_parts(Mode::V2, Vec::new(), Some(unified))
            }
            Filesystem::Tmpfs => {
                let v1 = v1_hierarchies(root, &mounts, &own);
                let unified_root = root.join("unified");
                let hybrid = matches!(filesystem_at(&unified_root), Ok(Filesystem::Cgroup2));
                if hybrid {
                    let unified = unified_hierarchy(&unified_root, &mounts, &own);
                    Self::from_parts(Mode::Hybrid, v1, Some(unified))
                } else {
                    Self::from_parts(Mode::V1, v1, None)
                }
            }
            Filesystem::Other(magic) => Err(CgroupError::Layout {
                path: root.to_path_buf(),
                reason: format!(
                    "filesystem magic {magic:#x} is neither cgroup2 (v2) nor tmpfs (v1/hybrid)"
                ),
            }),
        }
    }

    /// A layout assembled by hand, for tests with fake roots. `v1` lists the v1
    /// hierarchies (empty for [`Mode::V2`]); `unified` is the cgroup2 mount (the whole
    /// tree for [`Mode::V2`], the process-only mount for [`Mode::Hybrid`]).
    pub fn from_parts(
        mode: Mode,
        v1: Vec<Hierarchy>,
        unified: Option<Hierarchy>,
    ) -> Result<Layout> {
        let problem = match (mode, v1.is_empty(), unified.is_some()) {
            (Mode::V1, false, false) | (Mode::Hybrid, false, true) | (Mode::V2, true, true) => None,
            (Mode::V2, false, _) => Some("a v2 layout has no v1 hierarchies"),
            (Mode::V1, _, true) => Some("a v1 layout has no cgroup2 mount (that is hybrid)"),
            (_, _, false) => Some("no cgroup2 hierarchy is mounted"),
            (_, true, _) => Some("no cgroup v1 hierarchy is mounted"),
        };
        if let Some(reason) = problem {
            return Err(CgroupError::Layout {
                path: PathBuf::from(MOUNTINFO),
                reason: reason.to_string(),
            });
        }
        Ok(Layout { mode, v1, unified })
    }

    /// v1, hybrid or v2.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The v1 hierarchies (empty on v2).
    pub fn v1_hierarchies(&self) -> &[Hierarchy] {
        &self.v1
    }

    /// The cgroup2 hierarchy: the whole tree on v2, the process-only one when hybrid.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.unified.as_ref()
    }

    /// The v1 hierarchy carrying `controller`.
    pub fn v1_hierarchy_for(&self, controller: &str) -> Option<&Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }
}

/// One cgroup or cgroup2 line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// The directory of the hierarchy shown at the mount point.
    pub(crate) root: PathBuf,
    pub(crate) mount_point: PathBuf,
    /// Empty for cgroup2.
    pub(crate) controllers: Vec<String>,
    pub(crate) cgroup2: bool,
}

/// The cgroup and cgroup2 mounts listed in a mountinfo file.
pub(crate) fn parse_mountinfo(text: &str, path: &Path) -> Result<Vec<CgroupMount>> {
    let mut mounts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let malformed = || CgroupError::Malformed {
            path: path.to_path_buf(),
            content: line.to_string(),
            expected:
                "ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS ... - FSTYPE SOURCE SUPER-OPTIONS"
                    .to_string(),
        };
        let (left, right) = line.split_once(" - ").ok_or_else(malformed)?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 6 || right.len() < 3 {
            return Err(malformed());
        }
        let cgroup2 = match right[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if cgroup2 {
            Vec::new()
        } else {
            right[2]
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                .map(str::to_string)
                .collect()
        };
        mounts.push(CgroupMount {
            root: PathBuf::from(unescape(left[3])),
            mount_point: PathBuf::from(unescape(left[4])),
            controllers,
            cgroup2,
        });
    }
    Ok(mounts)
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && d[0] <= b'3' && d.iter().all(|b| (b'0'..=b'7').contains(b))
        });
        match escape {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The v1 hierarchies, one per controller set; a mount under `root` wins over the same
/// hierarchy mounted elsewhere.
pub(crate) fn v1_hierarchies(
    root: &Path,
    mounts: &[CgroupMount],
    own: &[ProcCgroup],
) -> Vec<Hierarchy> {
    let mut candidates: Vec<&CgroupMount> = mounts
        .iter()
        .filter(|m| !m.cgroup2 && !m.controllers.is_empty())
        .collect();
    candidates.sort_by_key(|m| !m.mount_point.starts_with(root));
    let mut found: Vec<Hierarchy> = Vec::new();
    for mount in candidates {
        let mut key = mount.controllers.clone();
        key.sort();
        let seen = found.iter().any(|h| {
            let mut other = h.controllers.clone();
            other.sort();
            other == key
        });
        if seen {
            continue;
        }
        let own_path = own
            .iter()
            .find(|p| {
                let mut theirs = p.controllers.clone();
                theirs.sort();
                theirs == key
            })
            .and_then(|p| relative_to_mount(&p.path, &mount.root));
        found.push(Hierarchy::new(
            mount.mount_point.clone(),
            mount.controllers.clone(),
            own_path,
        ));
    }
    found
}

/// The cgroup2 hierarchy mounted at `mount_point`.
pub(crate) fn unified_hierarchy(
    mount_point: &Path,
    mounts: &[CgroupMount],
    own: &[ProcCgroup],
) -> Hierarchy {
    let mount_root = mounts
        .iter()
        .rev()
        .find(|m| m.cgroup2 && m.mount_point == mount_point)
        .map_or_else(|| PathBuf::from("/"), |m| m.root.clone());
    let own_path = own
        .iter()
        .find(|p| p.hierarchy_id == 0 && p.controllers.is_empty())
        .and_then(|p| relative_to_mount(&p.path, &mount_root));
    Hierarchy::new(mount_point, Vec::<String>::new(), own_path)
}

/// A `/proc/self/cgroup` path made relative to what a mount of `mount_root` shows.
fn relative_to_mount(own: &Path, mount_root: &Path) -> Option<PathBuf> {
    own.strip_prefix(mount_root).ok().map(Path::to_path_buf)
}

enum Filesystem {
    Cgroup2,
    Tmpfs,
    Other(i64),
}

fn filesystem_at(path: &Path) -> Result<Filesystem> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
    let stat = statfs(path).map_err(|e| {
        CgroupError::io("statfs", path, std::io::Error::from_raw_os_error(e as i32))
    })?;
    let kind = stat.filesystem_type();
    Ok(if kind == CGROUP2_SUPER_MAGIC {
        Filesystem::Cgroup2
    } else if kind == TMPFS_MAGIC {
        Filesystem::Tmpfs
    } else {
        Filesystem::Other(kind.0 as i64)
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 31 0:32 / /mnt/other\\040memory rw,relatime - cgroup cgroup rw,memory
";

    const PROC: &str = "\
9:name=systemd:/user.slice
4:memory:/process_api/abc
1:cpu,cpuacct:/
0::/user.slice/session-1.scope
";

    fn parsed() -> (Vec<CgroupMount>, Vec<ProcCgroup>) {
        let mounts = parse_mountinfo(HYBRID, Path::new("mountinfo")).unwrap();
        let own = parse_proc_cgroup(PROC, Path::new("cgroup")).unwrap();
        (mounts, own)
    }

    #[test]
    fn mountinfo_keeps_cgroup_mounts_and_controllers() {
        let (mounts, _) = parsed();
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(mounts[2].controllers, ["name=systemd"]);
        assert!(mounts[3].cgroup2);
        assert_eq!(mounts[4].mount_point, Path::new("/mnt/other memory"));
    }

    #[test]
    fn joined_and_named_hierarchies_are_mapped() {
        let (mounts, own) = parsed();
        let v1 = v1_hierarchies(Path::new("/sys/fs/cgroup"), &mounts, &own);
        assert_eq!(v1.len(), 3, "the second memory mount is the same hierarchy");
        let layout = Layout::from_parts(
            Mode::Hybrid,
            v1,
            Some(unified_hierarchy(
                Path::new("/sys/fs/cgroup/unified"),
                &mounts,
                &own,
            )),
        )
        .unwrap();
        let cpu = layout.v1_hierarchy_for("cpuacct").unwrap();
        assert_eq!(cpu.mount_point(), Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.own_cgroup(), Some(Path::new("")));
        let memory = layout.v1_hierarchy_for("memory").unwrap();
        assert_eq!(memory.mount_point(), Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(memory.own_cgroup(), Some(Path::new("process_api/abc")));
        let systemd = layout.v1_hierarchy_for("name=systemd").unwrap();
        assert_eq!(systemd.own_cgroup(), Some(Path::new("user.slice")));
        let unified = layout.unified().unwrap();
        assert_eq!(
            unified.own_cgroup(),
            Some(Path::new("user.slice/session-1.scope"))
        );
    }

    #[test]
    fn own_cgroup_is_relative_to_the_mount_root() {
        let mounts = parse_mountinfo(
            "1 0 0:1 /docker/ctr /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            Path::new("mountinfo"),
        )
        .unwrap();
        let inside = parse_proc_cgroup("0::/docker/ctr/sub\n", Path::new("cgroup")).unwrap();
        let h = unified_hierarchy(Path::new("/sys/fs/cgroup"), &mounts, &inside);
        assert_eq!(h.own_cgroup(), Some(Path::new("sub")));
        let outside = parse_proc_cgroup("0::/elsewhere\n", Path::new("cgroup")).unwrap();
        let h = unified_hierarchy(Path::new("/sys/fs/cgroup"), &mounts, &outside);
        assert_eq!(h.own_cgroup(), None);
    }

    #[test]
    fn from_parts_checks_the_mode() {
        let v1 = vec![Hierarchy::new("/x/memory", ["memory"], None)];
        let unified = Some(Hierarchy::new("/x", Vec::<String>::new(), None));
        assert!(Layout::from_parts(Mode::V2, v1.clone(), unified.clone()).is_err());
        assert!(Layout::from_parts(Mode::V1, v1.clone(), unified.clone()).is_err());
        assert!(Layout::from_parts(Mode::Hybrid, Vec::new(), unified.clone()).is_err());
        assert!(Layout::from_parts(Mode::Hybrid, v1, unified).is_ok());
    }

    #[test]
    fn malformed_mountinfo_is_an_error() {
        let err = parse_mountinfo("garbage\n", Path::new("mi")).unwrap_err();
        assert!(err.to_string().contains("mi"), "{err}");
    }
}

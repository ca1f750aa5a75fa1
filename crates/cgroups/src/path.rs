//! `linux.cgroupsPath` with the meaning runc's cgroupfs driver gives it: an absolute path
//! is taken from the root of each hierarchy, a relative one from the runtime's own cgroup
//! in that hierarchy (from `/proc/self/cgroup`), and a missing one becomes
//! `/bulwark/<container-id>`. Pure: nothing here touches the filesystem.
use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};
use crate::layout::Hierarchy;

/// The directory under each hierarchy's root that holds containers without a
/// `linux.cgroupsPath`.
pub const DEFAULT_PARENT: &str = "bulwark";

/// The `linux.cgroupsPath` used when the configuration has none.
pub fn default_cgroups_path(container_id: &str) -> String {
    format!("/{DEFAULT_PARENT}/{container_id}")
}

/// A checked `linux.cgroupsPath`: no `..`, not a hierarchy's root, not a systemd unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupsPath {
    original: String,
    relative: bool,
    /// The normalised components, without a leading `/`.
    components: PathBuf,
}

impl CgroupsPath {
    /// Checks a `linux.cgroupsPath` value.
    pub fn parse(value: &str) -> Result<CgroupsPath> {
        if value.is_empty() {
            return Err(CgroupError::path(value, "it is empty"));
        }
        if value.chars().any(char::is_control) {
            return Err(CgroupError::path(value, "it contains control characters"));
        }
        if !value.contains('/') && value.split(':').count() == 3 {
            return Err(CgroupError::path(
                value,
                "it is a systemd unit (slice:prefix:name), but bulwark only has the cgroupfs \
                 driver; give a path such as /bulwark/<container-id>",
            ));
        }
        let mut components = PathBuf::new();
        for part in value.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(CgroupError::path(
                        value,
                        "it contains a \"..\" component (expected a path below the cgroup root)",
                    ))
                }
                name => components.push(name),
            }
        }
        if components.as_os_str().is_empty() {
            return Err(CgroupError::path(
                value,
                "it names a hierarchy's root or the runtime's own cgroup (expected a \
                 directory of its own for the container)",
            ));
        }
        Ok(CgroupsPath {
            original: value.to_string(),
            relative: !value.starts_with('/'),
            components,
        })
    }

    /// The configured path, or `/bulwark/<container_id>` when there is none.
    pub fn from_spec(value: Option<&Path>, container_id: &str) -> Result<CgroupsPath> {
        match value {
            Some(path) => Self::parse(&path.to_string_lossy()),
            None => Self::parse(&default_cgroups_path(container_id)),
        }
    }

    /// The value as configured.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// Whether it is taken from the runtime's own cgroup rather than the root.
    pub fn is_relative(&self) -> bool {
        self.relative
    }

    /// The container's directory in `hierarchy`.
    pub fn dir_in(&self, hierarchy: &Hierarchy) -> Result<PathBuf> {
        let mut dir = hierarchy.mount_point().to_path_buf();
        if self.relative {
            let own = hierarchy.own_cgroup().ok_or_else(|| {
                CgroupError::path(
                    &self.original,
                    format!(
                        "a relative path starts at the runtime's own cgroup, which \
                         /proc/self/cgroup places outside what {} shows",
                        hierarchy.mount_point().display()
                    ),
                )
            })?;
            dir.push(own);
        }
        dir.push(&self.components);
        Ok(dir)
    }
}

/// One line of `/proc/<pid>/cgroup`: `ID:CONTROLLERS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    /// 0 for the cgroup2 hierarchy.
    pub(crate) hierarchy_id: u32,
    /// v1: `cpu`, `cpuacct`, `name=systemd`; empty for cgroup2.
    pub(crate) controllers: Vec<String>,
    /// Absolute within the hierarchy (or the cgroup namespace).
    pub(crate) path: PathBuf,
}

/// Parses `/proc/<pid>/cgroup`.
pub(crate) fn parse_proc_cgroup(text: &str, path: &Path) -> Result<Vec<ProcCgroup>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let malformed = || CgroupError::Malformed {
            path: path.to_path_buf(),
            content: line.to_string(),
            expected: "HIERARCHY-ID:CONTROLLERS:PATH".to_string(),
        };
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(cgroup)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let hierarchy_id = id.parse().map_err(|_| malformed())?;
        if !cgroup.starts_with('/') {
            return Err(malformed());
        }
        out.push(ProcCgroup {
            hierarchy_id,
            controllers: controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            path: PathBuf::from(cgroup),
        });
    }
    Ok(out)
}

/// Whether `dir` is strictly below `mount_point` with plain components only, so removing
/// it can never touch a hierarchy's root.
pub(crate) fn is_strictly_below(dir: &Path, mount_point: &Path) -> bool {
    dir.strip_prefix(mount_point).is_ok_and(|rest| {
        rest.components().count() > 0
            && rest.components().all(|c| matches!(c, Component::Normal(_)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Hierarchy {
        Hierarchy::new(
            "/sys/fs/cgroup/memory",
            ["memory"],
            Some(PathBuf::from("process_api/abc")),
        )
    }

    #[test]
    fn absolute_paths_start_at_the_hierarchy_root() {
        let p = CgroupsPath::parse("/bulwark//ctr/./x").unwrap();
        assert!(!p.is_relative());
        assert_eq!(
            p.dir_in(&memory()).unwrap(),
            Path::new("/sys/fs/cgroup/memory/bulwark/ctr/x")
        );
    }

    #[test]
    fn relative_paths_start_at_the_runtimes_own_cgroup() {
        let p = CgroupsPath::parse("ctr/x").unwrap();
        assert!(p.is_relative());
        assert_eq!(
            p.dir_in(&memory()).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/abc/ctr/x")
        );
        let hidden = Hierarchy::new("/sys/fs/cgroup/pids", ["pids"], None);
        let err = p.dir_in(&hidden).unwrap_err().to_string();
        assert!(err.contains("linux.cgroupsPath \"ctr/x\""), "{err}");
    }

    #[test]
    fn missing_path_is_the_default() {
        let p = CgroupsPath::from_spec(None, "web").unwrap();
        assert_eq!(p.as_str(), "/bulwark/web");
        let p = CgroupsPath::from_spec(Some(Path::new("/a/b")), "web").unwrap();
        assert_eq!(p.as_str(), "/a/b");
    }

    #[test]
    fn bad_paths_are_rejected_with_the_reason() {
        for (value, reason) in [
            ("", "empty"),
            ("/a/../b", "\"..\""),
            ("..", "\"..\""),
            ("/", "root"),
            ("./", "root"),
            ("system.slice:docker:abc", "systemd"),
            ("/a\nb", "control"),
        ] {
            let err = CgroupsPath::parse(value).unwrap_err().to_string();
            assert!(err.contains(reason), "{value:?}: {err}");
            assert!(err.contains("linux.cgroupsPath"), "{err}");
        }
        // A colon alone is a legal directory name.
        assert!(CgroupsPath::parse("/a:b").is_ok());
    }

    #[test]
    fn proc_cgroup_lines_are_parsed() {
        let parsed = parse_proc_cgroup(
            "12:cpu,cpuacct:/a\n1:name=systemd:/b:c\n0::/\n",
            Path::new("cgroup"),
        )
        .unwrap();
        assert_eq!(parsed[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(parsed[1].path, Path::new("/b:c"));
        assert_eq!(parsed[2].hierarchy_id, 0);
        assert!(parsed[2].controllers.is_empty());
        assert!(parse_proc_cgroup("x:y\n", Path::new("cgroup")).is_err());
        assert!(parse_proc_cgroup("1:memory:relative\n", Path::new("cgroup")).is_err());
    }

    #[test]
    fn strictly_below_guards_the_roots() {
        let root = Path::new("/sys/fs/cgroup/cpu");
        assert!(is_strictly_below(Path::new("/sys/fs/cgroup/cpu/a"), root));
        assert!(!is_strictly_below(root, root));
        assert!(!is_strictly_below(
            Path::new("/sys/fs/cgroup/cpu/../x"),
            root
        ));
        assert!(!is_strictly_below(Path::new("/elsewhere/a"), root));
    }
}

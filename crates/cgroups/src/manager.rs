//! The one interface the rest of bulwark uses for a container's cgroups, and the choice
//! of implementation for the host's layout.
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use crate::entry::Entry;
use crate::error::Result;
use crate::layout::{Layout, Mode};
use crate::path::CgroupsPath;
use crate::stats::Stats;
use crate::sub::SubCgroups;
use crate::v1::V1Manager;
use crate::v2::V2Manager;

/// A container's cgroup, in every hierarchy the host has.
pub trait CgroupManager: std::fmt::Debug + Send + Sync {
    /// Creates the container's cgroup directories (and missing parents).
    fn create(&self) -> Result<()>;

    /// Writes `resources`; a value the host cannot apply is an error naming its field.
    fn apply(&self, resources: &LinuxResources) -> Result<()>;

    /// Moves process `pid` into the cgroup.
    fn add_process(&self, pid: i32) -> Result<()>;

    /// What a new process needs to enter the cgroup (or the sub-cgroups `sub` of it) by
    /// itself, without the cost of being moved by pid (see [`Entry`]).
    fn entry(&self, sub: &SubCgroups) -> Result<Entry>;

    /// Every process in the cgroup and the cgroups below it.
    fn pids(&self) -> Result<Vec<i32>>;

    /// Freezes (`true`) or thaws the cgroup, waiting until the kernel has done so.
    fn freeze(&self, frozen: bool) -> Result<()>;

    /// Whether the cgroup is completely frozen.
    fn is_frozen(&self) -> Result<bool>;

    /// Current usage.
    fn stats(&self) -> Result<Stats>;

    /// Removes the container's cgroup directories (and any below them), waiting briefly
    /// for exiting processes. Directories already gone are fine.
    fn destroy(&self) -> Result<()>;

    /// The container's cgroup directories, one per hierarchy.
    fn paths(&self) -> Vec<PathBuf>;
}

/// The manager for a container whose `linux.cgroupsPath` is `cgroups_path` (see
/// [`crate::path`]; use [`crate::default_cgroups_path`] when the configuration has none).
pub fn manager_for(layout: &Layout, cgroups_path: &str) -> Result<Box<dyn CgroupManager>> {
    let path = CgroupsPath::parse(cgroups_path)?;
    Ok(match layout.mode() {
        Mode::V2 => Box::new(V2Manager::new(layout, &path)?),
        Mode::V1 | Mode::Hybrid => Box::new(V1Manager::new(layout, &path)?),
    })
}

/// The manager for the directories a container was created with (saved from
/// [`CgroupManager::paths`]), so `delete` finds them even when the runtime now runs in
/// another cgroup than at `create`. `None` when none of them belongs to this layout.
pub fn manager_at(layout: &Layout, dirs: &[PathBuf]) -> Option<Box<dyn CgroupManager>> {
    match layout.mode() {
        Mode::V2 => V2Manager::at(layout, dirs).map(|m| Box::new(m) as Box<dyn CgroupManager>),
        Mode::V1 | Mode::Hybrid => {
            let manager = V1Manager::at(layout, dirs);
            (!manager.paths().is_empty()).then(|| Box::new(manager) as Box<dyn CgroupManager>)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Hierarchy;
    use std::path::Path;

    fn hybrid() -> Layout {
        Layout::from_parts(
            Mode::Hybrid,
            vec![
                Hierarchy::new("/cg/cpu,cpuacct", ["cpu", "cpuacct"], Some(PathBuf::new())),
                Hierarchy::new("/cg/memory", ["memory"], Some(PathBuf::from("own"))),
                Hierarchy::new("/cg/systemd", ["name=systemd"], Some(PathBuf::new())),
            ],
            Some(Hierarchy::new(
                "/cg/unified",
                Vec::<String>::new(),
                Some(PathBuf::from("u")),
            )),
        )
        .unwrap()
    }

    #[test]
    fn hybrid_paths_cover_every_hierarchy() {
        let m = manager_for(&hybrid(), "ctr").unwrap();
        assert_eq!(
            m.paths(),
            [
                Path::new("/cg/cpu,cpuacct/ctr"),
                Path::new("/cg/memory/own/ctr"),
                Path::new("/cg/systemd/ctr"),
                Path::new("/cg/unified/u/ctr"),
            ]
        );
        let m = manager_for(&hybrid(), "/bulwark/c1").unwrap();
        assert_eq!(m.paths()[1], Path::new("/cg/memory/bulwark/c1"));
    }

    #[test]
    fn v2_path_is_one_leaf() {
        let layout = Layout::from_parts(
            Mode::V2,
            Vec::new(),
            Some(Hierarchy::new(
                "/cg",
                Vec::<String>::new(),
                Some(PathBuf::from("a.slice")),
            )),
        )
        .unwrap();
        assert_eq!(
            manager_for(&layout, "x/y").unwrap().paths(),
            [Path::new("/cg/a.slice/x/y")]
        );
        assert_eq!(
            manager_for(&layout, "/x").unwrap().paths(),
            [Path::new("/cg/x")]
        );
    }

    #[test]
    fn bad_paths_fail_before_anything_is_created() {
        let e = manager_for(&hybrid(), "/../etc").unwrap_err().to_string();
        assert!(e.contains("linux.cgroupsPath"), "{e}");
    }
}

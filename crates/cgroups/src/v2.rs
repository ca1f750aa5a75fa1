//! The cgroup v2 manager: one directory in the unified hierarchy. Controllers a setting
//! needs are enabled in `cgroup.subtree_control` of every ancestor first, as the kernel
//! requires; the first process can be created inside with `CLONE_INTO_CGROUP`. Device
//! rules become an eBPF program attached to the leaf ([`crate::v2_devices`]).
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::controllers::{freezer, plan, Setting, Version};
use crate::entry::{self, Entry};
use crate::error::{CgroupError, Result};
use crate::files;
use crate::layout::Layout;
use crate::manager::CgroupManager;
use crate::path::{is_strictly_below, CgroupsPath};
use crate::stats::{self, Stats};
use crate::sub::SubCgroups;
use crate::v2_devices::DeviceProgram;

const FREEZE_PATIENCE: Duration = Duration::from_secs(5);

/// A container's cgroup on a v2 host.
#[derive(Debug)]
pub(crate) struct V2Manager {
    mount_point: PathBuf,
    leaf: PathBuf,
}

impl V2Manager {
    pub(crate) fn new(layout: &Layout, path: &CgroupsPath) -> Result<Self> {
        let hierarchy = layout.unified().ok_or_else(|| CgroupError::Layout {
            path: PathBuf::from("/proc/self/mountinfo"),
            reason: "no cgroup2 hierarchy is mounted".to_string(),
        })?;
        let leaf = path.dir_in(hierarchy)?;
        if !is_strictly_below(&leaf, hierarchy.mount_point()) {
            return Err(CgroupError::path(
                path.as_str(),
                format!(
                    "it resolves to {}, not below the hierarchy root",
                    leaf.display()
                ),
            ));
        }
        Ok(V2Manager {
            mount_point: hierarchy.mount_point().to_path_buf(),
            leaf,
        })
    }

    /// The manager for a leaf a container was given earlier ([`CgroupManager::paths`]).
    pub(crate) fn at(layout: &Layout, dirs: &[PathBuf]) -> Option<Self> {
        let hierarchy = layout.unified()?;
        let leaf = dirs
            .iter()
            .find(|d| is_strictly_below(d, hierarchy.mount_point()))?;
        Some(V2Manager {
            mount_point: hierarchy.mount_point().to_path_buf(),
            leaf: leaf.clone(),
        })
    }

    /// The leaf's ancestors from the mount point down: where controllers are enabled.
    fn ancestors(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.mount_point.clone()];
        let parent = self.leaf.parent().unwrap_or(&self.mount_point);
        if let Ok(rest) = parent.strip_prefix(&self.mount_point) {
            let mut current = self.mount_point.clone();
            for component in rest.components() {
                current.push(component);
                dirs.push(current.clone());
            }
        }
        dirs
    }

    /// Makes every controller `settings` use available in the leaf.
    fn enable_controllers(&self, settings: &[Setting]) -> Result<()> {
        let mut done: Vec<&str> = vec!["cgroup"];
        for setting in settings {
            let controller = setting.controller();
            if done.contains(&controller) {
                continue;
            }
            for dir in self.ancestors() {
                enable_in(&dir, controller, setting)?;
            }
            done.push(controller);
        }
        Ok(())
    }
}

/// Enables `controller` for the children of `dir`.
fn enable_in(dir: &Path, controller: &str, setting: &Setting) -> Result<()> {
    let listed = |text: &str| text.split_whitespace().any(|c| c == controller);
    let subtree = dir.join("cgroup.subtree_control");
    if listed(&files::read(&subtree)?) {
        return Ok(());
    }
    let available_file = dir.join("cgroup.controllers");
    let available = files::read(&available_file)?;
    let refuse = |path: PathBuf, reason: String| CgroupError::Apply {
        field: setting.field().to_string(),
        value: format!("{:?}", setting.value()),
        path,
        reason,
    };
    if !listed(&available) {
        return Err(refuse(
            available_file,
            format!(
                "the {controller} controller is not available here (available: {})",
                if available.trim().is_empty() {
                    "none"
                } else {
                    available.trim()
                }
            ),
        ));
    }
    files::write_raw(&subtree, &format!("+{controller}")).map_err(|e| {
        let reason = if e.raw_os_error() == Some(libc::EBUSY) {
            format!(
                "cannot enable the {controller} controller: this cgroup has processes of its \
                 own, and cgroup v2 passes controllers only through cgroups without processes"
            )
        } else {
            format!(
                "cannot enable the {controller} controller: {}",
                files::explain(&e)
            )
        };
        refuse(subtree.clone(), reason)
    })
}

impl CgroupManager for V2Manager {
    fn create(&self) -> Result<()> {
        files::create_below(&self.mount_point, &self.leaf, |_, _| Ok(()))
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let settings = plan(Version::V2, resources)?;
        files::require_dir(&self.leaf, "apply resources to")?;
        // Loaded, and so verified, before anything is written.
        let devices = resources
            .devices()
            .as_deref()
            .map(|rules| DeviceProgram::load(rules, &self.leaf))
            .transpose()?;
        self.enable_controllers(&settings)?;
        settings
            .iter()
            .try_for_each(|s| files::apply_setting(&self.leaf, s))?;
        devices.map_or(Ok(()), |program| program.attach(&self.leaf))
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        files::add_pid(&self.leaf, pid)
    }

    fn entry(&self, sub: &SubCgroups) -> Result<Entry> {
        sub.check_unified()?;
        Ok(Entry {
            clone_into: Some(entry::open_for_clone(&sub.dir_for(&self.leaf, &[])?)?),
            tasks: Vec::new(),
        })
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        files::procs_recursive(&self.leaf, &mut pids)?;
        pids.sort_unstable();
        Ok(pids)
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let control = self.leaf.join(freezer::control_file(Version::V2));
        if !control.exists() && self.leaf.is_dir() {
            return Err(CgroupError::Layout {
                path: control,
                reason: "this kernel has no cgroup v2 freezer (it needs Linux 5.2)".to_string(),
            });
        }
        let value = freezer::control_value(Version::V2, frozen);
        let action = if frozen { "freeze" } else { "thaw" };
        files::write(&control, value, action)?;
        let events = self.leaf.join(freezer::state_file(Version::V2));
        let waited = files::wait_until(
            &events,
            &format!("{action} (cgroup.events frozen {value})"),
            FREEZE_PATIENCE,
            || {
                Ok(freezer::reached(
                    Version::V2,
                    &files::read(&events)?,
                    frozen,
                ))
            },
            || Ok(()),
        );
        if waited.is_err() && frozen {
            let _ = files::write(&control, freezer::control_value(Version::V2, false), "thaw");
        }
        waited
    }

    fn is_frozen(&self) -> Result<bool> {
        let events = files::read(&self.leaf.join(freezer::state_file(Version::V2)))?;
        Ok(freezer::is_frozen(Version::V2, &events))
    }

    fn stats(&self) -> Result<Stats> {
        stats::read_v2(&self.leaf)
    }

    fn destroy(&self) -> Result<()> {
        files::remove_tree(&self.leaf)
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.leaf.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Hierarchy, Mode};

    #[test]
    fn ancestors_run_from_the_root_to_the_leafs_parent() {
        let layout = Layout::from_parts(
            Mode::V2,
            Vec::new(),
            Some(Hierarchy::new("/cg", Vec::<String>::new(), None)),
        )
        .unwrap();
        let m = V2Manager::new(&layout, &CgroupsPath::parse("/a/b/c").unwrap()).unwrap();
        assert_eq!(
            m.ancestors(),
            [Path::new("/cg"), Path::new("/cg/a"), Path::new("/cg/a/b")]
        );
    }

    /// A fake v2 tree in a temporary directory: enabling writes "+controller" into each
    /// ancestor's cgroup.subtree_control (a plain file here, so the write replaces it).
    #[test]
    fn apply_enables_needed_controllers_then_writes() {
        let root = std::env::temp_dir().join(format!("bulwark-v2-fake-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let leaf = root.join("a/ctr");
        std::fs::create_dir_all(&leaf).unwrap();
        for dir in [root.clone(), root.join("a")] {
            std::fs::write(dir.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
            std::fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        }
        std::fs::write(leaf.join("pids.max"), "").unwrap();
        let layout = Layout::from_parts(
            Mode::V2,
            Vec::new(),
            Some(Hierarchy::new(&root, Vec::<String>::new(), None)),
        )
        .unwrap();
        let m = V2Manager::new(&layout, &CgroupsPath::parse("/a/ctr").unwrap()).unwrap();
        let resources = serde_json::from_str(r#"{"pids":{"limit":9}}"#).unwrap();
        let result = m.apply(&resources);
        let subtree = std::fs::read_to_string(root.join("a/cgroup.subtree_control")).unwrap();
        let pids_max = std::fs::read_to_string(leaf.join("pids.max")).unwrap();
        let hugetlb =
            serde_json::from_str(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#).unwrap();
        let refused = m.apply(&hugetlb).unwrap_err().to_string();
        std::fs::remove_dir_all(&root).unwrap();
        result.unwrap();
        assert_eq!(subtree, "+pids");
        assert_eq!(pids_max, "9");
        assert!(
            refused.contains("linux.resources.hugepageLimits[0].limit"),
            "{refused}"
        );
        assert!(
            refused.contains("hugetlb controller is not available"),
            "{refused}"
        );
    }
}

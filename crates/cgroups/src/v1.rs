//! The cgroup v1 manager, also used on hybrid hosts: one directory per mounted v1
//! hierarchy (joined ones such as `cpu,cpuacct` share one; named ones such as
//! `name=systemd` only hold processes), plus, when hybrid, one in the cgroup2 mount that
//! only tracks processes.
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::controllers::{freezer, plan, Setting, Version};
use crate::entry::{self, Entry};
use crate::error::{CgroupError, Result};
use crate::files;
use crate::layout::{Hierarchy, Layout};
use crate::manager::CgroupManager;
use crate::path::{is_strictly_below, CgroupsPath};
use crate::stats::{self, Stats};
use crate::sub::SubCgroups;

const FREEZE_PATIENCE: Duration = Duration::from_secs(5);
/// Where a process list is read from, best first: hierarchies every container has.
const PROCS_FROM: &[&str] = &["pids", "freezer", "memory", "cpu", "devices"];
const CPUSET_FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

/// The container's directory in one hierarchy.
#[derive(Debug)]
struct Placement {
    controllers: Vec<String>,
    mount_point: PathBuf,
    dir: PathBuf,
}

impl Placement {
    fn new(hierarchy: &Hierarchy, path: &CgroupsPath) -> Result<Self> {
        let dir = path.dir_in(hierarchy)?;
        if !is_strictly_below(&dir, hierarchy.mount_point()) {
            return Err(CgroupError::path(
                path.as_str(),
                format!(
                    "it resolves to {}, not below the hierarchy root",
                    dir.display()
                ),
            ));
        }
        Ok(Placement {
            controllers: hierarchy.controllers().to_vec(),
            mount_point: hierarchy.mount_point().to_path_buf(),
            dir,
        })
    }

    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// A container's cgroups on a v1 or hybrid host.
#[derive(Debug)]
pub(crate) struct V1Manager {
    hierarchies: Vec<Placement>,
    /// Hybrid only: the cgroup2 directory, for process tracking.
    unified: Option<Placement>,
}

impl V1Manager {
    pub(crate) fn new(layout: &Layout, path: &CgroupsPath) -> Result<Self> {
        let hierarchies = layout
            .v1_hierarchies()
            .iter()
            .map(|h| Placement::new(h, path))
            .collect::<Result<_>>()?;
        let unified = layout
            .unified()
            .map(|h| Placement::new(h, path))
            .transpose()?;
        Ok(V1Manager {
            hierarchies,
            unified,
        })
    }

    /// The manager for directories a container was given earlier ([`CgroupManager::paths`]),
    /// matched to the layout's hierarchies by mount point.
    pub(crate) fn at(layout: &Layout, dirs: &[PathBuf]) -> Self {
        let place = |h: &Hierarchy| {
            dirs.iter()
                .find(|d| is_strictly_below(d, h.mount_point()))
                .map(|dir| Placement {
                    controllers: h.controllers().to_vec(),
                    mount_point: h.mount_point().to_path_buf(),
                    dir: dir.clone(),
                })
        };
        V1Manager {
            hierarchies: layout.v1_hierarchies().iter().filter_map(place).collect(),
            unified: layout.unified().and_then(place),
        }
    }

    fn all(&self) -> impl Iterator<Item = &Placement> {
        self.hierarchies.iter().chain(self.unified.as_ref())
    }

    fn dir_for(&self, controller: &str) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|p| p.has(controller))
            .map(|p| p.dir.as_path())
    }

    /// Where each setting goes, checked before anything is written.
    fn route<'a>(&self, settings: &'a [Setting]) -> Result<Vec<(&Path, &'a Setting)>> {
        settings
            .iter()
            .map(|s| {
                let dir = self
                    .dir_for(s.controller())
                    .ok_or_else(|| CgroupError::Apply {
                        field: s.field().to_string(),
                        value: format!("{:?}", s.value()),
                        path: PathBuf::from("/proc/self/mountinfo"),
                        reason: self.missing_controller(s.controller()),
                    })?;
                Ok((dir, s))
            })
            .collect()
    }

    /// Why `controller` cannot be used, pointing at the cgroup2 mount of a hybrid host
    /// when the controller sits there instead.
    fn missing_controller(&self, controller: &str) -> String {
        let mut reason =
            format!("no cgroup v1 hierarchy with the {controller} controller is mounted");
        if let Some(unified) = &self.unified {
            let listed = files::read(&unified.mount_point.join("cgroup.controllers"))
                .is_ok_and(|text| text.split_whitespace().any(|c| c == controller));
            if listed {
                reason.push_str(&format!(
                    "; this hybrid host has it only in the cgroup2 hierarchy at {}, which \
                     bulwark uses for process tracking only",
                    unified.mount_point.display()
                ));
            }
        }
        reason
    }

    fn freezer_dir(&self) -> Result<&Path> {
        self.dir_for("freezer").ok_or_else(|| CgroupError::Layout {
            path: PathBuf::from("/proc/self/mountinfo"),
            reason: "no cgroup v1 hierarchy with the freezer controller is mounted, so the \
                     container cannot be frozen"
                .to_string(),
        })
    }
}

/// A new v1 cpuset starts with no cpus and no memory nodes, so it could run nothing;
/// give each level its parent's sets unless it already has its own.
fn inherit_cpuset(parent: &Path, dir: &Path) -> Result<()> {
    for file in CPUSET_FILES {
        if files::read(&dir.join(file))?.trim().is_empty() {
            let inherited = files::read(&parent.join(file))?;
            files::write(
                &dir.join(file),
                inherited.trim(),
                "inherit the parent's cpuset",
            )?;
        }
    }
    Ok(())
}

impl CgroupManager for V1Manager {
    fn create(&self) -> Result<()> {
        for p in self.all() {
            let cpuset = p.has("cpuset");
            files::create_below(&p.mount_point, &p.dir, |parent, dir| {
                if cpuset {
                    inherit_cpuset(parent, dir)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let settings = plan(Version::V1, resources)?;
        let routed = self.route(&settings)?;
        for (dir, _) in &routed {
            files::require_dir(dir, "apply resources to")?;
        }
        for (dir, setting) in routed {
            files::apply_setting(dir, setting)?;
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        self.all().try_for_each(|p| files::add_pid(&p.dir, pid))
    }

    fn entry(&self, sub: &SubCgroups) -> Result<Entry> {
        sub.check_controllers(self.hierarchies.iter().map(|p| p.controllers.as_slice()))?;
        Ok(Entry {
            clone_into: self
                .unified
                .as_ref()
                .map(|u| entry::open_for_clone(&sub.dir_for(&u.dir, &u.controllers)?))
                .transpose()?,
            tasks: self
                .hierarchies
                .iter()
                .map(|p| entry::open_tasks(&sub.dir_for(&p.dir, &p.controllers)?))
                .collect::<Result<_>>()?,
        })
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let dir = PROCS_FROM
            .iter()
            .find_map(|c| self.dir_for(c))
            .or_else(|| self.all().next().map(|p| p.dir.as_path()));
        let mut pids = Vec::new();
        if let Some(dir) = dir {
            files::procs_recursive(dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let dir = self.freezer_dir()?;
        let control = dir.join(freezer::control_file(Version::V1));
        let value = freezer::control_value(Version::V1, frozen);
        let action = if frozen { "freeze" } else { "thaw" };
        files::write(&control, value, action)?;
        let state = dir.join(freezer::state_file(Version::V1));
        let waited = files::wait_until(
            &state,
            &format!("{action} (freezer.state {value})"),
            FREEZE_PATIENCE,
            || Ok(freezer::reached(Version::V1, &files::read(&state)?, frozen)),
            || files::write(&control, value, action),
        );
        if waited.is_err() && frozen {
            // Leave the processes running rather than half frozen.
            let _ = files::write(&control, freezer::control_value(Version::V1, false), "thaw");
        }
        waited
    }

    fn is_frozen(&self) -> Result<bool> {
        let Some(dir) = self.dir_for("freezer") else {
            return Ok(false);
        };
        let state = files::read(&dir.join(freezer::state_file(Version::V1)))?;
        Ok(freezer::is_frozen(Version::V1, &state))
    }

    fn stats(&self) -> Result<Stats> {
        stats::read_v1(
            self.dir_for("memory"),
            self.dir_for("pids"),
            self.dir_for("cpuacct"),
        )
    }

    fn destroy(&self) -> Result<()> {
        let mut first_error = None;
        for p in self.all() {
            if let Err(e) = files::remove_tree(&p.dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.all().map(|p| p.dir.clone()).collect()
    }
}

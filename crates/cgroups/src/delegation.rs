//! Cgroups for a runtime without root privileges (rootless). Such a runtime can use a
//! hierarchy only where a subtree has been delegated to its user, by root or by systemd
//! (`Delegate=yes`): the container's directory must be one it can make (or already
//! owns), and on cgroup2 the kernel also wants the caller able to write `cgroup.procs`
//! of the nearest common ancestor of its own cgroup and the container's, or it may not
//! move a process in (`CLONE_INTO_CGROUP` included).
//!
//! On a hybrid host the process-tracking cgroup2 tree carries no controllers, and a user
//! can rarely move processes in it; a rootless runtime leaves it out and uses the v1
//! hierarchies it was given.
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::unistd::{eaccess, AccessFlags};

use crate::error::Result;
use crate::layout::{Hierarchy, Layout, Mode};
use crate::path::{CgroupsPath, DEFAULT_PARENT};

/// What of the host's cgroups a rootless runtime can use for one container.
#[derive(Debug)]
pub struct Delegation {
    /// The usable hierarchies, `None` when there are none.
    pub layout: Option<Layout>,
    /// The hierarchies it cannot use, and why.
    pub refused: Vec<Refusal>,
}

/// A hierarchy a rootless runtime cannot use for the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Its v1 controllers; empty for cgroup2, which holds them all.
    pub controllers: Vec<String>,
    /// The container's directory in it.
    pub dir: PathBuf,
    pub reason: String,
}

impl Refusal {
    /// Whether a setting for `controller` would have gone to this hierarchy.
    pub fn covers(&self, controller: &str) -> bool {
        self.controllers.is_empty() || self.controllers.iter().any(|c| c == controller)
    }
}

/// Which hierarchies of `layout` the calling (unprivileged) process can use for a
/// container at `path`.
pub fn delegation(layout: &Layout, path: &CgroupsPath) -> Result<Delegation> {
    let mut refused = Vec::new();
    let mut usable = Vec::new();
    let candidates: Vec<&Hierarchy> = match layout.mode() {
        Mode::V2 => layout.unified().into_iter().collect(),
        Mode::V1 | Mode::Hybrid => layout.v1_hierarchies().iter().collect(),
    };
    for hierarchy in candidates {
        let dir = path.dir_in(hierarchy)?;
        let v2 = hierarchy.controllers().is_empty();
        let checked = can_create(&dir, hierarchy.mount_point(), v2).and_then(|()| {
            if v2 {
                can_move_in(&dir, hierarchy)
            } else {
                Ok(())
            }
        });
        match checked {
            Ok(()) => usable.push(hierarchy.clone()),
            Err(reason) => refused.push(Refusal {
                controllers: hierarchy.controllers().to_vec(),
                dir,
                reason,
            }),
        }
    }
    let layout = match (layout.mode(), usable.is_empty()) {
        (_, true) => None,
        (Mode::V2, false) => Some(Layout::from_parts(Mode::V2, Vec::new(), usable.pop())?),
        (_, false) => Some(Layout::from_parts(Mode::V1, usable, None)?),
    };
    Ok(Delegation { layout, refused })
}

/// Where a rootless runtime puts a container without `linux.cgroupsPath` on a cgroup2
/// host: `bulwark/<id>` at the top of the subtree delegated to the caller that holds the
/// runtime itself (the first directory from the root down to its own cgroup that the
/// caller owns, such as systemd's `user@UID.service`). `None` elsewhere.
pub fn delegated_default_path(layout: &Layout, container_id: &str) -> Option<String> {
    if layout.mode() != Mode::V2 {
        return None;
    }
    let hierarchy = layout.unified()?;
    let own = hierarchy.own_cgroup()?;
    let owner = |dir: &Path| std::fs::metadata(dir).ok().map(|m| m.uid());
    let top = delegated_top(hierarchy.mount_point(), own, |d| owner(d) == Some(euid()))?;
    Some(format!(
        "/{}/{DEFAULT_PARENT}/{container_id}",
        top.display()
    ))
}

/// The first of `own`'s ancestors (itself included), from the root down, that `owned`
/// says the caller owns; relative to `mount_point`.
fn delegated_top(mount_point: &Path, own: &Path, owned: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in own.components() {
        if let Component::Normal(name) = component {
            relative.push(name);
            if owned(&mount_point.join(&relative)) {
                return Some(relative);
            }
        }
    }
    None
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The container's directory can be made by the caller, or exists and takes its processes.
fn can_create(dir: &Path, mount_point: &Path, v2: bool) -> Result<(), String> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if parent.starts_with(mount_point) => existing = parent,
            _ => return Err(format!("{} does not exist", mount_point.display())),
        }
    }
    if existing == dir {
        let file = dir.join(if v2 { "cgroup.procs" } else { "tasks" });
        return eaccess(&file, AccessFlags::W_OK).map_err(|e| {
            format!(
                "it exists, but uid {} cannot add processes to it ({}: {e})",
                euid(),
                file.display()
            )
        });
    }
    eaccess(existing, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        format!(
            "uid {} cannot make it: {} is not writable by it ({e})",
            euid(),
            existing.display()
        )
    })
}

/// cgroup2 moves a process only for a caller who may write `cgroup.procs` of the
/// nearest common ancestor of where the process is and where it goes.
fn can_move_in(dir: &Path, hierarchy: &Hierarchy) -> Result<(), String> {
    let own = hierarchy.own_cgroup().ok_or_else(|| {
        format!(
            "the runtime's own cgroup lies outside what {} shows",
            hierarchy.mount_point().display()
        )
    })?;
    let own = hierarchy.mount_point().join(own);
    let procs = common_ancestor(&own, dir).join("cgroup.procs");
    eaccess(&procs, AccessFlags::W_OK).map_err(|_| {
        format!(
            "the runtime runs in {}, and cgroup v2 lets a process move to {} only for a caller \
             that may write {} (their nearest common ancestor), which uid {} may not; start \
             the runtime inside the delegated subtree (e.g. with systemd-run --user --scope)",
            own.display(),
            dir.display(),
            procs.display(),
            euid()
        )
    })
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_ancestor_is_the_shared_prefix() {
        let ancestor = common_ancestor(
            Path::new("/sys/fs/cgroup/user.slice/user@1000.service/app.slice/x.scope"),
            Path::new("/sys/fs/cgroup/user.slice/user@1000.service/bulwark/c1"),
        );
        assert_eq!(
            ancestor,
            Path::new("/sys/fs/cgroup/user.slice/user@1000.service")
        );
        assert_eq!(
            common_ancestor(Path::new("/sys/fs/cgroup/a"), Path::new("/sys/fs/cgroup/b")),
            Path::new("/sys/fs/cgroup")
        );
    }

    #[test]
    fn the_delegated_top_is_the_first_owned_directory_from_the_root() {
        let mount = Path::new("/cg");
        let own = Path::new("user.slice/user-1000.slice/user@1000.service/app.slice/x.scope");
        let owned = |d: &Path| d.starts_with("/cg/user.slice/user-1000.slice/user@1000.service");
        assert_eq!(
            delegated_top(mount, own, owned),
            Some(PathBuf::from(
                "user.slice/user-1000.slice/user@1000.service"
            ))
        );
        assert_eq!(delegated_top(mount, own, |_| false), None);
    }

    #[test]
    fn a_v2_refusal_covers_every_controller() {
        let v2 = Refusal {
            controllers: Vec::new(),
            dir: PathBuf::from("/cg/x"),
            reason: String::new(),
        };
        assert!(v2.covers("pids") && v2.covers("memory"));
        let pids = Refusal {
            controllers: vec!["pids".into()],
            ..v2
        };
        assert!(pids.covers("pids") && !pids.covers("memory"));
    }
}

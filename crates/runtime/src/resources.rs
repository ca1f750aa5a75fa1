//! Operations on a running container's cgroups: pause, resume, update, stats.
use bulwark_cgroups::{CgroupManager, Stats};
use bulwark_spec::runtime::LinuxResources;

use crate::{RuntimeError, StateRoot, Status};

fn running_cgroups(
    root: &StateRoot,
    id: &str,
    action: &'static str,
    allowed: &[Status],
) -> Result<Box<dyn CgroupManager>, RuntimeError> {
    let container = root.open(id)?;
    let saved = container.require()?;
    let status = container.status(&saved);
    if !allowed.contains(&status) {
        let expected = if allowed.contains(&Status::Paused) && allowed.len() == 1 {
            "paused"
        } else {
            "running"
        };
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            action,
            expected,
        });
    }
    crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths)).ok_or_else(|| {
        RuntimeError::NoCgroups {
            id: id.into(),
            action,
        }
    })
}

/// `pause`: freezes every process of the container.
pub fn pause(root: &StateRoot, id: &str) -> Result<(), RuntimeError> {
    running_cgroups(root, id, "pause", &[Status::Running])?
        .freeze(true)
        .map_err(RuntimeError::from)
}

/// `resume`: thaws a paused container.
pub fn resume(root: &StateRoot, id: &str) -> Result<(), RuntimeError> {
    running_cgroups(root, id, "resume", &[Status::Paused])?
        .freeze(false)
        .map_err(RuntimeError::from)
}

/// `update`: applies new `linux.resources` to a created, running or paused container.
pub fn update(root: &StateRoot, id: &str, resources: &LinuxResources) -> Result<(), RuntimeError> {
    running_cgroups(
        root,
        id,
        "update",
        &[Status::Created, Status::Running, Status::Paused],
    )?
    .apply(resources)
    .map_err(RuntimeError::from)
}

/// The container's cgroup statistics.
pub fn stats(root: &StateRoot, id: &str) -> Result<Stats, RuntimeError> {
    running_cgroups(
        root,
        id,
        "read statistics of",
        // A stopped container keeps its cgroups (and their OOM counts) until deleted.
        &[
            Status::Created,
            Status::Running,
            Status::Paused,
            Status::Stopped,
        ],
    )?
    .stats()
    .map_err(RuntimeError::from)
}

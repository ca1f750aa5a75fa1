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
    crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths))
        .ok_or_else(|| RuntimeError::Invalid(format!("container {id} has no cgroups to {action} (a rootless container has them only in a cgroup subtree delegated to its user; see linux.cgroupsPath)")))
}

fn cgroup_error(e: bulwark_cgroups::CgroupError) -> RuntimeError {
    RuntimeError::Invalid(e.to_string())
}

/// `pause`: freezes every process of the container.
pub fn pause(root: &StateRoot, id: &str) -> Result<(), RuntimeError> {
    running_cgroups(root, id, "pause", &[Status::Running])?
        .freeze(true)
        .map_err(cgroup_error)
}

/// `resume`: thaws a paused container.
pub fn resume(root: &StateRoot, id: &str) -> Result<(), RuntimeError> {
    running_cgroups(root, id, "resume", &[Status::Paused])?
        .freeze(false)
        .map_err(cgroup_error)
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
    .map_err(cgroup_error)
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
    .map_err(cgroup_error)
}

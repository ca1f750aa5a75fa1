//! `delete`: removes a stopped (or, with `force`, any) container and runs poststop hooks.
use std::os::fd::AsFd;

use bulwark_spec::hooks::HookPoint;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::signal::{container_processes, signal_pid};
use crate::state::SavedState;
use crate::{hooks, Container, RuntimeError, StateRoot, Status};

/// `delete`; returns the poststop hooks' failures, which are warnings.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<Vec<String>, RuntimeError> {
    let container = match root.open(id) {
        // Engines delete --force again after a delete; as with runc, that is not an error.
        Err(RuntimeError::NotFound(_)) if force => return Ok(Vec::new()),
        other => other?,
    };
    let Some(saved) = container.load()? else {
        // Creation was cut short (e.g. the runtime was killed): kill what it left in
        // the container's cgroups and clean up.
        if let Some(cgroups) = crate::cgroups::existing(&container.dir, None) {
            let _ = cgroups.freeze(false);
            for pid in cgroups.pids().unwrap_or_default() {
                signal_pid(pid, None, libc::SIGKILL)?;
            }
            cgroups.destroy()?;
        }
        container.remove()?;
        return Ok(Vec::new());
    };
    let status = container.status(&saved);
    match status {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&container, &saved)?,
        _ if force => kill_and_wait(&container, &saved)?,
        _ => {
            return Err(RuntimeError::WrongStatus {
                id: id.into(),
                status: status.to_string(),
                action: "delete",
                expected: "stopped (use --force to kill it first)",
            })
        }
    }
    if let Some(cgroups) = crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths)) {
        cgroups.destroy()?;
    }
    let warnings = hooks::run_warning(
        &hooks::of(&saved.spec()?),
        HookPoint::Poststop,
        &saved.oci(Status::Stopped),
    );
    container.remove()?;
    Ok(warnings)
}

/// SIGKILL every process of the container and wait (up to a minute) for the init to go.
fn kill_and_wait(container: &Container, saved: &SavedState) -> Result<(), RuntimeError> {
    // A frozen cgroup would keep its processes from handling SIGKILL.
    if let Some(cgroups) = crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths)) {
        let _ = cgroups.freeze(false);
    }
    for pid in container_processes(container, saved) {
        signal_pid(
            pid,
            (pid == saved.pid).then_some(saved.pid_start),
            libc::SIGKILL,
        )?;
    }
    let Ok(pidfd) = bulwark_sys::process::pidfd_open(nix::unistd::Pid::from_raw(saved.pid)) else {
        return Ok(());
    };
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(60_000u16));
    // Reap it if it is ours (foreground run); otherwise its parent does.
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(saved.pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
    Ok(())
}

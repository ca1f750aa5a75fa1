//! `kill`: signals through pidfds, so a recycled pid is never hit.
use crate::state::{process_start, SavedState};
use crate::{Container, RuntimeError, StateRoot, Status};

/// Parses a signal given by name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(text: &str) -> Result<i32, RuntimeError> {
    if let Ok(number) = text.parse::<i32>() {
        if (1..=64).contains(&number) {
            return Ok(number);
        }
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| RuntimeError::InvalidSignal(text.to_owned()))
}

/// `kill`: sends a signal to the init, or with `all` to every process of the container.
pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
    let container = root.open(id)?;
    let saved = container.require()?;
    let status = container.status(&saved);
    if status == Status::Stopped {
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            action: "kill",
            expected: "created or running",
        });
    }
    let targets = if all {
        container_processes(&container, &saved)
    } else {
        vec![saved.pid]
    };
    for pid in targets {
        signal_pid(pid, (pid == saved.pid).then_some(saved.pid_start), signal)?;
    }
    // A frozen process cannot act on SIGKILL: thaw it so it dies, as runc does.
    if status == Status::Paused && signal == libc::SIGKILL {
        if let Some(cgroups) = crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths)) {
            cgroups.freeze(false)?;
        }
    }
    Ok(())
}

/// Signals `pid`, if it still is the process that started at `expected_start`.
pub(crate) fn signal_pid(
    pid: i32,
    expected_start: Option<u64>,
    signal: i32,
) -> Result<(), RuntimeError> {
    let Ok(pidfd) = bulwark_sys::process::pidfd_open(nix::unistd::Pid::from_raw(pid)) else {
        return Ok(());
    };
    // Check the pid after holding a pidfd, so it cannot be recycled in between.
    if let Some(start) = expected_start {
        if process_start(pid).map(|(s, _)| s) != Some(start) {
            return Ok(());
        }
    }
    match bulwark_sys::process::pidfd_send_signal(&pidfd, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(RuntimeError::sys(format!(
            "sending signal {signal} to pid {pid}"
        ))(e)),
    }
}

/// Every process of the container: from its cgroups, or else from its pid namespace.
pub fn container_processes(container: &Container, saved: &SavedState) -> Vec<i32> {
    crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths))
        .and_then(|m| m.pids().ok())
        .filter(|pids| !pids.is_empty())
        .unwrap_or_else(|| crate::procs::container_pids(saved.pid))
}

/// The pids of every process of a container, as `ps` lists them.
pub fn processes(root: &StateRoot, id: &str) -> Result<Vec<i32>, RuntimeError> {
    let container = root.open(id)?;
    let saved = container.require()?;
    if container.status(&saved) == Status::Stopped {
        return Ok(Vec::new());
    }
    let mut pids = container_processes(&container, &saved);
    pids.sort_unstable();
    Ok(pids)
}

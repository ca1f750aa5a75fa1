//! `start`, `stop`, `kill`, `restart`, `rm`, `wait`, `pause`, `unpause`, `rename` and
//! `container prune`. Each takes the container's lock while it changes the container;
//! the monitor takes no such lock, so a command never waits on a running container.
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulwark_container::{ContainerDir, Status};
use nix::fcntl::{FcntlArg, FdFlag, OFlag};

use crate::{Engine, EngineError};

/// The client's stdio, for a container whose output it shows (foreground `run`).
#[derive(Debug)]
pub struct Attach {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The client's terminal size, for a container with a terminal.
    pub size: Option<(u16, u16)>,
}

/// How `start` starts the monitor.
#[derive(Debug)]
pub enum StartMode {
    Detached,
    Attached(Attach),
}

/// A started container.
#[derive(Debug)]
pub struct Started {
    /// Its init on the host.
    pub pid: i32,
    /// For an attached start: the monitor's last word, its exit code.
    events: Option<BufReader<std::fs::File>>,
}

/// How an attached start ended for its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container exited with this code.
    Exited(i32),
    /// The client typed the detach keys; the container runs on.
    Detached,
    /// The monitor said nothing (it was killed, or the start was not attached).
    Unknown,
}

impl Started {
    /// Waits for the end of an attached start: the container's exit or a detach.
    pub fn ended(mut self) -> Ended {
        let mut line = String::new();
        let Some(events) = self.events.as_mut() else {
            return Ended::Unknown;
        };
        if events.read_line(&mut line).is_err() {
            return Ended::Unknown;
        }
        match line.trim_end() {
            "detached" => Ended::Detached,
            other => other
                .strip_prefix("exit ")
                .and_then(|code| code.parse().ok())
                .map_or(Ended::Unknown, Ended::Exited),
        }
    }
}

/// How long a command waits for a container's monitor to finish its part.
const MONITOR_DEADLINE: Duration = Duration::from_secs(120);

fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

impl Engine {
    /// `start`: starts the container's monitor, which creates and starts the container,
    /// and returns once it runs (or with why it could not). A running container is left
    /// as it is.
    pub fn start_container(&self, what: &str, mode: StartMode) -> Result<Started, EngineError> {
        let dir = self.container(what)?;
        let _lock = dir.lock()?;
        let state = dir.state()?;
        if state.is_live() {
            return Ok(Started {
                pid: state.pid,
                events: None,
            });
        }
        let _ = std::fs::remove_file(dir.stopped_marker());
        // What a monitor killed before its clean-up left: the runtime's state, perhaps
        // processes. delete --force ends both.
        if bulwark_runtime::state_of(&self.runtime_root(), &dir.id).is_ok() {
            let _ = bulwark_runtime::delete(&self.runtime_root(), &dir.id, true);
        }
        let record = dir.record()?;
        if self.store.mount_record(&dir.id)?.is_none() {
            return Err(EngineError::Conflict(format!(
                "container {} has no root filesystem (its mount was removed); remove it with `bulwark rm`",
                record.name
            )));
        }
        // After a reboot the root filesystem is no longer mounted.
        {
            let _store = self.store.lock()?;
            self.store.remount(&dir.id)?;
        }
        // And its network namespace is gone with /run.
        self.restore_network(&dir)?;
        let (sync_r, sync_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io("a pipe"))?;
        // The monitor inherits the write end by number.
        nix::fcntl::fcntl(&sync_w, FcntlArg::F_SETFD(FdFlag::empty()))
            .map_err(io("the sync pipe"))?;
        let mut command = Command::new(&self.config.monitor);
        command
            .arg(&dir.dir)
            .arg("--runtime-root")
            .arg(self.runtime_root().path)
            .arg("--sync-fd")
            .arg(std::os::fd::AsRawFd::as_raw_fd(&sync_w).to_string());
        if self.config.rootless {
            command.arg("--rootless");
        }
        let attached = matches!(mode, StartMode::Attached(_));
        match mode {
            StartMode::Detached => {
                command
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
            StartMode::Attached(a) => {
                command.arg("--attach");
                if let Some((rows, cols)) = a.size {
                    command.arg("--size").arg(format!("{rows},{cols}"));
                }
                command.stdin(a.stdin).stdout(a.stdout).stderr(a.stderr);
            }
        }
        let spawned = command.spawn();
        drop(sync_w);
        let mut child = spawned.map_err(|e| EngineError::StartFailed {
            id: dir.id.clone(),
            reason: format!(
                "cannot run the monitor {}: {e}",
                self.config.monitor.display()
            ),
            code: 125,
        })?;
        let mut events = BufReader::new(std::fs::File::from(sync_r));
        let mut line = String::new();
        let _ = events.read_line(&mut line);
        let line = line.trim_end();
        if let Some(pid) = line.strip_prefix("ok ") {
            // The monitor lives on by itself; it is reaped when this process ends.
            std::mem::forget(child);
            self.event("start", &dir, &[]);
            return Ok(Started {
                pid: pid.parse().unwrap_or(0),
                events: attached.then_some(events),
            });
        }
        let _ = child.wait();
        let (code, reason) = line
            .strip_prefix("error ")
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(code, reason)| Some((code.parse().ok()?, reason.to_owned())))
            .unwrap_or((125, "the monitor ended without a word".to_owned()));
        Err(EngineError::StartFailed {
            id: dir.id.clone(),
            reason,
            code,
        })
    }

    /// `stop`: the stop signal, then SIGKILL after `timeout` seconds (the container's
    /// `--stop-timeout`, or 10). No restart policy starts it again.
    pub fn stop_container(
        &self,
        what: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), EngineError> {
        let dir = self.container(what)?;
        let _lock = dir.lock()?;
        let record = dir.record()?;
        std::fs::write(dir.stopped_marker(), b"").map_err(io("marking the container stopped"))?;
        if !dir.state()?.is_live() {
            return Ok(());
        }
        let signal = signal.unwrap_or(&record.run.stop_signal);
        let signal = bulwark_runtime::parse_signal(signal)?;
        let timeout = timeout.or(record.run.stop_timeout).unwrap_or(10);
        let root = self.runtime_root();
        let _ = bulwark_runtime::kill(&root, &dir.id, signal, false);
        let grace = Duration::from_secs(timeout.max(0) as u64);
        if !wait_until(grace, || !is_running(&dir)) {
            kill_all(&root, &dir.id);
        }
        self.wait_for_monitor(&dir)?;
        self.event("stop", &dir, &[]);
        Ok(())
    }

    /// Waits until the container's monitor has recorded the end and gone.
    fn wait_for_monitor(&self, dir: &ContainerDir) -> Result<(), EngineError> {
        if wait_until(MONITOR_DEADLINE, || !dir.monitor_alive()) {
            Ok(())
        } else {
            Err(EngineError::Other(format!(
                "container {}: its monitor did not finish within {} s",
                dir.short_id(),
                MONITOR_DEADLINE.as_secs()
            )))
        }
    }

    /// `kill`: a signal (SIGKILL unless given) to the container's init.
    pub fn kill_container(&self, what: &str, signal: Option<&str>) -> Result<(), EngineError> {
        let dir = self.container(what)?;
        let _lock = dir.lock()?;
        let state = dir.state()?;
        if state.status != Status::Running && state.status != Status::Paused {
            return Err(EngineError::Conflict(format!(
                "cannot kill container: {}: container {} is not running",
                what, dir.id
            )));
        }
        let signal = bulwark_runtime::parse_signal(signal.unwrap_or("SIGKILL"))?;
        if signal == libc::SIGKILL || signal == libc::SIGTERM {
            std::fs::write(dir.stopped_marker(), b"")
                .map_err(io("marking the container stopped"))?;
        }
        bulwark_runtime::kill(&self.runtime_root(), &dir.id, signal, false)?;
        self.event("kill", &dir, &[("signal", &signal.to_string())]);
        Ok(())
    }

    /// `rm`: removes a container that does not run (`force`: kills it first), with its
    /// root filesystem, log and name.
    pub fn remove_container(&self, what: &str, force: bool) -> Result<String, EngineError> {
        let dir = self.container(what)?;
        let _lock = dir.lock()?;
        let record = dir.record()?;
        let state = dir.state()?;
        if state.is_live() {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
                    record.name,
                    state.status.name()
                )));
            }
            std::fs::write(dir.stopped_marker(), b"")
                .map_err(io("marking the container stopped"))?;
            if state.status == Status::Paused {
                let _ = bulwark_runtime::resume(&self.runtime_root(), &dir.id);
            }
            kill_all(&self.runtime_root(), &dir.id);
            self.wait_for_monitor(&dir)?;
        } else if dir.monitor_alive() {
            // A `start` killed after it spawned the monitor: the monitor is still
            // bringing the container up (its state says created). Stopped as a live one,
            // again until the monitor is gone, since the container may appear meanwhile.
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is starting: stop the container before removing or force remove",
                    record.name
                )));
            }
            std::fs::write(dir.stopped_marker(), b"")
                .map_err(io("marking the container stopped"))?;
            let root = self.runtime_root();
            if !wait_until(MONITOR_DEADLINE, || {
                kill_all(&root, &dir.id);
                !dir.monitor_alive()
            }) {
                return Err(EngineError::Other(format!(
                    "container {}: its monitor did not finish within {} s",
                    dir.short_id(),
                    MONITOR_DEADLINE.as_secs()
                )));
            }
        }
        // A monitor killed before it cleaned up leaves the runtime's state (and maybe
        // processes): delete --force kills and removes them.
        if bulwark_runtime::state_of(&self.runtime_root(), &dir.id).is_ok() {
            let _ = bulwark_runtime::delete(&self.runtime_root(), &dir.id, true);
        }
        {
            let _store = self.store.lock()?;
            match self.store.mount_record(&dir.id)? {
                Some(_) => {
                    self.store.umount(&dir.id)?;
                }
                // A `create` killed while it mounted leaves a root filesystem without a record.
                None => self.store.remove_unfinished_mount(&dir.id)?,
            }
        }
        self.leave(&dir);
        self.event("destroy", &dir, &[]);
        self.containers().release_name(&record.name, &dir.id);
        std::fs::remove_dir_all(&dir.dir).map_err(io("removing the container's directory"))?;
        Ok(dir.id)
    }

    /// Waits (at most `deadline`) until the container `id` is gone.
    pub fn wait_removed(&self, id: &str, deadline: Duration) -> bool {
        let dir = self.containers().dir(id);
        wait_until(deadline, || !dir.dir.exists())
    }

    /// `wait`: blocks until the container is not running; returns its exit code.
    pub fn wait_container(&self, what: &str) -> Result<i32, EngineError> {
        let dir = self.container(what)?;
        loop {
            match dir.state() {
                Ok(state) if !state.is_live() && state.status != Status::Created => {
                    return Ok(state.exit_code)
                }
                Ok(_) => {}
                // Removed meanwhile (`--rm`): what it recorded last is gone with it.
                Err(_) if !dir.dir.exists() => return Ok(0),
                Err(e) => return Err(e.into()),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `pause` and `unpause`: the cgroup freezer.
    pub fn pause_container(&self, what: &str, pause: bool) -> Result<(), EngineError> {
        let dir = self.container(what)?;
        let _lock = dir.lock()?;
        let mut state = dir.state()?;
        let wanted = if pause {
            Status::Running
        } else {
            Status::Paused
        };
        if state.status != wanted {
            return Err(EngineError::Conflict(format!(
                "Container {} is not {}",
                dir.id,
                if pause { "running" } else { "paused" }
            )));
        }
        let root = self.runtime_root();
        if pause {
            bulwark_runtime::pause(&root, &dir.id)?;
            state.status = Status::Paused;
        } else {
            bulwark_runtime::resume(&root, &dir.id)?;
            state.status = Status::Running;
        }
        dir.write_state(&state)?;
        self.event(if pause { "pause" } else { "unpause" }, &dir, &[]);
        Ok(())
    }

    /// `rename`.
    pub fn rename_container(&self, what: &str, new_name: &str) -> Result<(), EngineError> {
        let dir = self.container(what)?;
        let _lock = dir.lock()?;
        let mut record = dir.record()?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if record.name == new_name {
            return Err(EngineError::Conflict(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        let containers = self.containers();
        containers.claim_name(new_name, &dir.id)?;
        let old = std::mem::replace(&mut record.name, new_name.to_owned());
        dir.write_record(&record)?;
        containers.release_name(&old, &dir.id);
        self.event("rename", &dir, &[("oldName", &format!("/{old}"))]);
        Ok(())
    }

    /// `container prune`: removes every container that does not run; returns their ids
    /// and the bytes their own changes (upper layers) took.
    pub fn prune_containers(&self) -> Result<(Vec<String>, u64), EngineError> {
        self.reconcile_containers();
        let (mut removed, mut reclaimed) = (Vec::new(), 0);
        for id in self.containers().ids()? {
            let dir = self.containers().dir(&id);
            if dir.state().is_ok_and(|s| !s.is_live()) {
                let size = bulwark_store::upper_usage(&self.store, &id);
                if let Ok(id) = self.remove_container(&id, false) {
                    removed.push(id);
                    reclaimed += size;
                }
            }
        }
        Ok((removed, reclaimed))
    }
}

/// SIGKILL for the container's init (its pid namespace goes with it), then for every
/// process of its cgroup (a container without a cgroup, as without root, has only the
/// first).
fn kill_all(root: &bulwark_runtime::StateRoot, id: &str) {
    let _ = bulwark_runtime::kill(root, id, libc::SIGKILL, false);
    let _ = bulwark_runtime::kill(root, id, libc::SIGKILL, true);
}

fn is_running(dir: &ContainerDir) -> bool {
    dir.state()
        .is_ok_and(|s| s.status == Status::Running || s.status == Status::Paused)
}

fn io<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> EngineError {
    move |e| EngineError::Other(format!("{what}: {e}"))
}

//! `--health-cmd`: the monitor runs the check in the container (through the runtime's
//! exec) every interval, kills it at its timeout, and records the result in the run
//! state as Docker does: `starting`, then `healthy` or, after `retries` failures in a
//! row, `unhealthy`. Failures within the start period do not count.
use std::fs::File;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use bulwark_container::{ContainerDir, HealthConfig, RunState};
use bulwark_runtime::{ExecOptions, StateRoot};
use serde_json::{json, Value};

/// A check under way.
struct Running {
    pid: i32,
    started: Instant,
}

/// The container's health checks.
pub struct Health {
    config: HealthConfig,
    dir: ContainerDir,
    root: StateRoot,
    began: Instant,
    next: Instant,
    running: Option<Running>,
    /// The status the last `health_status` event gave.
    reported: Option<String>,
}

impl Health {
    pub fn new(
        config: HealthConfig,
        dir: &ContainerDir,
        root: &StateRoot,
        state: &mut RunState,
    ) -> Health {
        state.health = Some("starting".into());
        state.failing_streak = 0;
        let _ = dir.write_state(state);
        Health {
            next: Instant::now() + Duration::from_nanos(config.interval),
            config,
            dir: dir.clone(),
            root: root.clone(),
            began: Instant::now(),
            running: None,
            reported: None,
        }
    }

    /// How long the monitor may sleep before the checks need it.
    pub fn wait(&self) -> Duration {
        let now = Instant::now();
        match &self.running {
            Some(r) => (r.started + Duration::from_nanos(self.config.timeout))
                .saturating_duration_since(now),
            None => self.next.saturating_duration_since(now),
        }
    }

    /// Starts a check when one is due; kills one past its timeout (its end is then
    /// reported through [`Health::ended`]).
    pub fn tick(&mut self, devnull: &File) {
        let now = Instant::now();
        match &self.running {
            Some(r) if now >= r.started + Duration::from_nanos(self.config.timeout) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(r.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Some(_) => {}
            None if now >= self.next => {
                self.running = self.start(devnull).map(|pid| Running { pid, started: now });
                if self.running.is_none() {
                    self.next = now + Duration::from_nanos(self.config.interval);
                }
            }
            None => {}
        }
    }

    fn process(&self) -> Option<Value> {
        let config: Value =
            serde_json::from_slice(&std::fs::read(self.dir.bundle().join("config.json")).ok()?)
                .ok()?;
        let mut process = config["process"].clone();
        let args: Vec<String> = match self.config.test.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
            }
            Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
            _ => return None,
        };
        process["args"] = json!(args);
        process["terminal"] = json!(false);
        Some(process)
    }

    /// Runs the check with its output discarded (its exit code is the verdict).
    fn start(&self, devnull: &File) -> Option<i32> {
        let process = serde_json::from_value(self.process()?).ok()?;
        // The check inherits the monitor's stdio, which is /dev/null while it runs.
        let _ = nix::unistd::dup2_stdout(devnull.as_fd());
        let _ = nix::unistd::dup2_stderr(devnull.as_fd());
        let execed = bulwark_runtime::exec(
            &self.root,
            &self.dir.id,
            ExecOptions {
                process,
                ..ExecOptions::default()
            },
        );
        execed.ok().map(|e| e.spawned.pid.as_raw())
    }

    /// Whether `pid` is the running check; if so, records its result.
    pub fn ended(&mut self, pid: i32, code: i32, state: &mut RunState) -> bool {
        let Some(running) = self.running.take_if(|r| r.pid == pid) else {
            return false;
        };
        let now = Instant::now();
        self.next = now + Duration::from_nanos(self.config.interval);
        let in_start_period =
            now.duration_since(self.began) < Duration::from_nanos(self.config.start_period);
        if code == 0 {
            state.failing_streak = 0;
            state.health = Some("healthy".into());
        } else if !in_start_period {
            state.failing_streak += 1;
            if state.failing_streak >= self.config.retries.max(1) {
                state.health = Some("unhealthy".into());
            }
        }
        let _ = running.started;
        let _ = self.dir.write_state(state);
        if let (Some(now), Ok(record)) = (state.health.as_deref(), self.dir.record()) {
            if self.reported.as_deref() != Some(now) {
                bulwark_container::events::record_for(
                    &self.dir,
                    &record,
                    &format!("health_status: {now}"),
                    &[],
                );
                self.reported = Some(now.to_owned());
            }
        }
        true
    }
}

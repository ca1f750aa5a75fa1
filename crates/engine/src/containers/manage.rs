//! `stats`, `update` and `system boot`.
use std::time::{Duration, Instant};

use bulwark_container::{RestartPolicy, Status};
use serde_json::{json, Value};

use crate::containers::StartMode;
use crate::{Engine, EngineError};

/// One row of `stats`.
#[derive(Debug, Clone)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    /// Of one CPU (100.0 = one CPU busy), over the sampling interval.
    pub cpu_percent: f64,
    pub memory_usage: u64,
    /// The container's memory limit, or the host's memory.
    pub memory_limit: u64,
    pub pids: u64,
}

/// What `system boot` did.
#[derive(Debug)]
pub struct Booted {
    pub started: Vec<String>,
    /// Containers that could not be started, and why.
    pub failed: Vec<(String, EngineError)>,
}

/// What `update` changes (`None`: as it is).
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
    pub restart: Option<RestartPolicy>,
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
            kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

impl Engine {
    /// `stats --no-stream`: CPU over `interval`, memory and processes of each running
    /// container named (every running one when none is).
    pub fn container_stats(
        &self,
        which: &[String],
        interval: Duration,
    ) -> Result<Vec<ContainerStats>, EngineError> {
        let dirs = if which.is_empty() {
            self.list_containers(false)?
                .into_iter()
                .map(|c| self.containers().dir(&c.record.id))
                .collect()
        } else {
            which
                .iter()
                .map(|w| self.container(w))
                .collect::<Result<Vec<_>, _>>()?
        };
        let root = self.runtime_root();
        let cpu = |id: &str| {
            bulwark_runtime::stats(&root, id)
                .ok()
                .and_then(|s| s.cpu.usage_total_ns)
        };
        let before: Vec<(Option<u64>, Instant)> =
            dirs.iter().map(|d| (cpu(&d.id), Instant::now())).collect();
        std::thread::sleep(interval);
        let mut rows = Vec::new();
        for (dir, (first, at)) in dirs.iter().zip(before) {
            let record = dir.record()?;
            if !dir.state()?.is_live() {
                continue;
            }
            let stats = bulwark_runtime::stats(&root, &dir.id)?;
            let elapsed = at.elapsed().as_nanos() as f64;
            let used = match (first, stats.cpu.usage_total_ns) {
                (Some(a), Some(b)) if b >= a => (b - a) as f64,
                _ => 0.0,
            };
            let limit = match stats.memory.limit {
                Some(bulwark_runtime::Limit::Value(v)) if v < host_memory() => v,
                _ => host_memory(),
            };
            rows.push(ContainerStats {
                id: dir.id.clone(),
                name: record.name,
                cpu_percent: used / elapsed * 100.0,
                memory_usage: stats.memory.usage.unwrap_or(0),
                memory_limit: limit,
                pids: stats.pids.current.unwrap_or(0),
            });
        }
        Ok(rows)
    }

    /// `update`: new limits for a container (now, if it runs, and for its next start)
    /// and a new restart policy.
    pub fn update_container(&self, what: &str, request: &UpdateRequest) -> Result<(), EngineError> {
        let dir = self.container(what)?;
        let _lock = dir.lock()?;
        let mut record = dir.record()?;
        let r = &mut record.resources;
        if request.memory.is_some() {
            r.memory = request.memory;
        }
        if request.memory_swap.is_some() {
            r.memory_swap = request.memory_swap;
        }
        if request.nano_cpus.is_some() {
            r.nano_cpus = request.nano_cpus;
        }
        if request.cpu_shares.is_some() {
            r.cpu_shares = request.cpu_shares;
        }
        if request.pids_limit.is_some() {
            r.pids_limit = request.pids_limit;
        }
        if let Some(restart) = request.restart {
            if record.auto_remove && restart != RestartPolicy::No {
                return Err(EngineError::Conflict(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
            record.restart = restart;
        }
        let mut linux = json!({});
        super::spec::resources(&mut linux, &record.resources);
        let resources = linux.get("resources").cloned().unwrap_or(json!({}));
        let bundle = dir.bundle().join("config.json");
        let mut config: Value = serde_json::from_slice(
            &std::fs::read(&bundle)
                .map_err(|e| EngineError::Other(format!("{}: {e}", bundle.display())))?,
        )
        .map_err(|e| EngineError::Other(format!("{}: {e}", bundle.display())))?;
        if let Some(object) = resources.as_object() {
            for (key, value) in object {
                config["linux"]["resources"][key] = value.clone();
            }
        }
        if dir.state()?.is_live() && resources.as_object().is_some_and(|o| !o.is_empty()) {
            let linux_resources = serde_json::from_value(config["linux"]["resources"].clone())
                .map_err(|e| EngineError::InvalidArgument(format!("the new limits: {e}")))?;
            bulwark_runtime::update(&self.runtime_root(), &dir.id, &linux_resources)?;
        }
        let text = serde_json::to_vec_pretty(&config).expect("a config always serializes");
        bulwark_container::write_atomic(&bundle, &text)?;
        dir.write_record(&record)?;
        Ok(())
    }

    /// `system boot`: after the host started, starts the containers whose restart policy
    /// asks for it (`always`, and `unless-stopped` ones no user stopped) and that ran
    /// when the host went down. Returns the ids started and the failures.
    pub fn boot(&self) -> Result<Booted, EngineError> {
        self.reconcile_containers();
        let (mut started, mut failed) = (Vec::new(), Vec::new());
        for id in self.containers().ids()? {
            let dir = self.containers().dir(&id);
            let (Ok(record), Ok(saved), Ok(now)) = (dir.record(), dir.saved_state(), dir.state())
            else {
                continue;
            };
            let ran_before = saved.is_live() && saved.boot_id != bulwark_container::boot_id();
            let wanted = match record.restart {
                RestartPolicy::Always => true,
                RestartPolicy::UnlessStopped => !dir.stopped_marker().exists(),
                _ => false,
            };
            if !wanted || now.is_live() || !(ran_before || now.status == Status::Exited) {
                continue;
            }
            match self.start_container(&id, StartMode::Detached) {
                Ok(_) => started.push(id),
                Err(e) => failed.push((id, e)),
            }
        }
        Ok(Booted { started, failed })
    }
}

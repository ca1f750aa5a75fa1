//! `ps`, `inspect`, `logs` and `top`: what the containers' files say, read without
//! taking any container's lock.
use std::time::SystemTime;

use bulwark_container::logs::{self, Entry, LogFilter};
use bulwark_container::{ContainerDir, ContainerRecord, RunState, Status};
use serde_json::{json, Value};

use crate::{Engine, EngineError};

/// One line of `ps`.
#[derive(Debug, Clone)]
pub struct ContainerSummary {
    pub record: ContainerRecord,
    pub state: RunState,
    /// Its published ports.
    pub ports: Vec<bulwark_network::ports::PortMapping>,
}

impl ContainerSummary {
    /// Docker's PORTS column: `0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp`.
    pub fn ports_text(&self) -> String {
        self.ports
            .iter()
            .map(|m| {
                let ip = m
                    .host_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into());
                format!(
                    "{ip}:{}->{}/{}",
                    m.host_port,
                    m.container_port,
                    m.protocol.name()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The command as `ps` shows it (quoted, like Docker's `"sh -c 'x'"` without quotes).
    pub fn command(&self) -> String {
        self.record.run.args().join(" ")
    }

    /// Docker's STATUS column: `Up 5 minutes`, `Exited (0) 2 seconds ago`, `Created`.
    pub fn status_text(&self, now: SystemTime) -> String {
        let since = |time: &str| {
            humantime::parse_rfc3339_weak(time)
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .map(human_duration)
                .unwrap_or_else(|| "Less than a second".into())
        };
        let health = match self.state.health.as_deref() {
            Some("starting") => " (health: starting)".to_owned(),
            Some(h) => format!(" ({h})"),
            None => String::new(),
        };
        match self.state.status {
            Status::Created => "Created".into(),
            Status::Running => format!("Up {}{health}", since(&self.state.started_at)),
            Status::Paused => format!("Up {} (Paused)", since(&self.state.started_at)),
            Status::Restarting => format!(
                "Restarting ({}) {} ago",
                self.state.exit_code,
                since(&self.state.finished_at)
            ),
            Status::Removing => "Removal In Progress".into(),
            Status::Exited => format!(
                "Exited ({}) {} ago",
                self.state.exit_code,
                since(&self.state.finished_at)
            ),
            Status::Dead => "Dead".into(),
        }
    }
}

/// Docker's (go-units) human durations.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        5_184_000..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

/// What `logs` shows.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    pub filter: LogFilter,
    pub follow: bool,
}

impl Engine {
    /// Every container (with `all`), or the live ones, newest first.
    pub fn list_containers(&self, all: bool) -> Result<Vec<ContainerSummary>, EngineError> {
        self.reconcile_containers();
        let containers = self.containers();
        let mut list = Vec::new();
        for id in containers.ids()? {
            let dir = containers.dir(&id);
            // A container being removed right now may vanish between the two reads.
            let (Ok(record), Ok(state)) = (dir.record(), dir.state()) else {
                continue;
            };
            if all || state.is_live() {
                let ports = crate::networks::published(&dir.dir);
                list.push(ContainerSummary {
                    record,
                    state,
                    ports,
                });
            }
        }
        list.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        Ok(list)
    }

    /// `inspect`: Docker's shape (`Id`, `Name`, `State`, `Config`, `HostConfig` ...).
    pub fn inspect_container(&self, what: &str) -> Result<Value, EngineError> {
        let dir = self.container(what)?;
        let record = dir.record()?;
        let state = dir.state()?;
        let mount = self.store.mount_record(&dir.id)?;
        let networks = self.network_settings(&dir, &record);
        let mut inspected = inspect_json(
            &dir,
            &record,
            &state,
            mount
                .is_some()
                .then(|| self.store.root().join("mounts").join(&dir.id)),
        );
        inspected["NetworkSettings"] = networks;
        Ok(inspected)
    }

    /// `logs`: the lines the filter admits, given to `show` (which returns false to
    /// stop); with `follow`, new lines too until the container stops.
    pub fn container_logs(
        &self,
        what: &str,
        request: &LogRequest,
        mut show: impl FnMut(&Entry) -> bool,
    ) -> Result<(), EngineError> {
        let dir = self.container(what)?;
        let record = dir.record()?;
        if record.log.driver == bulwark_container::LogDriver::None {
            return Err(EngineError::Conflict(
                "configured logging driver does not support reading".into(),
            ));
        }
        let path = dir.log_path();
        for entry in logs::read(&path, &request.filter)? {
            if !show(&entry) {
                return Ok(());
            }
        }
        if !request.follow || !dir.state()?.is_live() {
            return Ok(());
        }
        let after = LogFilter {
            tail: None,
            ..request.filter.clone()
        };
        logs::follow(&path, &after, show, || {
            dir.state().map_or(true, |s| !s.is_live())
        })?;
        Ok(())
    }

    /// `top`: the container's processes, as `ps -ef` columns.
    pub fn top_container(&self, what: &str) -> Result<Vec<[String; 8]>, EngineError> {
        let dir = self.container(what)?;
        let state = dir.state()?;
        if !state.is_live() {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                dir.id
            )));
        }
        let pids = bulwark_runtime::processes(&self.runtime_root(), &dir.id)?;
        Ok(pids.into_iter().filter_map(process_row).collect())
    }
}

/// UID PID PPID C STIME TTY TIME CMD for one process, from /proc.
fn process_row(pid: i32) -> Option<[String; 8]> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ppid = fields.get(1)?.to_string();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_owned();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmd = String::from_utf8_lossy(&cmdline)
        .replace('\0', " ")
        .trim_end()
        .to_owned();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|hz| *hz > 0)
        .unwrap_or(100) as u64;
    let started: u64 = fields.get(19)?.parse().ok()?;
    // ps's columns: C is the CPU use over the process's life in percent, STIME its start
    // (HH:MM, UTC), TTY its terminal (pts/N) or ?.
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let alive = (uptime * hz as f64) as u64 - started.min((uptime * hz as f64) as u64);
    let cpu = (ticks * 100).checked_div(alive).unwrap_or(0);
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|b| b.trim().parse::<u64>().ok())
    });
    let stime = boot.map_or_else(
        || "-".to_owned(),
        |boot| {
            let at = (boot + started / hz) % 86_400;
            format!("{:02}:{:02}", at / 3600, at / 60 % 60)
        },
    );
    let tty_nr: u64 = fields.get(4)?.parse().ok()?;
    let tty = match tty_nr {
        0 => "?".to_owned(),
        // Pseudo-terminals are majors 136-143.
        n if (136..=143).contains(&((n >> 8) & 0xfff)) => {
            format!("pts/{}", (n & 0xff) | ((n >> 12) & 0xfff00))
        }
        n => format!(
            "{}:{}",
            (n >> 8) & 0xfff,
            (n & 0xff) | ((n >> 12) & 0xfff00)
        ),
    };
    let secs = ticks / hz;
    Some([
        uid,
        pid.to_string(),
        ppid,
        cpu.to_string(),
        stime,
        tty,
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
        cmd,
    ])
}

fn inspect_json(
    dir: &ContainerDir,
    r: &ContainerRecord,
    s: &RunState,
    rootfs: Option<std::path::PathBuf>,
) -> Value {
    let health = s
        .health
        .as_ref()
        .map(|status| json!({"Status": status, "FailingStreak": s.failing_streak, "Log": []}));
    let mut state = json!({
        "Status": s.status.name(),
        "Running": matches!(s.status, Status::Running | Status::Paused),
        "Paused": s.status == Status::Paused,
        "Restarting": s.status == Status::Restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == Status::Dead,
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": s.started_at,
        "FinishedAt": s.finished_at,
    });
    if let Some(health) = health {
        state["Health"] = health;
    }
    let binds: Vec<String> = r
        .binds
        .iter()
        .map(|b| {
            format!(
                "{}:{}{}",
                b.source,
                b.destination,
                if b.read_only { ":ro" } else { "" }
            )
        })
        .collect();
    let tmpfs: serde_json::Map<String, Value> = r
        .tmpfs
        .iter()
        .map(|t| (t.destination.clone(), json!(t.options.join(","))))
        .collect();
    let mounts: Vec<Value> = r
        .binds
        .iter()
        .map(|b| json!({"Type": "bind", "Source": b.source, "Destination": b.destination, "Mode": if b.read_only {"ro"} else {""}, "RW": !b.read_only, "Propagation": "rprivate"}))
        .collect();
    let (path, args) = r
        .run
        .args()
        .split_first()
        .map(|(p, a)| (p.clone(), a.to_vec()))
        .unwrap_or_default();
    let max_retry = match r.restart {
        bulwark_container::RestartPolicy::OnFailure(n) => n,
        _ => 0,
    };
    let mut log_config = serde_json::Map::new();
    if let Some(size) = r.log.max_size {
        log_config.insert("max-size".into(), json!(size.to_string()));
        log_config.insert("max-file".into(), json!(r.log.max_file.to_string()));
    }
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": path,
        "Args": args,
        "State": state,
        "Image": r.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": dir.log_path(),
        "Name": format!("/{}", r.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "HostConfig": {
            "Binds": binds,
            "LogConfig": {"Type": r.log.driver.name(), "Config": log_config},
            "NetworkMode": r.network,
            "RestartPolicy": {"Name": r.restart.name(), "MaximumRetryCount": max_retry},
            "AutoRemove": r.auto_remove,
            "CapAdd": r.security.cap_add,
            "CapDrop": r.security.cap_drop,
            "Privileged": r.security.privileged,
            "ReadonlyRootfs": r.security.read_only,
            "SecurityOpt": security_opts(r),
            "Tmpfs": tmpfs,
            "Memory": r.resources.memory.unwrap_or(0),
            "MemorySwap": r.resources.memory_swap.unwrap_or(0),
            "NanoCpus": r.resources.nano_cpus.unwrap_or(0),
            "CpuShares": r.resources.cpu_shares.unwrap_or(0),
            "PidsLimit": r.resources.pids_limit,
            "Ulimits": r.resources.ulimits.iter().map(|(n, s, h)| json!({"Name": n, "Soft": s, "Hard": h})).collect::<Vec<_>>(),
            "Init": r.run.init,
            "UsernsMode": r.security.userns,
        },
        "GraphDriver": {"Name": "overlay2", "Data": rootfs.map(|p| json!({"MergedDir": p.join("merged"), "UpperDir": p.join("upper"), "WorkDir": p.join("work")}))},
        "Mounts": mounts,
        "Config": {
            "Hostname": r.run.hostname,
            "User": r.run.user,
            "Tty": r.run.tty,
            "OpenStdin": r.run.open_stdin,
            "Env": r.run.env,
            "Cmd": r.run.cmd,
            "Entrypoint": if r.run.entrypoint.is_empty() { Value::Null } else { json!(r.run.entrypoint) },
            "Image": r.image,
            "WorkingDir": r.run.working_dir,
            "Labels": r.run.labels,
            "StopSignal": r.run.stop_signal,
            "StopTimeout": r.run.stop_timeout,
            "Healthcheck": r.health.as_ref().map(|h| json!({"Test": h.test, "Interval": h.interval, "Timeout": h.timeout, "Retries": h.retries, "StartPeriod": h.start_period})),
        },
        "NetworkSettings": {"Networks": {r.network.clone(): {}}},
    })
}

fn security_opts(r: &ContainerRecord) -> Vec<String> {
    let s = &r.security;
    let mut opts = vec![format!("profile={}", s.profile)];
    if s.no_new_privileges == Some(true) {
        opts.push("no-new-privileges".into());
    }
    if let Some(seccomp) = &s.seccomp {
        opts.push(if seccomp == "unconfined" {
            "seccomp=unconfined".into()
        } else {
            "seccomp=<file>".into()
        });
    }
    if !s.landlock {
        opts.push("landlock=off".into());
    }
    opts
}

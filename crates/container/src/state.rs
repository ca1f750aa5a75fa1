//! `state.json` in a container's directory: where the container is in its life. The
//! engine writes it at `create`; from `start` on only the monitor writes it, always by
//! replacing the whole file.
use serde::{Deserialize, Serialize};

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// The run state, as Docker's `State` reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub status: Status,
    /// The container's init on the host (0 when not running).
    pub pid: i32,
    pub exit_code: i32,
    /// RFC 3339; Docker's zero time before the first start.
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// Why the container could not start, or what became of its monitor.
    pub error: String,
    pub oom_killed: bool,
    /// The monitor's pid, and the boot it ran in.
    pub monitor_pid: i32,
    pub boot_id: String,
    /// `healthy`, `unhealthy`, `starting` (with a health check).
    pub health: Option<String>,
    pub failing_streak: u32,
}

/// What Docker shows for a time that has not happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl RunState {
    pub fn created() -> RunState {
        RunState {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            restart_count: 0,
            error: String::new(),
            oom_killed: false,
            monitor_pid: 0,
            boot_id: boot_id(),
            health: None,
            failing_streak: 0,
        }
    }

    /// Whether a process of the container may be running (its monitor looks after it).
    pub fn is_live(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        )
    }
}

/// This boot's id: a container state from another boot describes processes that are gone.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Now, as Docker writes times (RFC 3339 with nanoseconds, UTC).
pub fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

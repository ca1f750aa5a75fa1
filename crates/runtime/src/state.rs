//! What is saved about a container, and the OCI state derived from it.
use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The OCI lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.pad(text)
    }
}

/// `state.json` in the container's state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedState {
    pub id: String,
    /// The init's pid in the runtime's pid namespace.
    pub pid: i32,
    /// The init's start time (clock ticks after boot), so a recycled pid is not mistaken
    /// for the container.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    /// The `config.json` the container was created with, as written: planned again by
    /// the commands that need it (exec, the hooks of start and delete).
    pub config: Box<RawValue>,
    /// Its `ociVersion` and annotations, for `state` and `list` without parsing it.
    #[serde(default)]
    pub oci_version: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup directories.
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// Whether the container's process got a Landlock domain.
    #[serde(default)]
    pub landlock: LandlockReport,
}

/// Whether a container's process runs in a Landlock domain, and why (not), as `state`
/// shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LandlockReport {
    pub applied: bool,
    pub reason: String,
}

impl LandlockReport {
    /// The config's decision, on this kernel.
    pub fn of(decision: &bulwark_spec::Landlock) -> LandlockReport {
        let abi = bulwark_sys::landlock::abi_version();
        match (decision.applied, abi) {
            (true, None) => LandlockReport {
                applied: false,
                reason: "this kernel has no Landlock".into(),
            },
            (applied, _) => LandlockReport {
                applied,
                reason: decision.reason.into(),
            },
        }
    }
}

/// The state the OCI runtime spec defines, as `state` prints and hooks read it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// bulwark's own: whether the process runs in a Landlock domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock: Option<LandlockReport>,
}

impl SavedState {
    /// The saved config, parsed.
    pub fn spec(&self) -> Result<bulwark_spec::runtime::Spec, crate::RuntimeError> {
        Ok(bulwark_spec::parse_config(self.config.get().as_bytes())?)
    }

    pub fn oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
            landlock: Some(self.landlock.clone()),
        }
    }
}

/// The OCI state of a container, as `state` prints it (`creating` while `create` runs).
pub fn state_of(root: &crate::StateRoot, id: &str) -> Result<OciState, crate::RuntimeError> {
    match root.peek(id)? {
        Some((saved, status)) => Ok(saved.oci(status)),
        None => Err(crate::RuntimeError::WrongStatus {
            id: id.into(),
            status: Status::Creating.to_string(),
            action: "state",
            expected: "created (it is still being created, or its creation was cut short: `delete --force` removes it)",
        }),
    }
}

/// The start time of a process (field 22 of `/proc/<pid>/stat`) and whether it is a zombie.
pub fn process_start(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, *state == "Z" || *state == "X"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable() {
        let (start, zombie) = process_start(std::process::id() as i32).unwrap();
        assert!(start > 0);
        assert!(!zombie);
        assert!(process_start(i32::MAX).is_none());
    }
}

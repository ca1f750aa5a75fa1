//! Where a container's files are, and how a user's word (a name, an id or a prefix of
//! one) finds a container.
//!
//! ```text
//! containers/<id>/config.json     the record (crate::ContainerRecord)
//!                 state.json      the run state (crate::RunState)
//!                 bundle/         the OCI bundle (config.json; the rootfs is the store's mount)
//!                 <id>-json.log   the log, rotated to .1, .2 ...
//!                 lock            held while a command changes the container
//!                 monitor.lock    held by the container's monitor for as long as it lives
//!                 stopped         there: a user stopped it, no restart policy applies
//! containers/names/<name>         the id holding the name (made with O_EXCL)
//! ```
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{ContainerError, ContainerRecord, FileLock, LockKind, RunState};

/// The directory of every container.
#[derive(Debug, Clone)]
pub struct Containers {
    pub root: PathBuf,
}

/// One container's directory.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub id: String,
    pub dir: PathBuf,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128
}

fn is_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Containers {
    pub fn new(root: impl Into<PathBuf>) -> Containers {
        Containers { root: root.into() }
    }

    fn names(&self) -> PathBuf {
        self.root.join("names")
    }

    /// Makes the directories (the containers' own are readable by their owner only).
    pub fn ensure(&self) -> Result<(), ContainerError> {
        for dir in [&self.root, &self.names()] {
            std::fs::create_dir_all(dir)
                .map_err(ContainerError::io("cannot create the directory", dir))?;
        }
        std::fs::set_permissions(
            &self.root,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(ContainerError::io("cannot set the mode of", &self.root))
    }

    pub fn dir(&self, id: &str) -> ContainerDir {
        ContainerDir {
            id: id.to_owned(),
            dir: self.root.join(id),
        }
    }

    /// Claims `name` for `id`; fails if another container has it. Atomic: of two
    /// commands claiming one name at once, one wins.
    pub fn claim_name(&self, name: &str, id: &str) -> Result<(), ContainerError> {
        if !valid_name(name) {
            return Err(ContainerError::BadName(name.to_owned()));
        }
        let path = self.names().join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => file
                .write_all(id.as_bytes())
                .map_err(ContainerError::io("cannot write", &path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                Err(ContainerError::NameInUse {
                    name: name.to_owned(),
                    id: holder,
                })
            }
            Err(e) => Err(ContainerError::io("cannot claim the name", &path)(e)),
        }
    }

    /// Gives `name` up if `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        let path = self.names().join(name);
        if std::fs::read_to_string(&path).is_ok_and(|holder| holder == id) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The ids of every container (directories with a record).
    pub fn ids(&self) -> Result<Vec<String>, ContainerError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ContainerError::io("cannot list", &self.root)(e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| is_id(name) && self.root.join(name).join("config.json").exists())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Containers a killed `create` left half made: a directory with no complete record,
    /// unchanged for 10 s, whose lock no one holds. (A `create` under way holds the lock;
    /// the age covers the moment between its `mkdir` and its lock.)
    pub fn half_made(&self) -> Vec<ContainerDir> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| is_id(name))
            .map(|id| self.dir(&id))
            .filter(|dir| dir.record().is_err() || dir.saved_state().is_err())
            .filter(|dir| {
                let old = std::fs::metadata(&dir.dir)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 10));
                old && !FileLock::is_held(&dir.lock_path())
            })
            .collect()
    }

    /// Names whose container is gone (a killed `create` or `rm`).
    pub fn release_orphaned_names(&self) {
        let Ok(entries) = std::fs::read_dir(self.names()) else {
            return;
        };
        for entry in entries.flatten() {
            let holder = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if is_id(&holder) && !self.root.join(&holder).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The container a user means: its name (with or without `/`), its id or a unique
    /// prefix of its id.
    pub fn find(&self, what: &str) -> Result<ContainerDir, ContainerError> {
        let name = what.strip_prefix('/').unwrap_or(what);
        if valid_name(name) {
            if let Ok(id) = std::fs::read_to_string(self.names().join(name)) {
                if self.root.join(&id).join("config.json").exists() {
                    return Ok(self.dir(&id));
                }
            }
        }
        if !what.is_empty() && what.bytes().all(|b| b.is_ascii_hexdigit()) {
            let ids = self.ids()?;
            let matching: Vec<&String> = ids.iter().filter(|id| id.starts_with(what)).collect();
            match matching.as_slice() {
                [one] => return Ok(self.dir(one)),
                [] => {}
                _ => return Err(ContainerError::Ambiguous(what.to_owned())),
            }
        }
        Err(ContainerError::NoSuchContainer(what.to_owned()))
    }
}

impl ContainerDir {
    pub fn record_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}-json.log", self.id))
    }
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }
    pub fn monitor_lock_path(&self) -> PathBuf {
        self.dir.join("monitor.lock")
    }
    pub fn stopped_marker(&self) -> PathBuf {
        self.dir.join("stopped")
    }

    /// The short id Docker shows (12 hex digits).
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// Holds the container against other commands changing it.
    pub fn lock(&self) -> Result<FileLock, ContainerError> {
        FileLock::wait(&self.lock_path(), LockKind::Exclusive)
    }

    pub fn record(&self) -> Result<ContainerRecord, ContainerError> {
        read_json(&self.record_path())
    }

    pub fn write_record(&self, record: &ContainerRecord) -> Result<(), ContainerError> {
        let bytes = serde_json::to_vec_pretty(record).expect("a record always serializes");
        crate::write_atomic(&self.record_path(), &bytes)
    }

    /// The run state as written; see [`ContainerDir::state`] for what it means now.
    pub fn saved_state(&self) -> Result<RunState, ContainerError> {
        read_json(&self.state_path())
    }

    pub fn write_state(&self, state: &RunState) -> Result<(), ContainerError> {
        let bytes = serde_json::to_vec(state).expect("a state always serializes");
        crate::write_atomic(&self.state_path(), &bytes)
    }

    /// Whether the container's monitor lives.
    pub fn monitor_alive(&self) -> bool {
        FileLock::is_held(&self.monitor_lock_path())
    }

    /// The run state as it is now: a live state whose monitor is gone (killed, or a boot
    /// ago) is `exited` with that said in `error` (Docker's `dead` is for containers
    /// that failed to be removed).
    pub fn state(&self) -> Result<RunState, ContainerError> {
        let mut state = self.saved_state()?;
        if state.is_live() && !self.monitor_alive() {
            let rebooted = state.boot_id != crate::boot_id();
            state.error = if rebooted {
                "the host restarted while the container ran".into()
            } else {
                format!(
                    "its monitor (pid {}) ended while the container ran",
                    state.monitor_pid
                )
            };
            state.status = crate::Status::Exited;
            state.exit_code = if rebooted { 255 } else { 137 };
            state.pid = 0;
        }
        Ok(state)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ContainerError> {
    let bytes = std::fs::read(path).map_err(ContainerError::io("cannot read", path))?;
    serde_json::from_slice(&bytes).map_err(|e| ContainerError::Damaged {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_claimed_once_and_found() {
        let root = std::env::temp_dir().join(format!("bulwark-names-{}", std::process::id()));
        let containers = Containers::new(&root);
        containers.ensure().unwrap();
        let id = "a".repeat(64);
        std::fs::create_dir_all(root.join(&id)).unwrap();
        std::fs::write(root.join(&id).join("config.json"), "{}").unwrap();
        containers.claim_name("web", &id).unwrap();
        let err = containers.claim_name("web", &"b".repeat(64)).unwrap_err();
        assert!(
            err.to_string()
                .contains("is already in use by container \"aaaa"),
            "{err}"
        );
        assert!(matches!(
            containers.claim_name("-x", &id),
            Err(ContainerError::BadName(_))
        ));
        assert_eq!(containers.find("web").unwrap().id, id);
        assert_eq!(containers.find("/web").unwrap().id, id);
        assert_eq!(containers.find("aaaa").unwrap().id, id);
        assert!(matches!(
            containers.find("nope"),
            Err(ContainerError::NoSuchContainer(_))
        ));
        containers.release_name("web", &"b".repeat(64));
        assert!(containers.find("web").is_ok());
        containers.release_name("web", &id);
        assert!(containers.find("web").is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}

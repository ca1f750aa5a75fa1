//! The state root (`--root`) and one container's directory in it, locked while in use.
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use crate::state::{process_start, SavedState, Status};
use crate::{validate_id, RuntimeError};

const STATE_FILE: &str = "state.json";
const FIFO: &str = "exec.fifo";

/// The directory holding every container's state.
#[derive(Debug, Clone)]
pub struct StateRoot {
    pub path: PathBuf,
}

/// One container's state directory, exclusively locked for as long as this lives.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    _lock: Flock<OwnedFd>,
}

impl StateRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateRoot { path: path.into() }
    }

    /// Refuses a state root someone else could have planted state in: it must be a real
    /// directory (not a symlink) of the runtime's user that no one else can write. A
    /// missing one is fine (create makes it).
    fn trusted(&self) -> Result<(), RuntimeError> {
        let meta = match std::fs::symlink_metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(RuntimeError::io("cannot read the state root", &self.path)(
                    e,
                ))
            }
        };
        let euid = nix::unistd::geteuid().as_raw();
        let mode = meta.mode() & 0o7777;
        if meta.is_dir() && meta.uid() == euid && mode & 0o022 == 0 {
            return Ok(());
        }
        Err(RuntimeError::UntrustedStateRoot {
            path: self.path.clone(),
            kind: if meta.file_type().is_symlink() {
                "a symlink"
            } else if meta.is_dir() {
                "a directory"
            } else {
                "a file"
            },
            uid: meta.uid(),
            mode,
            euid,
        })
    }

    pub(crate) fn ensure(&self) -> Result<(), RuntimeError> {
        self.trusted()?;
        if self.path.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.path)
            .map_err(RuntimeError::io("cannot create the state root", &self.path))?;
        // Listable by root only; traversable so an init in a user namespace (a non-root
        // host uid) can still reach its exec fifo.
        std::fs::set_permissions(
            &self.path,
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .map_err(RuntimeError::io(
            "cannot set the mode of the state root",
            &self.path,
        ))
    }

    /// Makes the directory for a new container; fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<Container, RuntimeError> {
        validate_id(id)?;
        self.ensure()?;
        let dir = self.path.join(id);
        match nix::unistd::mkdir(&dir, Mode::from_bits_truncate(0o711)) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => return Err(RuntimeError::Exists(id.to_string())),
            Err(e) => return Err(RuntimeError::sys(format!("creating {}", dir.display()))(e)),
        }
        Container::lock(id, dir)
    }

    /// Opens and locks an existing container's directory.
    pub fn open(&self, id: &str) -> Result<Container, RuntimeError> {
        validate_id(id)?;
        self.trusted()?;
        let dir = self.path.join(id);
        if !dir.is_dir() {
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        Container::lock(id, dir)
    }

    /// The ids of every container with a state directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>, RuntimeError> {
        self.trusted()?;
        let entries = match std::fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(RuntimeError::io("cannot read the state root", &self.path)(
                    e,
                ))
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl Container {
    fn lock(id: &str, dir: PathBuf) -> Result<Container, RuntimeError> {
        let fd = nix::fcntl::open(
            &dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(RuntimeError::sys(format!("opening {}", dir.display())))?;
        let lock = Flock::lock(fd, FlockArg::LockExclusive)
            .map_err(|(_, e)| RuntimeError::sys(format!("locking {}", dir.display()))(e))?;
        if !dir.is_dir() {
            // Deleted while we waited for the lock.
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        Ok(Container {
            id: id.to_string(),
            dir,
            _lock: lock,
        })
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join(FIFO)
    }

    /// The saved state, or `None` while the container is still being created (or its
    /// creation was cut short).
    pub fn load(&self) -> Result<Option<SavedState>, RuntimeError> {
        let path = self.dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| RuntimeError::DamagedState { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RuntimeError::io("cannot read", path)(e)),
        }
    }

    /// Like [`load`](Self::load), but a missing state is an error naming the container.
    pub fn require(&self) -> Result<SavedState, RuntimeError> {
        self.load()?.ok_or_else(|| RuntimeError::WrongStatus {
            id: self.id.clone(),
            status: Status::Creating.to_string(),
            action: "this command",
            expected: "created (it has no saved state; `delete --force` removes it)",
        })
    }

    /// Writes the state atomically (a rename), so readers never see half of it.
    pub fn save(&self, state: &SavedState) -> Result<(), RuntimeError> {
        let tmp = self.dir.join(".state.json.tmp");
        let bytes = serde_json::to_vec(state).expect("the saved state always serializes");
        std::fs::write(&tmp, bytes).map_err(RuntimeError::io("cannot write", &tmp))?;
        std::fs::rename(&tmp, self.dir.join(STATE_FILE))
            .map_err(RuntimeError::io("cannot write", &tmp))
    }

    /// The status, derived from the init process and the exec fifo.
    pub fn status(&self, state: &SavedState) -> Status {
        status_of(&self.dir, state)
    }

    /// Removes the state directory.
    pub fn remove(self) -> Result<(), RuntimeError> {
        std::fs::remove_dir_all(&self.dir).map_err(RuntimeError::io("cannot remove", &self.dir))
    }
}

/// The status of the container saved in `dir`: stopped once its init is gone (or its pid
/// now belongs to another process), created while the exec fifo exists, else running.
fn status_of(dir: &Path, state: &SavedState) -> Status {
    match process_start(state.pid) {
        Some((start, false)) if start == state.pid_start => {
            if dir.join(FIFO).exists() {
                Status::Created
            } else if crate::cgroups::existing(dir, Some(&state.cgroup_paths))
                .is_some_and(|m| m.is_frozen().unwrap_or(false))
            {
                Status::Paused
            } else {
                Status::Running
            }
        }
        _ => Status::Stopped,
    }
}

impl StateRoot {
    /// Reads a container's state without taking its lock, so `state` and `list` never
    /// wait behind a long operation. `state.json` is replaced atomically, so a read sees
    /// either the old or the new state. `Ok(None)` while the container is being created.
    pub fn peek(&self, id: &str) -> Result<Option<(SavedState, Status)>, RuntimeError> {
        validate_id(id)?;
        self.trusted()?;
        let dir = self.path.join(id);
        let bytes = match std::fs::read(dir.join(STATE_FILE)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return if dir.is_dir() {
                    Ok(None)
                } else {
                    Err(RuntimeError::NotFound(id.to_string()))
                };
            }
            Err(e) => return Err(RuntimeError::io("cannot read", dir.join(STATE_FILE))(e)),
        };
        let state: SavedState =
            serde_json::from_slice(&bytes).map_err(|source| RuntimeError::DamagedState {
                path: dir.join(STATE_FILE),
                source,
            })?;
        let status = status_of(&dir, &state);
        Ok(Some((state, status)))
    }
}

/// Writes `pid` to `path` atomically, as engines expect of `--pid-file`.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuntimeError> {
    let path =
        std::path::absolute(path).map_err(RuntimeError::io("cannot resolve --pid-file", path))?;
    let tmp = path.with_extension("bulwark-tmp");
    std::fs::write(&tmp, pid.to_string())
        .map_err(RuntimeError::io("cannot write --pid-file", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(RuntimeError::io("cannot write --pid-file", &path))
}

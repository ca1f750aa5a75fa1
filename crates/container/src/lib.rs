//! Containers on disk, shared by the engine (which makes, lists and removes them) and
//! `bulwark-mon` (which runs one): a directory per container holding its record (what it
//! was created from), its run state (written only by replacing the whole file), its log
//! and two locks the kernel releases when their holder dies.
#![forbid(unsafe_code)]

mod error;
pub mod events;
mod layout;
mod lock;
pub mod logs;
mod record;
mod restart;
mod state;

pub use error::ContainerError;
pub use layout::{ContainerDir, Containers};
pub use lock::{FileLock, LockKind};
pub use record::{
    Bind, ContainerRecord, HealthConfig, LogDriver, LogMode, LogOptions, NetworkSettings,
    Resources, RestartPolicy, RunConfig, Security, Tmpfs,
};
pub use restart::{next_delay, should_restart};
pub use state::{boot_id, now, RunState, Status};

/// Writes `bytes` to `path` by writing a sibling and renaming it over: readers see the
/// old file or the new one, never a part.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), ContainerError> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_data()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(ContainerError::io("cannot write", path))
}

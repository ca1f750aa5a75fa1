//! The instance lock: an exclusive OFD lock on `FILE.lock`, held for the resolver's whole
//! life. The kernel drops it when the process dies, so the engine can probe liveness by
//! trying the same lock.
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

use crate::error::Error;

/// Proof that this process serves the network; the lock lasts as long as the value.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// The lock file for the records file at `records`: the same path with `.lock` appended.
pub fn lock_path(records: &Path) -> PathBuf {
    let mut name = OsString::from(records.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock, or returns `None` when another process holds it.
pub fn try_lock(path: &Path) -> Result<Option<InstanceLock>, Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(|source| Error::LockOpen {
            path: path.to_path_buf(),
            source,
        })?;
    let whole_file = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    match fcntl(&file, FcntlArg::F_OFD_SETLK(&whole_file)) {
        Ok(_) => Ok(Some(InstanceLock { _file: file })),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(None),
        Err(source) => Err(Error::Lock {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let dir = std::env::temp_dir().join(format!("bulwark-dns-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = lock_path(&dir.join("dns.json"));
        assert_eq!(path, dir.join("dns.json.lock"));
        let held = try_lock(&path).unwrap().expect("first lock");
        // OFD locks conflict between open file descriptions, even in one process.
        assert!(try_lock(&path).unwrap().is_none());
        drop(held);
        assert!(try_lock(&path).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

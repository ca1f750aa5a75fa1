//! Open file description locks (`F_OFD_SETLK`): held by an open file, released by the
//! kernel when its holder closes it or dies, so a killed `bulwark` or monitor never
//! leaves a container locked.
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg};

use crate::ContainerError;

/// Shared (readers) or exclusive (a writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

fn flock(kind: LockKind) -> libc::flock {
    libc::flock {
        l_type: match kind {
            LockKind::Shared => libc::F_RDLCK,
            LockKind::Exclusive => libc::F_WRLCK,
        } as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

fn open(path: &Path) -> Result<File, ContainerError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(ContainerError::io("cannot open the lock", path))
}

impl FileLock {
    /// Waits for the lock.
    pub fn wait(path: &Path, kind: LockKind) -> Result<FileLock, ContainerError> {
        let file = open(path)?;
        loop {
            match fcntl(&file, FcntlArg::F_OFD_SETLKW(&flock(kind))) {
                Ok(_) => return Ok(FileLock { file }),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(ContainerError::io("cannot lock", path)(
                        std::io::Error::from(e),
                    ))
                }
            }
        }
    }

    /// Takes the lock if no one holds it; `None` if someone does.
    pub fn try_take(path: &Path, kind: LockKind) -> Result<Option<FileLock>, ContainerError> {
        let file = open(path)?;
        match fcntl(&file, FcntlArg::F_OFD_SETLK(&flock(kind))) {
            Ok(_) => Ok(Some(FileLock { file })),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(None),
            Err(e) => Err(ContainerError::io("cannot lock", path)(
                std::io::Error::from(e),
            )),
        }
    }

    /// Whether someone holds a lock on `path` (a missing file: no one).
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = File::open(path) else {
            return false;
        };
        let mut probe = flock(LockKind::Shared);
        probe.l_type = libc::F_WRLCK as libc::c_short;
        fcntl(&file, FcntlArg::F_OFD_GETLK(&mut probe)).is_ok()
            && probe.l_type != libc::F_UNLCK as libc::c_short
    }

    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_excludes_another_and_goes_with_its_holder() {
        let dir = std::env::temp_dir().join(format!("bulwark-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        assert!(!FileLock::is_held(&path));
        let held = FileLock::try_take(&path, LockKind::Exclusive)
            .unwrap()
            .unwrap();
        assert!(FileLock::is_held(&path));
        assert!(FileLock::try_take(&path, LockKind::Shared)
            .unwrap()
            .is_none());
        drop(held);
        assert!(!FileLock::is_held(&path));
        let _a = FileLock::try_take(&path, LockKind::Shared)
            .unwrap()
            .unwrap();
        let _b = FileLock::try_take(&path, LockKind::Shared)
            .unwrap()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

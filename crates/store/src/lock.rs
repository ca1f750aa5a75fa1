//! Locks the kernel releases when their holder dies: `flock` on a file, held through an
//! open file description for as long as the lock value lives.
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use crate::StoreError;

/// A lock on a file (made if missing), exclusive or shared.
#[derive(Debug)]
pub struct StoreLock {
    _lock: Flock<OwnedFd>,
}

impl StoreLock {
    /// Waits for the lock.
    pub fn take(path: &Path) -> Result<StoreLock, StoreError> {
        let fd = open(path)?;
        let lock = Flock::lock(fd, FlockArg::LockExclusive).map_err(|(_, e)| {
            StoreError::io("cannot lock", path)(std::io::Error::from_raw_os_error(e as i32))
        })?;
        Ok(StoreLock { _lock: lock })
    }

    /// Waits for a shared hold of the lock (many may hold it; it keeps out
    /// [`StoreLock::try_take`]).
    pub fn shared(path: &Path) -> Result<StoreLock, StoreError> {
        let fd = open(path)?;
        let lock = Flock::lock(fd, FlockArg::LockShared).map_err(|(_, e)| {
            StoreError::io("cannot lock", path)(std::io::Error::from_raw_os_error(e as i32))
        })?;
        Ok(StoreLock { _lock: lock })
    }

    /// Takes the lock if nobody holds it.
    pub fn try_take(path: &Path) -> Result<Option<StoreLock>, StoreError> {
        let fd = open(path)?;
        match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(StoreLock { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(StoreError::io("cannot lock", path)(
                std::io::Error::from_raw_os_error(e as i32),
            )),
        }
    }
}

fn open(path: &Path) -> Result<OwnedFd, StoreError> {
    nix::fcntl::open(
        path,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| {
        StoreError::io("cannot open the lock", path)(std::io::Error::from_raw_os_error(e as i32))
    })
}

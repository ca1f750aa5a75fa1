//! The errors a resolver can stop with, each naming the file, field or address at fault.
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use nix::errno::Errno;
use thiserror::Error;

/// A records file that cannot be read or does not describe a network's names.
#[derive(Debug, Error)]
pub enum RecordsError {
    /// The file could not be opened or read.
    #[error("cannot read records file {path}: {source}")]
    Read {
        /// The records file.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// The file is not JSON of the expected shape.
    #[error("records file {path}: {field}: {message}")]
    Syntax {
        /// The records file.
        path: PathBuf,
        /// JSON path of the first bad field.
        field: String,
        /// What the JSON parser expected there.
        message: String,
    },
    /// A field holds a value the resolver cannot use.
    #[error("records file {path}: {field} {value:?} is not valid (expected {expected})")]
    Invalid {
        /// The records file.
        path: PathBuf,
        /// JSON path of the field, e.g. `records[2].names[0]`.
        field: String,
        /// The value found there.
        value: String,
        /// What the field must hold.
        expected: &'static str,
    },
}

/// Why a resolver stopped.
#[derive(Debug, Error)]
pub enum Error {
    /// The lock file next to the records file could not be opened or created.
    #[error("cannot open lock file {path}: {source}")]
    LockOpen {
        /// The lock file.
        path: PathBuf,
        /// Why opening failed.
        source: io::Error,
    },
    /// Trying the lock failed for a reason other than another holder.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The error from fcntl(F_OFD_SETLK).
        source: Errno,
    },
    /// The records file at start-up.
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// A listening socket could not be set up.
    #[error("cannot listen on {proto} {addr}: {source}")]
    Bind {
        /// `udp` or `tcp`.
        proto: &'static str,
        /// The address from the records file's `listen` and `port`.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },
    /// One step of giving up root failed.
    #[error("cannot drop privileges to uid/gid {id}: {step} failed: {source}")]
    DropPrivileges {
        /// The uid and gid switched to.
        id: u32,
        /// The call that failed.
        step: &'static str,
        /// The error it returned.
        source: Errno,
    },
    /// The records file cannot be read once root is given up.
    #[error(
        "after dropping privileges to uid {uid}: {source} (the records file and its \
         directories must be readable by others, e.g. mode 0644 in 0755 directories)"
    )]
    RecordsAsNobody {
        /// The uid the resolver now runs as.
        uid: u32,
        /// What went wrong reading the file.
        source: RecordsError,
    },
    /// A serving thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Spawn {
        /// Which thread.
        what: &'static str,
        /// The error from the thread builder.
        source: io::Error,
    },
}

//! bulwark-dns: the name resolver of one user-defined container network.
//!
//! The engine starts one `bulwark-dns --records FILE` per network. It answers the
//! containers' names from FILE (JSON the engine renames into place), forwards other
//! names to the upstreams named there, and exits when FILE is removed.
//!
//! Start-up is a short list of steps: take the instance lock, read the records, bind,
//! give up root, read the records again as `nobody`, serve.
#![forbid(unsafe_code)]

pub mod answer;
pub mod error;
pub mod forward;
pub mod live;
pub mod lock;
pub mod privileges;
pub mod records;
pub mod serve;

use std::path::Path;
use std::thread;
use std::time::Duration;

pub use error::{Error, RecordsError};

use live::LiveRecords;
use serve::Listeners;

/// How often the resolver checks that its records file still exists.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Why a resolver finished without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Another process holds the lock and serves this network.
    AlreadyServed,
    /// The records file was removed: the network is gone.
    RecordsRemoved,
}

/// Serves the network described by the records file at `records` until the file is
/// removed. Returns at once with [`Exit::AlreadyServed`] if another resolver holds
/// `FILE.lock`.
pub fn run(records: &Path) -> Result<Exit, Error> {
    let Some(_lock) = lock::try_lock(&lock::lock_path(records))? else {
        return Ok(Exit::AlreadyServed);
    };
    let listen = LiveRecords::open(records)?.current().listen();
    let listeners = Listeners::bind(listen)?;
    let dropped = privileges::drop_to_nobody()?;
    let live = LiveRecords::open(records).map_err(|source| match dropped {
        true => Error::RecordsAsNobody {
            uid: privileges::NOBODY,
            source,
        },
        false => Error::Records(source),
    })?;
    serve::start(listeners, live)?;
    while live::still_exists(records) {
        thread::sleep(WATCH_INTERVAL);
    }
    Ok(Exit::RecordsRemoved)
}

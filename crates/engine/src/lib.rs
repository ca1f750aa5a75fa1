//! The engine: what `bulwark` does, as library calls on one [`Engine`]. A front end (the
//! command line now, an API server later) parses its input, makes one call and shows the
//! result; it holds no logic of its own.
#![forbid(unsafe_code)]

mod archive;
mod config;
mod containers;
mod error;
mod images;
mod login;
mod mounts;
mod networks;
mod pull;
mod push;
mod save;
mod unpack;
pub mod userns;

pub use archive::{ArchiveFormat, Loaded};
pub use bulwark_network::{ports::PortMapping, NetworkRecord};
pub use bulwark_policy::DEFAULT as DEFAULT_PROFILE;
pub use bulwark_runtime::parse_signal;
pub use config::EngineConfig;
pub use containers::{human_duration, Booted, ContainerStats, UpdateRequest};
pub use networks::{NetworkCreateRequest, PREDEFINED as PREDEFINED_NETWORKS};

/// Re-executes this process from a sealed copy of its binary (see
/// `bulwark_runtime::seal`) before it joins a container.
pub fn seal_self(rootless: bool) -> Result<(), EngineError> {
    Ok(bulwark_runtime::seal::ensure_sealed(rootless)?)
}

/// A terminal's size (rows, columns), if `fd` is one.
pub fn window_size(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u16, u16)> {
    bulwark_sys::tty::window_size(fd).ok()
}
pub use bulwark_container::{
    logs::{Entry as LogEntry, LogFilter, Stream},
    Bind, Containers, HealthConfig, LogDriver, LogMode, LogOptions, NetworkSettings, Resources,
    RestartPolicy, Security, Status, Tmpfs,
};
pub use containers::{
    cap_name, Attach, Attachment, ContainerSummary, CopyEnd, CreateRequest, Created, Ended,
    EventFilter, ExecRequest, Execution, LogRequest, StartMode, Started,
};
pub use error::EngineError;
pub use images::{DiskUsage, ImageFilter, ImageSummary, Removed};
pub use login::{registry_of, DEFAULT_REGISTRY};
pub use pull::{PullEvent, Pulled};
pub use push::PushEvent;
pub use unpack::{unpack_layer_child, UNPACK_ROLE};

pub use bulwark_image::{Digest, ImageError, ImageName, Platform};
pub use bulwark_registry::Credentials;
pub use bulwark_store::{ImageRecord, MountRecord, Mounted, Overlay};

use bulwark_store::Store;

/// The engine over one store.
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    store: Store,
}

impl Engine {
    pub fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let store = Store::open(&config.store, config.rootless)?;
        Ok(Engine { config, store })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The image a user means: a name (`busybox`, `busybox:1`, `x@sha256:...`), a full
    /// id (`sha256:...`) or a prefix of at least 4 hex digits of one.
    pub fn resolve(&self, what: &str) -> Result<ImageRecord, EngineError> {
        let names = self.store.names()?;
        // A stored name found without building the reference regex (see lookup_key).
        if let Some(id) = ImageName::lookup_key(what).and_then(|key| names.tags.get(&key)) {
            return self.record(id, what);
        }
        let hex = what.strip_prefix("sha256:").unwrap_or(what);
        let looks_like_id = hex.len() >= 4
            && hex.len() <= 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if let Ok(name) = ImageName::parse(what) {
            let found = match name.digest() {
                Some(_) => names.digests.get(&name.canonical()),
                None => names.tags.get(&name.canonical()),
            };
            if let Some(id) = found {
                return self.record(id, what);
            }
        }
        if looks_like_id {
            let records = self.store.images()?;
            let matching: Vec<&ImageRecord> = records
                .iter()
                .filter(|r| r.id.hex().starts_with(hex))
                .collect();
            match matching.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                _ => return Err(EngineError::Ambiguous(what.to_owned())),
            }
        }
        Err(EngineError::NoSuchImage(display_missing(what)))
    }

    fn record(&self, id: &Digest, what: &str) -> Result<ImageRecord, EngineError> {
        self.store
            .image(id)?
            .ok_or_else(|| EngineError::NoSuchImage(display_missing(what)))
    }
}

/// How Docker names an image it cannot find: the name with its tag (`busybox:latest`).
fn display_missing(what: &str) -> String {
    match ImageName::parse(what) {
        Ok(name) if !what.starts_with("sha256:") => name.familiar(),
        _ => what.to_owned(),
    }
}

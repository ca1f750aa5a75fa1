//! Containers: `create`, `start`, `stop`, `rm`, `ps`, `logs`, `exec` and the rest, as
//! calls on [`Engine`]. A container's processes are looked after by its own monitor
//! (`bulwark-mon`); the engine keeps no process of its own.
mod attach;
mod copy;
mod create;
mod events;
mod exec;
mod lifecycle;
mod manage;
mod query;
mod spec;

pub use attach::Attachment;
pub use copy::CopyEnd;
pub(crate) use create::random_hex;
pub use create::{CreateRequest, Created};
pub use events::EventFilter;
pub use exec::{ExecRequest, Execution};
pub use lifecycle::{Attach, Ended, StartMode, Started};
pub use manage::{Booted, ContainerStats, UpdateRequest};
pub use query::{human_duration, ContainerSummary, LogRequest};
pub use spec::cap_name;

use bulwark_container::{ContainerDir, Containers};
use bulwark_runtime::StateRoot;

use crate::{Engine, EngineError};

impl Engine {
    /// Every container's directory.
    pub fn containers(&self) -> Containers {
        Containers::new(self.store.root().join("containers"))
    }

    /// The container a user means (name, id or id prefix).
    pub fn container(&self, what: &str) -> Result<ContainerDir, EngineError> {
        Ok(self.containers().find(what)?)
    }

    /// Finishes what killed commands left: containers half made by `create` go, with
    /// their root filesystems and names; names of containers half removed by `rm` go.
    pub fn reconcile_containers(&self) {
        let containers = self.containers();
        for dir in containers.half_made() {
            let name = dir.record().map(|r| r.name).unwrap_or_default();
            self.discard(&dir, &name);
        }
        containers.release_orphaned_names();
    }

    /// Records an event for `events`, with the container's name and image.
    pub(crate) fn event(&self, action: &str, dir: &ContainerDir, extra: &[(&str, &str)]) {
        if let Ok(record) = dir.record() {
            bulwark_container::events::record_for(dir, &record, action, extra);
        }
    }

    /// The runtime's state directory for the engine's containers.
    pub(crate) fn runtime_root(&self) -> StateRoot {
        StateRoot::new(self.config.runtime_root.join("runtime"))
    }
}

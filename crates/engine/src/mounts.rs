//! Root filesystems for containers: an overlay of an image's layers with an upper and a
//! work directory of its own. The container issue makes and removes them through these
//! calls; `bulwark image mount` and `umount` expose them.
use std::io::Read;

use bulwark_store::{MountRecord, Mounted, Overlay};

use crate::{Engine, EngineError};

impl Engine {
    /// Makes and mounts a root filesystem of `image` named `name` (a random name when
    /// none is given).
    pub fn mount(
        &self,
        image: &str,
        name: Option<&str>,
        overlay: Overlay,
    ) -> Result<Mounted, EngineError> {
        let record = self.resolve(image)?;
        let name = match name {
            Some(name) => name.to_owned(),
            None => random_name()?,
        };
        let _lock = self.store.lock()?;
        Ok(self.store.mount(&name, &record, overlay)?)
    }

    /// Unmounts and removes the root filesystem `name`, its changes with it.
    pub fn umount(&self, name: &str) -> Result<MountRecord, EngineError> {
        let _lock = self.store.lock()?;
        Ok(self.store.umount(name)?)
    }

    /// Every root filesystem made.
    pub fn mounts(&self) -> Result<Vec<MountRecord>, EngineError> {
        Ok(self.store.mounts()?)
    }
}

/// 12 random hex digits, as Docker's short ids look.
fn random_name() -> Result<String, EngineError> {
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| EngineError::Other(format!("reading /dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

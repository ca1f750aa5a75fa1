//! Layers unpacked once per chain id and shared by every image that has them. A layer is
//! unpacked into `layers/.tmp-*` and renamed into place with its record, under a lock per
//! chain id: two pulls of images with a shared layer never unpack it twice, and a killed
//! unpack leaves only the temporary directory, removed by the next command.
use std::path::{Path, PathBuf};

use bulwark_image::Digest;

use crate::fsutil::{read_json, sync_dir, write_json};
use crate::lock::StoreLock;
use crate::{Store, StoreError};

/// A layer's tar split, beside its `diff/`.
const TAR_SPLIT: &str = "tar-split.zst";

/// `layers/<chain id>/layer.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    pub format: u32,
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// The name under `layers/l/` that overlayfs's lowerdir uses.
    pub short: String,
}

/// The chain ids of a stack of layers: the first is its diff id, each next one the
/// digest of `"<parent chain id> <diff id>"`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

impl Store {
    fn layer_home(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    /// The unpacked layer's directory.
    /// The tar split of the layer (see `bulwark_layer::split`): with the layer's
    /// directory, its exact tar.
    pub fn tar_split(&self, chain_id: &Digest) -> PathBuf {
        self.layer_home(chain_id).join(TAR_SPLIT)
    }

    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layer_home(chain_id).join("diff")
    }

    /// The short path overlayfs gets for the layer, relative to `layers/`.
    pub fn layer_short(&self, record: &LayerRecord) -> PathBuf {
        Path::new("l").join(&record.short)
    }

    pub fn layer(&self, chain_id: &Digest) -> Result<Option<LayerRecord>, StoreError> {
        read_json(&self.layer_home(chain_id).join("layer.json"))
    }

    /// All unpacked layers' chain ids.
    pub fn layer_ids(&self) -> Result<Vec<Digest>, StoreError> {
        let dir = self.root.join("layers");
        let entries = std::fs::read_dir(&dir).map_err(StoreError::io("cannot read", &dir))?;
        Ok(entries
            .flatten()
            .filter_map(|e| {
                Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy())).ok()
            })
            .collect())
    }

    /// Makes the layer `chain_id` unless it exists: `unpack` fills the new layer's
    /// directory and writes its tar split (the two paths it gets), and returns the bytes
    /// of its files. See [`Store::layer_slot`].
    pub fn make_layer(
        &self,
        chain_id: &Digest,
        diff_id: &Digest,
        parent: Option<&Digest>,
        unpack: impl FnOnce(&Path, &Path) -> Result<u64, StoreError>,
    ) -> Result<LayerRecord, StoreError> {
        let Some(slot) = self.layer_slot(chain_id)? else {
            return self.layer(chain_id)?.ok_or_else(|| StoreError::Layer {
                digest: chain_id.to_string(),
                reason: "it was made, then removed at once".into(),
            });
        };
        let size = unpack(slot.diff(), &slot.tar_split())?;
        slot.commit(diff_id, parent, size)
    }

    /// The place to make the layer `chain_id` in, or `None` when it exists. One process
    /// makes a chain id at a time: this waits while another does, and then finds its
    /// layer. The slot is a temporary directory until [`LayerSlot::commit`]; dropped, it
    /// is removed.
    pub fn layer_slot(&self, chain_id: &Digest) -> Result<Option<LayerSlot>, StoreError> {
        if self.layer(chain_id)?.is_some() {
            return Ok(None);
        }
        let layers = self.root.join("layers");
        let lock_path = layers.join(format!("{}.lock", chain_id.hex()));
        let lock = StoreLock::take(&lock_path)?;
        if self.layer(chain_id)?.is_some() {
            return Ok(None);
        }
        let tmp = layers.join(format!(".tmp-{}-{}", chain_id.hex(), std::process::id()));
        remove_dir(&tmp)?;
        std::fs::create_dir(&tmp).map_err(StoreError::io("cannot make", &tmp))?;
        let diff = tmp.join("diff");
        std::fs::create_dir(&diff).map_err(StoreError::io("cannot make", &diff))?;
        Ok(Some(LayerSlot {
            store: self.clone(),
            chain_id: chain_id.clone(),
            tmp,
            diff,
            lock_path,
            _lock: lock,
            committed: false,
        }))
    }

    /// Removes an unpacked layer (nothing may use it).
    pub fn remove_layer(&self, chain_id: &Digest) -> Result<u64, StoreError> {
        let home = self.layer_home(chain_id);
        let size = crate::fsutil::disk_usage(&home);
        if let Some(record) = self.layer(chain_id)? {
            let _ = std::fs::remove_file(self.root.join("layers/l").join(&record.short));
        }
        remove_dir(&home)?;
        let _ = std::fs::remove_file(
            self.root
                .join("layers")
                .join(format!("{}.lock", chain_id.hex())),
        );
        Ok(size)
    }
}

/// Removes a directory tree without following symlinks; fine if it is not there.
pub(crate) fn remove_dir(path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    let dir = match std::fs::File::open(parent) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("cannot open", parent)(e)),
    };
    match bulwark_layer::apply::remove_tree(&dir, name) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(StoreError::io("cannot remove", path)(
            std::io::Error::from_raw_os_error(e.raw_os_error()),
        )),
    }
}

/// Removes layers killed unpacks left (`.tmp-<chain id>-<pid>`), once no live process
/// holds that chain id's lock.
pub(crate) fn clean_tmp(layers: &Path) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(layers).map_err(StoreError::io("cannot read", layers))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".tmp-") else {
            continue;
        };
        let hex = rest.split('-').next().unwrap_or_default();
        let Some(_held) = StoreLock::try_take(&layers.join(format!("{hex}.lock")))? else {
            continue;
        };
        remove_dir(&entry.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}

/// A layer being made (see [`Store::layer_slot`]).
#[derive(Debug)]
pub struct LayerSlot {
    store: Store,
    chain_id: Digest,
    tmp: PathBuf,
    diff: PathBuf,
    lock_path: PathBuf,
    _lock: StoreLock,
    committed: bool,
}

impl LayerSlot {
    /// The layer's directory to fill.
    pub fn diff(&self) -> &Path {
        &self.diff
    }

    /// Where its tar split goes.
    pub fn tar_split(&self) -> PathBuf {
        self.tmp.join(TAR_SPLIT)
    }

    /// Records the layer (`size`: bytes of its files) and renames it into place.
    pub fn commit(
        mut self,
        diff_id: &Digest,
        parent: Option<&Digest>,
        size: u64,
    ) -> Result<LayerRecord, StoreError> {
        let chain_id = self.chain_id.clone();
        let record = LayerRecord {
            format: 1,
            chain_id: chain_id.clone(),
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            size,
            short: chain_id.hex()[..16].to_owned(),
        };
        write_json(&self.tmp.join("layer.json"), &record)?;
        let home = self.store.layer_home(&chain_id);
        if let Err(e) = std::fs::rename(&self.tmp, &home) {
            // Made meanwhile by a process that took the lock's unlinked file: use it.
            return match self.store.layer(&chain_id)? {
                Some(made) => Ok(made),
                None => Err(StoreError::io("cannot rename into place", &home)(e)),
            };
        }
        self.committed = true;
        let layers = self.store.root.join("layers");
        let link = layers.join("l").join(&record.short);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(Path::new("..").join(chain_id.hex()).join("diff"), &link)
            .map_err(StoreError::io("cannot link", &link))?;
        sync_dir(&layers)?;
        Ok(record)
    }
}

impl Drop for LayerSlot {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove_dir(&self.tmp);
            // A waiter may hold the unlinked file's lock; it finds no layer and makes it
            // itself, and if two ever finish, the second keeps the first's (commit).
            let _ = std::fs::remove_file(&self.lock_path);
        }
    }
}

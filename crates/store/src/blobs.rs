//! The content store: blobs by digest (manifests, indexes, configs, a loaded archive's
//! layers), each checked before it is written whole and renamed into place, so nothing
//! partial is ever visible under `blobs/`.
use std::fs::File;
use std::path::{Path, PathBuf};

use bulwark_image::Digest;

use crate::fsutil::write_atomic;
use crate::lock::StoreLock;
use crate::{Store, StoreError};

impl Store {
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A small blob (manifest, index, config), read whole and checked again.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(StoreError::io("cannot read blob", &path))?;
        if Digest::of(&bytes) != *digest {
            return Err(StoreError::Damaged {
                path,
                reason: format!("its content is not {digest}"),
            });
        }
        Ok(bytes)
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(StoreError::io("cannot open blob", &path))
    }

    /// Stores bytes already in memory (a manifest or config that was checked); returns
    /// their digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if !self.has_blob(&digest) {
            write_atomic(&self.blob_path(&digest), bytes)?;
        }
        Ok(digest)
    }
}

/// Removes what killed writers left in `ingest/`: partial blobs whose lock no live
/// process holds.
pub(crate) fn clean_ingest(dir: &Path) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(StoreError::io("cannot read", dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(hex) = name.strip_suffix(".lock") else {
            continue;
        };
        let Some(_held) = StoreLock::try_take(&entry.path())? else {
            continue;
        };
        // A partial blob, or the directory a load extracts its archive into.
        let partial = dir.join(format!("{hex}.partial"));
        if partial.is_dir() {
            crate::layers::remove_dir(&partial)?;
        } else {
            let _ = std::fs::remove_file(&partial);
        }
        let _ = std::fs::remove_file(entry.path());
    }
    Ok(())
}

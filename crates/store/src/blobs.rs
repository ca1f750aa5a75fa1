//! The content store: blobs by digest, each checked against its digest and size before it
//! is renamed into place, so nothing partial is ever visible under `blobs/`.
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use bulwark_image::{Digest, Digester};

use crate::fsutil::{sync_dir, write_atomic};
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

    /// Starts writing the blob `digest` (of `size` bytes, when known). `None` when the
    /// store has it already. While another process writes the same blob this waits for
    /// it, and then uses its result.
    pub fn ingest(&self, digest: &Digest, size: Option<u64>) -> Result<Option<Ingest>, StoreError> {
        if self.has_blob(digest) {
            return Ok(None);
        }
        let dir = self.root.join("ingest");
        let lock = StoreLock::take(&dir.join(format!("{}.lock", digest.hex())))?;
        if self.has_blob(digest) {
            return Ok(None);
        }
        let partial = dir.join(format!("{}.partial", digest.hex()));
        let file = File::create(&partial).map_err(StoreError::io("cannot write", &partial))?;
        Ok(Some(Ingest {
            _lock: lock,
            file,
            partial,
            target: self.blob_path(digest),
            expected: digest.clone(),
            size,
            digester: Digester::new(),
            committed: false,
        }))
    }
}

/// A blob being written. It lands under its digest on [`Ingest::commit`] if and only if
/// its content has that digest and size; dropped otherwise, it leaves nothing.
#[derive(Debug)]
pub struct Ingest {
    _lock: StoreLock,
    file: File,
    partial: PathBuf,
    target: PathBuf,
    expected: Digest,
    size: Option<u64>,
    digester: Digester,
    committed: bool,
}

impl Ingest {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.digester.len()
    }

    pub fn digest(&self) -> &Digest {
        &self.expected
    }

    /// Checks the content, syncs it and renames it into place.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let blob = |reason: String| StoreError::Blob {
            digest: self.expected.to_string(),
            reason,
        };
        if let Some(size) = self.size {
            if self.digester.len() != size {
                return Err(blob(format!(
                    "the registry sent {} bytes where the manifest says {size}: truncated or padded",
                    self.digester.len()
                )));
            }
        }
        let actual = std::mem::take(&mut self.digester).finish();
        if actual != self.expected {
            return Err(blob(format!(
                "the content received has digest {actual}: it does not match"
            )));
        }
        self.file
            .sync_all()
            .map_err(StoreError::io("cannot sync", &self.partial))?;
        std::fs::rename(&self.partial, &self.target)
            .map_err(StoreError::io("cannot rename into place", &self.target))?;
        self.committed = true;
        sync_dir(self.target.parent().unwrap_or(Path::new("/")))
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(size) = self.size {
            if self.digester.len() + buf.len() as u64 > size {
                return Err(std::io::Error::other(format!(
                    "blob {}: the registry sent more than the {size} bytes the manifest says",
                    self.expected
                )));
            }
        }
        let n = self.file.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.partial);
        }
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

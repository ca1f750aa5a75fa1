//! bulwark's image store, on disk under one root (`/var/lib/bulwark`, or
//! `$XDG_DATA_HOME/bulwark` without root):
//!
//! ```text
//! blobs/sha256/<hex>      content: manifests, indexes, configs, compressed layers
//! ingest/<name>.partial   a scratch directory (an archive being loaded, a push's new
//!                         blobs), with <name>.lock held by its user
//! layers/<chain id hex>/  a layer unpacked once per chain id: diff/ and layer.json
//! layers/l/<short>        short names for overlayfs's lowerdir option
//! layers/.tmp-*           a layer being unpacked
//! images/<id hex>.json    one record per image (its config digest is its id)
//! names.json              tags and digests -> image ids
//! mounts/<name>/          container root filesystems: upper/, work/, merged/, mount.json
//! lock                    held while names or records change
//! gc.lock                 shared by pulls, loads and pushes in progress; the collector
//!                         runs only when it can take it alone
//! ```
//!
//! Every file is written whole to a temporary name, synced and renamed, so a reader sees
//! the old or the new version; a process killed at any point leaves only temporary names,
//! which the next command that takes the store lock removes (once no live process holds
//! their lock). Nothing is visible as an image until all its layers are unpacked and its
//! record is in place. Garbage is found by following references from the records and the
//! mounts, never by guessing.
#![forbid(unsafe_code)]

mod blobs;
mod error;
mod fsutil;
mod gc;
mod images;
mod layers;
mod lock;
mod mounts;
mod names;

pub use error::StoreError;
pub use gc::Reclaimed;
pub use images::{now, ImageRecord, RECORD_FORMAT};
pub use layers::{chain_ids, LayerRecord, LayerSlot};
pub use lock::StoreLock;
pub use mounts::{upper_usage, MountRecord, Mounted, Overlay};
pub use names::Names;

use std::path::{Path, PathBuf};

/// Removes a directory tree without following symlinks; fine if it is not there.
pub fn remove_tree(path: &Path) -> Result<(), StoreError> {
    layers::remove_dir(path)
}

/// An opened store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// overlayfs xattrs in the `user.` namespace (a store of a user without root).
    rootless: bool,
}

impl Store {
    /// Opens (making it if needed) the store at `root`. The root and its directories are
    /// the caller's alone (0700).
    pub fn open(root: impl Into<PathBuf>, rootless: bool) -> Result<Store, StoreError> {
        let root = root.into();
        for dir in ["", "blobs/sha256", "ingest", "layers/l", "images", "mounts"] {
            let path = root.join(dir);
            fsutil::make_private_dir(&path)?;
        }
        // The lock files are part of the skeleton, so a command that only takes a lock
        // leaves the store as it found it.
        for lock in ["lock", "gc.lock"] {
            let path = root.join(lock);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(StoreError::io("cannot make", &path))?;
        }
        Ok(Store { root, rootless })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn rootless(&self) -> bool {
        self.rootless
    }

    /// Takes the store lock (blocking) and removes what killed or failed commands left:
    /// partial downloads and unpacks, and blobs and layers no record names (unless a
    /// pull in progress may still name them).
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        let lock = StoreLock::take(&self.root.join("lock"))?;
        self.clean_leftovers()?;
        Ok(lock)
    }

    /// A scratch directory of this store's temporary space, locked while its value
    /// lives and removed by the next command that takes the store lock after that.
    pub fn scratch(&self, name: &str) -> Result<(StoreLock, PathBuf), StoreError> {
        let ingest = self.root.join("ingest");
        let lock = StoreLock::take(&ingest.join(format!("{name}.lock")))?;
        let dir = ingest.join(format!("{name}.partial"));
        crate::layers::remove_dir(&dir)?;
        fsutil::make_private_dir(&dir)?;
        Ok((lock, dir))
    }

    /// Keeps the collector away while held: a pull, load or push holds it from its first
    /// blob to its record, since what it has written is referenced by nothing until then.
    pub fn pin(&self) -> Result<StoreLock, StoreError> {
        StoreLock::shared(&self.root.join("gc.lock"))
    }

    /// Flushes the store's filesystem, so that the layers a record is about to name are on
    /// disk before it (one `syncfs` rather than an fsync per unpacked file).
    pub fn sync(&self) -> Result<(), StoreError> {
        let dir =
            std::fs::File::open(&self.root).map_err(StoreError::io("cannot open", &self.root))?;
        nix::unistd::syncfs(&dir).map_err(|e| StoreError::io("cannot sync", &self.root)(e.into()))
    }

    fn clean_leftovers(&self) -> Result<(), StoreError> {
        blobs::clean_ingest(&self.root.join("ingest"))?;
        layers::clean_tmp(&self.root.join("layers"))?;
        self.collect()?;
        Ok(())
    }
}

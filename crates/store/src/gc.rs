//! Removing what nothing references: blobs no image record names (and the blobs of
//! layers that are unpacked), layers no record or root filesystem stacks. Live content is found by following references from the
//! records and the mounts, never by guessing from names or times.
use std::collections::HashSet;

use bulwark_image::Digest;

use crate::{Store, StoreError};

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reclaimed {
    pub blobs: Vec<Digest>,
    pub layers: Vec<Digest>,
    /// Bytes freed on disk.
    pub bytes: u64,
}

impl Store {
    /// Removes every blob and layer nothing references. The caller holds the store lock
    /// (records and mounts do not change meanwhile); pulls in progress pin what they
    /// have written ([`Store::pin`]), and while any does, nothing is collected: the next
    /// command that takes the store lock does it.
    pub fn collect(&self) -> Result<Reclaimed, StoreError> {
        let Some(_alone) = crate::StoreLock::try_take(&self.root.join("gc.lock"))? else {
            return Ok(Reclaimed::default());
        };
        let records = self.images()?;
        let mut live_blobs: HashSet<Digest> = HashSet::new();
        let mut live_layers: HashSet<Digest> = HashSet::new();
        for record in &records {
            live_blobs.extend([record.id.clone(), record.manifest.clone()]);
            live_blobs.extend(record.index.iter().cloned());
            // A layer's blob is needed only until the layer is unpacked: from then on its
            // directory and tar split give the tar back (see bulwark_layer::split).
            for (layer, chain_id) in record.layers.iter().zip(&record.chain_ids) {
                if self.layer(chain_id)?.is_none() {
                    live_blobs.insert(layer.blob.clone());
                }
            }
            live_layers.extend(record.chain_ids.iter().cloned());
        }
        for mount in self.mounts()? {
            live_layers.extend(mount.chain_ids);
        }
        let mut reclaimed = Reclaimed::default();
        let dir = self.root.join("blobs/sha256");
        let entries = std::fs::read_dir(&dir).map_err(StoreError::io("cannot read", &dir))?;
        for entry in entries.flatten() {
            let Ok(digest) =
                Digest::parse(&format!("sha256:{}", entry.file_name().to_string_lossy()))
            else {
                continue;
            };
            if live_blobs.contains(&digest) {
                continue;
            }
            reclaimed.bytes += crate::fsutil::disk_usage(&entry.path());
            std::fs::remove_file(entry.path())
                .map_err(StoreError::io("cannot remove", entry.path()))?;
            reclaimed.blobs.push(digest);
        }
        for chain_id in self.layer_ids()? {
            if !live_layers.contains(&chain_id) {
                reclaimed.bytes += self.remove_layer(&chain_id)?;
                reclaimed.layers.push(chain_id);
            }
        }
        Ok(reclaimed)
    }
}

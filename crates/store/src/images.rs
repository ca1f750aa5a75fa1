//! Image records: one file per image, named by its id (the digest of its config).
use std::path::PathBuf;

use bulwark_image::manifest::Layer;
use bulwark_image::{Digest, Platform};

use crate::fsutil::{read_json, write_json};
use crate::{Store, StoreError};

/// The version of [`ImageRecord`]'s format.
pub const RECORD_FORMAT: u32 = 1;

/// What the store knows of one image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    pub format: u32,
    /// The config's digest.
    pub id: Digest,
    /// The image manifest's digest and media type.
    pub manifest: Digest,
    pub manifest_media_type: String,
    /// The index (or manifest list) it was chosen from, when it came through one: that is
    /// the digest a registry names the image by.
    pub index: Option<Digest>,
    pub platform: Platform,
    pub layers: Vec<Layer>,
    pub chain_ids: Vec<Digest>,
    /// Bytes of the uncompressed layers.
    pub size: u64,
    /// When it was stored (RFC 3339).
    pub stored: String,
    /// When a name last moved to it (RFC 3339).
    pub last_tag_time: Option<String>,
}

impl Store {
    fn record_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    /// Writes an image's record (after every blob and layer it names is in place).
    pub fn put_image(&self, record: &ImageRecord) -> Result<(), StoreError> {
        write_json(&self.record_path(&record.id), record)
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        read_json(&self.record_path(id))
    }

    /// Every image record, newest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let dir = self.root.join("images");
        let entries = std::fs::read_dir(&dir).map_err(StoreError::io("cannot read", &dir))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".json") else {
                continue;
            };
            let Ok(id) = Digest::parse(&format!("sha256:{hex}")) else {
                continue;
            };
            if let Some(record) = self.image(&id)? {
                out.push(record);
            }
        }
        out.sort_by(|a, b| b.stored.cmp(&a.stored).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub fn remove_image_record(&self, id: &Digest) -> Result<(), StoreError> {
        let path = self.record_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("cannot remove", &path)(e)),
        }
    }
}

/// Now, as records store it.
pub fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

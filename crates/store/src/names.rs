//! `names.json`: tags (`docker.io/library/busybox:latest`) and digest references
//! (`docker.io/library/busybox@sha256:...`) -> image ids. Changed only under the store
//! lock, written whole and renamed.
use std::collections::BTreeMap;

use bulwark_image::Digest;

use crate::fsutil::{read_json, write_json};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Names {
    pub format: u32,
    pub tags: BTreeMap<String, Digest>,
    pub digests: BTreeMap<String, Digest>,
}

impl Names {
    /// The names of image `id`: tags, then digest references.
    pub fn of(&self, id: &Digest) -> (Vec<String>, Vec<String>) {
        let pick = |map: &BTreeMap<String, Digest>| {
            map.iter()
                .filter(|(_, v)| *v == id)
                .map(|(k, _)| k.clone())
                .collect()
        };
        (pick(&self.tags), pick(&self.digests))
    }

    /// Whether anything names image `id`.
    pub fn names(&self, id: &Digest) -> bool {
        self.tags
            .values()
            .chain(self.digests.values())
            .any(|v| v == id)
    }
}

impl Store {
    pub fn names(&self) -> Result<Names, StoreError> {
        Ok(read_json(&self.root.join("names.json"))?.unwrap_or(Names {
            format: 1,
            ..Names::default()
        }))
    }

    /// Writes the names (the caller holds the store lock).
    pub fn put_names(&self, names: &Names) -> Result<(), StoreError> {
        write_json(&self.root.join("names.json"), names)
    }
}

//! `save`: images as one tar. Both formats hold an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/`) with each layer as its uncompressed tar, played back
//! from the store and checked against its diff id; a docker-archive adds Docker's
//! `manifest.json` and `repositories`, as Docker 25 and later write it. The images' ids
//! (their configs) are kept; the manifests written are new ones over the uncompressed
//! layers.
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use bulwark_image::manifest::{self, Compression};
use bulwark_image::{Digest, ImageName};
use bulwark_layer::LayerTar;
use bulwark_store::ImageRecord;
use serde_json::{json, Value};

use crate::archive::{archive_error, ArchiveFormat};
use crate::{Engine, EngineError};

struct TarOut<W: Write> {
    builder: tar::Builder<W>,
    written: BTreeSet<String>,
}

impl<W: Write> TarOut<W> {
    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<(), EngineError> {
        self.reader(path, bytes.len() as u64, bytes)
    }

    fn reader(&mut self, path: &str, size: u64, data: impl Read) -> Result<(), EngineError> {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        self.builder
            .append_data(&mut header, path, data)
            .map_err(|e| archive_error(path, e))
    }

    /// `blobs/sha256/<hex>` once per archive; `data` makes the content when needed.
    fn blob(
        &mut self,
        digest: &Digest,
        data: impl FnOnce(&mut Self) -> Result<(), EngineError>,
    ) -> Result<String, EngineError> {
        let path = format!("blobs/sha256/{}", digest.hex());
        if self.written.insert(path.clone()) {
            data(self)?;
        }
        Ok(path)
    }
}

impl Engine {
    /// The tar of the layer `index` of `record`, played back from the store.
    pub(crate) fn layer_tar(
        &self,
        record: &ImageRecord,
        index: usize,
    ) -> Result<LayerTar, EngineError> {
        let chain_id = &record.chain_ids[index];
        let diff_id = &record.layers[index].diff_id;
        LayerTar::open(
            &self.store.layer_dir(chain_id),
            &self.store.tar_split(chain_id),
            diff_id,
        )
        .map_err(|e| archive_error(format!("layer {diff_id}"), e))
    }

    /// Writes the images `what` (names or ids) to `out` as one archive.
    pub fn save(
        &self,
        what: &[String],
        format: ArchiveFormat,
        out: impl Write,
    ) -> Result<(), EngineError> {
        let names = self.store.names()?;
        let mut images: Vec<(ImageRecord, Vec<String>)> = Vec::new();
        for item in what {
            let record = self.resolve(item)?;
            let tags: Vec<String> = match ImageName::parse(item) {
                Ok(name)
                    if name.digest().is_none()
                        && !item.starts_with("sha256:")
                        && names.tags.contains_key(&name.canonical()) =>
                {
                    vec![name.canonical()]
                }
                _ => names.of(&record.id).0,
            };
            match images.iter_mut().find(|(r, _)| r.id == record.id) {
                Some((_, t)) => t.extend(tags),
                None => images.push((record, tags)),
            }
        }
        // Pinned, so that an rmi meanwhile cannot take the layers being read.
        let _pin = self.store.pin()?;
        let mut tar = TarOut {
            builder: tar::Builder::new(out),
            written: BTreeSet::new(),
        };
        let mut index_entries = Vec::new();
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (record, tags) in &images {
            let (manifest_digest, manifest_len, layer_paths) = self.save_image(record, &mut tar)?;
            let names: Vec<ImageName> = tags
                .iter()
                .filter_map(|t| ImageName::parse(t).ok())
                .collect();
            let descriptor = |name: Option<&ImageName>| {
                let mut d = json!({
                    "mediaType": manifest::OCI_MANIFEST,
                    "digest": manifest_digest,
                    "size": manifest_len,
                    "platform": {"os": record.platform.os, "architecture": record.platform.architecture},
                });
                if let Some(name) = name {
                    d["annotations"] = json!({
                        "io.containerd.image.name": name.canonical(),
                        "org.opencontainers.image.ref.name": name.tag().unwrap_or("latest"),
                    });
                }
                d
            };
            if names.is_empty() {
                index_entries.push(descriptor(None));
            }
            index_entries.extend(names.iter().map(|n| descriptor(Some(n))));
            for name in &names {
                if let (Some(tag), Some(top)) = (name.tag(), record.layers.last()) {
                    repositories
                        .entry(name.familiar_repository())
                        .or_default()
                        .insert(tag.to_owned(), top.diff_id.hex().to_owned());
                }
            }
            let familiar: Vec<String> = names.iter().map(ImageName::familiar).collect();
            docker_manifest.push(json!({
                "Config": format!("blobs/sha256/{}", record.id.hex()),
                "RepoTags": if familiar.is_empty() { Value::Null } else { json!(familiar) },
                "Layers": layer_paths,
            }));
        }
        tar.file("oci-layout", br#"{"imageLayoutVersion": "1.0.0"}"#)?;
        let index = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": index_entries});
        tar.file("index.json", index.to_string().as_bytes())?;
        if format == ArchiveFormat::Docker {
            tar.file(
                "manifest.json",
                format!("{}\n", Value::Array(docker_manifest)).as_bytes(),
            )?;
            tar.file(
                "repositories",
                serde_json::to_string(&repositories)
                    .expect("a map")
                    .as_bytes(),
            )?;
        }
        tar.builder
            .into_inner()
            .map_err(|e| archive_error("the archive", e))?
            .flush()
            .map_err(|e| archive_error("the archive", e))
    }

    /// Writes one image's config, layers and a manifest over them; returns the manifest's
    /// digest and size and the layers' paths.
    fn save_image<W: Write>(
        &self,
        record: &ImageRecord,
        tar: &mut TarOut<W>,
    ) -> Result<(Digest, usize, Vec<String>), EngineError> {
        let config = self.store.read_blob(&record.id)?;
        tar.blob(&record.id, |t| {
            t.file(&format!("blobs/sha256/{}", record.id.hex()), &config)
        })?;
        let mut layer_paths = Vec::new();
        let mut descriptors = Vec::new();
        for (i, layer) in record.layers.iter().enumerate() {
            let played = self.layer_tar(record, i)?;
            let size = played.size();
            let path = tar.blob(&layer.diff_id, |t| {
                t.reader(
                    &format!("blobs/sha256/{}", layer.diff_id.hex()),
                    size,
                    played,
                )
            })?;
            descriptors.push(json!({"mediaType": Compression::None.oci_media_type(), "digest": layer.diff_id, "size": size}));
            layer_paths.push(path);
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": record.id, "size": config.len()},
            "layers": descriptors,
        })
        .to_string();
        let digest = Digest::of(manifest.as_bytes());
        tar.blob(&digest, |t| {
            t.file(
                &format!("blobs/sha256/{}", digest.hex()),
                manifest.as_bytes(),
            )
        })?;
        Ok((digest, manifest.len(), layer_paths))
    }
}

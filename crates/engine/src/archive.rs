//! `load`: docker-archive and OCI-archive tars (gzip or not, from `bulwark save`, Docker,
//! Podman or skopeo). Every blob is checked, and the images are stored as a pull stores
//! them: layers unpacked in the sandbox, records and names last.
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bulwark_image::manifest::{self, Compression, Layer, Manifest};
use bulwark_image::{Digest, ImageName};
use bulwark_store::{chain_ids, ImageRecord, RECORD_FORMAT};

use crate::{Engine, EngineError};

/// The two archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Docker,
    Oci,
}

/// What `load` stored.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Familiar names given to loaded images.
    pub names: Vec<String>,
    /// Images loaded without a name.
    pub untagged: Vec<Digest>,
}

pub(crate) fn archive_error(
    what: impl Into<String>,
    reason: impl std::fmt::Display,
) -> EngineError {
    EngineError::Archive {
        what: what.into(),
        reason: reason.to_string(),
    }
}

impl Engine {
    /// Loads every image of a docker-archive or OCI-archive tar (gzip or not) from `input`.
    pub fn load(&self, input: impl Read) -> Result<Loaded, EngineError> {
        let loaded = {
            let _pin = self.store.pin()?;
            let (_scratch, dir) = self
                .store
                .scratch(&format!("load-{}", std::process::id()))?;
            let loaded = self.extract_archive(input, &dir).and_then(|()| {
                if dir.join("manifest.json").is_file() {
                    self.load_docker(&dir)
                } else if dir.join("index.json").is_file() {
                    self.load_oci(&dir)
                } else {
                    Err(archive_error(
                        "the archive",
                        "it has neither manifest.json (docker-archive) nor index.json (OCI)",
                    ))
                }
            });
            let _ = bulwark_store::remove_tree(&dir);
            loaded
        };
        // What a failed load stored and no record names goes now, as do the blobs of the
        // layers it unpacked; the load's own error comes first.
        let cleaned = self.store.lock();
        let loaded = loaded?;
        cleaned?;
        Ok(loaded)
    }

    /// Regular files of the archive under `dir`; names must be plain relative paths.
    fn extract_archive(&self, input: impl Read, dir: &Path) -> Result<(), EngineError> {
        let mut head = [0u8; 4];
        let mut input = std::io::BufReader::new(input);
        let peeked = {
            use std::io::BufRead;
            let buf = input
                .fill_buf()
                .map_err(|e| archive_error("the archive", e))?;
            let n = buf.len().min(4);
            head[..n].copy_from_slice(&buf[..n]);
            n
        };
        let reader: Box<dyn Read> = match Compression::sniff(&head[..peeked]) {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            _ => Box::new(input),
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive
            .entries()
            .map_err(|e| archive_error("the archive", e))?
        {
            let mut entry = entry.map_err(|e| archive_error("the archive", e))?;
            let path = entry
                .path()
                .map_err(|e| archive_error("the archive", e))?
                .into_owned();
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            if path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(archive_error(
                    path.display().to_string(),
                    "not a plain relative name",
                ));
            }
            let target = dir.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| archive_error(path.display().to_string(), e))?;
            }
            let mut file = std::fs::File::create(&target)
                .map_err(|e| archive_error(path.display().to_string(), e))?;
            std::io::copy(&mut entry, &mut file)
                .map_err(|e| archive_error(path.display().to_string(), e))?;
        }
        Ok(())
    }

    fn load_docker(&self, dir: &Path) -> Result<Loaded, EngineError> {
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(rename = "Config")]
            config: String,
            #[serde(rename = "RepoTags", default)]
            repo_tags: Option<Vec<String>>,
            #[serde(rename = "Layers")]
            layers: Vec<String>,
        }
        let text = std::fs::read(dir.join("manifest.json"))
            .map_err(|e| archive_error("manifest.json", e))?;
        let entries: Vec<Entry> =
            serde_json::from_slice(&text).map_err(|e| archive_error("manifest.json", e))?;
        let mut loaded = Loaded::default();
        for entry in entries {
            let config_bytes = read_member(dir, &entry.config)?;
            let config_digest = Digest::of(&config_bytes);
            let config = manifest::parse_config(&config_bytes, &config_digest)?;
            let diff_ids = config.rootfs().diff_ids();
            if diff_ids.len() != entry.layers.len() {
                return Err(archive_error(
                    entry.config,
                    "its layer count does not match the config's rootfs.diff_ids",
                ));
            }
            let mut layers = Vec::new();
            for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
                let member = member_path(dir, path)?;
                let bytes = std::fs::read(&member).map_err(|e| archive_error(path, e))?;
                let blob = self.store.put_blob(&bytes)?;
                layers.push(Layer {
                    size: bytes.len() as u64,
                    compression: Compression::sniff(&bytes[..bytes.len().min(4)]),
                    diff_id: Digest::parse(diff_id)?,
                    blob,
                });
            }
            let record = self.store_loaded(&config_bytes, &config, layers, None)?;
            self.name_loaded(&record, entry.repo_tags.unwrap_or_default(), &mut loaded)?;
        }
        Ok(loaded)
    }

    fn load_oci(&self, dir: &Path) -> Result<Loaded, EngineError> {
        let index_bytes =
            std::fs::read(dir.join("index.json")).map_err(|e| archive_error("index.json", e))?;
        let index_digest = Digest::of(&index_bytes);
        let Manifest::Index(index) = manifest::parse(&index_bytes, &index_digest)? else {
            return Err(archive_error("index.json", "not an image index"));
        };
        let mut loaded = Loaded::default();
        let platform = bulwark_image::Platform::host();
        for entry in index.manifests() {
            let mut digest = Digest::parse(entry.digest().as_ref())?;
            let mut via_index = None;
            let mut bytes = self.oci_blob(dir, &digest)?;
            if let Manifest::Index(inner) = manifest::parse(&bytes, &digest)? {
                let (chosen, _) = manifest::choose(&inner, &platform, "the archive")?;
                via_index = Some((digest.clone(), bytes.clone()));
                digest = chosen;
                bytes = self.oci_blob(dir, &digest)?;
            }
            let Manifest::Image(image) = manifest::parse(&bytes, &digest)? else {
                return Err(archive_error(
                    digest.to_string(),
                    "an index inside an index",
                ));
            };
            let config_digest = Digest::parse(image.config().digest().as_ref())?;
            let config_bytes = self.oci_blob(dir, &config_digest)?;
            let config = manifest::parse_config(&config_bytes, &config_digest)?;
            for layer in image.layers() {
                let blob = Digest::parse(layer.digest().as_ref())?;
                let data = self.oci_blob(dir, &blob)?;
                self.store.put_blob(&data)?;
            }
            let layers = manifest::layers(&image, &config, &digest)?;
            self.store.put_blob(&bytes)?;
            if let Some((_, index_bytes)) = &via_index {
                self.store.put_blob(index_bytes)?;
            }
            let record = self.store_loaded(
                &config_bytes,
                &config,
                layers,
                Some((
                    digest,
                    via_index.map(|(d, _)| d),
                    manifest::media_type_of(&bytes),
                )),
            )?;
            let annotations = entry.annotations().clone().unwrap_or_default();
            let name = annotations
                .get("io.containerd.image.name")
                .cloned()
                .or_else(|| {
                    annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains('/') || n.contains(':'))
                        .cloned()
                });
            self.name_loaded(&record, name.into_iter().collect(), &mut loaded)?;
        }
        Ok(loaded)
    }

    /// A blob of an OCI layout, checked against its digest.
    fn oci_blob(&self, dir: &Path, digest: &Digest) -> Result<Vec<u8>, EngineError> {
        let path = dir.join("blobs/sha256").join(digest.hex());
        let bytes = std::fs::read(&path).map_err(|e| archive_error(format!("blob {digest}"), e))?;
        if Digest::of(&bytes) != *digest {
            return Err(archive_error(
                format!("blob {digest}"),
                "its content does not match its digest",
            ));
        }
        Ok(bytes)
    }

    /// Stores a loaded image: its config, its layers unpacked, then its record.
    fn store_loaded(
        &self,
        config_bytes: &[u8],
        config: &oci_spec::image::ImageConfiguration,
        layers: Vec<Layer>,
        manifest: Option<(Digest, Option<Digest>, String)>,
    ) -> Result<ImageRecord, EngineError> {
        let id = self.store.put_blob(config_bytes)?;
        let chain = chain_ids(&layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>());
        for (i, (layer, chain_id)) in layers.iter().zip(&chain).enumerate() {
            let parent = i.checked_sub(1).map(|p| &chain[p]);
            self.store
                .make_layer(chain_id, &layer.diff_id, parent, |dir, split| {
                    self.unpack_in_child(layer, dir, split)
                })?;
        }
        let (manifest_digest, index, media_type) = match manifest {
            Some(m) => m,
            None => {
                let doc = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": manifest::OCI_MANIFEST,
                    "config": {"mediaType": manifest::OCI_CONFIG, "digest": id, "size": config_bytes.len()},
                    "layers": layers.iter().map(|l| serde_json::json!({"mediaType": l.compression.oci_media_type(), "digest": l.blob, "size": l.size})).collect::<Vec<_>>(),
                })
                .to_string();
                (
                    self.store.put_blob(doc.as_bytes())?,
                    None,
                    manifest::OCI_MANIFEST.to_owned(),
                )
            }
        };
        let size = chain
            .iter()
            .map(|c| self.store.layer(c).map(|l| l.map_or(0, |l| l.size)))
            .sum::<Result<u64, _>>()?;
        let record = ImageRecord {
            format: RECORD_FORMAT,
            id,
            manifest: manifest_digest,
            manifest_media_type: media_type,
            index,
            platform: bulwark_image::Platform {
                os: config.os().to_string(),
                architecture: config.architecture().to_string(),
                variant: config.variant().clone(),
            },
            layers,
            chain_ids: chain,
            size,
            stored: bulwark_store::now(),
            last_tag_time: None,
        };
        self.store.sync()?;
        let _lock = self.store.lock()?;
        if self.store.image(&record.id)?.is_none() {
            self.store.put_image(&record)?;
        }
        Ok(record)
    }

    fn name_loaded(
        &self,
        record: &ImageRecord,
        tags: Vec<String>,
        loaded: &mut Loaded,
    ) -> Result<(), EngineError> {
        let _lock = self.store.lock()?;
        let mut names = self.store.names()?;
        if tags.is_empty() {
            loaded.untagged.push(record.id.clone());
        }
        for tag in tags {
            let name = ImageName::parse(&tag)?;
            names.tags.insert(name.canonical(), record.id.clone());
            loaded.names.push(name.familiar());
        }
        self.store.put_names(&names)?;
        Ok(())
    }
}

/// A member of an extracted archive by its name there, refusing names that leave it.
fn member_path(dir: &Path, name: &str) -> Result<PathBuf, EngineError> {
    let path = Path::new(name);
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(archive_error(name, "not a plain relative name"));
    }
    Ok(dir.join(path))
}

fn read_member(dir: &Path, name: &str) -> Result<Vec<u8>, EngineError> {
    std::fs::read(member_path(dir, name)?).map_err(|e| archive_error(name, e))
}

//! `push`: the image a name points at -> each layer blob the registry lacks, then the
//! config, then the manifest under the name's tag. Blobs go up as the store holds them, so
//! a pulled image keeps its registry digest.
use std::path::Path;

use bulwark_image::digest::HashingWriter;
use bulwark_image::manifest::{self, Compression, Manifest};
use bulwark_image::{Digest, ImageName};
use bulwark_registry::{Operation, Session};
use bulwark_store::ImageRecord;

use crate::{Engine, EngineError};

/// What a push reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// `The push refers to repository [<repository>]`.
    Repository(String),
    Preparing(String),
    Pushing {
        layer: String,
        total: u64,
    },
    Pushed(String),
    AlreadyExists(String),
    /// `Mounted from <repository>`: linked from another repository of the registry.
    Mounted {
        layer: String,
        from: String,
    },
    /// `<tag>: digest: <digest> size: <size>`.
    Done {
        tag: String,
        digest: Digest,
        size: usize,
    },
}

type Events<'a> = &'a (dyn Fn(PushEvent) + Sync);

impl Engine {
    /// Pushes what `name` names locally to `name`'s registry and repository.
    pub async fn push(&self, name: &ImageName, events: Events<'_>) -> Result<Digest, EngineError> {
        if name.digest().is_some() {
            return Err(EngineError::Other(format!(
                "{}: push a tag, not a digest reference",
                name.familiar()
            )));
        }
        let names = self.store.names()?;
        let id = names
            .tags
            .get(&name.canonical())
            .cloned()
            .ok_or_else(|| EngineError::NotLocal(name.familiar()))?;
        let record = self
            .store
            .image(&id)?
            .ok_or_else(|| EngineError::NotLocal(name.familiar()))?;
        // What is pushed stays until the push ends.
        let _pin = self.store.pin()?;
        let credentials = self.credentials(name.registry())?;
        events(PushEvent::Repository(name.full_repository()));
        let session = Session::connect(
            name,
            credentials.as_ref(),
            &self.insecure(),
            Operation::Push,
        )
        .await?;
        let manifest_bytes = self.store.read_blob(&record.manifest)?;
        let Manifest::Image(image) = manifest::parse(&manifest_bytes, &record.manifest)? else {
            return Err(EngineError::Other(format!(
                "{}: the stored manifest is an index",
                record.manifest
            )));
        };
        let mut doc: serde_json::Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| EngineError::Other(format!("manifest {}: {e}", record.manifest)))?;
        let layers: Vec<Digest> = image
            .layers()
            .iter()
            .map(|l| Digest::parse(l.digest().as_ref()))
            .collect::<Result<_, _>>()?;
        for digest in layers.iter().rev() {
            events(PushEvent::Preparing(digest.short().to_owned()));
        }
        let (_scratch, scratch) = self
            .store
            .scratch(&format!("push-{}", std::process::id()))?;
        // Repositories of the same registry the image came from or went to: the registry
        // can link its blobs from there.
        let prefix = format!("{}/", name.registry());
        let sources: Vec<String> = names
            .digests
            .iter()
            .filter(|(_, id)| **id == record.id)
            .filter_map(|(key, _)| {
                key.split_once('@')?
                    .0
                    .strip_prefix(&prefix)
                    .map(str::to_owned)
            })
            .filter(|repo| repo != name.repository())
            .collect();
        let target = Target {
            session: &session,
            sources: &sources,
            scratch: &scratch,
            events,
        };
        let mut changed = false;
        for (i, digest) in layers.iter().enumerate().rev() {
            if let Some(replacement) = self.push_layer(&target, &record, i, digest).await? {
                doc["layers"][i]["digest"] = serde_json::json!(replacement.digest);
                doc["layers"][i]["size"] = serde_json::json!(replacement.size);
                doc["layers"][i]["mediaType"] = serde_json::json!(replacement.media_type);
                changed = true;
            }
        }
        let config = Digest::parse(image.config().digest().as_ref())?;
        if !session.has_blob(&config).await? {
            session
                .push_blob(&config, &self.store.blob_path(&config))
                .await?;
        }
        // The stored manifest as it came, unless a layer had to be compressed anew.
        let manifest_bytes = if changed {
            doc.to_string().into_bytes()
        } else {
            manifest_bytes
        };
        let digest = Digest::of(&manifest_bytes);
        let tag = name.tag().unwrap_or("latest").to_owned();
        session
            .push_manifest(
                name.reference(),
                manifest_bytes.clone(),
                &record.manifest_media_type,
            )
            .await?;
        events(PushEvent::Done {
            tag,
            digest: digest.clone(),
            size: manifest_bytes.len(),
        });
        // The name now has this digest in that repository.
        let _lock = self.store.lock()?;
        let mut names = self.store.names()?;
        names.digests.insert(
            format!("{}@{digest}", name.full_repository()),
            record.id.clone(),
        );
        self.store.put_names(&names)?;
        Ok(digest)
    }

    /// Pushes layer `index` unless the registry has it. The blob goes up as it came when
    /// the store still has it, or when it was an uncompressed tar (which the layer's
    /// directory and tar split give back exactly); otherwise the tar is compressed anew
    /// and the new blob's descriptor returned.
    async fn push_layer(
        &self,
        to: &Target<'_>,
        record: &ImageRecord,
        index: usize,
        digest: &Digest,
    ) -> Result<Option<Replacement>, EngineError> {
        let Target {
            session,
            sources,
            scratch,
            events,
        } = *to;
        let short = digest.short().to_owned();
        if session.has_blob(digest).await? {
            events(PushEvent::AlreadyExists(short));
            return Ok(None);
        }
        for from in sources {
            if session.mount_blob(digest, from).await {
                events(PushEvent::Mounted {
                    layer: short,
                    from: from.clone(),
                });
                return Ok(None);
            }
        }
        let layer = &record.layers[index];
        let file = scratch.join(digest.hex());
        let (path, replacement) = if self.store.has_blob(digest) {
            (self.store.blob_path(digest), None)
        } else if layer.compression == Compression::None {
            self.write_layer(record, index, &file, false)?;
            (file, None)
        } else {
            let (new_digest, size) = self.write_layer(record, index, &file, true)?;
            let replacement = Replacement {
                digest: new_digest,
                size,
                media_type: gzip_media_type(&record.manifest_media_type),
            };
            if session.has_blob(&replacement.digest).await? {
                events(PushEvent::AlreadyExists(short));
                return Ok(Some(replacement));
            }
            (file, Some(replacement))
        };
        let pushed = replacement.as_ref().map_or(digest, |r| &r.digest);
        let total = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        events(PushEvent::Pushing {
            layer: short.clone(),
            total,
        });
        session.push_blob(pushed, &path).await?;
        let _ = std::fs::remove_file(scratch.join(digest.hex()));
        events(PushEvent::Pushed(short));
        Ok(replacement)
    }

    /// Writes layer `index`'s tar (gzip-compressed when `gzip`) to `path`; its digest and
    /// size.
    fn write_layer(
        &self,
        record: &ImageRecord,
        index: usize,
        path: &Path,
        gzip: bool,
    ) -> Result<(Digest, u64), EngineError> {
        let mut played = self.layer_tar(record, index)?;
        let fail = |e: std::io::Error| {
            EngineError::Other(format!("layer {}: {e}", record.layers[index].diff_id))
        };
        let file = std::fs::File::create(path).map_err(fail)?;
        let mut out = HashingWriter::new(std::io::BufWriter::new(file));
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
            std::io::copy(&mut played, &mut gz).map_err(fail)?;
            gz.finish().map_err(fail)?;
        } else {
            std::io::copy(&mut played, &mut out).map_err(fail)?;
        }
        let (writer, digest, size) = out.finish();
        writer.into_inner().map_err(|e| fail(e.into_error()))?;
        Ok((digest, size))
    }

    /// Every tagged name of `name`'s repository (`push --all-tags`).
    pub fn tags_of(&self, name: &ImageName) -> Result<Vec<ImageName>, EngineError> {
        let repository = format!("{}:", name.full_repository());
        let names = self.store.names()?;
        names
            .tags
            .keys()
            .filter_map(|k| k.strip_prefix(&repository).filter(|t| !t.contains('/')))
            .map(|tag| Ok(name.with_tag(tag)))
            .collect()
    }
}

/// Where a push goes: the session, repositories it may mount blobs from, a scratch
/// directory for blobs made anew, and who hears about it.
#[derive(Clone, Copy)]
struct Target<'a> {
    session: &'a Session,
    sources: &'a [String],
    scratch: &'a Path,
    events: Events<'a>,
}

/// A layer blob made anew for a push.
struct Replacement {
    digest: Digest,
    size: u64,
    media_type: &'static str,
}

/// The gzip layer media type of the manifest's family.
fn gzip_media_type(manifest_media_type: &str) -> &'static str {
    if manifest_media_type == manifest::DOCKER_MANIFEST {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    }
}

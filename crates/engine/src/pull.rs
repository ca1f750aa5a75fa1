//! `pull`: a name -> its manifest (the one for this platform, when the name is an index)
//! -> its config -> each layer downloaded (a few at once), checked and unpacked once per
//! chain id -> the image record and its names. Nothing is visible as an image until the
//! last step, and every step of a killed pull is redone or cleaned by the next command.
use std::process::Stdio;
use std::sync::Arc;

use bulwark_image::manifest::{self, Layer, Manifest};
use bulwark_image::{Digest, ImageName, Platform};
use bulwark_registry::{AuthConfig, Operation, Session};
use bulwark_store::{chain_ids, ImageRecord, RECORD_FORMAT};
use futures_util::stream::{self, StreamExt};

use crate::{Engine, EngineError};

/// What a pull reports as it goes, for a front end to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// `<tag>: Pulling from <repository>`.
    Pulling {
        tag: String,
        repository: String,
    },
    /// The image's layers, by short digest, before anything is fetched.
    Layers(Vec<String>),
    /// A layer the store has already.
    AlreadyExists(String),
    Downloading {
        layer: String,
        done: u64,
        total: u64,
    },
    Verifying(String),
    Downloaded(String),
    PullComplete(String),
}

/// A finished pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub record: ImageRecord,
    /// The digest the registry names the image by.
    pub digest: Digest,
    /// The name (tag) now points at another image than before.
    pub updated: bool,
    /// The image was not in the store before.
    pub new_image: bool,
}

type Events<'a> = &'a (dyn Fn(PullEvent) + Sync);

impl Engine {
    /// The credentials stored for `registry` (Docker's config.json and its helpers).
    pub fn credentials(
        &self,
        registry: &str,
    ) -> Result<Option<bulwark_registry::Credentials>, EngineError> {
        Ok(AuthConfig::load(&AuthConfig::path())?.credentials(registry)?)
    }

    pub(crate) fn insecure(&self) -> bulwark_registry::Insecure {
        bulwark_registry::Insecure(self.config.insecure_registries.clone())
    }

    /// Pulls `name` for `platform`. A pull that fails leaves nothing: what it stored and
    /// no record names is collected before it returns (as are the blobs of the layers it
    /// unpacked, once it succeeds).
    pub async fn pull(
        &self,
        name: &ImageName,
        platform: &Platform,
        events: Events<'_>,
    ) -> Result<Pulled, EngineError> {
        let pulled = {
            let _pin = self.store.pin()?;
            self.pull_pinned(name, platform, events).await
        };
        // Unpinned: what a failed pull left goes now, unless another pull is under way. A
        // failure to clean up is the next command's to report, not this pull's.
        let cleaned = self.store.lock();
        let pulled = pulled?;
        cleaned?;
        Ok(pulled)
    }

    async fn pull_pinned(
        &self,
        name: &ImageName,
        platform: &Platform,
        events: Events<'_>,
    ) -> Result<Pulled, EngineError> {
        let credentials = self.credentials(name.registry())?;
        let session = Session::connect(
            name,
            credentials.as_ref(),
            &self.insecure(),
            Operation::Pull,
        )
        .await?;
        events(PullEvent::Pulling {
            tag: name.tag().or(name.digest()).unwrap_or("latest").to_owned(),
            repository: pulling_from(name),
        });
        let (bytes, digest) = session.manifest(name.reference()).await?;
        let (manifest_bytes, manifest_digest, index) = match manifest::parse(&bytes, &digest)? {
            Manifest::Image(_) => (bytes, digest.clone(), None),
            Manifest::Index(index) => {
                let (chosen, _) = manifest::choose(&index, platform, &name.familiar())?;
                let (bytes2, digest2) = session
                    .manifest(name.with_digest(&chosen).reference())
                    .await?;
                if digest2 != chosen {
                    return Err(EngineError::Other(format!(
                        "the registry sent manifest {digest2} where the index names {chosen}"
                    )));
                }
                (bytes2, digest2, Some((digest.clone(), bytes)))
            }
        };
        let Manifest::Image(image) = manifest::parse(&manifest_bytes, &manifest_digest)? else {
            return Err(EngineError::Other(format!(
                "{manifest_digest}: an index names another index"
            )));
        };
        let config_digest = Digest::parse(image.config().digest().as_ref())?;
        let config_bytes = self
            .fetch_small(&session, &config_digest, image.config().size())
            .await?;
        let config = manifest::parse_config(&config_bytes, &config_digest)?;
        let actual = Platform {
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
            variant: config.variant().clone(),
        };
        if index.is_none()
            && !platform.matches(&actual.os, &actual.architecture, actual.variant.as_deref())
        {
            return Err(EngineError::Platform {
                name: name.familiar(),
                wanted: platform.to_string(),
                actual: actual.to_string(),
            });
        }
        let layers = manifest::layers(&image, &config, &manifest_digest)?;
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chain = chain_ids(&diff_ids);
        let mut missing = Vec::new();
        for (layer, chain_id) in layers.iter().zip(&chain) {
            match self.store.layer(chain_id)? {
                Some(_) => events(PullEvent::AlreadyExists(layer.blob.short().to_owned())),
                None => missing.push(layer.blob.short().to_owned()),
            }
        }
        events(PullEvent::Layers(missing));
        self.fetch_layers(&session, &layers, &chain, events).await?;
        // Every blob and layer is in place (and on disk): now the image becomes visible.
        self.store.sync()?;
        self.store.put_blob(&manifest_bytes)?;
        if let Some((_, index_bytes)) = &index {
            self.store.put_blob(index_bytes)?;
        }
        let size = chain
            .iter()
            .map(|c| self.store.layer(c).map(|l| l.map_or(0, |l| l.size)))
            .sum::<Result<u64, _>>()?;
        let repo_digest = index
            .as_ref()
            .map_or(manifest_digest.clone(), |(d, _)| d.clone());
        let _lock = self.store.lock()?;
        let mut names = self.store.names()?;
        let existing = self.store.image(&config_digest)?;
        let new_image = existing.is_none();
        let record = match existing {
            Some(existing) => existing,
            None => {
                let record = ImageRecord {
                    format: RECORD_FORMAT,
                    id: config_digest.clone(),
                    manifest: manifest_digest.clone(),
                    manifest_media_type: manifest::media_type_of(&manifest_bytes),
                    index: index.as_ref().map(|(d, _)| d.clone()),
                    platform: actual,
                    layers,
                    chain_ids: chain,
                    size,
                    stored: bulwark_store::now(),
                    last_tag_time: None,
                };
                self.store.put_image(&record)?;
                record
            }
        };
        let mut updated = false;
        if name.digest().is_none() {
            let previous = names.tags.insert(name.canonical(), record.id.clone());
            updated = previous.as_ref() != Some(&record.id);
        }
        names.digests.insert(
            format!("{}@{repo_digest}", name.full_repository()),
            record.id.clone(),
        );
        self.store.put_names(&names)?;
        let record = if updated {
            let mut tagged = record;
            tagged.last_tag_time = Some(bulwark_store::now());
            self.store.put_image(&tagged)?;
            tagged
        } else {
            record
        };
        Ok(Pulled {
            record,
            digest: repo_digest,
            updated,
            new_image,
        })
    }

    /// A small blob (a config): fetched (checked) into the store unless there, then read
    /// back.
    async fn fetch_small(
        &self,
        session: &Session,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<u8>, EngineError> {
        if size > 16 << 20 {
            return Err(EngineError::Other(format!(
                "config {digest} is {size} bytes: more than a config can be"
            )));
        }
        if !self.store.has_blob(digest) {
            let mut bytes = Vec::new();
            session.blob_to(digest, size, &mut bytes, |_| {}).await?;
            self.store.put_blob(&bytes)?;
        }
        Ok(self.store.read_blob(digest)?)
    }

    /// Each layer downloaded (unless the store has it) and unpacked (unless its chain id
    /// is), a few at once.
    async fn fetch_layers(
        &self,
        session: &Session,
        layers: &[Layer],
        chain: &[Digest],
        events: Events<'_>,
    ) -> Result<(), EngineError> {
        let session = Arc::new(session);
        let jobs = layers
            .iter()
            .zip(chain)
            .enumerate()
            .map(|(i, (layer, chain_id))| {
                let parent = i.checked_sub(1).map(|p| chain[p].clone());
                let session = session.clone();
                async move {
                    self.fetch_layer(&session, layer, chain_id, parent.as_ref(), events)
                        .await
                }
            });
        let results: Vec<Result<(), EngineError>> = stream::iter(jobs)
            .buffer_unordered(self.config.max_concurrent_downloads.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn fetch_layer(
        &self,
        session: &Session,
        layer: &Layer,
        chain_id: &Digest,
        parent: Option<&Digest>,
        events: Events<'_>,
    ) -> Result<(), EngineError> {
        let short = layer.blob.short().to_owned();
        if self.store.layer(chain_id)?.is_some() {
            // Announced as there already, or made meanwhile by another pull.
            events(PullEvent::PullComplete(short));
            return Ok(());
        }
        // The blob goes from the registry straight into the unpacker: never stored, and
        // the layer kept only if the blob had its size and digest and the tar its diff id.
        let store = self.store.clone();
        let chain = chain_id.clone();
        let slot = tokio::task::spawn_blocking(move || store.layer_slot(&chain))
            .await
            .map_err(|e| EngineError::Other(format!("the unpack task failed: {e}")))??;
        let Some(slot) = slot else {
            // Made meanwhile by another pull.
            events(PullEvent::PullComplete(short));
            return Ok(());
        };
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EngineError::Other(format!("a pipe for the unpacker: {e}")))?;
        let child = self.start_unpacker(layer, slot.diff(), Stdio::from(read))?;
        let waited = tokio::task::spawn_blocking(move || child.wait_with_output());
        let mut pipe = tokio::net::unix::pipe::Sender::from_owned_fd(write)
            .map_err(|e| EngineError::Other(format!("a pipe for the unpacker: {e}")))?;
        let total = layer.size;
        let downloaded = session
            .blob_to(&layer.blob, total, &mut pipe, |done| {
                events(PullEvent::Downloading {
                    layer: short.clone(),
                    done,
                    total,
                })
            })
            .await;
        drop(pipe);
        let output = waited
            .await
            .map_err(|e| EngineError::Other(format!("the unpack task failed: {e}")))?
            .map_err(|e| EngineError::Other(format!("waiting for the unpacker: {e}")))?;
        let unpacked = self.finish_unpacker(layer, &output, &slot.tar_split());
        match (downloaded, unpacked) {
            // A damaged blob explains whatever the unpacker made of it.
            (Err(e @ bulwark_registry::RegistryError::Blob { .. }), _) => return Err(e.into()),
            (_, Err(e)) => return Err(e.into()),
            (Err(e), Ok(_)) => return Err(e.into()),
            (Ok(()), Ok(size)) => {
                events(PullEvent::Verifying(short.clone()));
                events(PullEvent::Downloaded(short.clone()));
                let diff_id = layer.diff_id.clone();
                let parent = parent.cloned();
                tokio::task::spawn_blocking(move || slot.commit(&diff_id, parent.as_ref(), size))
                    .await
                    .map_err(|e| EngineError::Other(format!("the unpack task failed: {e}")))??;
            }
        }
        events(PullEvent::PullComplete(short));
        Ok(())
    }
}

/// The repository as `Pulling from` shows it: `library/busybox` for Docker Hub, the
/// path without the registry otherwise.
fn pulling_from(name: &ImageName) -> String {
    name.repository().to_owned()
}

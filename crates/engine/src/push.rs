//! `push`: the image a name points at -> each layer blob the registry lacks, then the
//! config, then the manifest under the name's tag. Blobs go up as the store holds them, so
//! a pulled image keeps its registry digest.
use bulwark_image::manifest::{self, Manifest};
use bulwark_image::{Digest, ImageName};
use bulwark_registry::{Operation, Session};

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
        let layers: Vec<(Digest, u64)> = image
            .layers()
            .iter()
            .map(|l| Ok((Digest::parse(l.digest().as_ref())?, l.size())))
            .collect::<Result<_, bulwark_image::ImageError>>()?;
        for (digest, _) in layers.iter().rev() {
            events(PushEvent::Preparing(digest.short().to_owned()));
        }
        for (digest, size) in layers.iter().rev() {
            self.push_blob(&session, digest, *size, events).await?;
        }
        let config = Digest::parse(image.config().digest().as_ref())?;
        if !session.has_blob(&config).await? {
            session
                .push_blob(&config, &self.store.blob_path(&config))
                .await?;
        }
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
            digest: record.manifest.clone(),
            size: manifest_bytes.len(),
        });
        // The name now has this digest in that repository.
        let _lock = self.store.lock()?;
        let mut names = self.store.names()?;
        names.digests.insert(
            format!("{}@{}", name.full_repository(), record.manifest),
            record.id.clone(),
        );
        self.store.put_names(&names)?;
        Ok(record.manifest)
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

    async fn push_blob(
        &self,
        session: &Session,
        digest: &Digest,
        size: u64,
        events: Events<'_>,
    ) -> Result<(), EngineError> {
        let short = digest.short().to_owned();
        if session.has_blob(digest).await? {
            events(PushEvent::AlreadyExists(short));
            return Ok(());
        }
        if !self.store.has_blob(digest) {
            return Err(EngineError::Other(format!(
                "layer {digest} is not in the store any more (pull the image again to push it)"
            )));
        }
        events(PushEvent::Pushing {
            layer: short.clone(),
            total: size,
        });
        session
            .push_blob(digest, &self.store.blob_path(digest))
            .await?;
        events(PushEvent::Pushed(short));
        Ok(())
    }
}

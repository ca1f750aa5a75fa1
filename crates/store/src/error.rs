//! What can go wrong with the store, naming the file and the digest involved.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob {digest}: {reason}")]
    Blob { digest: String, reason: String },
    #[error("layer {digest}: {reason}")]
    Layer { digest: String, reason: String },
    #[error("{} is damaged: {reason} (remove it, or the store, to start again)", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("conflict: unable to remove repository reference {name:?} (must force) - container {container} is using its referenced image {image}")]
    InUse {
        name: String,
        container: String,
        image: String,
    },
    #[error("conflict: unable to delete {image} (must be forced) - image is referenced in multiple repositories")]
    MultipleNames { image: String },
    #[error("mount {name}: {reason}")]
    Mount { name: String, reason: String },
}

impl StoreError {
    pub fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { what, path, source }
    }
}

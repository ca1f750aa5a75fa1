//! Engine errors: the typed errors of the parts below, and the engine's own, worded as
//! Docker words the ones scripts match.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Image(#[from] bulwark_image::ImageError),
    #[error(transparent)]
    Registry(#[from] bulwark_registry::RegistryError),
    #[error(transparent)]
    Store(#[from] bulwark_store::StoreError),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("{0}: more than one image has an id starting so (give more digits)")]
    Ambiguous(String),
    #[error("layer {digest}: {reason}")]
    Layer { digest: String, reason: String },
    #[error("image {name} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    Platform {
        name: String,
        wanted: String,
        actual: String,
    },
    #[error("{what}: {reason}")]
    Archive { what: String, reason: String },
    #[error("refusing to create a tag with a digest reference")]
    TagWithDigest,
    #[error("An image does not exist locally with the tag: {0}")]
    NotLocal(String),
    #[error("engine configuration {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("without root: {0}")]
    Rootless(String),
    #[error("{0}")]
    Other(String),
}

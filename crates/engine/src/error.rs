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
    #[error(transparent)]
    Container(#[from] bulwark_container::ContainerError),
    #[error(transparent)]
    Runtime(#[from] Box<bulwark_runtime::RuntimeError>),
    #[error(transparent)]
    Policy(#[from] bulwark_policy::PolicyError),
    /// A flag's value the engine cannot use (Docker's "invalid argument").
    #[error("{0}")]
    InvalidArgument(String),
    /// The container could not be started (its monitor's words).
    #[error("failed to start container {id}: {reason}")]
    StartFailed {
        id: String,
        reason: String,
        /// 127: the program was not found; 126: it could not run; 125: anything else.
        code: i32,
    },
    /// A container in a state the command cannot take.
    #[error("{0}")]
    Conflict(String),
    /// A network that is not there, or one already there.
    #[error("{0}")]
    Network(String),
    #[error("{0}")]
    Other(String),
}

impl From<bulwark_runtime::RuntimeError> for EngineError {
    fn from(e: bulwark_runtime::RuntimeError) -> Self {
        EngineError::Runtime(Box::new(e))
    }
}

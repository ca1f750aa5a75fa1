//! Registry errors, worded as Docker words the ones scripts look for.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("pull access denied for {repository}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied")]
    PullDenied { repository: String },
    #[error("denied: requested access to the resource is denied (push to {repository}; `bulwark login {registry}` first?)")]
    PushDenied {
        repository: String,
        registry: String,
    },
    #[error("manifest for {name} not found: manifest unknown: manifest unknown")]
    ManifestUnknown { name: String },
    #[error("blob {digest}: {reason}")]
    Blob { digest: String, reason: String },
    #[error("manifest {name}: {reason}")]
    Manifest { name: String, reason: String },
    #[error("Get \"{url}\": {reason}")]
    Connect { url: String, reason: String },
    #[error("{registry}: {reason}")]
    Registry { registry: String, reason: String },
    #[error("unauthorized: incorrect username or password (login to {registry})")]
    LoginRefused { registry: String },
    /// Where the blob was going stopped taking it (the unpacker ended; its own error says
    /// why).
    #[error("the blob's reader stopped: {0}")]
    Sink(String),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error(transparent)]
    Store(#[from] bulwark_store::StoreError),
}

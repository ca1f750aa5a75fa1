use std::path::PathBuf;

/// What can go wrong with a container's files.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is damaged: {reason} (`bulwark rm -f` removes the container)", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("multiple containers found with provided prefix: {0}")]
    Ambiguous(String),
}

impl ContainerError {
    pub fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ContainerError {
        let path = path.into();
        move |source| ContainerError::Io { what, path, source }
    }
}

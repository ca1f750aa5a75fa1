//! What the command line reports: the engine's typed errors as they are, and its own.
use bulwark_engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A flag or argument that cannot be used (exit status 125, as Docker's).
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// An engine error in `run`, `create` or `start` (exit status 125, as Docker's).
    #[error("{0}")]
    Run(EngineError),
    /// Errors already printed one by one (as `rmi` does for each image it could not
    /// remove); only the exit status is left.
    #[error("")]
    Reported,
}

impl CliError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }

    pub fn run(e: EngineError) -> CliError {
        CliError::Run(e)
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Run(EngineError::StartFailed { code, .. }) => (*code).clamp(1, 255) as u8,
            CliError::Usage(_) | CliError::Run(_) => 125,
            _ => 1,
        }
    }
}

impl From<bulwark_engine::ImageError> for CliError {
    fn from(e: bulwark_engine::ImageError) -> Self {
        CliError::Engine(e.into())
    }
}

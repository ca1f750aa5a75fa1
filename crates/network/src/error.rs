//! What can go wrong with a network, in words a user can act on.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A flag or option the user gave has a value we cannot use.
    #[error("{0}")]
    Invalid(String),
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("nftables: {0}")]
    Firewall(String),
    #[error("{0}")]
    Other(String),
}

impl NetworkError {
    /// A closure for `map_err` that names the file.
    pub fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| NetworkError::Io { what, path, source }
    }
}

impl From<rtnetlink::Error> for NetworkError {
    fn from(e: rtnetlink::Error) -> Self {
        NetworkError::Netlink(e.to_string())
    }
}

//! Unpacking image layers, where image handling keeps getting broken (CVE-2014-6407,
//! CVE-2014-9356, CVE-2017-14992, CVE-2021-41089, CVE-2021-32760, CVE-2025-47290).
//!
//! The pipeline for one layer: the compressed blob -> counted ([`limits`]) -> decompressed
//! (gzip, zstd or none) -> hashed (it must be the config's `diff_id`) -> tar entries, each
//! checked ([`path`]) and created beneath the layer's own directory ([`apply`]) with
//! kernel-enforced resolution: `openat2` with `RESOLVE_IN_ROOT`, no symlinks, no magic
//! links, no mount crossings. OCI whiteouts become overlayfs whiteouts.
//!
//! The engine runs this in a child process of its own ([`confine`]): a private mount
//! namespace, a Landlock domain allowing file access only beneath the layer's directory,
//! a seccomp filter, no_new_privs and only the capabilities unpacking needs; so even a
//! bug here cannot write outside the layer.
#![forbid(unsafe_code)]

pub mod apply;
pub mod confine;
pub mod limits;
pub mod path;
pub mod split;

pub use apply::{unpack, Options, Stats};
pub use limits::Limits;
pub use split::LayerTar;

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry of the layer that is refused, or that could not be made.
    #[error("entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },
    /// The layer as a whole broke a limit.
    #[error("{0}")]
    Limit(String),
    /// The uncompressed layer is not what the image config says it is.
    #[error("the uncompressed layer is {actual}, but the image config says {expected} (rootfs.diff_ids)")]
    DiffId { expected: String, actual: String },
    #[error("reading the layer: {0}")]
    Read(String),
    #[error("{what}: {reason}")]
    Setup { what: &'static str, reason: String },
}

impl UnpackError {
    pub(crate) fn entry(entry: impl std::fmt::Display, reason: impl Into<String>) -> UnpackError {
        UnpackError::Entry {
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }
}

//! What the engine knows about images before it stores or runs them: names as Docker
//! parses them ([`name`]), content digests checked as bytes arrive ([`digest`]),
//! platforms (`os/arch[/variant]`, [`platform`]) and the manifests, indexes and configs
//! registries serve, OCI and Docker schema 2 alike ([`manifest`]). Pure: no I/O.
#![forbid(unsafe_code)]

pub mod digest;
pub mod manifest;
pub mod name;
pub mod platform;

pub use digest::{Digest, Digester};
pub use name::ImageName;
pub use platform::Platform;

/// Something about an image that is not what it should be.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid reference format: {input:?} is not a valid image name ({reason})")]
    Name { input: String, reason: String },
    #[error("{input:?} is not a valid digest (expected sha256: and 64 lowercase hex digits)")]
    Digest { input: String },
    #[error("--platform {input:?} is not valid (expected os/arch or os/arch/variant, such as linux/arm64)")]
    Platform { input: String },
    #[error("{what} {digest} is not valid JSON of its kind: {reason}")]
    Json {
        what: &'static str,
        digest: String,
        reason: String,
    },
    #[error("{what} {digest} has media type {media_type:?}, which bulwark cannot use (expected {expected})")]
    MediaType {
        what: &'static str,
        digest: String,
        media_type: String,
        expected: &'static str,
    },
    #[error("no image for platform {wanted} in {name} (it has {available})")]
    NoPlatform {
        name: String,
        wanted: String,
        available: String,
    },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

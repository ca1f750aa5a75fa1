//! Manifests, indexes and image configs as registries and archives carry them: OCI and
//! Docker schema 2 (the same shape under other media types), told apart by media type and
//! checked before the engine trusts any field.
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use crate::{Digest, ImageError, Platform};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The media types a pull asks for, best first.
pub const ACCEPTED: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// A manifest or an index, as fetched.
#[derive(Debug, Clone)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

/// The `mediaType` a manifest states, or the OCI manifest type when it states none.
pub fn media_type_of(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| OCI_MANIFEST.to_owned())
}

/// Parses manifest bytes (`digest` names them in errors). The media type decides; for a
/// manifest that states none, its shape does (`manifests` makes it an index).
pub fn parse(bytes: &[u8], digest: &Digest) -> Result<Manifest, ImageError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ImageError::Json {
        what: "manifest",
        digest: digest.to_string(),
        reason: e.to_string(),
    })?;
    let media_type = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    let is_index = match media_type {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        "" => value.get("manifests").is_some(),
        other => {
            return Err(ImageError::MediaType {
                what: "manifest",
                digest: digest.to_string(),
                media_type: other.to_owned(),
                expected:
                    "an OCI image manifest or index, or a Docker schema 2 manifest or manifest list",
            })
        }
    };
    if value.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
        return Err(ImageError::Invalid {
            what: format!("manifest {digest}"),
            reason: "schemaVersion is not 2 (Docker schema 1 manifests are not supported)".into(),
        });
    }
    let json_error = |e: serde_json::Error| ImageError::Json {
        what: if is_index { "index" } else { "manifest" },
        digest: digest.to_string(),
        reason: e.to_string(),
    };
    Ok(if is_index {
        Manifest::Index(Box::new(serde_json::from_value(value).map_err(json_error)?))
    } else {
        Manifest::Image(Box::new(serde_json::from_value(value).map_err(json_error)?))
    })
}

/// The entry of `index` for `platform`: its digest and size.
pub fn choose(
    index: &ImageIndex,
    platform: &Platform,
    name: &str,
) -> Result<(Digest, u64), ImageError> {
    let mut available = Vec::new();
    for entry in index.manifests() {
        let Some(p) = entry.platform() else {
            continue;
        };
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        if os == "unknown" {
            continue; // attestations
        }
        if platform.matches(&os, &arch, p.variant().as_deref()) {
            return Ok((Digest::parse(entry.digest().as_ref())?, entry.size()));
        }
        available.push(match p.variant() {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        });
    }
    Err(ImageError::NoPlatform {
        name: name.to_owned(),
        wanted: platform.to_string(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From a layer's media type; `None` for a type that is not a filesystem layer.
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        Some(match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// From the first bytes of a blob (for archives that do not say).
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Parses an image config (`digest` names it in errors).
pub fn parse_config(bytes: &[u8], digest: &Digest) -> Result<ImageConfiguration, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Json {
        what: "image config",
        digest: digest.to_string(),
        reason: e.to_string(),
    })
}

/// An image's layers as the engine stores them: each blob's digest, size and compression,
/// with the digest of its uncompressed tar (`diff_id`) from the config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    pub blob: Digest,
    pub size: u64,
    pub compression: Compression,
    pub diff_id: Digest,
}

/// Pairs a manifest's layers with its config's `rootfs.diff_ids`, refusing what does not
/// add up (a count mismatch, a media type that is not a layer, a bad digest).
pub fn layers(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
    manifest_digest: &Digest,
) -> Result<Vec<Layer>, ImageError> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageError::Invalid {
            what: format!("image {manifest_digest}"),
            reason: format!(
                "the manifest lists {} layers but the config's rootfs.diff_ids {}",
                manifest.layers().len(),
                diff_ids.len()
            ),
        });
    }
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| {
            let media_type = layer.media_type().to_string();
            let blob = Digest::parse(layer.digest().as_ref())?;
            let compression =
                Compression::of_media_type(&media_type).ok_or_else(|| ImageError::MediaType {
                    what: "layer",
                    digest: blob.to_string(),
                    media_type,
                    expected: "a tar layer, uncompressed or with gzip or zstd",
                })?;
            Ok(Layer {
                size: layer.size(),
                compression,
                diff_id: Digest::parse(diff_id)?,
                blob,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn docker_and_oci_manifests_and_indexes_parse() {
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": 2, "digest": digest(1)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3, "digest": digest(2)}]});
        let d = Digest::of(b"x");
        assert!(matches!(
            parse(m.to_string().as_bytes(), &d).unwrap(),
            Manifest::Image(_)
        ));
        let i = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "size": 5, "digest": digest(3), "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": OCI_MANIFEST, "size": 6, "digest": digest(4), "platform": {"os": "linux", "architecture": "amd64"}}]});
        let Manifest::Index(index) = parse(i.to_string().as_bytes(), &d).unwrap() else {
            panic!("an index");
        };
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            choose(&index, &amd64, "x").unwrap(),
            (Digest::parse(&digest(4)).unwrap(), 6)
        );
        let e = choose(&index, &Platform::parse("linux/s390x").unwrap(), "x").unwrap_err();
        assert!(e.to_string().contains("linux/arm64, linux/amd64"), "{e}");
        let v1 = serde_json::json!({"schemaVersion": 1, "name": "x"});
        assert!(parse(v1.to_string().as_bytes(), &d).is_err());
        let odd = serde_json::json!({"schemaVersion": 2, "mediaType": "text/plain"});
        assert!(parse(odd.to_string().as_bytes(), &d)
            .unwrap_err()
            .to_string()
            .contains("text/plain"));
    }

    #[test]
    fn compression_from_media_type_and_bytes() {
        assert_eq!(
            Compression::of_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::of_media_type("application/wasm"), None);
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
    }
}

//! Image names as Docker parses them (`busybox` is `docker.io/library/busybox:latest`,
//! `host:port/name:tag@sha256:...` names a registry), and shown as Docker shows them
//! (`busybox`, `foo/bar`, `localhost:5000/x`).
use std::str::FromStr;

use oci_spec::distribution::Reference;

use crate::{Digest, ImageError};

/// A parsed image name: registry, repository, and a tag and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    reference: Reference,
    /// The user gave neither a tag nor a digest (`latest` was assumed).
    tag_defaulted: bool,
}

impl ImageName {
    /// Parses a name as `docker pull` takes it.
    pub fn parse(input: &str) -> Result<ImageName, ImageError> {
        let bad = |reason: String| ImageError::Name {
            input: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(bad("empty".into()));
        }
        let last = input.rsplit('/').next().unwrap_or(input);
        let repo_part = last.split([':', '@']).next().unwrap_or(last);
        if !input.contains('/')
            && repo_part.len() == 64
            && repo_part.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad(
                "a 64-digit hexadecimal string is an image id, not a name".into(),
            ));
        }
        let path = input.split('@').next().unwrap_or(input);
        let repository = match path.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => name,
            _ => path,
        };
        let first = repository.split('/').next().unwrap_or_default();
        let has_domain = repository.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let remainder = if has_domain {
            repository.split_once('/').map_or("", |(_, r)| r)
        } else {
            repository
        };
        if remainder.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad(format!(
                "repository name ({remainder}) must be lowercase"
            )));
        }
        let reference = Reference::from_str(input).map_err(|e| bad(e.to_string()))?;
        if let Some(digest) = reference.digest() {
            Digest::parse(digest)?;
        }
        let tag_defaulted = !input_has_tag(input) && reference.digest().is_none();
        Ok(ImageName {
            reference,
            tag_defaulted,
        })
    }

    /// What [`ImageName::canonical`] gives for a name in its common shapes (`busybox`,
    /// `user/app:1`, `registry:5000/a/b:tag`), worked out without oci-spec's reference
    /// regex, which takes tens of milliseconds to build in every process that parses a
    /// name. Only a key to look a stored name up by: a hit is a name that was valid when
    /// it was stored; `None` (digests, anything unusual) means: parse it.
    pub fn lookup_key(input: &str) -> Option<String> {
        if input.contains('@') || input.is_empty() || input.len() > 255 {
            return None;
        }
        let (repository, tag) = match input.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (input, "latest"),
        };
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        let repo_ok = repository
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
        if !tag_ok || !repo_ok || repository.starts_with('/') || repository.ends_with('/') {
            return None;
        }
        let first = repository.split('/').next().unwrap_or_default();
        let has_domain = repository.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let (domain, path) = if has_domain {
            let (domain, path) = repository.split_once('/')?;
            let domain = if domain == "index.docker.io" {
                "docker.io"
            } else {
                domain
            };
            (domain, path.to_owned())
        } else if repository.contains(':') {
            return None;
        } else if repository.contains('/') {
            ("docker.io", repository.to_owned())
        } else {
            ("docker.io", format!("library/{repository}"))
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Some(format!("{domain}/{path}:{tag}"))
    }

    /// The registry host (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// The repository within the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        self.reference.repository()
    }

    /// The tag: the one given, or `latest` when neither a tag nor a digest was.
    pub fn tag(&self) -> Option<&str> {
        self.reference.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.reference.digest()
    }

    /// Whether `latest` was assumed.
    pub fn tag_defaulted(&self) -> bool {
        self.tag_defaulted
    }

    /// The reference as the registry client takes it.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// `registry/repository`, the name images are stored under.
    pub fn full_repository(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// `registry/repository:tag` (or `@digest`), fully qualified.
    pub fn canonical(&self) -> String {
        match (self.tag(), self.digest()) {
            (Some(tag), None) => format!("{}:{tag}", self.full_repository()),
            (_, Some(digest)) => format!("{}@{digest}", self.full_repository()),
            (None, None) => self.full_repository(),
        }
    }

    /// The repository as Docker shows it: `busybox`, `foo/bar`, `localhost:5000/x`.
    pub fn familiar_repository(&self) -> String {
        familiar(&self.full_repository())
    }

    /// The name as Docker shows it, with its tag or digest.
    pub fn familiar(&self) -> String {
        let repo = self.familiar_repository();
        match (self.tag(), self.digest()) {
            (_, Some(digest)) => format!("{repo}@{digest}"),
            (Some(tag), None) => format!("{repo}:{tag}"),
            (None, None) => repo,
        }
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> ImageName {
        ImageName {
            reference: Reference::with_tag(
                self.registry().to_owned(),
                self.repository().to_owned(),
                tag.to_owned(),
            ),
            tag_defaulted: false,
        }
    }

    /// The same repository at a digest.
    pub fn with_digest(&self, digest: &Digest) -> ImageName {
        ImageName {
            reference: Reference::with_digest(
                self.registry().to_owned(),
                self.repository().to_owned(),
                digest.to_string(),
            ),
            tag_defaulted: false,
        }
    }
}

/// Whether the last path component of `input` carries a `:tag`.
fn input_has_tag(input: &str) -> bool {
    let path = input.split('@').next().unwrap_or(input);
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
}

/// `docker.io/library/busybox` -> `busybox`, `docker.io/foo/bar` -> `foo/bar`; other
/// registries stay.
pub fn familiar(full_repository: &str) -> String {
    let Some(rest) = full_repository.strip_prefix("docker.io/") else {
        return full_repository.to_owned();
    };
    match rest.strip_prefix("library/") {
        Some(name) if !name.contains('/') => name.to_owned(),
        _ => rest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lookup_keys_are_the_canonical_names() {
        for name in [
            "busybox",
            "busybox:1.36",
            "library/busybox",
            "user/app:v1.2_x-y",
            "docker.io/user/app",
            "index.docker.io/library/debian:bookworm",
            "localhost/app",
            "localhost:5000/a/b/c:tag",
            "127.0.0.1:5000/containers/busybox:1",
            "registry.example.com/team/app:latest",
        ] {
            let parsed = super::ImageName::parse(name).unwrap().canonical();
            assert_eq!(super::ImageName::lookup_key(name), Some(parsed), "{name}");
        }
        for unusual in ["Busybox", "a@sha256:00", "", "a:", "/a", "a/", "host:5000"] {
            let key = super::ImageName::lookup_key(unusual);
            let parsed = super::ImageName::parse(unusual).ok().map(|n| n.canonical());
            assert!(
                key.is_none() || key == parsed,
                "{unusual}: {key:?} vs {parsed:?}"
            );
        }
    }

    use super::*;

    #[test]
    fn names_normalize_as_dockers_do() {
        let n = ImageName::parse("busybox").unwrap();
        assert_eq!(n.canonical(), "docker.io/library/busybox:latest");
        assert_eq!(n.familiar(), "busybox:latest");
        assert!(n.tag_defaulted());
        let n = ImageName::parse("localhost:5000/a/b:t1").unwrap();
        assert_eq!(n.registry(), "localhost:5000");
        assert_eq!(n.repository(), "a/b");
        assert_eq!(n.tag(), Some("t1"));
        assert_eq!(n.familiar(), "localhost:5000/a/b:t1");
        assert!(!n.tag_defaulted());
        let digest = format!("sha256:{}", "a".repeat(64));
        let n = ImageName::parse(&format!("127.0.0.1:5000/x@{digest}")).unwrap();
        assert_eq!(n.digest(), Some(digest.as_str()));
        assert_eq!(n.canonical(), format!("127.0.0.1:5000/x@{digest}"));
        assert_eq!(
            ImageName::parse("foo/bar").unwrap().familiar(),
            "foo/bar:latest"
        );
        assert_eq!(familiar("docker.io/library/a/b"), "library/a/b");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "Busybox",
            "foo/Bar",
            &"a".repeat(64),
            "x@sha256:zz",
            "a b",
        ] {
            let e = ImageName::parse(bad);
            assert!(e.is_err(), "{bad:?} parsed as {e:?}");
        }
    }
}

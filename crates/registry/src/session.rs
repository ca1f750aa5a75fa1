//! One registry conversation, for one repository: authenticated once, then manifests and
//! blobs, each checked before it is kept.
use bulwark_image::{Digest, ImageName};
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::{Credentials, RegistryError};

/// Registries that may be spoken to over plain HTTP: those on loopback (as Docker allows)
/// and those the engine's configuration lists.
#[derive(Debug, Clone, Default)]
pub struct Insecure(pub Vec<String>);

impl Insecure {
    /// Whether `registry` (`host[:port]`) may use plain HTTP.
    pub fn allows(&self, registry: &str) -> bool {
        let host = match registry.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => registry.rsplit_once(':').map_or(registry, |(h, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    registry
                }
            }),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        loopback || self.0.iter().any(|r| r == registry || r == host)
    }
}

/// Pulling or pushing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Pull,
    Push,
}

/// A registry session for one repository.
pub struct Session {
    client: Client,
    auth: RegistryAuth,
    name: ImageName,
    operation: Operation,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session {{ {} }}", self.name.full_repository())
    }
}

impl Session {
    /// Connects to `name`'s registry and authenticates for `operation` (anonymously when
    /// `credentials` is `None` and the registry allows it).
    pub async fn connect(
        name: &ImageName,
        credentials: Option<&Credentials>,
        insecure: &Insecure,
        operation: Operation,
    ) -> Result<Session, RegistryError> {
        crate::tls::install_provider();
        let registry = name.registry().to_owned();
        let protocol = if insecure.allows(&registry) {
            ClientProtocol::HttpsExcept(vec![
                registry.clone(),
                name.reference().resolve_registry().to_owned(),
            ])
        } else {
            ClientProtocol::Https
        };
        let client = Client::try_from(ClientConfig {
            protocol,
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(60)),
            read_timeout: Some(std::time::Duration::from_secs(300)),
            user_agent: concat!("bulwark/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        })
        .map_err(|e| RegistryError::Registry {
            registry: registry.clone(),
            reason: e.to_string(),
        })?;
        let auth = match credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.secret.clone()),
            None => RegistryAuth::Anonymous,
        };
        let session = Session {
            client,
            auth,
            name: name.clone(),
            operation,
        };
        let op = match operation {
            Operation::Pull => RegistryOperation::Pull,
            Operation::Push => RegistryOperation::Push,
        };
        // Asked explicitly: otherwise a failed token exchange would only show as a 401.
        session
            .client
            .auth(name.reference(), &session.auth, op)
            .await
            .map_err(|e| session.error(e, name.reference()))?;
        Ok(session)
    }

    /// A registry error in Docker's words.
    fn error(&self, e: OciDistributionError, reference: &Reference) -> RegistryError {
        let text = e.to_string();
        let denied = || match self.operation {
            Operation::Pull => RegistryError::PullDenied {
                repository: self.name.familiar_repository(),
            },
            Operation::Push => RegistryError::PushDenied {
                repository: self.name.familiar_repository(),
                registry: self.name.registry().to_owned(),
            },
        };
        let has_code = |envelope: &oci_client::errors::OciEnvelope, codes: &[&str]| {
            envelope.errors.iter().any(|e| {
                let code = format!("{:?}", e.code);
                codes.iter().any(|c| code.contains(c))
            })
        };
        match &e {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => denied(),
            OciDistributionError::RequestError(e)
                if e.status()
                    .is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) =>
            {
                denied()
            }
            OciDistributionError::ImageManifestNotFoundError(_) => RegistryError::ManifestUnknown {
                name: familiar_reference(reference),
            },
            OciDistributionError::RegistryError { envelope, .. }
                if has_code(envelope, &["ManifestUnknown"]) =>
            {
                RegistryError::ManifestUnknown {
                    name: familiar_reference(reference),
                }
            }
            OciDistributionError::RegistryError { envelope, .. }
                if has_code(envelope, &["Denied", "Unauthorized", "NameUnknown"]) =>
            {
                denied()
            }
            OciDistributionError::RequestError(e) => RegistryError::Connect {
                url: e.url().map_or_else(
                    || format!("{}/v2/", self.name.registry()),
                    |u| u.to_string(),
                ),
                reason: text,
            },
            _ => RegistryError::Registry {
                registry: self.name.registry().to_owned(),
                reason: text,
            },
        }
    }

    /// The manifest (or index) `reference` names: its bytes, checked against the
    /// digest the registry reports and any digest in `reference`.
    pub async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Vec<u8>, Digest), RegistryError> {
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(reference, &self.auth, &bulwark_image::manifest::ACCEPTED)
            .await
            .map_err(|e| self.error(e, reference))?;
        let digest = Digest::parse(&digest).map_err(|e| RegistryError::Manifest {
            name: familiar_reference(reference),
            reason: e.to_string(),
        })?;
        if Digest::of(&bytes) != digest {
            return Err(RegistryError::Manifest {
                name: familiar_reference(reference),
                reason: format!("its content is not {digest}"),
            });
        }
        Ok((bytes.to_vec(), digest))
    }

    /// Streams the blob `digest` of `size` bytes into `sink` (the unpacker's stdin) as it
    /// arrives, counting and hashing it: more than `size` bytes stops it, and it succeeds
    /// only if the whole had `size` bytes and `digest`. The caller uses what `sink` made
    /// only then. `progress` gets the bytes so far.
    pub async fn blob_to(
        &self,
        digest: &Digest,
        size: u64,
        sink: &mut (impl tokio::io::AsyncWrite + Unpin),
        mut progress: impl FnMut(u64),
    ) -> Result<(), RegistryError> {
        use tokio::io::AsyncWriteExt;
        let reference = self.name.reference();
        let blob_error = |reason: String| RegistryError::Blob {
            digest: digest.to_string(),
            reason,
        };
        let mut stream = self
            .client
            .pull_blob_stream(reference, digest.as_str())
            .await
            .map_err(|e| self.blob_request_error(e, digest))?;
        let mut digester = bulwark_image::Digester::new();
        let mut failed = None;
        // Once the sink stops taking the blob (the unpacker ended on an error), the rest is
        // still hashed: a damaged blob is reported as such, whatever it made the unpacker say.
        let mut sink_error = None;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            };
            if digester.len() + chunk.len() as u64 > size {
                return Err(blob_error(format!(
                    "the registry sent more than the {size} bytes the manifest says"
                )));
            }
            digester.update(&chunk);
            if sink_error.is_none() {
                if let Err(e) = sink.write_all(&chunk).await {
                    sink_error = Some(RegistryError::Sink(e.to_string()));
                }
            }
            progress(digester.len());
        }
        // Our own size and digest checks say best what was wrong.
        let got = digester.len();
        if got != size {
            let why = failed
                .filter(|f| !f.contains("Invalid digest"))
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            return Err(blob_error(format!(
                "the registry sent {got} bytes where the manifest says {size}: truncated{why}"
            )));
        }
        let actual = digester.finish();
        if actual != *digest {
            return Err(blob_error(format!(
                "the content received has digest {actual}: it does not match"
            )));
        }
        if let Some(e) = sink_error {
            return Err(e);
        }
        sink.shutdown()
            .await
            .map_err(|e| RegistryError::Sink(e.to_string()))?;
        Ok(())
    }

    fn blob_request_error(&self, e: OciDistributionError, digest: &Digest) -> RegistryError {
        match &e {
            OciDistributionError::ImageManifestNotFoundError(_) => missing_blob(digest),
            OciDistributionError::RegistryError { envelope, .. }
                if envelope
                    .errors
                    .iter()
                    .any(|e| format!("{:?}", e.code).contains("BlobUnknown")) =>
            {
                missing_blob(digest)
            }
            _ => self.error(e, self.name.reference()),
        }
    }

    /// Whether the registry has the blob already.
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        self.client
            .blob_exists(self.name.reference(), digest.as_str())
            .await
            .map_err(|e| self.error(e, self.name.reference()))
    }

    /// Asks the registry to link the blob `digest` from another repository of it into
    /// this one (a cross-repository mount); whether it did.
    pub async fn mount_blob(&self, digest: &Digest, from_repository: &str) -> bool {
        let source = Reference::with_tag(
            self.name.registry().to_owned(),
            from_repository.to_owned(),
            "latest".to_owned(),
        );
        let mounted = self
            .client
            .mount_blob(self.name.reference(), &source, digest.as_str())
            .await
            .is_ok();
        mounted && self.has_blob(digest).await.unwrap_or(false)
    }

    /// Uploads a blob from the file at `path` (it must have `digest`).
    pub async fn push_blob(
        &self,
        digest: &Digest,
        path: &std::path::Path,
    ) -> Result<(), RegistryError> {
        let data = std::fs::read(path).map_err(|e| RegistryError::Blob {
            digest: digest.to_string(),
            reason: format!("reading {}: {e}", path.display()),
        })?;
        self.client
            .push_blob(self.name.reference(), data, digest.as_str())
            .await
            .map_err(|e| self.error(e, self.name.reference()))?;
        Ok(())
    }

    /// Uploads a manifest (or index) under `reference` (a tag or its digest).
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let content_type = media_type.parse().map_err(|_| RegistryError::Manifest {
            name: familiar_reference(reference),
            reason: format!("media type {media_type:?} is not a header value"),
        })?;
        self.client
            .push_manifest_raw(reference, bytes, content_type)
            .await
            .map_err(|e| self.error(e, reference))?;
        Ok(())
    }
}

fn missing_blob(digest: &Digest) -> RegistryError {
    RegistryError::Blob {
        digest: digest.to_string(),
        reason: "the registry does not have it (the manifest names a blob that is missing)".into(),
    }
}

/// `busybox:latest`, `localhost:5000/x@sha256:...` for messages.
fn familiar_reference(reference: &Reference) -> String {
    let repo = bulwark_image::name::familiar(&format!(
        "{}/{}",
        reference.registry(),
        reference.repository()
    ));
    match (reference.tag(), reference.digest()) {
        (_, Some(d)) => format!("{repo}@{d}"),
        (Some(t), None) => format!("{repo}:{t}"),
        _ => repo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_listed_registries() {
        let insecure = Insecure(vec!["registry.lan:5000".into()]);
        for yes in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:80",
            "[::1]:5000",
            "registry.lan:5000",
        ] {
            assert!(insecure.allows(yes), "{yes}");
        }
        for no in [
            "docker.io",
            "registry.lan",
            "10.0.0.1:5000",
            "example.com:5000",
        ] {
            assert!(!insecure.allows(no), "{no}");
        }
    }
}

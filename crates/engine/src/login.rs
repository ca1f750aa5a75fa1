//! `login` and `logout`: credentials checked against the registry, then kept in Docker's
//! `config.json` (or the credential helper it names), never shown.
use bulwark_registry::{check_login, AuthConfig, Credentials};

use crate::{Engine, EngineError};

/// The registry `login` and `logout` mean when given none: Docker Hub.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// The `host[:port]` a user typed (`http://host:5000/`, `host:5000`, none).
pub fn registry_of(server: Option<&str>) -> String {
    let Some(server) = server else {
        return DEFAULT_REGISTRY.to_owned();
    };
    let bare = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match bare {
        "index.docker.io" | "registry-1.docker.io" | "" => DEFAULT_REGISTRY.to_owned(),
        other => other.to_owned(),
    }
}

impl Engine {
    /// Checks `credentials` with the registry, then stores them.
    pub async fn login(
        &self,
        registry: &str,
        credentials: &Credentials,
    ) -> Result<(), EngineError> {
        check_login(registry, credentials, &self.insecure()).await?;
        let path = AuthConfig::path();
        let mut config = AuthConfig::load(&path)?;
        config.store(registry, credentials)?;
        config.save(&path)?;
        Ok(())
    }

    /// Forgets the credentials for `registry`; whether there were any.
    pub fn logout(&self, registry: &str) -> Result<bool, EngineError> {
        let path = AuthConfig::path();
        let mut config = AuthConfig::load(&path)?;
        let had = config.erase(registry)?;
        if had {
            config.save(&path)?;
        }
        Ok(had)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_named_as_docker_names_them() {
        assert_eq!(registry_of(None), "docker.io");
        assert_eq!(
            registry_of(Some("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_of(Some("localhost:5000")), "localhost:5000");
        assert_eq!(
            registry_of(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
    }
}

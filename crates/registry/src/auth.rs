//! Credentials as Docker keeps them: `$DOCKER_CONFIG/config.json` (else
//! `~/.docker/config.json`) with `auths` (base64 `user:password`), `credsStore` and
//! `credHelpers` naming `docker-credential-<helper>` programs. Secrets never reach a log
//! line or an error message: [`Credentials`]'s `Debug` hides them.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::RegistryError;

/// What `auths` holds for one registry.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identitytoken: Option<String>,
}

/// Docker's `config.json`: only the parts about credentials are read; the rest is kept
/// as it is when the file is written back.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(
        default,
        rename = "credsStore",
        skip_serializing_if = "Option::is_none"
    )]
    pub creds_store: Option<String>,
    #[serde(
        default,
        rename = "credHelpers",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub cred_helpers: BTreeMap<String, String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

/// A user name and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, secret: <hidden> }}",
            self.username
        )
    }
}

/// The key `auths` uses for a registry: Docker Hub's historical URL, else `host[:port]`.
pub fn key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".into()
        }
        other => other.to_owned(),
    }
}

impl AuthConfig {
    /// Where the config lives.
    pub fn path() -> PathBuf {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("config.json");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".docker/config.json")
    }

    pub fn load(path: &Path) -> Result<AuthConfig, RegistryError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                RegistryError::Credentials(format!("{} is not valid: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthConfig::default()),
            Err(e) => Err(RegistryError::Credentials(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Writes the config (mode 0600 in a 0700 directory), whole and renamed.
    pub fn save(&self, path: &Path) -> Result<(), RegistryError> {
        let fail = |e: std::io::Error| {
            RegistryError::Credentials(format!("cannot write {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(fail)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode_0600()
            .open(&tmp)
            .map_err(fail)?;
        let text = serde_json::to_string_pretty(self).expect("a config always serializes");
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }

    fn helper_for(&self, registry: &str) -> Option<&str> {
        self.cred_helpers
            .get(registry)
            .or(self.creds_store.as_ref())
            .map(String::as_str)
    }

    /// The credentials for `registry`, from its helper or from `auths`.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        let key = key(registry);
        if let Some(helper) = self.helper_for(registry) {
            return helper_get(helper, &key);
        }
        let Some(entry) = self.auths.get(&key) else {
            return Ok(None);
        };
        let Some(auth) = &entry.auth else {
            return Ok(None);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| {
                RegistryError::Credentials(format!(
                    "the stored login for {key} is not valid base64"
                ))
            })?;
        let text = String::from_utf8(decoded).map_err(|_| {
            RegistryError::Credentials(format!("the stored login for {key} is not text"))
        })?;
        let (username, secret) = text.split_once(':').ok_or_else(|| {
            RegistryError::Credentials(format!("the stored login for {key} is not user:password"))
        })?;
        Ok(Some(Credentials {
            username: username.to_owned(),
            secret: secret.to_owned(),
        }))
    }

    /// Stores credentials for `registry` (in its helper when one is configured).
    pub fn store(
        &mut self,
        registry: &str,
        credentials: &Credentials,
    ) -> Result<(), RegistryError> {
        let key = key(registry);
        if let Some(helper) = self.helper_for(registry).map(str::to_owned) {
            helper_store(&helper, &key, credentials)?;
            self.auths.insert(key, AuthEntry::default());
            return Ok(());
        }
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.username, credentials.secret));
        self.auths.insert(
            key,
            AuthEntry {
                auth: Some(auth),
                identitytoken: None,
            },
        );
        Ok(())
    }

    /// Forgets the credentials for `registry`; whether there were any.
    pub fn erase(&mut self, registry: &str) -> Result<bool, RegistryError> {
        let key = key(registry);
        let had = self.auths.remove(&key).is_some();
        if let Some(helper) = self.helper_for(registry).map(str::to_owned) {
            run_helper(&helper, "erase", key.as_bytes())?;
        }
        Ok(had)
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HelperCredentials {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; its stdout.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| RegistryError::Credentials(format!("running {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RegistryError::Credentials(format!("running {program}: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        return Err(RegistryError::Credentials(format!(
            "{program} {action} failed ({}): {said}",
            out.status
        )));
    }
    Ok(out.stdout)
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>, RegistryError> {
    match run_helper(helper, "get", key.as_bytes()) {
        Ok(out) => {
            let c: HelperCredentials = serde_json::from_slice(&out).map_err(|e| {
                RegistryError::Credentials(format!(
                    "docker-credential-{helper} get: not the expected JSON: {e}"
                ))
            })?;
            Ok(Some(Credentials {
                username: c.username,
                secret: c.secret,
            }))
        }
        Err(RegistryError::Credentials(text)) if text.contains("credentials not found") => Ok(None),
        Err(e) => Err(e),
    }
}

fn helper_store(helper: &str, key: &str, credentials: &Credentials) -> Result<(), RegistryError> {
    let input = serde_json::to_vec(&HelperCredentials {
        server_url: key.to_owned(),
        username: credentials.username.clone(),
        secret: credentials.secret.clone(),
    })
    .expect("credentials always serialize");
    run_helper(helper, "store", &input).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_round_trip_and_secrets_stay_hidden() {
        let mut config: AuthConfig =
            serde_json::from_str(r#"{"auths":{},"psFormat":"x"}"#).unwrap();
        let creds = Credentials {
            username: "alice".into(),
            secret: "s3cret".into(),
        };
        config.store("127.0.0.1:5000", &creds).unwrap();
        config.store("docker.io", &creds).unwrap();
        assert_eq!(
            config.credentials("127.0.0.1:5000").unwrap(),
            Some(creds.clone())
        );
        assert!(config.auths.contains_key("https://index.docker.io/v1/"));
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains("\"psFormat\":\"x\""), "{text}");
        assert!(!format!("{creds:?}").contains("s3cret"));
        assert!(config.erase("127.0.0.1:5000").unwrap());
        assert_eq!(config.credentials("127.0.0.1:5000").unwrap(), None);
    }
}

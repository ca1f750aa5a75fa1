//! The engine's configuration: where the store is, which registries may be reached over
//! plain HTTP, the limits layers are unpacked under. Read from
//! `/etc/bulwark/engine.json` (or `$XDG_CONFIG_HOME/bulwark/engine.json` without root, or
//! the file `$BULWARK_CONFIG` names).
use std::path::PathBuf;

use bulwark_layer::Limits;

use crate::EngineError;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct EngineConfig {
    /// The store's directory.
    pub store: PathBuf,
    /// Registries (`host[:port]`) plain HTTP is allowed for, besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// What one layer may hold.
    pub layer_limits: Limits,
    /// Layers downloaded at once.
    pub max_concurrent_downloads: usize,
    /// The engine runs without the host's root.
    #[serde(skip)]
    pub rootless: bool,
    /// The program that unpacks a layer in its sandbox (`bulwark` itself).
    #[serde(skip)]
    pub unpacker: PathBuf,
    /// Where running containers' runtime state is (default `/run/bulwark`, or
    /// `$XDG_RUNTIME_DIR/bulwark` without root).
    pub runtime_root: PathBuf,
    /// The init `--init` puts in a container as `/sbin/docker-init` (a static one: the
    /// image may have no C library). Default: Debian's tini-static.
    pub init_path: PathBuf,
    /// The per-container monitor (default: `bulwark-mon` beside `bulwark`).
    #[serde(skip)]
    pub monitor: PathBuf,
    /// The network of containers that name none (`bridge`; `none` on hosts without
    /// bridges, as dockerd's `--bridge=none`). Without root it is always `none`.
    pub default_network: String,
    /// The name resolver of user-defined networks (`bulwark-dns`).
    #[serde(default = "default_resolver")]
    pub resolver: PathBuf,
}

fn beside_engine(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn default_resolver() -> PathBuf {
    beside_engine("bulwark-dns")
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            store: PathBuf::from("/var/lib/bulwark"),
            insecure_registries: Vec::new(),
            layer_limits: Limits::default(),
            max_concurrent_downloads: 3,
            rootless: false,
            unpacker: PathBuf::from("/proc/self/exe"),
            runtime_root: PathBuf::from("/run/bulwark"),
            init_path: PathBuf::from("/usr/bin/tini-static"),
            monitor: beside_engine("bulwark-mon"),
            resolver: default_resolver(),
            default_network: "bridge".into(),
        }
    }
}

impl EngineConfig {
    /// The configuration for a root or rootless engine: the file if there is one, the
    /// defaults otherwise; `$BULWARK_STORE` overrides the store.
    pub fn load(rootless: bool) -> Result<EngineConfig, EngineError> {
        let home = || {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"))
        };
        let xdg = |var: &str, fallback: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| home().join(fallback))
        };
        let path = if let Some(path) = std::env::var_os("BULWARK_CONFIG").filter(|p| !p.is_empty())
        {
            PathBuf::from(path)
        } else if rootless {
            xdg("XDG_CONFIG_HOME", ".config").join("bulwark/engine.json")
        } else {
            PathBuf::from("/etc/bulwark/engine.json")
        };
        let mut config: EngineConfig = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| EngineError::Config {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => EngineConfig::default(),
            Err(e) => {
                return Err(EngineError::Config {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        if rootless && config.store == EngineConfig::default().store {
            config.store = xdg("XDG_DATA_HOME", ".local/share").join("bulwark");
        }
        if let Some(store) = std::env::var_os("BULWARK_STORE").filter(|s| !s.is_empty()) {
            config.store = PathBuf::from(store);
        }
        if rootless && config.runtime_root == EngineConfig::default().runtime_root {
            // The user's own id, also from inside its namespace (where it is 0).
            let uid = std::fs::read_to_string("/proc/self/uid_map")
                .ok()
                .and_then(|map| {
                    let fields: Vec<&str> = map.split_whitespace().take(2).collect();
                    (fields.first() == Some(&"0")).then(|| fields.get(1)?.parse::<u32>().ok())?
                })
                .unwrap_or_else(|| nix::unistd::geteuid().as_raw());
            config.runtime_root = std::env::var_os("XDG_RUNTIME_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join(format!("bulwark-{uid}")))
                .join("bulwark");
        }
        if let Some(monitor) = std::env::var_os("BULWARK_MONITOR").filter(|m| !m.is_empty()) {
            config.monitor = PathBuf::from(monitor);
        }
        if let Some(network) = std::env::var("BULWARK_DEFAULT_NETWORK")
            .ok()
            .filter(|m| !m.is_empty())
        {
            config.default_network = network;
        }
        if let Some(resolver) = std::env::var_os("BULWARK_DNS").filter(|m| !m.is_empty()) {
            config.resolver = PathBuf::from(resolver);
        }
        config.rootless = rootless;
        Ok(config)
    }
}

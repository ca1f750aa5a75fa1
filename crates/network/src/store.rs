//! Networks on disk: `<dir>/<name>/network.json`, and under `<dir>/<name>/ips/` one file
//! per address in use, named by the address and holding the container's id. An address
//! file is made with `O_EXCL`: it is the claim, so an address is never handed out twice,
//! and a crash can leave at most a claim whose container no longer exists, which
//! `reconcile` frees.
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use bulwark_container::{FileLock, LockKind};

use crate::{NetworkError, NetworkRecord};

#[derive(Debug, Clone)]
pub struct Networks {
    dir: PathBuf,
    lock: PathBuf,
}

impl Networks {
    /// The networks recorded in `dir`; `lock` is host-wide (several stores on one host
    /// choose subnets and host ports under the same lock).
    pub fn new(dir: impl Into<PathBuf>, lock: impl Into<PathBuf>) -> Networks {
        Networks {
            dir: dir.into(),
            lock: lock.into(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Held while networks are made or removed (subnets are chosen under it).
    pub fn lock(&self) -> Result<FileLock, NetworkError> {
        std::fs::create_dir_all(&self.dir).map_err(NetworkError::io("cannot create", &self.dir))?;
        if let Some(parent) = self.lock.parent() {
            std::fs::create_dir_all(parent).map_err(NetworkError::io("cannot create", parent))?;
        }
        FileLock::wait(&self.lock, LockKind::Exclusive)
            .map_err(|e| NetworkError::Other(e.to_string()))
    }

    pub fn list(&self) -> Vec<NetworkRecord> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<NetworkRecord> = entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("network.json")).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// By name, full id or an id prefix (as Docker finds networks).
    pub fn get(&self, what: &str) -> Result<NetworkRecord, NetworkError> {
        if let Ok(bytes) = std::fs::read(self.dir.join(what).join("network.json")) {
            if let Ok(record) = serde_json::from_slice(&bytes) {
                return Ok(record);
            }
        }
        let matches: Vec<NetworkRecord> =
            match what.len() >= 3 && what.chars().all(|c| c.is_ascii_hexdigit()) {
                true => self
                    .list()
                    .into_iter()
                    .filter(|n| n.id.starts_with(what))
                    .collect(),
                false => Vec::new(),
            };
        match matches.len() {
            1 => Ok(matches.into_iter().next().expect("one")),
            0 => Err(NetworkError::NotFound(what.to_owned())),
            _ => Err(NetworkError::Invalid(format!(
                "network {what} is ambiguous ({} matches)",
                matches.len()
            ))),
        }
    }

    /// Records a new network; the caller holds `lock`.
    pub fn insert(&self, record: &NetworkRecord) -> Result<(), NetworkError> {
        let dir = self.dir.join(&record.name);
        if dir.join("network.json").exists() {
            return Err(NetworkError::Exists(record.name.clone()));
        }
        // A directory without a record is what a killed `network create` left.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ips"))
            .map_err(NetworkError::io("cannot create", &dir))?;
        let text = serde_json::to_vec_pretty(record).expect("a record serializes");
        bulwark_container::write_atomic(&dir.join("network.json"), &text)
            .map_err(|e| NetworkError::Other(e.to_string()))
    }

    /// Forgets a network; the caller holds `lock`.
    pub fn remove(&self, name: &str) -> Result<(), NetworkError> {
        let dir = self.dir.join(name);
        std::fs::remove_dir_all(&dir).map_err(NetworkError::io("cannot remove", &dir))
    }

    /// Claims `ip` on `network` for `container`. Fails if another holds it.
    pub fn claim(
        &self,
        network: &str,
        ip: Ipv4Addr,
        container: &str,
    ) -> Result<bool, NetworkError> {
        let path = self.dir.join(network).join("ips").join(ip.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(container.as_bytes())
                    .map_err(NetworkError::io("cannot write", &path))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(NetworkError::io("cannot create", &path)(e)),
        }
    }

    /// The addresses in use on `network` and who holds them.
    pub fn claims(&self, network: &str) -> Vec<(Ipv4Addr, String)> {
        let dir = self.dir.join(network).join("ips");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let ip = e.file_name().to_str()?.parse().ok()?;
                // An empty file is a claim being written; it counts as taken.
                let holder = std::fs::read_to_string(e.path()).unwrap_or_default();
                Some((ip, holder))
            })
            .collect()
    }

    /// Frees what `container` holds on `network`.
    pub fn release(&self, network: &str, container: &str) {
        for (ip, holder) in self.claims(network) {
            if holder == container {
                let _ =
                    std::fs::remove_file(self.dir.join(network).join("ips").join(ip.to_string()));
            }
        }
    }

    /// Frees claims whose container is gone (`exists` says whether one is).
    pub fn reconcile(&self, exists: &dyn Fn(&str) -> bool) {
        for network in self.list() {
            for (ip, holder) in self.claims(&network.name) {
                if !holder.is_empty() && !exists(&holder) {
                    let _ = std::fs::remove_file(
                        self.dir
                            .join(&network.name)
                            .join("ips")
                            .join(ip.to_string()),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> NetworkRecord {
        NetworkRecord {
            name: name.into(),
            id: format!("{:0>64}", name.len()),
            driver: "bridge".into(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            ip_range: None,
            internal: false,
            labels: Default::default(),
            options: Default::default(),
            created: String::new(),
            bridge: "bw-test".into(),
            ipam_driver: None,
            ipam_pool: None,
        }
    }

    #[test]
    fn claims_are_exclusive_and_released() {
        let dir = std::env::temp_dir().join(format!("bulwark-net-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Networks::new(&dir, dir.join("lock"));
        let _lock = store.lock().unwrap();
        store.insert(&record("one")).unwrap();
        assert!(matches!(
            store.insert(&record("one")),
            Err(NetworkError::Exists(_))
        ));
        let ip = Ipv4Addr::new(10, 0, 0, 2);
        assert!(store.claim("one", ip, "aaa").unwrap());
        assert!(!store.claim("one", ip, "bbb").unwrap());
        assert_eq!(store.claims("one"), vec![(ip, "aaa".to_string())]);
        store.reconcile(&|id| id == "aaa");
        assert_eq!(store.claims("one").len(), 1);
        store.release("one", "aaa");
        assert!(store.claims("one").is_empty());
        assert!(store.claim("one", ip, "ccc").unwrap());
        store.reconcile(&|_| false);
        assert!(store.claims("one").is_empty());
        assert_eq!(store.get("one").unwrap().name, "one");
        assert!(matches!(store.get("two"), Err(NetworkError::NotFound(_))));
        store.remove("one").unwrap();
        assert!(store.list().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

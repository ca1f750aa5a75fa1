//! Networks: `network create/ls/inspect/rm/prune`, and a container's place on them
//! (`attach`). The bridge driver is the one built in; the engine reaches every driver
//! through `bulwark_network::driver::Driver`.
mod connect;
mod join;
mod names;
mod ports;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use bulwark_network::driver::Driver;
use bulwark_network::store::Networks;
use bulwark_network::{ipam, NetworkError, NetworkRecord, DEFAULT_NETWORK};
use ipnet::Ipv4Net;
use serde_json::{json, Value};

pub use join::NetFiles;

/// The published ports of the container whose directory is `dir`.
pub(crate) fn published(dir: &std::path::Path) -> Vec<bulwark_network::ports::PortMapping> {
    join::read_attachment(dir)
        .map(|a| a.ports)
        .unwrap_or_default()
}

use crate::{Engine, EngineError};

/// Networks every engine has without `network create` (`bridge` is made on first use).
pub const PREDEFINED: [&str; 3] = [DEFAULT_NETWORK, "host", "none"];

/// `network create`'s flags.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreateRequest {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub ipv6: bool,
    /// A remote IPAM driver (a plugin's name); `None`: bulwark's own.
    pub ipam_driver: Option<String>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl From<NetworkError> for EngineError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::Invalid(m) => EngineError::InvalidArgument(m),
            NetworkError::Conflict(m) => EngineError::Conflict(m),
            NetworkError::NotFound(_) | NetworkError::Exists(_) => {
                EngineError::Network(e.to_string())
            }
            other => EngineError::Other(other.to_string()),
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Engine {
    pub(crate) fn networks(&self) -> Networks {
        Networks::new(
            self.store.root().join("networks"),
            self.config.runtime_root.join("networks.lock"),
        )
    }

    /// Where this store's containers' network namespaces are pinned (apart from other
    /// stores', whose containers this one must not take for leftovers).
    pub(crate) fn netns_dir(&self) -> std::path::PathBuf {
        self.config
            .runtime_root
            .join("netns")
            .join(self.host_names().0)
    }

    /// The host-wide names this store uses: its nftables table and its default bridge.
    /// The default store has `bulwark` and `bulwark0`; any other (a test's, a second
    /// engine's) gets names of its own, so two stores on one host do not undo each
    /// other's rules.
    pub(crate) fn host_names(&self) -> (String, String) {
        let store = self.store.root().display().to_string();
        if store == "/var/lib/bulwark" {
            return ("bulwark".into(), "bulwark0".into());
        }
        // FNV-1a: stable across builds, which a test's cleanup relies on.
        let hash = store.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        (format!("bulwark-{hash:08x}"), format!("bw-d{hash:08x}"))
    }

    pub(crate) fn driver(&self, network: &NetworkRecord) -> Result<Box<dyn Driver>, EngineError> {
        match network.driver.as_str() {
            "bridge" => Ok(Box::new(bulwark_network::bridge::Bridge)),
            plugin => Ok(Box::new(bulwark_network::remote::Remote::connect(plugin)?)),
        }
    }

    fn require_root(&self, what: &str) -> Result<(), EngineError> {
        match self.config.rootless {
            true => Err(EngineError::Rootless(format!("{what} needs root: bridge networks are made with the host's netlink and nftables (rootless containers get a network namespace of their own with loopback only)"))),
            false => Ok(()),
        }
    }

    /// `network create`.
    pub fn create_network(
        &self,
        request: &NetworkCreateRequest,
    ) -> Result<NetworkRecord, EngineError> {
        self.require_root("network create")?;
        let name = request.name.as_str();
        if !valid_name(name) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if PREDEFINED.contains(&name) {
            return Err(EngineError::Network(format!(
                "network with name {name} already exists"
            )));
        }
        let driver = request.driver.clone().unwrap_or_else(|| "bridge".into());
        if driver != "bridge" {
            // A remote driver: found and activated now, so a missing or hung one fails here.
            bulwark_network::remote::Remote::connect(&driver)?;
        }
        if request.ipv6 {
            return Err(EngineError::InvalidArgument(
                "--ipv6: IPv6 networks are not supported yet".into(),
            ));
        }
        let store = self.networks();
        let _lock = store.lock()?;
        if store.get(name).is_ok() {
            return Err(EngineError::Network(format!(
                "network with name {name} already exists"
            )));
        }
        let record = self.plan_network(&store, request, &driver)?;
        let made = store
            .insert(&record)
            .map_err(EngineError::from)
            .and_then(|()| {
                self.driver(&record)?.create_network(&record)?;
                Ok(self.sync_firewall_locked(&store)?)
            });
        if let Err(e) = made {
            let _ = self.driver(&record).map(|d| d.delete_network(&record));
            let _ = store.remove(&record.name);
            let _ = self.sync_firewall_locked(&store);
            self.release_pool(&record);
            return Err(e);
        }
        Ok(record)
    }

    fn plan_network(
        &self,
        store: &Networks,
        request: &NetworkCreateRequest,
        driver: &str,
    ) -> Result<NetworkRecord, EngineError> {
        let others = store.list();
        if let Some(ipam) = &request.ipam_driver {
            return self.plan_with_remote_ipam(ipam, request, driver, &others);
        }
        let cidr = |flag: &str, text: &str| -> Result<Ipv4Net, EngineError> {
            text.parse::<Ipv4Net>().map(|n| n.trunc()).map_err(|_| {
                EngineError::InvalidArgument(format!(
                    "invalid {flag} {text:?}: expected an IPv4 network such as 10.10.0.0/16"
                ))
            })
        };
        let subnet = match &request.subnet {
            Some(text) => {
                let subnet = cidr("--subnet", text)?;
                if subnet.prefix_len() > 30 {
                    return Err(EngineError::InvalidArgument(format!("invalid --subnet {text:?}: a /{} has no room for a gateway and a container (at most /30)", subnet.prefix_len())));
                }
                if let Some(other) = others.iter().find(|o| ipam::overlaps(&o.subnet, &subnet)) {
                    return Err(EngineError::Conflict(format!(
                        "invalid --subnet {text:?}: Pool overlaps with other one on this address space (network {} has {})",
                        other.name, other.subnet
                    )));
                }
                subnet
            }
            None => self.free_subnet(&others)?,
        };
        let gateway = match &request.gateway {
            Some(text) => {
                let ip: Ipv4Addr = text.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!(
                        "invalid --gateway {text:?}: expected an IPv4 address"
                    ))
                })?;
                if !subnet.hosts().any(|h| h == ip) {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid --gateway {text:?}: not a host address of subnet {subnet}"
                    )));
                }
                ip
            }
            None => ipam::default_gateway(&subnet).expect("a /30 or wider has hosts"),
        };
        let ip_range = match &request.ip_range {
            Some(text) => {
                let range = cidr("--ip-range", text)?;
                if !subnet.contains(&range) {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid --ip-range {text:?}: not inside subnet {subnet}"
                    )));
                }
                Some(range)
            }
            None => None,
        };
        if let Some(mtu) = request.options.get(bulwark_network::MTU_OPTION) {
            if !mtu.parse::<u32>().is_ok_and(|m| (68..=65535).contains(&m)) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid -o {}={mtu:?}: expected an MTU from 68 to 65535",
                    bulwark_network::MTU_OPTION
                )));
            }
        }
        let id = crate::containers::random_hex(32)?;
        let bridge = match request.options.get("com.docker.network.bridge.name") {
            Some(name)
                if name.is_empty()
                    || name.len() > 15
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                return Err(EngineError::InvalidArgument(format!("invalid -o com.docker.network.bridge.name={name:?}: expected an interface name of 1 to 15 letters, digits, '-', '_' or '.'")));
            }
            Some(name) => name.clone(),
            None if driver == "bridge" => format!("bw-{}", &id[..12]),
            None => String::new(),
        };
        Ok(NetworkRecord {
            name: request.name.clone(),
            id,
            driver: driver.to_owned(),
            subnet,
            gateway,
            ip_range,
            internal: request.internal,
            labels: request.labels.clone(),
            options: request.options.clone(),
            created: bulwark_container::now(),
            bridge,
            ipam_driver: None,
            ipam_pool: None,
        })
    }

    /// A network whose pool and gateway come from an IPAM plugin.
    fn plan_with_remote_ipam(
        &self,
        ipam: &str,
        request: &NetworkCreateRequest,
        driver: &str,
        others: &[NetworkRecord],
    ) -> Result<NetworkRecord, EngineError> {
        let plugin = bulwark_network::remote_ipam::RemoteIpam::connect(ipam)?;
        let pool = plugin.request_pool(request.subnet.as_deref(), request.ip_range.as_deref())?;
        let release = |e: EngineError| {
            let _ = plugin.release_pool(&pool.id);
            e
        };
        if let Some(other) = others
            .iter()
            .find(|o| ipam::overlaps(&o.subnet, &pool.subnet))
        {
            return Err(release(EngineError::Conflict(format!(
                "IPAM plugin {ipam} gave {}, which overlaps network {} ({})",
                pool.subnet, other.name, other.subnet
            ))));
        }
        let wanted = match &request.gateway {
            Some(text) => Some(text.parse().map_err(|_| {
                release(EngineError::InvalidArgument(format!(
                    "invalid --gateway {text:?}: expected an IPv4 address"
                )))
            })?),
            None => None,
        };
        let gateway = plugin
            .request_address(&pool.id, wanted, true)
            .map_err(|e| release(e.into()))?;
        let mut plain = request.clone();
        plain.ipam_driver = None;
        plain.subnet = Some(pool.subnet.to_string());
        plain.gateway = Some(gateway.to_string());
        plain.ip_range = None;
        let store = self.networks();
        let mut record = self.plan_network(&store, &plain, driver).map_err(release)?;
        record.ipam_driver = Some(ipam.to_owned());
        record.ipam_pool = Some(pool.id);
        Ok(record)
    }

    /// Gives a remote IPAM driver back its pool and gateway (what is gone is fine).
    fn release_pool(&self, network: &NetworkRecord) {
        if let (Some(name), Some(pool)) = (&network.ipam_driver, &network.ipam_pool) {
            if let Ok(plugin) = bulwark_network::remote_ipam::RemoteIpam::connect(name) {
                let _ = plugin.release_address(pool, network.gateway);
                let _ = plugin.release_pool(pool);
            }
        }
    }

    /// A subnet from Docker's pools that no other network and no route of the host uses.
    fn free_subnet(&self, others: &[NetworkRecord]) -> Result<Ipv4Net, EngineError> {
        let mut taken: Vec<Ipv4Net> = others.iter().map(|o| o.subnet).collect();
        taken.extend(bulwark_network::link::Netlink::open()?.routed_subnets()?);
        ipam::choose_subnet(&taken).ok_or_else(|| {
            EngineError::Conflict("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into())
        })
    }

    /// The network of a container that names none: the configured one (`bridge`) as
    /// root; without root, `pasta` where it is installed (loopback only otherwise)
    /// unless the configuration names another.
    pub(crate) fn default_network(&self) -> String {
        let configured = &self.config.default_network;
        if !self.config.rootless || configured != DEFAULT_NETWORK {
            return configured.clone();
        }
        match bulwark_network::pasta::program() {
            Some(_) => "pasta".into(),
            None => "none".into(),
        }
    }

    /// The network a container names, `bridge` made on first use.
    pub(crate) fn network(&self, what: &str) -> Result<NetworkRecord, EngineError> {
        let store = self.networks();
        match store.get(what) {
            Ok(record) => Ok(record),
            Err(NetworkError::NotFound(_)) if what == DEFAULT_NETWORK => {
                self.require_root("the default bridge network")?;
                let _lock = store.lock()?;
                if let Ok(record) = store.get(what) {
                    return Ok(record);
                }
                let mut options = BTreeMap::new();
                options.insert(
                    "com.docker.network.bridge.name".to_owned(),
                    self.host_names().1,
                );
                options.insert(
                    "com.docker.network.bridge.default_bridge".to_owned(),
                    "true".to_owned(),
                );
                let request = NetworkCreateRequest {
                    name: DEFAULT_NETWORK.into(),
                    options,
                    ..Default::default()
                };
                let record = self.plan_network(&store, &request, "bridge")?;
                store.insert(&record)?;
                if let Err(e) = self
                    .driver(&record)?
                    .create_network(&record)
                    .and_then(|()| self.sync_firewall_locked(&store))
                {
                    let _ = store.remove(&record.name);
                    return Err(e.into());
                }
                Ok(record)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `network ls`: the predefined ones first, as Docker lists them.
    pub fn list_networks(&self) -> Vec<NetworkRecord> {
        self.networks().list()
    }

    /// `network inspect`: Docker's JSON shape.
    pub fn inspect_network(&self, what: &str) -> Result<Value, EngineError> {
        let network = self.networks().get(what)?;
        let mut containers = serde_json::Map::new();
        for (id, name, e) in self.members(&network) {
            containers.insert(
                id,
                json!({
                    "Name": name,
                    "EndpointID": e.host_interface,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                    "IPv6Address": "",
                }),
            );
        }
        let mut config =
            json!({"Subnet": network.subnet.to_string(), "Gateway": network.gateway.to_string()});
        if let Some(range) = network.ip_range {
            config["IPRange"] = json!(range.to_string());
        }
        Ok(json!({
            "Name": network.name,
            "Id": network.id,
            "Created": network.created,
            "Scope": "local",
            "Driver": network.driver,
            "EnableIPv4": true,
            "EnableIPv6": false,
            "IPAM": {"Driver": network.ipam_driver.clone().unwrap_or_else(|| "default".into()), "Options": {}, "Config": [config]},
            "Internal": network.internal,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": network.options,
            "Labels": network.labels,
        }))
    }

    /// `network rm`.
    pub fn remove_network(&self, what: &str) -> Result<String, EngineError> {
        if PREDEFINED.contains(&what) {
            return Err(EngineError::Conflict(format!(
                "{what} is a pre-defined network and cannot be removed"
            )));
        }
        let store = self.networks();
        let _lock = store.lock()?;
        let network = store.get(what)?;
        store.reconcile(&|id| self.containers().dir(id).dir.exists());
        if let Some((_, holder)) = store.claims(&network.name).first() {
            return Err(EngineError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints (container {})",
                network.name,
                network.id,
                &holder[..holder.len().min(12)]
            )));
        }
        self.driver(&network)?.delete_network(&network)?;
        store.remove(&network.name)?;
        self.release_pool(&network);
        self.sync_names(&network);
        self.sync_firewall_locked(&store)?;
        Ok(network.name)
    }

    /// `network prune`: every user-defined network no container uses.
    pub fn prune_networks(&self) -> Result<Vec<String>, EngineError> {
        self.reconcile_networks();
        let mut removed = Vec::new();
        for network in self.networks().list() {
            if network.name == DEFAULT_NETWORK {
                continue;
            }
            if self.networks().claims(&network.name).is_empty()
                && self.remove_network(&network.name).is_ok()
            {
                removed.push(network.name);
            }
        }
        Ok(removed)
    }
}

//! What is kept about a network and about a container's place on it.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// Docker's driver option for the MTU of a network's interfaces.
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// The network Docker users get when they name none.
pub const DEFAULT_NETWORK: &str = "bridge";

/// A network as `network create` made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// `bridge`, or the name of a remote driver.
    pub driver: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// Where automatic addresses come from (inside `subnet`); `None`: all of it.
    pub ip_range: Option<Ipv4Net>,
    /// No way out: no NAT, no forwarding beyond the bridge.
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
    /// The Linux bridge's name (bridge driver).
    pub bridge: String,
    /// A remote IPAM driver (`--ipam-driver`), and the pool it gave.
    #[serde(default)]
    pub ipam_driver: Option<String>,
    #[serde(default)]
    pub ipam_pool: Option<String>,
}

impl NetworkRecord {
    /// Whether containers on it find each other by name (user-defined bridge networks
    /// do; the default `bridge` does not, as in Docker; names on networks of remote
    /// drivers are not served yet: the resolver listens on a bridge's gateway).
    pub fn has_names(&self) -> bool {
        self.name != DEFAULT_NETWORK && self.driver == "bridge"
    }

    /// `-o com.docker.network.driver.mtu=N`: the MTU of the network's interfaces.
    pub fn mtu(&self) -> Option<u32> {
        self.options.get(MTU_OPTION)?.parse().ok()
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// A container's attachment to one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network's name and id when it was joined.
    pub network: String,
    pub network_id: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// `02:42:...` as Docker shows it.
    pub mac: String,
    /// The interface inside (`eth0`, `eth1`...).
    pub interface: String,
    /// The veth's end on the host.
    pub host_interface: String,
    /// Names it answers to on this network besides the container's name.
    pub aliases: Vec<String>,
}

/// All a container's networking, kept in its directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The persistent network namespace (a bind mount), if the container has its own.
    pub netns: Option<String>,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<crate::ports::PortMapping>,
}

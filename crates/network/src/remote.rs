//! A network driver in another process, reached over Docker's remote driver protocol
//! (`NetworkDriver.*`): the plugin makes the network and hands over an interface for each
//! endpoint; bulwark moves it into the container's namespace and configures it, as
//! Docker's libnetwork does.
use std::os::fd::AsFd;
use std::path::Path;

use serde_json::{json, Value};

use crate::driver::Driver;
use crate::link::Netlink;
use crate::plugin::Plugin;
use crate::{ipam, netns, Endpoint, NetworkError, NetworkRecord};

#[derive(Debug)]
pub struct Remote {
    plugin: Plugin,
}

impl Remote {
    /// The plugin called `name`, activated as a network driver.
    pub fn connect(name: &str) -> Result<Remote, NetworkError> {
        let plugin = Plugin::find(name)?;
        plugin.activate("NetworkDriver")?;
        Ok(Remote { plugin })
    }
}

/// Docker's endpoint ids are 64 hex digits: the endpoint's host-side name (unique per
/// container and interface) and the network's id make one.
fn endpoint_id(network: &NetworkRecord, endpoint: &Endpoint) -> String {
    let own: String = endpoint
        .host_interface
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut id = own;
    id.push_str(&network.id);
    id.truncate(64);
    id
}

impl Driver for Remote {
    fn create_network(&self, network: &NetworkRecord) -> Result<(), NetworkError> {
        let body = json!({
            "NetworkID": network.id,
            "Options": {"com.docker.network.generic": network.options},
            "IPv4Data": [{
                "AddressSpace": "LocalDefault",
                "Pool": network.subnet.to_string(),
                "Gateway": format!("{}/{}", network.gateway, network.subnet.prefix_len()),
                "AuxAddresses": {},
            }],
            "IPv6Data": [],
        });
        self.plugin
            .call("/NetworkDriver.CreateNetwork", &body)
            .map(|_| ())
    }

    fn delete_network(&self, network: &NetworkRecord) -> Result<(), NetworkError> {
        self.plugin
            .call(
                "/NetworkDriver.DeleteNetwork",
                &json!({"NetworkID": network.id}),
            )
            .map(|_| ())
    }

    fn join(
        &self,
        network: &NetworkRecord,
        endpoint: &Endpoint,
        pinned: &Path,
    ) -> Result<(), NetworkError> {
        let ids = json!({"NetworkID": network.id, "EndpointID": endpoint_id(network, endpoint)});
        let mut create = ids.clone();
        create["Interface"] = json!({"Address": format!("{}/{}", endpoint.ip, endpoint.prefix), "AddressIPv6": "", "MacAddress": endpoint.mac});
        create["Options"] = json!({});
        self.plugin.call("/NetworkDriver.CreateEndpoint", &create)?;
        let joined = (|| {
            let mut join = ids.clone();
            join["SandboxKey"] = json!(pinned.display().to_string());
            join["Options"] = json!({});
            let answer = self.plugin.call("/NetworkDriver.Join", &join)?;
            self.take_interface(network, endpoint, pinned, &answer)
        })();
        if joined.is_err() {
            let _ = self.plugin.call("/NetworkDriver.Leave", &ids);
            let _ = self.plugin.call("/NetworkDriver.DeleteEndpoint", &ids);
        }
        joined
    }

    fn leave(&self, network: &NetworkRecord, endpoint: &Endpoint) -> Result<(), NetworkError> {
        let ids = json!({"NetworkID": network.id, "EndpointID": endpoint_id(network, endpoint)});
        let left = self.plugin.call("/NetworkDriver.Leave", &ids);
        let deleted = self.plugin.call("/NetworkDriver.DeleteEndpoint", &ids);
        left.and(deleted).map(|_| ())
    }
}

impl Remote {
    /// Moves the interface the plugin made into the namespace under the endpoint's name
    /// and gives it the endpoint's address, MAC and the route the plugin (or the
    /// network) names.
    fn take_interface(
        &self,
        network: &NetworkRecord,
        endpoint: &Endpoint,
        pinned: &Path,
        answer: &Value,
    ) -> Result<(), NetworkError> {
        let source = answer["InterfaceName"]["SrcName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                NetworkError::Other(format!(
                    "plugin {}: Join gave no InterfaceName.SrcName",
                    self.plugin.name
                ))
            })?;
        let gateway = match answer["Gateway"].as_str().filter(|g| !g.is_empty()) {
            Some(text) => Some(text.parse().map_err(|_| {
                NetworkError::Other(format!(
                    "plugin {}: Join gave Gateway {text:?}, not an IPv4 address",
                    self.plugin.name
                ))
            })?),
            None => (!network.internal).then_some(endpoint.gateway),
        };
        let mac = ipam::parse_mac(&endpoint.mac).ok_or_else(|| {
            NetworkError::Invalid(format!("invalid MAC address {:?}", endpoint.mac))
        })?;
        let fd = netns::open(pinned)?;
        Netlink::open()?.move_into(source, fd.as_fd(), &endpoint.interface, mac)?;
        let (iface, ip, prefix) = (endpoint.interface.clone(), endpoint.ip, endpoint.prefix);
        netns::inside(pinned, move || {
            Netlink::open()?.configure_inside(Some((&iface, ip, prefix, gateway)))
        })
    }
}

//! The bridge driver: a Linux bridge per network holding the gateway address, a veth
//! per container with its other end inside the container's namespace.
use std::path::Path;

use crate::driver::Driver;
use crate::link::Netlink;
use crate::{ipam, netns, Endpoint, NetworkError, NetworkRecord};

#[derive(Debug, Default)]
pub struct Bridge;

/// Writes a sysctl under /proc/sys if it does not hold `value` already.
fn sysctl(path: &str, value: &str) -> Result<(), NetworkError> {
    let full = Path::new("/proc/sys").join(path);
    if std::fs::read_to_string(&full)
        .map(|v| v.trim() == value)
        .unwrap_or(false)
    {
        return Ok(());
    }
    std::fs::write(&full, value).map_err(NetworkError::io("cannot set", &full))
}

impl Driver for Bridge {
    fn create_network(&self, network: &NetworkRecord) -> Result<(), NetworkError> {
        Netlink::open()?.ensure_bridge(
            &network.bridge,
            network.gateway,
            network.subnet.prefix_len(),
        )?;
        // Published ports answer on 127.0.0.1: the DNAT'd packet leaves through the
        // bridge with a loopback source, which the kernel drops unless this is on.
        sysctl(
            &format!("net/ipv4/conf/{}/route_localnet", network.bridge),
            "1",
        )?;
        if !network.internal {
            sysctl("net/ipv4/ip_forward", "1")?;
        }
        Ok(())
    }

    fn delete_network(&self, network: &NetworkRecord) -> Result<(), NetworkError> {
        Netlink::open()?.delete(&network.bridge)
    }

    fn join(
        &self,
        network: &NetworkRecord,
        endpoint: &Endpoint,
        pinned: &Path,
    ) -> Result<(), NetworkError> {
        let link = Netlink::open()?;
        if link.index(&network.bridge)?.is_none() {
            drop(link);
            self.create_network(network)?;
            return self.join(network, endpoint, pinned);
        }
        let mac = ipam::parse_mac(&endpoint.mac).ok_or_else(|| {
            NetworkError::Invalid(format!("invalid MAC address {:?}", endpoint.mac))
        })?;
        let fd = netns::open(pinned)?;
        use std::os::fd::AsFd;
        link.add_veth(
            &endpoint.host_interface,
            &network.bridge,
            fd.as_fd(),
            &endpoint.interface,
            mac,
            network.mtu(),
        )?;
        let (iface, ip, prefix) = (endpoint.interface.clone(), endpoint.ip, endpoint.prefix);
        let gateway = (!network.internal).then_some(endpoint.gateway);
        let configured = netns::inside(pinned, move || {
            Netlink::open()?.configure_inside(Some((&iface, ip, prefix, gateway)))
        });
        if configured.is_err() {
            let _ = link.delete(&endpoint.host_interface);
        }
        configured
    }

    fn leave(&self, _network: &NetworkRecord, endpoint: &Endpoint) -> Result<(), NetworkError> {
        Netlink::open()?.delete(&endpoint.host_interface)
    }
}

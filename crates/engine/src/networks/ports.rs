//! Published ports: host ports checked against every container's and against the host's
//! own sockets, or picked free; `port` shows them.
use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use bulwark_container::ContainerRecord;
use bulwark_network::ports::{self, PortMapping, PortRequest, Protocol};

use crate::{Engine, EngineError};

/// Whether the host could take `port` itself (nothing listens there).
fn free_on_host(ip: Option<Ipv4Addr>, port: u16, protocol: Protocol) -> bool {
    let ip = ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    match protocol {
        Protocol::Tcp => TcpListener::bind((ip, port)).is_ok(),
        Protocol::Udp => UdpSocket::bind((ip, port)).is_ok(),
    }
}

/// A port the host has free, chosen by the kernel as it chooses ephemeral ports.
fn pick_free(ip: Option<Ipv4Addr>, protocol: Protocol) -> Option<u16> {
    let ip = ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    match protocol {
        Protocol::Tcp => TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .ok()
            .map(|a| a.port()),
        Protocol::Udp => UdpSocket::bind((ip, 0))
            .and_then(|s| s.local_addr())
            .ok()
            .map(|a| a.port()),
    }
}

fn clash(a: &PortMapping, host_ip: Option<Ipv4Addr>, port: u16, protocol: Protocol) -> bool {
    a.host_port == port
        && a.protocol == protocol
        && (a.host_ip.is_none() || host_ip.is_none() || a.host_ip == host_ip)
}

impl Engine {
    /// The requests of `-p` and `-P` made into mappings; the caller holds the networks'
    /// lock, so no two containers get the same host port.
    pub(super) fn allocate_ports(
        &self,
        record: &ContainerRecord,
        _ip: Ipv4Addr,
    ) -> Result<Vec<PortMapping>, EngineError> {
        let mut requests: Vec<PortRequest> = Vec::new();
        for spec in &record.net.publish {
            requests.extend(ports::parse_publish(spec)?);
        }
        if record.net.publish_all {
            for exposed in ports::exposed(&record.net.exposed)? {
                if !requests.iter().any(|r| {
                    r.container_port == exposed.container_port && r.protocol == exposed.protocol
                }) {
                    requests.push(exposed);
                }
            }
        }
        let mut taken: Vec<(String, PortMapping)> = self
            .attachments()
            .into_iter()
            .filter(|(id, _)| *id != record.id)
            .flat_map(|(id, a)| a.ports.into_iter().map(move |p| (id.clone(), p)))
            .collect();
        let mut out = Vec::new();
        for request in requests {
            let port = match request.host_port {
                Some(port) => {
                    let shown = format!(
                        "{}:{port}",
                        request.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
                    );
                    if let Some((holder, _)) = taken
                        .iter()
                        .find(|(_, m)| clash(m, request.host_ip, port, request.protocol))
                    {
                        return Err(EngineError::Conflict(format!(
                            "Bind for {shown} failed: port is already allocated (to container {})",
                            &holder[..holder.len().min(12)]
                        )));
                    }
                    if !free_on_host(request.host_ip, port, request.protocol) {
                        return Err(EngineError::Conflict(format!(
                            "Bind for {shown}/{} failed: address already in use on the host (or not an address of the host)",
                            request.protocol.name()
                        )));
                    }
                    port
                }
                None => (0..100)
                    .filter_map(|_| pick_free(request.host_ip, request.protocol))
                    .find(|p| {
                        !taken
                            .iter()
                            .any(|(_, m)| clash(m, request.host_ip, *p, request.protocol))
                    })
                    .ok_or_else(|| {
                        EngineError::Conflict("no free host port to publish on".into())
                    })?,
            };
            let mapping = PortMapping {
                host_ip: request.host_ip,
                host_port: port,
                container_port: request.container_port,
                protocol: request.protocol,
            };
            taken.push((record.id.clone(), mapping));
            out.push(mapping);
        }
        Ok(out)
    }

    /// `port`: a container's published ports, optionally only `private` (`80` or
    /// `80/udp`).
    pub fn container_ports(
        &self,
        what: &str,
        private: Option<&str>,
    ) -> Result<Vec<PortMapping>, EngineError> {
        let dir = self.container(what)?;
        let mut mappings = super::join::read_attachment(&dir.dir)
            .map(|a| a.ports)
            .unwrap_or_default();
        if let Some(filter) = private {
            let (port, protocol) = match filter.split_once('/') {
                Some((p, "udp")) => (p, Protocol::Udp),
                Some((p, "tcp")) | Some((p, "")) => (p, Protocol::Tcp),
                None => (filter, Protocol::Tcp),
                Some(_) => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid port {filter:?}: expected PORT[/tcp|udp]"
                    )))
                }
            };
            let port: u16 = port.parse().map_err(|_| {
                EngineError::InvalidArgument(format!(
                    "invalid port {filter:?}: expected PORT[/tcp|udp]"
                ))
            })?;
            mappings.retain(|m| m.container_port == port && m.protocol == protocol);
            if mappings.is_empty() {
                return Err(EngineError::Conflict(format!(
                    "Error: No public port '{port}/{}' published for {}",
                    protocol.name(),
                    dir.short_id()
                )));
            }
        }
        mappings.sort();
        Ok(mappings)
    }
}

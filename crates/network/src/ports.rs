//! `-p`/`--publish`: `[ip:][hostPort:]containerPort[/tcp|udp]`, with ranges.
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::NetworkError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One published port as asked for: the host port may be left to us (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// One published port as set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortMapping {
    /// `None`: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl std::fmt::Display for PortMapping {
    /// As `docker port` prints it: `80/tcp -> 0.0.0.0:8080`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        write!(
            f,
            "{}/{} -> {ip}:{}",
            self.container_port,
            self.protocol.name(),
            self.host_port
        )
    }
}

/// Parses one `-p` value into one request per port (a range gives several).
pub fn parse_publish(spec: &str) -> Result<Vec<PortRequest>, NetworkError> {
    let bad = |why: &str| {
        NetworkError::Invalid(format!(
            "invalid -p/--publish {spec:?}: {why} (expected [ip:][hostPort:]containerPort[/tcp|udp], e.g. 8080:80 or 127.0.0.1:53:53/udp)"
        ))
    };
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Protocol::Tcp),
        Some((rest, "udp")) => (rest, Protocol::Udp),
        Some((_, other)) => return Err(bad(&format!("protocol {other:?} is not tcp or udp"))),
        None => (spec, Protocol::Tcp),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [ip, h, c] => (Some(*ip), Some(*h).filter(|h| !h.is_empty()), *c),
        _ => {
            return Err(bad(
                "too many colons (IPv6 host addresses are not supported yet)",
            ))
        }
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(text) => {
            let text = text.trim_start_matches('[').trim_end_matches(']');
            let ip: Ipv4Addr = text
                .parse()
                .map_err(|_| bad(&format!("host address {text:?} is not an IPv4 address")))?;
            (!ip.is_unspecified()).then_some(ip)
        }
    };
    let container = range(container).map_err(|why| bad(&format!("container port {why}")))?;
    let host = match host {
        None => None,
        Some(h) => Some(range(h).map_err(|why| bad(&format!("host port {why}")))?),
    };
    let count = container.1 - container.0 + 1;
    if let Some((lo, hi)) = host {
        // A host range may be wider than a single container port (Docker picks one);
        // otherwise the two ranges pair up port by port.
        if hi - lo + 1 != count && count != 1 {
            return Err(bad("host and container port ranges differ in length"));
        }
    }
    Ok((0..count)
        .map(|i| PortRequest {
            host_ip,
            host_port: host.map(|(lo, hi)| if hi > lo && count == 1 { lo } else { lo + i }),
            container_port: container.0 + i,
            protocol,
        })
        .collect())
}

fn range(text: &str) -> Result<(u16, u16), String> {
    let port = |t: &str| match t.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{t:?} is not a port number (1-65535)")),
        Ok(p) => Ok(p),
    };
    match text.split_once('-') {
        None => port(text).map(|p| (p, p)),
        Some((lo, hi)) => {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!("range {text:?} ends before it starts"));
            }
            Ok((lo, hi))
        }
    }
}

/// `EXPOSE` keys (`80/tcp`) as requests with a host port left to us (`-P`).
pub fn exposed(keys: &[String]) -> Result<Vec<PortRequest>, NetworkError> {
    let mut out = Vec::new();
    for key in keys {
        out.extend(parse_publish(key)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let one = parse_publish("8080:80").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].host_port, Some(8080));
        assert_eq!(one[0].container_port, 80);
        assert_eq!(one[0].protocol, Protocol::Tcp);
        let udp = parse_publish("127.0.0.1:53:53/udp").unwrap();
        assert_eq!(udp[0].host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(udp[0].protocol, Protocol::Udp);
        let random = parse_publish("80").unwrap();
        assert_eq!(random[0].host_port, None);
        let ip_only = parse_publish("127.0.0.1::80").unwrap();
        assert_eq!(
            (ip_only[0].host_port, ip_only[0].host_ip),
            (None, Some(Ipv4Addr::LOCALHOST))
        );
        let ranged = parse_publish("9000-9002:80-82").unwrap();
        assert_eq!(ranged.len(), 3);
        assert_eq!(
            (ranged[2].host_port, ranged[2].container_port),
            (Some(9002), 82)
        );
    }

    #[test]
    fn bad_specs_name_the_value() {
        for spec in [
            "",
            "x",
            "0:80",
            "80:0",
            "1:2:3:4",
            "80/sctp",
            "70000:80",
            "9-1:80",
            "1.2.3:80:80",
            "1-3:4-5",
        ] {
            let err = parse_publish(spec).unwrap_err().to_string();
            assert!(err.contains(&format!("{spec:?}")), "{spec}: {err}");
        }
    }

    #[test]
    fn shown_as_docker_does() {
        let m = PortMapping {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        assert_eq!(m.to_string(), "80/tcp -> 0.0.0.0:8080");
    }
}

//! The records file: which names this network's resolver answers itself, where it listens
//! and where it forwards everything else. Parsing and lookup only; no sockets.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

use crate::error::RecordsError;

/// The port used when the file names none, for `listen` and for upstreams.
pub const DNS_PORT: u16 = 53;

/// The file as the engine writes it, before validation.
#[derive(Debug, Deserialize)]
struct RawFile {
    listen: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default)]
    upstreams: Vec<String>,
    records: Vec<RawRecord>,
}

#[derive(Debug, Deserialize)]
struct RawRecord {
    names: Vec<String>,
    ip: String,
}

fn default_port() -> u16 {
    DNS_PORT
}

/// A validated records file: every name is a lower-case DNS name without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records {
    listen: SocketAddr,
    upstreams: Vec<SocketAddr>,
    by_name: HashMap<String, Vec<IpAddr>>,
    by_ip: HashMap<IpAddr, String>,
}

impl Records {
    /// Parses and validates the text of the records file at `path` (named in errors).
    pub fn parse(path: &Path, text: &[u8]) -> Result<Self, RecordsError> {
        let de = &mut serde_json::Deserializer::from_slice(text);
        let raw: RawFile = serde_path_to_error::deserialize(de).map_err(|err| {
            let field = match err.path().to_string() {
                dot if dot == "." => "(top level)".to_string(),
                field => field,
            };
            RecordsError::Syntax {
                path: path.to_path_buf(),
                field,
                message: err.into_inner().to_string(),
            }
        })?;
        let invalid = |field: String, value: &str, expected| RecordsError::Invalid {
            path: path.to_path_buf(),
            field,
            value: value.to_string(),
            expected,
        };
        let ip: IpAddr = raw
            .listen
            .parse()
            .map_err(|_| invalid("listen".into(), &raw.listen, "an IPv4 or IPv6 address"))?;
        if raw.port == 0 {
            return Err(invalid("port".into(), "0", "a port from 1 to 65535"));
        }
        let mut upstreams = Vec::with_capacity(raw.upstreams.len());
        for (i, text) in raw.upstreams.iter().enumerate() {
            let addr = parse_upstream(text).ok_or_else(|| {
                invalid(
                    format!("upstreams[{i}]"),
                    text,
                    "an address with an optional port, e.g. 10.0.0.53:53 or [fd00::53]:53",
                )
            })?;
            upstreams.push(addr);
        }
        let mut records = Self {
            listen: SocketAddr::new(ip, raw.port),
            upstreams,
            by_name: HashMap::new(),
            by_ip: HashMap::new(),
        };
        for (i, record) in raw.records.iter().enumerate() {
            let ip: IpAddr = record.ip.parse().map_err(|_| {
                invalid(
                    format!("records[{i}].ip"),
                    &record.ip,
                    "an IPv4 or IPv6 address",
                )
            })?;
            for (j, name) in record.names.iter().enumerate() {
                let key = normalize_name(name).ok_or_else(|| {
                    invalid(
                        format!("records[{i}].names[{j}]"),
                        name,
                        "a DNS name: labels of 1-63 letters, digits, '-' or '_' joined by '.'",
                    )
                })?;
                let ips = records.by_name.entry(key.clone()).or_default();
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
                if j == 0 {
                    records.by_ip.entry(ip).or_insert(key);
                }
            }
        }
        Ok(records)
    }

    /// Where the resolver listens, on both UDP and TCP.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The servers asked, in order, about names this file does not hold.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// The addresses of `name`, which must already be lower case without a trailing dot.
    pub fn addresses(&self, name: &str) -> Option<&[IpAddr]> {
        self.by_name.get(name).map(Vec::as_slice)
    }

    /// The first name of the first record holding `ip`, for reverse (PTR) lookups.
    pub fn name_of(&self, ip: IpAddr) -> Option<&str> {
        self.by_ip.get(&ip).map(String::as_str)
    }
}

/// `ip:port`, `[ip6]:port` or a bare address meaning port 53.
fn parse_upstream(text: &str) -> Option<SocketAddr> {
    text.parse()
        .ok()
        .or_else(|| text.parse().ok().map(|ip| SocketAddr::new(ip, DNS_PORT)))
        .filter(|addr: &SocketAddr| addr.port() != 0)
}

/// Lower-cases `name` and drops one trailing dot; `None` when it is not a DNS host name.
pub fn normalize_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels_ok = name.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    (labels_ok && name.len() <= 253).then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;

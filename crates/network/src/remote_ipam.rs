//! An IPAM driver in another process (`IpamDriver.*` of Docker's remote driver protocol):
//! it hands out a network's pool and gateway and each container's address; bulwark still
//! claims each address on disk so that `leave` knows what to give back.
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::json;

use crate::plugin::Plugin;
use crate::NetworkError;

#[derive(Debug)]
pub struct RemoteIpam {
    plugin: Plugin,
}

/// What `RequestPool` gave.
#[derive(Debug, Clone)]
pub struct Pool {
    pub id: String,
    pub subnet: Ipv4Net,
}

fn address(plugin: &str, text: &str) -> Result<Ipv4Addr, NetworkError> {
    let ip = text.split('/').next().unwrap_or_default();
    ip.parse().map_err(|_| {
        NetworkError::Other(format!(
            "IPAM plugin {plugin} gave {text:?}, not an IPv4 address"
        ))
    })
}

impl RemoteIpam {
    pub fn connect(name: &str) -> Result<RemoteIpam, NetworkError> {
        let plugin = Plugin::find(name)?;
        plugin.activate("IpamDriver")?;
        Ok(RemoteIpam { plugin })
    }

    /// A pool: `subnet` if given, else the plugin's choice; `range` as the sub-pool.
    pub fn request_pool(
        &self,
        subnet: Option<&str>,
        range: Option<&str>,
    ) -> Result<Pool, NetworkError> {
        let spaces = self
            .plugin
            .call("/IpamDriver.GetDefaultAddressSpaces", &json!({}))?;
        let space = spaces["LocalDefaultAddressSpace"]
            .as_str()
            .unwrap_or("local")
            .to_owned();
        let body = json!({"AddressSpace": space, "Pool": subnet.unwrap_or(""), "SubPool": range.unwrap_or(""), "Options": {}, "V6": false});
        let answer = self.plugin.call("/IpamDriver.RequestPool", &body)?;
        let id = answer["PoolID"]
            .as_str()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                NetworkError::Other(format!(
                    "IPAM plugin {}: RequestPool gave no PoolID",
                    self.plugin.name
                ))
            })?;
        let pool = answer["Pool"].as_str().unwrap_or_default();
        let subnet: Ipv4Net = pool.parse().map_err(|_| {
            NetworkError::Other(format!(
                "IPAM plugin {}: RequestPool gave Pool {pool:?}, not an IPv4 network",
                self.plugin.name
            ))
        })?;
        Ok(Pool {
            id: id.to_owned(),
            subnet: subnet.trunc(),
        })
    }

    /// An address from `pool` (`wanted` if given; the gateway's when `gateway`).
    pub fn request_address(
        &self,
        pool: &str,
        wanted: Option<Ipv4Addr>,
        gateway: bool,
    ) -> Result<Ipv4Addr, NetworkError> {
        let mut options = serde_json::Map::new();
        if gateway {
            options.insert(
                "RequestAddressType".into(),
                json!("com.docker.network.gateway"),
            );
        }
        let body = json!({"PoolID": pool, "Address": wanted.map(|w| w.to_string()).unwrap_or_default(), "Options": options});
        let answer = self.plugin.call("/IpamDriver.RequestAddress", &body)?;
        address(
            &self.plugin.name,
            answer["Address"].as_str().unwrap_or_default(),
        )
    }

    pub fn release_address(&self, pool: &str, ip: Ipv4Addr) -> Result<(), NetworkError> {
        self.plugin
            .call(
                "/IpamDriver.ReleaseAddress",
                &json!({"PoolID": pool, "Address": ip.to_string()}),
            )
            .map(|_| ())
    }

    pub fn release_pool(&self, pool: &str) -> Result<(), NetworkError> {
        self.plugin
            .call("/IpamDriver.ReleasePool", &json!({"PoolID": pool}))
            .map(|_| ())
    }
}

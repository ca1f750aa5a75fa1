//! `network connect` and `network disconnect`: a container with a network namespace of
//! its own gains or loses an interface on another network, running or not.
use std::path::Path;

use bulwark_network::{ipam, Endpoint};

use super::join::{read_attachment, write_attachment};
use crate::{Engine, EngineError};

impl Engine {
    /// `network connect [--ip IP] [--alias NAME]... NETWORK CONTAINER`.
    pub fn connect_network(
        &self,
        network: &str,
        container: &str,
        ip: Option<&str>,
        aliases: &[String],
    ) -> Result<(), EngineError> {
        let dir = self.container(container)?;
        let _lock = dir.lock()?;
        let network = self.network(network)?;
        let mut attachment = read_attachment(&dir.dir).unwrap_or_default();
        let Some(pinned) = attachment.netns.clone() else {
            return Err(EngineError::Conflict(format!(
                "container {} has no network namespace of its own (--network none, host or container:): it cannot be connected to a network",
                dir.short_id()
            )));
        };
        if attachment
            .endpoints
            .iter()
            .any(|e| e.network_id == network.id)
        {
            return Err(EngineError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                dir.record()?.name,
                network.name
            )));
        }
        let mut record = dir.record()?;
        record.net.ip = ip.map(str::to_owned);
        if ip.is_some() {
            self.check_network(&network.name, &record.net)?;
        }
        let store = self.networks();
        let address = self.claim_address(&store, &network, &record)?;
        let index = (0..16u8)
            .find(|n| {
                !attachment
                    .endpoints
                    .iter()
                    .any(|e| e.interface == format!("eth{n}"))
            })
            .ok_or_else(|| {
                EngineError::Conflict("a container has at most 16 network interfaces".into())
            })?;
        let endpoint = Endpoint {
            network: network.name.clone(),
            network_id: network.id.clone(),
            ip: address,
            prefix: network.subnet.prefix_len(),
            gateway: network.gateway,
            mac: ipam::format_mac(&ipam::mac_for(address)),
            interface: format!("eth{index}"),
            host_interface: format!("vb{}{index:x}", &dir.id[..11]),
            aliases: aliases.to_vec(),
        };
        attachment.endpoints.push(endpoint.clone());
        write_attachment(&dir, &attachment)?;
        if let Err(e) = self
            .driver(&network)?
            .join(&network, &endpoint, Path::new(&pinned))
        {
            attachment.endpoints.retain(|x| x.network_id != network.id);
            let _ = write_attachment(&dir, &attachment);
            self.release_addresses(&store, &network, &dir.id);
            return Err(e.into());
        }
        self.sync_names(&network);
        // A container that had no resolver of a network (the default bridge's) asks
        // this network's from now on, so the names on it resolve.
        if network.has_names() && record.net.dns.is_empty() {
            let first_named = attachment.endpoints.iter().find_map(|e| {
                let n = store.get(&e.network_id).ok()?;
                n.has_names().then_some(n.gateway)
            });
            if first_named == Some(network.gateway) {
                let text = bulwark_network::files::resolv_conf(
                    &bulwark_network::files::HostResolv::read(),
                    &Default::default(),
                    Some(network.gateway),
                    false,
                );
                // In place: the file is bind-mounted into the container by inode.
                let path = dir.dir.join("resolv.conf");
                std::fs::write(&path, text)
                    .map_err(|e| EngineError::Other(format!("{}: {e}", path.display())))?;
            }
        }
        Ok(())
    }

    /// `network disconnect NETWORK CONTAINER`.
    pub fn disconnect_network(&self, network: &str, container: &str) -> Result<(), EngineError> {
        let dir = self.container(container)?;
        let _lock = dir.lock()?;
        let network = self.networks().get(network)?;
        let mut attachment = read_attachment(&dir.dir).unwrap_or_default();
        let Some(endpoint) = attachment
            .endpoints
            .iter()
            .find(|e| e.network_id == network.id)
            .cloned()
        else {
            return Err(EngineError::Conflict(format!(
                "container {} is not connected to network {}",
                dir.short_id(),
                network.name
            )));
        };
        self.driver(&network)?.leave(&network, &endpoint)?;
        attachment.endpoints.retain(|e| e.network_id != network.id);
        write_attachment(&dir, &attachment)?;
        self.release_addresses(&self.networks(), &network, &dir.id);
        if !attachment.ports.is_empty() {
            let store = self.networks();
            let _lock = store.lock()?;
            self.sync_firewall_locked(&store)?;
        }
        self.sync_names(&network);
        Ok(())
    }
}

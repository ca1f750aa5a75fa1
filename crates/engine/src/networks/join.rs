//! A container's place on its network: its network namespace, its endpoint (address,
//! MAC, veth), its published ports and its `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf`. What `join` made is written to `network.json` in the container's
//! directory before it is made, so `leave` (on `rm`, or when a killed `create` is
//! collected) finds and removes all of it.
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use bulwark_container::{ContainerDir, ContainerRecord};
use bulwark_network::files::{self, DnsConfig, HostResolv};
use bulwark_network::firewall::{self, Published};
use bulwark_network::store::Networks;
use bulwark_network::{ipam, netns, Attachment, Endpoint, NetworkRecord};

use crate::{Engine, EngineError};

/// What the container's OCI config needs from its network.
#[derive(Debug, Clone, Default)]
pub struct NetFiles {
    /// The network namespace to join (none: the runtime makes a new one, or `host`).
    pub netns: Option<PathBuf>,
    /// The directory holding `hosts`, `hostname` and `resolv.conf` to bind in.
    pub etc: Option<PathBuf>,
}

const ATTACHMENT: &str = "network.json";

pub(super) fn write_attachment(
    dir: &ContainerDir,
    attachment: &Attachment,
) -> Result<(), EngineError> {
    let text = serde_json::to_vec_pretty(attachment).expect("an attachment serializes");
    Ok(bulwark_container::write_atomic(
        &dir.dir.join(ATTACHMENT),
        &text,
    )?)
}

pub(crate) fn read_attachment(dir: &Path) -> Option<Attachment> {
    serde_json::from_slice(&std::fs::read(dir.join(ATTACHMENT)).ok()?).ok()
}

fn invalid(flag: &str, value: &str, expected: &str) -> EngineError {
    EngineError::InvalidArgument(format!("invalid {flag} {value:?}: expected {expected}"))
}

impl Engine {
    /// Checks the networking flags before anything is made, and names the mode:
    /// `bridge` (or another network), `none`, `host` or `container:ID`.
    pub(crate) fn check_network(
        &self,
        record_network: &str,
        net: &bulwark_container::NetworkSettings,
    ) -> Result<String, EngineError> {
        for spec in &net.publish {
            bulwark_network::ports::parse_publish(spec)?;
        }
        for (flag, values) in [("--dns", &net.dns)] {
            for v in values {
                v.parse::<IpAddr>()
                    .map_err(|_| invalid(flag, v, "an IP address"))?;
            }
        }
        if let Some(mac) = &net.mac {
            ipam::parse_mac(mac).ok_or_else(|| {
                invalid(
                    "--mac-address",
                    mac,
                    "a unicast MAC address such as 02:42:ac:11:00:02",
                )
            })?;
        }
        for host in &net.extra_hosts {
            files::parse_add_host(host, Some(Ipv4Addr::UNSPECIFIED))?;
        }
        let mode = match record_network {
            "none" | "host" => record_network.to_owned(),
            "pasta" => {
                if !self.config.rootless {
                    return Err(EngineError::InvalidArgument("--network pasta is for rootless containers (as root, bridge networks do its work)".into()));
                }
                if bulwark_network::pasta::program().is_none() {
                    return Err(EngineError::InvalidArgument(
                        "--network pasta: pasta is not installed (Debian's passt package)".into(),
                    ));
                }
                "pasta".to_owned()
            }
            other if other.starts_with("container:") => {
                let target = self.container(&other["container:".len()..])?;
                format!("container:{}", target.id)
            }
            name => {
                if self.config.rootless {
                    return Err(EngineError::Rootless(format!("--network {name}: bridge networks need root (pasta is not supported yet; use --network none or host)")));
                }
                let network = self.network(name)?;
                if let Some(ip) = &net.ip {
                    let ip: Ipv4Addr = ip
                        .parse()
                        .map_err(|_| invalid("--ip", ip, "an IPv4 address"))?;
                    if !network.has_names() {
                        return Err(EngineError::InvalidArgument("--ip: user specified IP address is supported on user defined networks only".into()));
                    }
                    if !network.subnet.contains(&ip)
                        || ip == network.gateway
                        || ip == network.subnet.network()
                        || ip == network.subnet.broadcast()
                    {
                        return Err(invalid(
                            "--ip",
                            &ip.to_string(),
                            &format!("a free host address of subnet {}", network.subnet),
                        ));
                    }
                }
                network.name
            }
        };
        let joined =
            !matches!(mode.as_str(), "none" | "host" | "pasta") && !mode.starts_with("container:");
        // -P with no network of its own publishes nothing (the image's EXPOSE stays).
        if !joined && mode != "pasta" && !net.publish.is_empty() {
            return Err(EngineError::InvalidArgument(format!(
                "-p/--publish: ports cannot be published with --network {record_network}"
            )));
        }
        if !joined && (net.ip.is_some() || !net.aliases.is_empty() || net.mac.is_some()) {
            return Err(EngineError::InvalidArgument(format!("--ip, --network-alias and --mac-address need a bridge network, not --network {record_network}")));
        }
        Ok(mode)
    }

    /// Connects a new container as its record says. On failure the caller discards the
    /// container, which undoes all of it (`leave`).
    pub(crate) fn join(
        &self,
        record: &ContainerRecord,
        dir: &ContainerDir,
    ) -> Result<NetFiles, EngineError> {
        let mode = record.network.as_str();
        if mode == "host" {
            return Ok(NetFiles::default());
        }
        if let Some(target) = mode.strip_prefix("container:") {
            return self.joined_to(target);
        }
        let host = HostResolv::read();
        let dns = DnsConfig {
            servers: record
                .net
                .dns
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            search: record.net.dns_search.clone(),
            options: record.net.dns_options.clone(),
        };
        if mode == "pasta" {
            return self.join_pasta(record, dir, &host, &dns);
        }
        if mode == "none" {
            self.write_etc(dir, record, None, None, &host, &dns)?;
            return Ok(NetFiles {
                netns: None,
                etc: Some(dir.dir.clone()),
            });
        }
        let network = self.network(mode)?;
        let store = self.networks();
        let ip = self.claim_address(&store, &network, record)?;
        let mac = match &record.net.mac {
            Some(text) => ipam::parse_mac(text).expect("checked by check_network"),
            None => ipam::mac_for(ip),
        };
        let pinned = self.netns_dir().join(&record.id);
        let endpoint = Endpoint {
            network: network.name.clone(),
            network_id: network.id.clone(),
            ip,
            prefix: network.subnet.prefix_len(),
            gateway: network.gateway,
            mac: ipam::format_mac(&mac),
            interface: "eth0".into(),
            host_interface: format!("vb{}0", &record.id[..11]),
            aliases: record.net.aliases.clone(),
        };
        let mut attachment = Attachment {
            netns: Some(pinned.display().to_string()),
            endpoints: vec![endpoint.clone()],
            ports: Vec::new(),
        };
        write_attachment(dir, &attachment)?;
        netns::create(&pinned)?;
        // A bridge that is gone (the host rebooted) took the rules with it: the join
        // makes the bridge again, and the rules are rebuilt below.
        let lost = network.driver == "bridge"
            && bulwark_network::link::Netlink::open()?
                .index(&network.bridge)?
                .is_none();
        self.driver(&network)?.join(&network, &endpoint, &pinned)?;
        let publishes = !record.net.publish.is_empty() || record.net.publish_all;
        if publishes || lost {
            let _lock = store.lock()?;
            if publishes {
                attachment.ports = self.allocate_ports(record, ip)?;
                write_attachment(dir, &attachment)?;
            }
            self.sync_firewall_locked(&store)?;
        }
        let resolver = network.has_names().then_some(network.gateway);
        self.write_etc(dir, record, Some(ip), resolver, &host, &dns)?;
        self.sync_names(&network);
        Ok(NetFiles {
            netns: Some(pinned),
            etc: Some(dir.dir.clone()),
        })
    }

    /// Without root: a namespace of the container's own that pasta connects to the host
    /// through the user's sockets, with `-p` forwarded by pasta.
    fn join_pasta(
        &self,
        record: &ContainerRecord,
        dir: &ContainerDir,
        host: &HostResolv,
        dns: &DnsConfig,
    ) -> Result<NetFiles, EngineError> {
        let pinned = self.netns_dir().join(&record.id);
        let mut attachment = Attachment {
            netns: Some(pinned.display().to_string()),
            endpoints: Vec::new(),
            ports: Vec::new(),
        };
        write_attachment(dir, &attachment)?;
        netns::create(&pinned)?;
        if !record.net.publish.is_empty() || record.net.publish_all {
            let store = self.networks();
            let _lock = store.lock()?;
            attachment.ports = self.allocate_ports(record, Ipv4Addr::UNSPECIFIED)?;
            write_attachment(dir, &attachment)?;
        }
        bulwark_network::pasta::start(
            &pinned,
            &attachment.ports,
            &dir.dir.join("pasta.log"),
            &dir.dir.join("pasta.pid"),
        )?;
        self.write_etc(dir, record, None, None, host, dns)?;
        Ok(NetFiles {
            netns: Some(pinned),
            etc: Some(dir.dir.clone()),
        })
    }

    /// `--network container:ID`: that container's namespace and files.
    fn joined_to(&self, target: &str) -> Result<NetFiles, EngineError> {
        let other = self.containers().dir(target);
        let attachment = read_attachment(&other.dir).unwrap_or_default();
        let netns = match attachment.netns {
            Some(path) => PathBuf::from(path),
            None => {
                let state = other.state()?;
                if !state.is_live() || state.pid <= 0 {
                    return Err(EngineError::Conflict(format!(
                        "cannot join network namespace of container {}: it is not running and has no network namespace of its own",
                        other.short_id()
                    )));
                }
                PathBuf::from(format!("/proc/{}/ns/net", state.pid))
            }
        };
        let etc = other.dir.join("hosts").exists().then(|| other.dir.clone());
        Ok(NetFiles {
            netns: Some(netns),
            etc,
        })
    }

    pub(super) fn claim_address(
        &self,
        store: &Networks,
        network: &NetworkRecord,
        record: &ContainerRecord,
    ) -> Result<Ipv4Addr, EngineError> {
        let wanted: Option<Ipv4Addr> = match &record.net.ip {
            Some(text) => Some(
                text.parse()
                    .map_err(|_| invalid("--ip", text, "an IPv4 address"))?,
            ),
            None => None,
        };
        if let (Some(name), Some(pool)) = (&network.ipam_driver, &network.ipam_pool) {
            let plugin = bulwark_network::remote_ipam::RemoteIpam::connect(name)?;
            let ip = plugin.request_address(pool, wanted, false)?;
            if !store.claim(&network.name, ip, &record.id)? {
                return Err(EngineError::Conflict(format!(
                    "IPAM plugin {name} gave {ip}, which a container on network {} holds",
                    network.name
                )));
            }
            return Ok(ip);
        }
        if let Some(ip) = wanted {
            return match store.claim(&network.name, ip, &record.id)? {
                true => Ok(ip),
                false => Err(EngineError::Conflict(format!(
                    "--ip {ip}: Address already in use on network {}",
                    network.name
                ))),
            };
        }
        for candidate in ipam::candidates(network.subnet, network.ip_range, network.gateway) {
            if store.claim(&network.name, candidate, &record.id)? {
                return Ok(candidate);
            }
        }
        Err(EngineError::Conflict(format!(
            "no available IPv4 addresses on network {} ({})",
            network.name, network.subnet
        )))
    }

    /// Gives back what `id` holds on `network`: the claims, and a remote IPAM driver's
    /// addresses.
    pub(super) fn release_addresses(&self, store: &Networks, network: &NetworkRecord, id: &str) {
        if let (Some(name), Some(pool)) = (&network.ipam_driver, &network.ipam_pool) {
            if let Ok(plugin) = bulwark_network::remote_ipam::RemoteIpam::connect(name) {
                for (ip, holder) in store.claims(&network.name) {
                    if holder == id {
                        let _ = plugin.release_address(pool, ip);
                    }
                }
            }
        }
        store.release(&network.name, id);
    }

    fn write_etc(
        &self,
        dir: &ContainerDir,
        record: &ContainerRecord,
        ip: Option<Ipv4Addr>,
        resolver: Option<Ipv4Addr>,
        host: &HostResolv,
        dns: &DnsConfig,
    ) -> Result<(), EngineError> {
        let gateway =
            read_attachment(&dir.dir).and_then(|a| a.endpoints.first().map(|e| e.gateway));
        let extra: Vec<(String, IpAddr)> = record
            .net
            .extra_hosts
            .iter()
            .map(|h| files::parse_add_host(h, gateway))
            .collect::<Result<_, _>>()?;
        let hosts = files::hosts(&record.run.hostname, ip, &extra);
        let resolv = files::resolv_conf(host, dns, resolver, false);
        for (name, text) in [
            ("hosts", hosts),
            ("hostname", format!("{}\n", record.run.hostname)),
            ("resolv.conf", resolv),
        ] {
            bulwark_container::write_atomic(&dir.dir.join(name), text.as_bytes())?;
            let path = dir.dir.join(name);
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| EngineError::Other(format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Undoes `join`: the veths, addresses, published ports, names and namespace of a
    /// container. Repeatable; each step tolerates what is already gone.
    pub(crate) fn leave(&self, dir: &ContainerDir) {
        let attachment = read_attachment(&dir.dir);
        let store = self.networks();
        let mut touched = Vec::new();
        if let Some(attachment) = &attachment {
            for endpoint in &attachment.endpoints {
                if let Ok(network) = store.get(&endpoint.network) {
                    // A bridge's veth goes with the namespace, which the kernel destroys
                    // in the background once unpinned below (and its processes gone):
                    // deleting it here would wait for the kernel's RCU grace periods,
                    // 15-35 ms of every `rm`. Remote drivers are told to leave.
                    let with_namespace = network.driver == "bridge" && attachment.netns.is_some();
                    if let (false, Ok(driver)) = (with_namespace, self.driver(&network)) {
                        let _ = driver.leave(&network, endpoint);
                    }
                    touched.push(network);
                }
            }
            if let Some(pinned) = &attachment.netns {
                bulwark_network::pasta::stop(&dir.dir.join("pasta.pid"), Path::new(pinned));
                netns::remove(Path::new(pinned));
            }
        }
        // Claims are found by holder too: a create killed before it wrote network.json.
        for network in store.list() {
            self.release_addresses(&store, &network, &dir.id);
        }
        let _ = std::fs::remove_file(dir.dir.join(ATTACHMENT));
        if !self.config.rootless && attachment.as_ref().is_some_and(|a| !a.ports.is_empty()) {
            if let Ok(_lock) = store.lock() {
                let _ = self.sync_firewall_locked(&store);
            }
        }
        for network in touched {
            self.sync_names(&network);
        }
    }

    /// Makes again what a reboot took (the namespace pinned under /run, its interfaces,
    /// the bridge, the rules), keeping the container's addresses.
    pub(crate) fn restore_network(&self, dir: &ContainerDir) -> Result<(), EngineError> {
        let Some(attachment) = read_attachment(&dir.dir) else {
            return Ok(());
        };
        let Some(pinned) = attachment.netns.as_deref().map(Path::new) else {
            return Ok(());
        };
        if netns::is_pinned(pinned) {
            return Ok(());
        }
        netns::create(pinned)?;
        if dir.record()?.network == "pasta" {
            let log = dir.dir.join("pasta.log");
            bulwark_network::pasta::start(
                pinned,
                &attachment.ports,
                &log,
                &dir.dir.join("pasta.pid"),
            )?;
            return Ok(());
        }
        let store = self.networks();
        for endpoint in &attachment.endpoints {
            let network = store.get(&endpoint.network_id)?;
            let driver = self.driver(&network)?;
            driver.create_network(&network)?;
            let _ = driver.leave(&network, endpoint);
            driver.join(&network, endpoint, pinned)?;
            self.sync_names(&network);
        }
        let _lock = store.lock()?;
        self.sync_firewall_locked(&store)?;
        Ok(())
    }

    /// The containers on `network`: id, name and endpoint.
    pub(crate) fn members(&self, network: &NetworkRecord) -> Vec<(String, String, Endpoint)> {
        let mut out = Vec::new();
        for (id, attachment) in self.attachments() {
            let name = self
                .containers()
                .dir(&id)
                .record()
                .map(|r| r.name)
                .unwrap_or_default();
            for e in attachment
                .endpoints
                .into_iter()
                .filter(|e| e.network_id == network.id)
            {
                out.push((id.clone(), name.clone(), e));
            }
        }
        out
    }

    /// Every container's attachment, by container id.
    pub(crate) fn attachments(&self) -> Vec<(String, Attachment)> {
        let containers = self.containers();
        containers
            .ids()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| {
                let attachment = read_attachment(&containers.dir(&id).dir)?;
                Some((id, attachment))
            })
            .collect()
    }

    /// Rebuilds the nftables rules from what is on disk; the caller holds the networks'
    /// lock.
    pub(crate) fn sync_firewall_locked(
        &self,
        store: &Networks,
    ) -> Result<(), bulwark_network::NetworkError> {
        let networks: Vec<NetworkRecord> = store
            .list()
            .into_iter()
            .filter(|n| n.driver == "bridge")
            .collect();
        let table = self.host_names().0;
        if networks.is_empty() {
            return firewall::clear(&table);
        }
        let mut published = Vec::new();
        for (_, attachment) in self.attachments() {
            let Some(endpoint) = attachment.endpoints.first() else {
                continue;
            };
            for mapping in &attachment.ports {
                published.push(Published {
                    container_ip: endpoint.ip,
                    mapping: *mapping,
                });
            }
        }
        firewall::apply(&table, &networks, &published)
    }

    /// Finishes what killed commands left on the networks: addresses held by containers
    /// that are gone, pinned namespaces without a container, and the firewall.
    pub fn reconcile_networks(&self) {
        let containers = self.containers();
        let store = self.networks();
        store.reconcile(&|id| containers.dir(id).dir.exists());
        if let Ok(entries) = std::fs::read_dir(self.netns_dir()) {
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                if !containers.dir(&id).dir.exists() {
                    netns::remove(&entry.path());
                    if let Ok(link) = bulwark_network::link::Netlink::open() {
                        for n in 0..16 {
                            let _ = link.delete(&format!("vb{}{n:x}", &id[..id.len().min(11)]));
                        }
                    }
                }
            }
        }
        if !self.config.rootless {
            if let Ok(_lock) = store.lock() {
                let _ = self.sync_firewall_locked(&store);
            }
        }
    }
}

impl Engine {
    /// `inspect`'s `NetworkSettings`, in Docker's shape.
    pub(crate) fn network_settings(
        &self,
        dir: &ContainerDir,
        record: &ContainerRecord,
    ) -> serde_json::Value {
        use serde_json::json;
        let attachment = read_attachment(&dir.dir).unwrap_or_default();
        let mut ports = serde_json::Map::new();
        for m in &attachment.ports {
            let key = format!("{}/{}", m.container_port, m.protocol.name());
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(json!({"HostIp": m.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()), "HostPort": m.host_port.to_string()}));
            }
        }
        let mut networks = serde_json::Map::new();
        for e in &attachment.endpoints {
            let mut names = vec![record.name.clone(), dir.id[..12].to_owned()];
            names.extend(e.aliases.iter().cloned());
            networks.insert(
                e.network.clone(),
                json!({
                    "IPAMConfig": record.net.ip.as_ref().map(|ip| json!({"IPv4Address": ip})),
                    "Aliases": e.aliases,
                    "MacAddress": e.mac,
                    "NetworkID": e.network_id,
                    "EndpointID": e.host_interface,
                    "Gateway": e.gateway.to_string(),
                    "IPAddress": e.ip.to_string(),
                    "IPPrefixLen": e.prefix,
                    "DNSNames": names,
                }),
            );
        }
        if attachment.endpoints.is_empty() && !record.network.starts_with("container:") {
            networks.insert(record.network.clone(), json!({}));
        }
        let primary = attachment
            .endpoints
            .first()
            .filter(|e| e.network == bulwark_network::DEFAULT_NETWORK);
        json!({
            "SandboxKey": attachment.netns.unwrap_or_default(),
            "Ports": ports,
            "Gateway": primary.map(|e| e.gateway.to_string()).unwrap_or_default(),
            "IPAddress": primary.map(|e| e.ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": primary.map(|e| e.prefix).unwrap_or(0),
            "MacAddress": primary.map(|e| e.mac.clone()).unwrap_or_default(),
            "Networks": networks,
        })
    }
}

//! Names on user-defined networks: a resolver process per network (`bulwark-dns`) on the
//! network's gateway address answers with the addresses of the containers on it, found
//! by name, alias or short id, and forwards other names to the host's resolvers. Its
//! records file is rewritten whenever a container joins or leaves; it exits when the file
//! goes (no container left, or the network removed).
use std::path::PathBuf;

use bulwark_container::FileLock;
use bulwark_network::files::HostResolv;
use bulwark_network::NetworkRecord;
use serde_json::json;

use crate::Engine;

impl Engine {
    fn records_path(&self, network: &NetworkRecord) -> PathBuf {
        self.config
            .runtime_root
            .join("dns")
            .join(format!("{}.json", network.id))
    }

    /// Rewrites `network`'s records and starts its resolver if none runs; removes the
    /// records (stopping the resolver) when no container is left on it.
    pub(crate) fn sync_names(&self, network: &NetworkRecord) {
        if !network.has_names() {
            return;
        }
        let path = self.records_path(network);
        let mut records = Vec::new();
        for (id, name, e) in self.members(network) {
            let mut names: Vec<String> = vec![id[..12].to_owned()];
            if !name.is_empty() {
                names.insert(0, name);
            }
            names.extend(e.aliases);
            records.push(json!({"names": names, "ip": e.ip.to_string()}));
        }
        let still_there = self.networks().get(&network.id).is_ok();
        if records.is_empty() || !still_there {
            let _ = std::fs::remove_file(&path);
            return;
        }
        let upstreams: Vec<String> = HostResolv::read()
            .servers
            .iter()
            .map(|ip| match ip {
                std::net::IpAddr::V4(v4) => format!("{v4}:53"),
                std::net::IpAddr::V6(v6) => format!("[{v6}]:53"),
            })
            .collect();
        let text = json!({"listen": network.gateway.to_string(), "port": 53, "upstreams": upstreams, "records": records});
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        }
        if bulwark_container::write_atomic(&path, &serde_json::to_vec_pretty(&text).expect("json"))
            .is_err()
        {
            return;
        }
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
        }
        self.ensure_resolver(&path, network.gateway);
    }

    /// Starts `bulwark-dns` for `records` unless one holds its lock, and waits until one
    /// does (so the container's first lookup finds it).
    fn ensure_resolver(&self, records: &std::path::Path, listen: std::net::Ipv4Addr) {
        let lock = PathBuf::from(format!("{}.lock", records.display()));
        if FileLock::is_held(&lock) {
            return;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(records.with_extension("log"));
        let mut command = std::process::Command::new(&self.config.resolver);
        command
            .arg("--records")
            .arg(records)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .process_group(0);
        if let Ok(log) = log {
            command.stderr(log);
        }
        use std::os::unix::process::CommandExt;
        if command.spawn().is_err() {
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline && !udp_bound(listen, 53) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Whether a UDP socket of this network namespace is bound to `ip:port`
/// (`/proc/net/udp` shows addresses as the kernel holds them, in hex).
fn udp_bound(ip: std::net::Ipv4Addr, port: u16) -> bool {
    let wanted = format!("{:08X}:{port:04X}", u32::from_le_bytes(ip.octets()));
    std::fs::read_to_string("/proc/net/udp")
        .map(|table| {
            table
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(wanted.as_str()))
        })
        .unwrap_or(false)
}

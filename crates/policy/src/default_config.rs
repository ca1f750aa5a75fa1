//! A starting config.json from a policy profile (`policy/profiles/`, see
//! [`crate::profiles`]), as `bulwark-runtime spec` writes it and the engine starts its
//! containers from. The default, `hardened`, is stricter
//! than Docker: a user namespace whose root is an unprivileged host id (with the rootfs
//! idmapped, so a root-owned image works unchanged), a cgroup namespace, a seccomp
//! allow-list, fewer capabilities, no_new_privs, more masked paths and a pids limit.
//! `--profile docker` writes Docker's defaults for images that need exactly those.
use std::path::Path;

use serde_json::{json, Value};

use crate::profiles::{self, Profile};
use crate::PolicyError;

/// Where the hardened profile maps the container's ids on the host when
/// `/etc/subuid` and `/etc/subgid` name no range for `containers` or `root`.
const FALLBACK_RANGE: (u32, u32) = (100_000, 65_536);

/// The default configuration for `profile`: a shell in the bundle's `rootfs`, in new
/// pid, network, ipc, uts, mount (and per the profile cgroup and user) namespaces.
/// `rootless`: for a non-root caller, mapping only its own ids.
pub fn default_config(profile: &Profile, rootless: bool) -> Result<Value, PolicyError> {
    let caps = &profile.capabilities;
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if profile.cgroup_namespace {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut devpts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    // In a user namespace too: it owns the new network namespace, so it may mount sysfs
    // (the runtime binds the host's read-only where it may not).
    let sys = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]});
    let mut linux = json!({
        "maskedPaths": profile.masked_paths,
        "readonlyPaths": profile.readonly_paths,
        "seccomp": profiles::seccomp(profile)?,
    });
    let mut annotations = json!({"bulwark.profile": profile.name});
    let mut rlimits = vec![json!({"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024})];
    if let Some(limit) = profile.pids_limit {
        linux["resources"]["pids"] = json!({"limit": limit});
    }
    if let Some(memory) = &profile.memory_limit {
        let limit = memory.bytes(host_memory());
        linux["resources"]["memory"] = json!({"limit": limit});
        // No swap beyond the limit, where the kernel accounts swap (else setting it fails).
        if swap_is_accounted() {
            linux["resources"]["memory"]["swap"] = json!(limit);
        }
    }
    if rootless {
        namespaces.push(json!({"type": "user"}));
        let (uids, gids) = rootless_mappings();
        linux["uidMappings"] = uids;
        linux["gidMappings"] = gids;
        // Without a delegated cgroup a rootless container can have no pids.max. The
        // kernel counts RLIMIT_NPROC per user of each user namespace, so the limit on
        // container root's processes bounds a fork bomb just as well.
        // Memory has no such stand-in (RLIMIT_AS bounds one process, not the container).
        let resources = linux.as_object_mut().and_then(|l| l.remove("resources"));
        if let Some(limit) = resources.as_ref().and_then(|r| r["pids"].get("limit")) {
            rlimits.push(json!({"type": "RLIMIT_NPROC", "hard": limit, "soft": limit}));
        }
    } else {
        devpts.push("gid=5");
        if profile.user_namespace {
            namespaces.push(json!({"type": "user"}));
            let (uid_start, uid_size) = host_range("/etc/subuid");
            let (gid_start, gid_size) = host_range("/etc/subgid");
            linux["uidMappings"] =
                json!([{"containerID": 0, "hostID": uid_start, "size": uid_size}]);
            linux["gidMappings"] =
                json!([{"containerID": 0, "hostID": gid_start, "size": gid_size}]);
            annotations[bulwark_spec::ROOTFS_IDMAP] = json!("true");
        }
    }
    linux["namespaces"] = Value::Array(namespaces);
    Ok(json!({
        "ociVersion": "1.2.1",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits,
            "noNewPrivileges": profile.no_new_privileges
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "bulwark",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            sys,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "annotations": annotations,
        "linux": linux
    }))
}

/// Whether this host's memory cgroups account swap: v1 has `memory.memsw.*` files, v2
/// `memory.swap.max` in every cgroup below the root.
fn swap_is_accounted() -> bool {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("memory/memory.memsw.limit_in_bytes").exists() {
        return true;
    }
    std::fs::read_dir(root).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join("memory.swap.max").exists())
    })
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib << 10)
}

/// The first range `/etc/subuid` (or `/etc/subgid`) gives `containers`, else `root`,
/// else [`FALLBACK_RANGE`] moved past every range the file gives anyone: a user whose
/// rootless containers ran as the same host ids could reach root's containers.
fn host_range(file: &str) -> (u32, u32) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    sub_range(&text, &["containers", "root"])
        .unwrap_or_else(|| clear_of(FALLBACK_RANGE, &all_ranges(&text)))
}

/// Every `start:size` range in a subordinate id file.
fn all_ranges(text: &str) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':').skip(1);
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect()
}

/// `wanted`, moved up (in steps of its size) until it overlaps none of `taken`.
fn clear_of(wanted: (u32, u32), taken: &[(u32, u32)]) -> (u32, u32) {
    let (mut start, size) = wanted;
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    while let Some(&(s, n)) = taken
        .iter()
        .find(|&&(s, n)| u64::from(start) < end(s, n) && u64::from(s) < end(start, size))
    {
        let next = end(s, n).div_ceil(u64::from(size)) * u64::from(size);
        let Ok(next) = u32::try_from(next) else {
            return wanted;
        };
        start = next;
    }
    (start, size)
}

/// The first range a subordinate id file's `text` gives one of `owners` (names or
/// numeric ids), in that order.
fn sub_range(text: &str, owners: &[&str]) -> Option<(u32, u32)> {
    let range = |owner: &str| {
        text.lines().find_map(|line| {
            let mut fields = line.trim().split(':');
            (fields.next()? == owner).then_some(())?;
            let start = fields.next()?.parse().ok()?;
            let size = fields.next()?.parse().ok()?;
            Some((start, size)).filter(|(_, size)| *size > 0)
        })
    };
    owners.iter().find_map(|owner| range(owner))
}

/// A rootless container's maps: its root is the caller. With `newuidmap`/`newgidmap`
/// installed and ranges in `/etc/subuid` and `/etc/subgid` for the caller, ids from 1 up
/// take those ranges (so images with more than one user work, as under rootless Podman);
/// otherwise only root is mapped.
fn rootless_mappings() -> (Value, Value) {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let name = bulwark_runtime::host::user_name(uid).unwrap_or_default();
    let owners = [name.as_str(), &uid.to_string()];
    let helpers = ["newuidmap", "newgidmap"]
        .iter()
        .all(|h| bulwark_sandbox::id_map_helper(h).is_some());
    let read = |file: &str| std::fs::read_to_string(file).unwrap_or_default();
    let ranges = helpers
        .then(|| {
            let uids = sub_range(&read("/etc/subuid"), &owners)?;
            Some((uids, sub_range(&read("/etc/subgid"), &owners)?))
        })
        .flatten();
    let map = |own: u32, range: Option<(u32, u32)>| {
        let mut entries = vec![json!({"containerID": 0, "hostID": own, "size": 1})];
        if let Some((start, size)) = range {
            entries.push(json!({"containerID": 1, "hostID": start, "size": size}));
        }
        Value::Array(entries)
    };
    (
        map(uid, ranges.map(|(u, _)| u)),
        map(gid, ranges.map(|(_, g)| g)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_configs_validate() {
        for name in ["hardened", "docker"] {
            let profile = profiles::profile(name).unwrap();
            for rootless in [false, true] {
                let text = default_config(&profile, rootless).unwrap().to_string();
                let spec = bulwark_spec::parse_config(text.as_bytes()).unwrap();
                let host = bulwark_spec::Host {
                    rootless,
                    euid: if rootless { 1000 } else { 0 },
                    egid: if rootless { 1000 } else { 0 },
                    ..bulwark_spec::Host::privileged()
                };
                bulwark_spec::Config::plan(spec, "/b".into(), "/b/rootfs".into(), &host).unwrap();
            }
        }
    }

    #[test]
    fn the_fallback_range_stays_clear_of_every_users_range() {
        let text = "alice:100000:65536\nbob:165536:65536\n# comment\ncarol:400000:1000\n";
        let taken = all_ranges(text);
        assert_eq!(taken.len(), 3);
        assert_eq!(clear_of(FALLBACK_RANGE, &taken), (262_144, 65_536));
        assert_eq!(clear_of(FALLBACK_RANGE, &[]), FALLBACK_RANGE);
        assert_eq!(sub_range(text, &["nobody", "bob"]), Some((165_536, 65_536)));
    }

    #[test]
    fn hardened_maps_root_to_an_unprivileged_host_id() {
        let config = default_config(&profiles::profile("hardened").unwrap(), false).unwrap();
        let host_root = config["linux"]["uidMappings"][0]["hostID"]
            .as_u64()
            .unwrap();
        assert_ne!(host_root, 0);
        assert_eq!(config["annotations"][bulwark_spec::ROOTFS_IDMAP], "true");
        let docker = default_config(&profiles::profile("docker").unwrap(), false).unwrap();
        assert!(docker["linux"].get("uidMappings").is_none());
    }
}

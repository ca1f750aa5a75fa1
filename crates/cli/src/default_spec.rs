//! `spec`: writes a starting config.json, like `runc spec`, from a policy profile
//! (`policy/profiles/`, see [`crate::profiles`]). The default, `hardened`, is stricter
//! than Docker: a user namespace whose root is an unprivileged host id (with the rootfs
//! idmapped, so a root-owned image works unchanged), a cgroup namespace, a seccomp
//! allow-list, fewer capabilities, no_new_privs, more masked paths and a pids limit.
//! `--profile docker` writes Docker's defaults for images that need exactly those.
use std::path::Path;

use serde_json::{json, Value};

use crate::profiles::{self, Profile};

/// Where the hardened profile maps the container's ids on the host when
/// `/etc/subuid` and `/etc/subgid` name no range for `containers` or `root`.
const FALLBACK_RANGE: (u32, u32) = (100_000, 65_536);

/// The default configuration for `profile`: a shell in the bundle's `rootfs`, in new
/// pid, network, ipc, uts, mount (and per the profile cgroup and user) namespaces.
/// `rootless`: for a non-root caller, mapping only its own ids.
pub fn default_config(profile: &Profile, rootless: bool) -> Result<Value, String> {
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
    let mut sys = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]});
    let mut linux = json!({
        "maskedPaths": profile.masked_paths,
        "readonlyPaths": profile.readonly_paths,
        "seccomp": profiles::seccomp(profile)?,
    });
    let mut annotations = json!({"bulwark.profile": profile.name});
    if let Some(limit) = profile.pids_limit {
        linux["resources"] = json!({"pids": {"limit": limit}});
    }
    if rootless {
        namespaces.push(json!({"type": "user"}));
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        sys = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        // Without delegated cgroups a rootless container cannot have limits.
        linux.as_object_mut().map(|l| l.remove("resources"));
    } else {
        devpts.push("gid=5");
        if profile.user_namespace {
            namespaces.push(json!({"type": "user"}));
            let (uid_start, uid_size) = sub_range("/etc/subuid");
            let (gid_start, gid_size) = sub_range("/etc/subgid");
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
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
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

/// The first range `/etc/subuid` (or `/etc/subgid`) gives `containers`, else `root`,
/// else [`FALLBACK_RANGE`].
fn sub_range(file: &str) -> (u32, u32) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let range = |owner: &str| {
        text.lines().find_map(|line| {
            let mut fields = line.trim().split(':');
            (fields.next()? == owner).then_some(())?;
            let start = fields.next()?.parse().ok()?;
            let size = fields.next()?.parse().ok()?;
            Some((start, size)).filter(|(_, size)| *size > 0)
        })
    };
    range("containers")
        .or_else(|| range("root"))
        .unwrap_or(FALLBACK_RANGE)
}

/// Writes `<bundle>/config.json` for the profile called `profile`, refusing to overwrite
/// one.
pub fn write(bundle: &Path, profile: &str, rootless: bool) -> Result<(), String> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(format!(
            "{} already exists (remove it first)",
            path.display()
        ));
    }
    let config = default_config(&profiles::profile(profile)?, rootless)?;
    let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
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
                bulwark_spec::validate(&spec).unwrap();
            }
        }
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

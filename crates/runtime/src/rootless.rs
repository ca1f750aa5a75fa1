//! A runtime without the host's root privileges (rootless): run by a user other than
//! root, or as root of a user namespace other than the host's (as under rootless Podman).
//! It makes the container's user namespace itself (the sandbox writes the id maps, with
//! `newuidmap`/`newgidmap` when more than the caller's own ids are mapped), uses only the
//! cgroups delegated to its user (see [`crate::cgroups::create`]), and keeps its state
//! under `$XDG_RUNTIME_DIR` (see the command line). What it cannot do at all is refused
//! here, before anything is made.
use bulwark_spec::mount_options::MountOptions;
use bulwark_spec::runtime::Spec;
use bulwark_spec::{NamespaceKind, NamespacePlan};

use crate::RuntimeError;

/// Whether this process lacks the host's root privileges: its effective uid is not 0, or
/// it is in a user namespace other than the host's.
pub fn detected() -> bool {
    !nix::unistd::geteuid().is_root() || !in_host_user_namespace()
}

/// In the host's (initial) user namespace `uid_map` maps all 2^32 - 1 ids onto themselves.
/// Without a readable `/proc`, the effective uid alone decides.
pub fn in_host_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").map_or(true, |map| {
        map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
    })
}

/// Refuses what a rootless runtime cannot honour: a container without a user namespace
/// of its own (for a caller that is not root even in its own namespace), and idmapped
/// mounts (they need CAP_SYS_ADMIN over the host filesystem).
pub fn check(spec: &Spec, namespaces: &NamespacePlan) -> Result<(), RuntimeError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() && !namespaces.contains(NamespaceKind::User) {
        return Err(RuntimeError::Invalid(format!(
            "config.json: linux.namespaces has no user namespace, which bulwark-runtime needs when run without root (uid {euid}): add {{\"type\": \"user\"}} with linux.uidMappings and linux.gidMappings (`bulwark-runtime spec --rootless` writes such a config)"
        )));
    }
    if bulwark_spec::rootfs_idmapped(spec) {
        return Err(RuntimeError::Invalid(format!(
            "config.json: annotations[{:?}] \"true\" cannot be honoured without root: an idmapped mount needs CAP_SYS_ADMIN over the host filesystem (give the rootfs to your own user instead, as `bulwark-runtime spec --rootless` assumes)",
            bulwark_spec::ROOTFS_IDMAP
        )));
    }
    for (index, mount) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{index}].options");
        let options = MountOptions::parse(mount.options().as_deref().unwrap_or_default(), &field)?;
        if options.idmap.is_some()
            || mount.uid_mappings().is_some()
            || mount.gid_mappings().is_some()
        {
            return Err(RuntimeError::Invalid(format!(
                "config.json: mounts[{index}] (destination {}) is an idmapped mount, which cannot be made without root: it needs CAP_SYS_ADMIN over the host filesystem (bind it without idmap, uidMappings and gidMappings)",
                mount.destination().display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn idmapped_mounts_are_refused_with_the_field() {
        let s = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]}
            ],
            "linux": {"namespaces": [{"type": "mount"}, {"type": "user"}],
                      "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                      "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}
        }));
        let plan = NamespacePlan::from_spec(&s).unwrap();
        let e = check(&s, &plan).unwrap_err().to_string();
        assert!(e.contains("mounts[1]") && e.contains("/data"), "{e}");
    }

    #[test]
    fn an_idmapped_rootfs_is_refused_with_the_annotation() {
        let s = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "annotations": {"bulwark.rootfs.idmap": "true"},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "user"}],
                      "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                      "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}
        }));
        let plan = NamespacePlan::from_spec(&s).unwrap();
        let e = check(&s, &plan).unwrap_err().to_string();
        assert!(e.contains("bulwark.rootfs.idmap"), "{e}");
    }
}

//! A container's OCI config: the profile's starting config (bulwark's hardened one unless
//! `--security-opt profile=docker`), with the image's config and the user's flags on it.
use std::path::Path;

use bulwark_container::ContainerRecord;
use serde_json::{json, Value};

use crate::EngineError;

/// The capabilities this process may grant (its bounding set): `--privileged` and
/// `--cap-add ALL` give these, as Docker gives what its daemon has.
pub(super) fn grantable() -> Vec<String> {
    let mut bounding: Vec<caps::Capability> = caps::read(None, caps::CapSet::Bounding)
        .unwrap_or_default()
        .into_iter()
        .collect();
    bounding.sort_by_key(|c| c.index());
    bounding.iter().map(|c| c.to_string()).collect()
}

/// `NET_ADMIN`, `cap_net_admin` or `CAP_NET_ADMIN` as the kernel names it; `ALL` stays.
pub fn cap_name(text: &str) -> Result<String, EngineError> {
    let upper = text.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    name.parse::<caps::Capability>()
        .map(|c| c.to_string())
        .map_err(|_| {
            EngineError::InvalidArgument(format!(
                "invalid capability {text:?}: expected a name such as NET_ADMIN or ALL"
            ))
        })
}

/// The container's process user: `uid[:gid]` or names looked up in the image's
/// `/etc/passwd` and `/etc/group` (read inside the root filesystem, never through a link
/// out of it).
pub(super) fn user(rootfs: &Path, spec: &str) -> Result<Value, EngineError> {
    let (who, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_in_root(rootfs, "/etc/passwd");
    let group_file = read_in_root(rootfs, "/etc/group");
    let lookup = |text: &str, file: &str, id_field: usize| -> Option<(u32, Vec<String>)> {
        file.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find_map(|f| {
                (f.first() == Some(&text))
                    .then(|| {
                        Some((
                            f.get(id_field)?.parse().ok()?,
                            f.iter().map(|s| s.to_string()).collect(),
                        ))
                    })
                    .flatten()
            })
    };
    let unknown = |what: &str, name: &str| {
        EngineError::InvalidArgument(format!(
            "unable to find user {name}: no matching entries in {what} file"
        ))
    };
    let (uid, mut gid, name) = if who.is_empty() {
        (0, 0, "root".to_owned())
    } else if let Ok(uid) = who.parse::<u32>() {
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.get(2) == Some(&who));
        let gid = entry
            .as_ref()
            .and_then(|f| f.get(3)?.parse().ok())
            .unwrap_or(0);
        let name = entry
            .as_ref()
            .and_then(|f| f.first().map(|s| s.to_string()))
            .unwrap_or_default();
        (uid, gid, name)
    } else {
        let (uid, fields) = lookup(who, &passwd, 2).ok_or_else(|| unknown("passwd", who))?;
        let gid = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(0);
        (uid, gid, who.to_owned())
    };
    if let Some(group) = group {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                lookup(group, &group_file, 2)
                    .ok_or_else(|| unknown("group", group))?
                    .0
            }
        };
    }
    let additional: Vec<u32> = if name.is_empty() {
        Vec::new()
    } else {
        group_file
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| {
                f.get(3)
                    .is_some_and(|members| members.split(',').any(|m| m == name))
            })
            .filter_map(|f| f.get(2)?.parse().ok())
            .filter(|g| *g != gid)
            .collect()
    };
    let mut value = json!({"uid": uid, "gid": gid});
    if !additional.is_empty() {
        value["additionalGids"] = json!(additional);
    }
    Ok(value)
}

fn read_in_root(rootfs: &Path, path: &str) -> String {
    use std::io::Read;
    let Ok(root) = std::fs::File::open(rootfs) else {
        return String::new();
    };
    let Ok(fd) = bulwark_sys::fs::open_in_root(
        std::os::fd::AsFd::as_fd(&root),
        Path::new(path),
        rustix::fs::OFlags::RDONLY,
        0,
    ) else {
        return String::new();
    };
    let mut text = String::new();
    let _ = std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut text);
    text
}

/// The OCI config for `record`, whose root filesystem is mounted at `rootfs`.
pub fn oci_config(
    record: &ContainerRecord,
    rootfs: &Path,
    rootless: bool,
) -> Result<Value, EngineError> {
    let security = &record.security;
    let profile = bulwark_policy::profile(&security.profile)?;
    let mut config = bulwark_policy::default_config(&profile, rootless)?;
    // As root: an overlay root filesystem cannot be idmapped as a whole, so until the
    // layers are idmapped one by one the engine's containers keep the host's user ids (as
    // Docker's do) with the rest of the profile. Without root: the engine already runs in
    // the user's namespace (its own id as root, its subordinate ids the rest), which the
    // container shares.
    drop_user_namespace(&mut config);
    let run = &record.run;
    let mut env = run.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    env.insert(0, format!("HOSTNAME={}", run.hostname));
    if run.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let process = &mut config["process"];
    process["args"] = json!(run.args());
    process["env"] = json!(env);
    process["cwd"] = json!(if run.working_dir.is_empty() {
        "/"
    } else {
        &run.working_dir
    });
    process["terminal"] = json!(run.tty);
    process["user"] = user(rootfs, &run.user)?;
    let mut caps: Vec<String> = if security.privileged {
        grantable()
    } else {
        process["capabilities"]["bounding"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    for drop in &security.cap_drop {
        let drop = cap_name(drop)?;
        caps.retain(|c| drop != "ALL" && *c != drop);
    }
    for add in &security.cap_add {
        match cap_name(add)?.as_str() {
            "ALL" => caps = grantable(),
            name if !caps.iter().any(|c| c == name) => caps.push(name.to_owned()),
            _ => {}
        }
    }
    process["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    if let Some(no_new_privileges) = security.no_new_privileges {
        process["noNewPrivileges"] = json!(no_new_privileges);
    }
    let mut rlimits: Vec<Value> = process["rlimits"].as_array().cloned().unwrap_or_default();
    for (name, soft, hard) in &record.resources.ulimits {
        let kind = format!("RLIMIT_{}", name.to_ascii_uppercase());
        rlimits.retain(|r| r["type"] != kind.as_str());
        rlimits.push(json!({"type": kind, "soft": soft, "hard": hard}));
    }
    process["rlimits"] = json!(rlimits);
    config["root"] = json!({"path": rootfs, "readonly": security.read_only});
    config["hostname"] = json!(run.hostname);
    let mounts = config["mounts"]
        .as_array_mut()
        .expect("the profile's config has mounts");
    for tmpfs in &record.tmpfs {
        let mut options = vec!["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()];
        options.extend(tmpfs.options.iter().cloned());
        mounts.push(json!({"destination": tmpfs.destination, "type": "tmpfs", "source": "tmpfs", "options": options}));
    }
    for bind in &record.binds {
        let mut options = vec!["rbind", "rprivate"];
        if bind.read_only {
            options.push("ro");
        }
        mounts.push(json!({"destination": bind.destination, "type": "bind", "source": bind.source, "options": options}));
    }
    let linux = &mut config["linux"];
    if !rootless {
        resources(linux, &record.resources);
    }
    if security.privileged {
        for key in ["seccomp", "maskedPaths", "readonlyPaths"] {
            linux.as_object_mut().map(|l| l.remove(key));
        }
        config["process"]["noNewPrivileges"] = json!(false);
        config["annotations"]["bulwark.landlock"] = json!("false");
    }
    match security.seccomp.as_deref() {
        Some("unconfined") => {
            config["linux"].as_object_mut().map(|l| l.remove("seccomp"));
        }
        Some(text) => {
            let profile: Value = serde_json::from_str(text).map_err(|e| {
                EngineError::InvalidArgument(format!(
                    "--security-opt seccomp: the profile is not JSON: {e}"
                ))
            })?;
            config["linux"]["seccomp"] = profile;
        }
        None => {}
    }
    if !security.landlock {
        config["annotations"]["bulwark.landlock"] = json!("false");
    }
    if record.network == "host" {
        if let Some(namespaces) = config["linux"]["namespaces"].as_array_mut() {
            namespaces.retain(|n| n["type"] != "network");
        }
        // sysfs stays a mount of its own (root owns the host's network namespace, so it
        // may): a recursive bind of the host's /sys would bring the host's cgroup mounts.
    }
    config["annotations"]["bulwark.container.name"] = json!(record.name);
    Ok(config)
}

/// `--init`: the init program bound read-only at `/sbin/docker-init`, running the
/// container's program as its child (it reaps orphans and forwards signals).
pub(super) fn add_init(config: &mut Value, init: &Path) {
    if let Some(mounts) = config["mounts"].as_array_mut() {
        mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": init, "options": ["bind", "ro", "nosuid", "nodev"]}));
    }
    let args = config["process"]["args"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut with_init = vec![json!("/sbin/docker-init"), json!("--")];
    with_init.extend(args);
    config["process"]["args"] = json!(with_init);
}

fn drop_user_namespace(config: &mut Value) {
    if let Some(namespaces) = config["linux"]["namespaces"].as_array_mut() {
        namespaces.retain(|n| n["type"] != "user");
    }
    if let Some(linux) = config["linux"].as_object_mut() {
        linux.remove("uidMappings");
        linux.remove("gidMappings");
    }
    if let Some(annotations) = config["annotations"].as_object_mut() {
        annotations.remove(bulwark_spec::ROOTFS_IDMAP);
    }
}

pub(super) fn resources(linux: &mut Value, r: &bulwark_container::Resources) {
    if let Some(memory) = r.memory {
        linux["resources"]["memory"] = json!({"limit": memory});
        match r.memory_swap {
            Some(-1) => {
                linux["resources"]["memory"]["swap"] = json!(-1);
            }
            Some(swap) => linux["resources"]["memory"]["swap"] = json!(swap),
            // Docker: swap as much again as memory, where swap is accounted.
            None if swap_accounted() => linux["resources"]["memory"]["swap"] = json!(memory * 2),
            None => {}
        }
        if !swap_accounted() {
            linux["resources"]["memory"]
                .as_object_mut()
                .map(|m| m.remove("swap"));
        }
    }
    if let Some(nano) = r.nano_cpus {
        linux["resources"]["cpu"]["period"] = json!(100_000);
        linux["resources"]["cpu"]["quota"] = json!(nano / 10_000);
    }
    if let Some(shares) = r.cpu_shares {
        linux["resources"]["cpu"]["shares"] = json!(shares);
    }
    if let Some(pids) = r.pids_limit {
        linux["resources"]["pids"] = json!({"limit": pids});
    }
}

fn swap_accounted() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.contains("memory"))
            && Path::new("/sys/fs/cgroup/init.scope/memory.swap.max").exists()
}

/// The container's network: the namespace `join` pinned (or another container's), and
/// the `hosts`, `hostname` and `resolv.conf` written for it, bound over the image's.
pub(super) fn add_network(config: &mut Value, files: &crate::networks::NetFiles) {
    if let Some(path) = &files.netns {
        if let Some(namespaces) = config["linux"]["namespaces"].as_array_mut() {
            for ns in namespaces.iter_mut().filter(|n| n["type"] == "network") {
                ns["path"] = json!(path);
            }
        }
    }
    if let (Some(etc), Some(mounts)) = (&files.etc, config["mounts"].as_array_mut()) {
        for name in ["hosts", "hostname", "resolv.conf"] {
            mounts.push(json!({"destination": format!("/etc/{name}"), "type": "bind", "source": etc.join(name), "options": ["rbind", "rprivate"]}));
        }
    }
}

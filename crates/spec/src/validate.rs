//! Checks on a parsed configuration that serde's types cannot express.
use std::path::Path;

use oci_spec::runtime::{Hook, Hooks, Linux, LinuxDeviceType, Mount, Process, Spec};

use crate::mount_options::MountOptions;
use crate::{sysctl, NamespaceKind, NamespacePlan, SpecError};

/// Validates a parsed `config.json`. The root filesystem's existence is checked by
/// [`crate::load_bundle`], which knows the bundle directory.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    check_version(spec.version())?;
    let plan = NamespacePlan::from_spec(spec)?;
    check_namespaces(spec, &plan)?;
    if let Some(process) = spec.process() {
        check_process(process)?;
    } else {
        return Err(SpecError::invalid(
            "process",
            "null",
            "a process object with args and cwd",
        ));
    }
    for (index, mount) in spec.mounts().iter().flatten().enumerate() {
        check_mount(index, mount, &plan)?;
    }
    check_rootfs_idmap(spec, &plan)?;
    check_switch(spec, LANDLOCK)?;
    if let Some(linux) = spec.linux() {
        check_linux(linux, &plan)?;
    }
    if let Some(hooks) = spec.hooks() {
        check_hooks(hooks)?;
    }
    Ok(())
}

fn check_version(version: &str) -> Result<(), SpecError> {
    let major = version.split('.').next().unwrap_or_default();
    if major != "1" {
        return Err(SpecError::invalid(
            "ociVersion",
            version,
            "a 1.x runtime-spec version such as 1.2.0",
        ));
    }
    Ok(())
}

fn check_namespaces(spec: &Spec, plan: &NamespacePlan) -> Result<(), SpecError> {
    if !plan.contains(NamespaceKind::Mount) {
        return Err(SpecError::invalid(
            "linux.namespaces",
            "no mount namespace",
            "a mount namespace: bulwark-runtime never builds a container's root in the host's mount namespace",
        ));
    }
    let linux = spec.linux().as_ref();
    let has_maps = linux.is_some_and(|l| {
        l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    });
    if plan.creates(NamespaceKind::User) {
        for (field, maps) in [
            (
                "linux.uidMappings",
                linux.and_then(|l| l.uid_mappings().as_ref()),
            ),
            (
                "linux.gidMappings",
                linux.and_then(|l| l.gid_mappings().as_ref()),
            ),
        ] {
            if maps.is_none_or(|m| m.is_empty()) {
                return Err(SpecError::invalid(
                    field,
                    "[]",
                    "at least one mapping, since linux.namespaces creates a user namespace",
                ));
            }
        }
        check_user_is_mapped(spec)?;
    } else if has_maps {
        return Err(SpecError::invalid(
            "linux.uidMappings",
            "set",
            "no mappings unless linux.namespaces creates a user namespace",
        ));
    }
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            if !plan.contains(NamespaceKind::Uts) {
                return Err(SpecError::invalid(
                    field,
                    value,
                    "a uts namespace in linux.namespaces, or no hostname",
                ));
            }
            if value.len() > 64 {
                return Err(SpecError::invalid(field, value, "at most 64 bytes"));
            }
        }
    }
    if linux
        .and_then(|l| l.time_offsets().as_ref())
        .is_some_and(|o| !o.is_empty())
        && !plan.creates(NamespaceKind::Time)
    {
        return Err(SpecError::invalid(
            "linux.timeOffsets",
            "set",
            "a new time namespace in linux.namespaces",
        ));
    }
    Ok(())
}

/// In a new user namespace the process's ids must be mapped, or it could not become them.
fn check_user_is_mapped(spec: &Spec) -> Result<(), SpecError> {
    let (Some(process), Some(linux)) = (spec.process(), spec.linux()) else {
        return Ok(());
    };
    let mapped = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>, id: u32| {
        maps.iter().flatten().any(|m| {
            id >= m.container_id() && (id as u64) < m.container_id() as u64 + m.size() as u64
        })
    };
    let user = process.user();
    if !mapped(linux.uid_mappings(), user.uid()) {
        return Err(SpecError::invalid(
            "process.user.uid",
            user.uid(),
            "a uid inside linux.uidMappings",
        ));
    }
    if !mapped(linux.gid_mappings(), user.gid()) {
        return Err(SpecError::invalid(
            "process.user.gid",
            user.gid(),
            "a gid inside linux.gidMappings",
        ));
    }
    for (index, gid) in user.additional_gids().iter().flatten().enumerate() {
        if !mapped(linux.gid_mappings(), *gid) {
            return Err(SpecError::invalid(
                format!("process.user.additionalGids[{index}]"),
                gid,
                "a gid inside linux.gidMappings",
            ));
        }
    }
    Ok(())
}

fn check_process(process: &Process) -> Result<(), SpecError> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecError::invalid(
            "process.args",
            args,
            "at least one argument, the program to run",
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(SpecError::invalid(
            "process.cwd",
            process.cwd(),
            "an absolute path inside the container",
        ));
    }
    for (index, var) in process.env().iter().flatten().enumerate() {
        if !var.contains('=') || var.starts_with('=') {
            return Err(SpecError::invalid(
                format!("process.env[{index}]"),
                var,
                "NAME=value",
            ));
        }
    }
    let mut seen = Vec::new();
    for (index, rlimit) in process.rlimits().iter().flatten().enumerate() {
        if seen.contains(&rlimit.typ()) {
            return Err(SpecError::invalid(
                format!("process.rlimits[{index}].type"),
                rlimit.typ(),
                "each rlimit type at most once",
            ));
        }
        seen.push(rlimit.typ());
        if rlimit.soft() > rlimit.hard() {
            return Err(SpecError::invalid(
                format!("process.rlimits[{index}].soft"),
                rlimit.soft(),
                format!("at most the hard limit {}", rlimit.hard()),
            ));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::invalid(
                "process.oomScoreAdj",
                adj,
                "a value from -1000 to 1000",
            ));
        }
    }
    if let Some(umask) = process.user().umask() {
        if umask > 0o777 {
            return Err(SpecError::invalid(
                "process.user.umask",
                umask,
                "a file mode mask up to 0o777 (511)",
            ));
        }
    }
    Ok(())
}

fn check_mount(index: usize, mount: &Mount, plan: &NamespacePlan) -> Result<(), SpecError> {
    let field = format!("mounts[{index}]");
    if !mount.destination().is_absolute() {
        return Err(SpecError::invalid(
            format!("{field}.destination"),
            mount.destination(),
            "an absolute path inside the container",
        ));
    }
    let options = MountOptions::parse(
        mount.options().as_deref().unwrap_or_default(),
        &format!("{field}.options"),
    )?;
    let typ = mount.typ().as_deref().unwrap_or_default();
    if (options.bind.is_some() || typ == "bind") && mount.source().is_none() {
        return Err(SpecError::invalid(
            format!("{field}.source"),
            "null",
            "the host path to bind",
        ));
    }
    if options.bind.is_none() && typ.is_empty() && typ != "bind" {
        return Err(SpecError::invalid(
            format!("{field}.type"),
            typ,
            "a filesystem type such as tmpfs or proc, or a bind/rbind option",
        ));
    }
    let has_maps = mount.uid_mappings().is_some() || mount.gid_mappings().is_some();
    if options.idmap.is_some() || has_maps {
        let what = format!("{field} (an idmapped mount)");
        if options.bind.is_none() && typ != "bind" {
            return Err(SpecError::invalid(
                format!("{field}.type"),
                typ,
                "a bind mount: only binds can be idmapped",
            ));
        }
        if !plan.creates(NamespaceKind::User) {
            return Err(SpecError::invalid(
                what,
                "no new user namespace",
                "linux.namespaces to create a user namespace, whose id mappings the mount uses",
            ));
        }
        for (name, maps) in [
            ("uidMappings", mount.uid_mappings()),
            ("gidMappings", mount.gid_mappings()),
        ] {
            if let Some(bad) = maps.iter().flatten().position(|m| m.size() == 0) {
                return Err(SpecError::invalid(
                    format!("{field}.{name}[{bad}].size"),
                    0,
                    "a mapping of at least one id",
                ));
            }
        }
    }
    Ok(())
}

/// The annotation that idmaps the root filesystem with the container's own id mappings,
/// so a root-owned image works in a user namespace without a chown.
pub const ROOTFS_IDMAP: &str = "bulwark.rootfs.idmap";

/// The annotation that turns Landlock off ("false"); it is on by default.
pub const LANDLOCK: &str = "bulwark.landlock";

/// An on/off annotation must say "true" or "false".
fn check_switch(spec: &Spec, key: &str) -> Result<(), SpecError> {
    match spec.annotations().as_ref().and_then(|a| a.get(key)) {
        Some(value) if value != "true" && value != "false" => Err(SpecError::invalid(
            format!("annotations[{key:?}]"),
            value,
            "\"true\" or \"false\"",
        )),
        _ => Ok(()),
    }
}

/// Whether `spec` asks for an idmapped root filesystem.
pub fn rootfs_idmapped(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(ROOTFS_IDMAP))
        .is_some_and(|v| v == "true")
}

fn check_rootfs_idmap(spec: &Spec, plan: &NamespacePlan) -> Result<(), SpecError> {
    let Some(value) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ROOTFS_IDMAP))
    else {
        return Ok(());
    };
    let field = format!("annotations[{ROOTFS_IDMAP:?}]");
    if value != "true" && value != "false" {
        return Err(SpecError::invalid(field, value, "\"true\" or \"false\""));
    }
    if value == "true" && !plan.creates(NamespaceKind::User) {
        return Err(SpecError::invalid(
            field,
            value,
            "linux.namespaces to create a user namespace, whose id mappings the root filesystem then shows",
        ));
    }
    Ok(())
}

fn check_linux(linux: &Linux, plan: &NamespacePlan) -> Result<(), SpecError> {
    for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
        sysctl::check(key, plan)?;
    }
    for (index, device) in linux.devices().iter().flatten().enumerate() {
        let field = format!("linux.devices[{index}]");
        if !device.path().starts_with("/dev/") || has_dot_dot(device.path()) {
            return Err(SpecError::invalid(
                format!("{field}.path"),
                device.path(),
                "an absolute path under /dev without ..",
            ));
        }
        if matches!(device.typ(), LinuxDeviceType::A) {
            return Err(SpecError::invalid(
                format!("{field}.type"),
                "a",
                "one of c, b, u, p",
            ));
        }
    }
    if let Some(flags) = linux
        .personality()
        .as_ref()
        .and_then(|p| p.flags().as_ref())
        .filter(|f| !f.is_empty())
    {
        return Err(SpecError::invalid(
            "linux.personality.flags",
            flags,
            "no flags (the runtime spec defines none yet)",
        ));
    }
    if let Some(propagation) = linux.rootfs_propagation() {
        let base = propagation.strip_prefix('r').unwrap_or(propagation);
        if !matches!(base, "shared" | "slave" | "private" | "unbindable") || propagation == "r" {
            return Err(SpecError::invalid(
                "linux.rootfsPropagation",
                propagation,
                "one of shared, slave, private, unbindable (or rshared, rslave, rprivate, runbindable)",
            ));
        }
    }
    for (list, field) in [
        (linux.masked_paths(), "linux.maskedPaths"),
        (linux.readonly_paths(), "linux.readonlyPaths"),
    ] {
        for (index, path) in list.iter().flatten().enumerate() {
            if !path.starts_with('/') || has_dot_dot(Path::new(path)) {
                return Err(SpecError::invalid(
                    format!("{field}[{index}]"),
                    path,
                    "an absolute path inside the container without ..",
                ));
            }
        }
    }
    // linux.resources is checked where it is applied: what the host's cgroups can take
    // depends on the host (bulwark-cgroups names the field when a value cannot be applied).
    let unsupported = [
        (
            "linux.intelRdt",
            linux.intel_rdt().is_some(),
            "Intel RDT is not supported",
        ),
        (
            "linux.netDevices",
            linux.net_devices().is_some(),
            "moving network devices is not supported yet",
        ),
    ];
    if let Some((field, _, reason)) = unsupported.iter().find(|(_, set, _)| *set) {
        return Err(SpecError::unsupported(*field, *reason));
    }
    Ok(())
}

fn check_hooks(hooks: &Hooks) -> Result<(), SpecError> {
    let lists: [(&str, &Option<Vec<Hook>>); 6] = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (name, list) in lists {
        for (index, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                return Err(SpecError::invalid(
                    format!("hooks.{name}[{index}].path"),
                    hook.path(),
                    "an absolute path to an executable",
                ));
            }
            if hook.timeout().is_some_and(|t| t <= 0) {
                return Err(SpecError::invalid(
                    format!("hooks.{name}[{index}].timeout"),
                    hook.timeout(),
                    "a number of seconds greater than zero",
                ));
            }
        }
    }
    Ok(())
}

fn has_dot_dot(path: &Path) -> bool {
    path.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_config;

    const BASE: &str = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

    fn with(patch: impl FnOnce(&mut serde_json::Value)) -> Result<(), SpecError> {
        let mut value: serde_json::Value = serde_json::from_str(BASE).unwrap();
        patch(&mut value);
        let spec = parse_config(value.to_string().as_bytes())?;
        validate(&spec)
    }

    fn err(patch: impl FnOnce(&mut serde_json::Value)) -> String {
        with(patch).unwrap_err().to_string()
    }

    #[test]
    fn base_config_is_valid() {
        with(|_| {}).unwrap();
    }

    #[test]
    fn wrong_types_and_unknown_namespaces_name_the_field() {
        let e = err(|v| v["linux"]["namespaces"][1]["type"] = "netns".into());
        assert!(
            e.contains("linux.namespaces[1].type") && e.contains("netns"),
            "{e}"
        );
        let e = err(|v| v["process"]["args"] = 7.into());
        assert!(e.contains("process.args"), "{e}");
        let e = err(|v| v["process"]["user"]["uid"] = "root".into());
        assert!(e.contains("process.user.uid"), "{e}");
    }

    #[test]
    fn field_rules() {
        assert!(err(|v| v["ociVersion"] = "2.0.0".into()).contains("ociVersion"));
        assert!(err(|v| v["process"]["args"] = serde_json::json!([])).contains("process.args"));
        assert!(err(|v| v["process"]["cwd"] = "tmp".into()).contains("process.cwd"));
        assert!(err(|v| v["hostname"] = "box".into()).contains("uts namespace"));
        assert!(
            err(|v| v["linux"]["namespaces"] = serde_json::json!([{"type":"pid"}]))
                .contains("mount namespace")
        );
        assert!(
            err(|v| v["linux"]["namespaces"][1] = serde_json::json!({"type":"user"}))
                .contains("linux.uidMappings")
        );
        assert!(
            err(|v| v["mounts"] = serde_json::json!([{"destination":"proc","type":"proc"}]))
                .contains("mounts[0].destination")
        );
        assert!(err(
            |v| v["linux"]["personality"] = serde_json::json!({"domain":"LINUX","flags":["X"]})
        )
        .contains("linux.personality.flags"));
        assert!(err(|v| v["linux"]["rootfsPropagation"] = "bogus".into())
            .contains("linux.rootfsPropagation"));
        assert!(
            err(|v| v["linux"]["maskedPaths"] = serde_json::json!(["/proc/../etc"]))
                .contains("linux.maskedPaths[0]")
        );
        assert!(
            err(|v| v["hooks"] = serde_json::json!({"prestart":[{"path":"hook"}]}))
                .contains("hooks.prestart[0].path")
        );
        assert!(err(|v| v["process"]["rlimits"] = serde_json::json!([
            {"type":"RLIMIT_NOFILE","soft":10,"hard":5}]))
        .contains("process.rlimits[0].soft"));
    }

    #[test]
    fn bad_json_names_position() {
        let e = parse_config(b"{\"ociVersion\": ").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }
}

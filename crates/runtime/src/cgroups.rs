//! The container's cgroups: made before its first process, recorded in the state
//! directory (so `delete` finds them even after a crash), removed on delete.
use std::path::{Path, PathBuf};

use bulwark_cgroups::{
    default_cgroups_path, delegated_default_path, delegation, manager_at, manager_for, plan,
    CgroupManager, CgroupsPath, Layout, Mode, Version,
};
use bulwark_spec::linux::DeviceKind;
use bulwark_spec::runtime::{LinuxDeviceCgroup, LinuxResources, Spec};
use bulwark_spec::Config;

use crate::RuntimeError;

/// Where the cgroup directories are recorded before they are made.
const RECORD: &str = "cgroups.json";

/// Makes the container's cgroups and applies `linux.resources`. The directories are
/// written to the state directory first, so an interrupted create is still cleaned up.
/// A rootless runtime uses only the hierarchies delegated to its user and goes without
/// cgroups when it has none, unless a limit needs one (see [`rootless_layout`]); `None`
/// then. Its containers get no device rules: it can neither write them nor create
/// devices, and the host devices it binds keep their own permissions.
pub fn create(
    state_dir: &Path,
    id: &str,
    config: &Config,
    notes: &mut Vec<String>,
) -> Result<Option<Box<dyn CgroupManager>>, RuntimeError> {
    let spec = config.spec();
    let rootless = config.rootless();
    let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let resources = match rootless {
        false => with_default_devices(resources, config),
        true => without_devices(resources),
    };
    let Some((layout, path)) = placement(spec, id, rootless, &resources, notes)? else {
        return Ok(None);
    };
    let manager = manager_for(&layout, &path)?;
    let record = state_dir.join(RECORD);
    let paths = serde_json::to_vec(&manager.paths()).expect("paths always serialize");
    std::fs::write(&record, paths).map_err(RuntimeError::io("cannot write", &record))?;
    if let Err(e) = manager.create() {
        // Directories made before the failure go too.
        let _ = manager.destroy();
        return Err(e.into());
    }
    // Never share a cgroup with processes that are not ours: limits, kill --all and
    // delete would reach them.
    if let Ok(pids) = manager.pids() {
        if !pids.is_empty() {
            let _ = std::fs::remove_file(&record);
            return Err(RuntimeError::CgroupInUse {
                path,
                count: pids.len(),
            });
        }
    }
    if let Err(e) = manager.apply(&resources) {
        let _ = manager.destroy();
        return Err(e.into());
    }
    Ok(Some(manager))
}

/// Which hierarchies of the host's layout the container's cgroups go in, and at which
/// `linux.cgroupsPath` (the configured one, else the default); `None`: no cgroups (a
/// rootless runtime with none delegated and no limits to apply).
fn placement(
    spec: &Spec,
    id: &str,
    rootless: bool,
    resources: &LinuxResources,
    notes: &mut Vec<String>,
) -> Result<Option<(Layout, String)>, RuntimeError> {
    let layout = Layout::detect()?;
    let configured = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    if !rootless {
        let path = configured.unwrap_or_else(|| default_cgroups_path(id));
        return Ok(Some((layout, path)));
    }
    let path = configured
        .or_else(|| delegated_default_path(&layout, id))
        .unwrap_or_else(|| default_cgroups_path(id));
    Ok(rootless_layout(&layout, &path, resources, notes)?.map(|usable| (usable, path)))
}

/// The hierarchies a rootless runtime may use for a container at `path`: those delegated
/// to its user. A setting for a controller it was not given is an error that says how to
/// delegate one; without settings, the hierarchies it lacks are only noted (`--debug`).
fn rootless_layout(
    layout: &Layout,
    path: &str,
    resources: &LinuxResources,
    notes: &mut Vec<String>,
) -> Result<Option<Layout>, RuntimeError> {
    let parsed = CgroupsPath::parse(path)?;
    let delegation = delegation(layout, &parsed)?;
    let settings = plan(version_of(layout), resources)?;
    for setting in &settings {
        if let Some(refusal) = delegation
            .refused
            .iter()
            .find(|r| r.covers(setting.controller()))
        {
            return Err(RuntimeError::NotDelegated {
                field: setting.field().to_string(),
                value: setting.value().to_string(),
                controller: setting.controller().to_string(),
                dir: refusal.dir.clone(),
                reason: refusal.reason.to_string(),
                euid: nix::unistd::geteuid().as_raw(),
            });
        }
    }
    for refusal in &delegation.refused {
        notes.push(format!(
            "rootless: no cgroup at {}: {}",
            refusal.dir.display(),
            refusal.reason
        ));
    }
    Ok(delegation.layout)
}

fn version_of(layout: &Layout) -> Version {
    match layout.mode() {
        Mode::V2 => Version::V2,
        Mode::V1 | Mode::Hybrid => Version::V1,
    }
}

/// `linux.resources` (or none) with its device rules taken out.
fn without_devices(resources: Option<LinuxResources>) -> LinuxResources {
    let mut resources =
        resources.unwrap_or_else(|| serde_json::from_str("{}").expect("empty resources"));
    resources.set_devices(None);
    resources
}

/// Device rules as runc gives them: the config's own rules (deny everything first when it
/// has none), then allow rules for making any node (`c *:* m`, `b *:* m`: engines give
/// containers CAP_MKNOD and rely on it; opening a node is still decided by the rules), for
/// the standard devices and for each of `linux.devices`, which the init must be able to
/// create and the container to use. v1 writes them to the devices controller, v2
/// compiles them into an eBPF program attached to the container's cgroup.
fn with_default_devices(resources: Option<LinuxResources>, config: &Config) -> LinuxResources {
    let mut resources =
        resources.unwrap_or_else(|| serde_json::from_str("{}").expect("empty resources"));
    let rule = |allow: bool,
                typ: &str,
                major: Option<u64>,
                minor: Option<u64>,
                access: &str|
     -> LinuxDeviceCgroup {
        serde_json::from_value(serde_json::json!({"allow": allow, "type": typ, "major": major, "minor": minor, "access": access}))
            .expect("a valid device rule")
    };
    let mut rules = resources
        .devices()
        .clone()
        .unwrap_or_else(|| vec![rule(false, "a", None, None, "rwm")]);
    rules.push(rule(true, "c", None, None, "m"));
    rules.push(rule(true, "b", None, None, "m"));
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(rule(true, "c", Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(true, "c", Some(136), None, "rwm"));
    for device in config.listed_devices() {
        let typ = match device.kind {
            DeviceKind::Block => "b",
            DeviceKind::Char | DeviceKind::Fifo => "c",
        };
        rules.push(rule(
            true,
            typ,
            Some(device.major),
            Some(device.minor),
            "rwm",
        ));
    }
    resources.set_devices(Some(rules));
    resources
}

/// The manager for a container's recorded cgroups, if it has any.
pub fn existing(state_dir: &Path, saved: Option<&[PathBuf]>) -> Option<Box<dyn CgroupManager>> {
    let paths: Vec<PathBuf> = match saved {
        Some(paths) if !paths.is_empty() => paths.to_vec(),
        _ => serde_json::from_slice(&std::fs::read(state_dir.join(RECORD)).ok()?).ok()?,
    };
    let layout = Layout::detect().ok()?;
    manager_at(&layout, &paths)
}

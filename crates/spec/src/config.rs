//! The checked container configuration: everything `config.json` asks for, decided once
//! for this host, in the types the stages apply. Nothing after planning reads a raw
//! option again; the raw `Spec` is kept only to be saved, shown in the state, and handed
//! to the crates that plan their own sections (`linux.resources`, `linux.seccomp`).
use std::path::{Path, PathBuf};

use caps::Capability;
use oci_spec::runtime::{Linux, Spec};

use crate::hooks::Hooks;
use crate::ids::{self, IdMaps};
use crate::linux::{self, DeviceNode, MemoryPolicy, RootPropagation, TimeOffset};
use crate::mounts::{self, MountConfig};
use crate::{Host, NamespaceKind, NamespacePlan, ProcessConfig, SpecError};

/// The annotation that idmaps the root filesystem with the container's own id mappings,
/// so a root-owned image works in a user namespace without a chown.
pub const ROOTFS_IDMAP: &str = "bulwark.rootfs.idmap";

/// The annotation that turns Landlock off ("false"); it is on by default.
pub const LANDLOCK: &str = "bulwark.landlock";

/// How the process comes to see the rootfs as `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootEntry {
    /// In a mount namespace of its own (or one joined): the rootfs is mounted on itself
    /// and becomes `/` with pivot_root (or, with `--no-pivot`, a move and chroot).
    Pivot,
    /// Without a mount namespace, the host's mount table is shared and never changed: the
    /// process only chroots into the rootfs.
    Chroot,
}

/// `root` and how it is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root {
    pub entry: RootEntry,
    pub readonly: bool,
    pub propagation: Option<RootPropagation>,
    /// Idmapped with the container's mappings (annotation `bulwark.rootfs.idmap`).
    pub idmapped: bool,
}

/// Whether the container process gets a Landlock domain, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landlock {
    pub applied: bool,
    pub reason: &'static str,
}

impl Landlock {
    /// The rule, for `features`.
    pub const RULE: &'static str = "on by default: file access only beneath the container's root; off with the annotation \"false\", and off for a process holding CAP_SYS_ADMIN in its bounding set, which may need to mount (a Landlock domain refuses every mount)";

    /// The decision for a process with bounding set `bounding` in a container whose
    /// annotation is `annotation`.
    pub fn decide(annotation: Option<&str>, bounding: crate::CapSet) -> Landlock {
        if annotation == Some("false") {
            Landlock {
                applied: false,
                reason: "turned off by the annotation bulwark.landlock",
            }
        } else if bounding.contains(Capability::CAP_SYS_ADMIN) {
            Landlock {
                applied: false,
                reason: "the process holds CAP_SYS_ADMIN (process.capabilities.bounding), which may mount; a Landlock domain would refuse every mount",
            }
        } else {
            Landlock {
                applied: true,
                reason: "file access only beneath the container's root",
            }
        }
    }
}

/// A container's configuration, checked and planned for a host.
#[derive(Debug, Clone)]
pub struct Config {
    dir: PathBuf,
    rootfs: PathBuf,
    namespaces: NamespacePlan,
    process: ProcessConfig,
    id_maps: IdMaps,
    setgroups_denied: bool,
    root: Root,
    mounts: Vec<MountConfig>,
    devices: Vec<DeviceNode>,
    masked_paths: Vec<PathBuf>,
    readonly_paths: Vec<PathBuf>,
    sysctls: Vec<(String, String)>,
    hostname: Option<String>,
    domainname: Option<String>,
    personality: Option<u32>,
    memory_policy: Option<MemoryPolicy>,
    time_offsets: Vec<TimeOffset>,
    landlock: Landlock,
    hooks: Hooks,
    rootless: bool,
    spec: Spec,
    /// `config.json` as written, when planned from its text (kept in the state directory).
    json: String,
}

/// A config and what planning warns about (it runs, but not quite as written).
#[derive(Debug)]
pub struct Planned {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Checks `spec` (of the bundle `dir`, whose rootfs is `rootfs`) and plans it for
    /// `host`. Pure: the same input always gives the same plan or the same error.
    pub fn plan(
        spec: Spec,
        dir: PathBuf,
        rootfs: PathBuf,
        host: &Host,
    ) -> Result<Planned, SpecError> {
        check_version(spec.version())?;
        let namespaces = NamespacePlan::from_spec(&spec)?;
        let mut warnings = Vec::new();
        let process = spec.process().as_ref().ok_or_else(|| {
            SpecError::invalid("process", "null", "a process object with args and cwd")
        })?;
        let process = ProcessConfig::plan(process, host, &mut warnings)?;
        let empty = Linux::default();
        let linux = spec.linux().as_ref().unwrap_or(&empty);
        let id_maps = id_maps(linux, &namespaces, &process)?;
        let root = root(&spec, linux, &namespaces)?;
        linux::unsupported(linux)?;
        let config = Config {
            setgroups_denied: namespaces.creates(NamespaceKind::User)
                && host.euid != 0
                && id_maps.gids_are_only(host.egid),
            mounts: mounts::plan(
                spec.mounts().as_deref().unwrap_or_default(),
                &dir,
                &namespaces,
            )?,
            devices: linux::devices(linux)?,
            masked_paths: linux::paths(linux.masked_paths(), "linux.maskedPaths")?,
            readonly_paths: linux::paths(linux.readonly_paths(), "linux.readonlyPaths")?,
            sysctls: linux::sysctls(linux, &namespaces)?,
            hostname: name("hostname", spec.hostname(), &namespaces)?,
            domainname: name("domainname", spec.domainname(), &namespaces)?,
            personality: linux::personality(linux)?,
            memory_policy: linux::memory_policy(linux)?,
            time_offsets: linux::time_offsets(linux, &namespaces)?,
            landlock: Landlock::decide(
                annotation(&spec, LANDLOCK)?,
                process.capabilities().bounding,
            ),
            hooks: Hooks::plan(&spec, &process.env_strings())?,
            rootless: host.rootless,
            dir,
            rootfs,
            namespaces,
            process,
            id_maps,
            root,
            spec,
            json: String::new(),
        };
        config.check_host_mount_table()?;
        if host.rootless {
            config.check_rootless(host)?;
        }
        Ok(Planned { config, warnings })
    }

    /// Without a mount namespace the container shares the host's mount table: whatever
    /// would mount is refused, naming the field.
    fn check_host_mount_table(&self) -> Result<(), SpecError> {
        if self.root.entry != RootEntry::Chroot {
            return Ok(());
        }
        let why = "without a mount namespace (linux.namespaces has none) it would be mounted in the host's mount table; add {\"type\": \"mount\"} to linux.namespaces";
        let refuse = |field: String, value: &dyn std::fmt::Debug| {
            Err(SpecError::invalid(field, value, why.to_owned()))
        };
        if let Some(mount) = self.mounts.first() {
            return refuse(format!("mounts[{}]", mount.index), &mount.destination);
        }
        if let Some(path) = self.masked_paths.first() {
            return refuse("linux.maskedPaths".into(), path);
        }
        if let Some(path) = self.readonly_paths.first() {
            return refuse("linux.readonlyPaths".into(), path);
        }
        if self.root.readonly {
            return refuse("root.readonly".into(), &true);
        }
        if self.root.propagation.is_some() {
            return refuse(
                "linux.rootfsPropagation".into(),
                &self
                    .spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.rootfs_propagation().clone()),
            );
        }
        if self.root.idmapped {
            return refuse(format!("annotations[{ROOTFS_IDMAP:?}]"), &"true");
        }
        if let Some(device) = self.devices.first() {
            return Err(SpecError::invalid(
                "linux.devices[0].path",
                &device.path,
                "no devices without a mount namespace: the runtime leaves a rootfs it cannot mount in as it is (add {\"type\": \"mount\"} to linux.namespaces)",
            ));
        }
        if let Some((key, _)) = self.sysctls.first() {
            return Err(SpecError::invalid(
                format!("linux.sysctl[{key:?}]"),
                key,
                "no sysctls without a mount namespace: there is no /proc of the container's to write them through (add {\"type\": \"mount\"} to linux.namespaces)",
            ));
        }
        Ok(())
    }

    /// What a runtime without the host's root cannot honour at all.
    fn check_rootless(&self, host: &Host) -> Result<(), SpecError> {
        if host.euid != 0 && !self.namespaces.contains(NamespaceKind::User) {
            return Err(SpecError::invalid(
                "linux.namespaces",
                "no user namespace",
                format!("a user namespace, which bulwark-runtime needs when run without root (uid {}): add {{\"type\": \"user\"}} with linux.uidMappings and linux.gidMappings (`bulwark-runtime spec --rootless` writes such a config)", host.euid),
            ));
        }
        if self.root.idmapped {
            return Err(SpecError::invalid(
                format!("annotations[{ROOTFS_IDMAP:?}]"),
                "true",
                "no idmapped rootfs without root: an idmapped mount needs CAP_SYS_ADMIN over the host filesystem (give the rootfs to your own user instead, as `bulwark-runtime spec --rootless` assumes)",
            ));
        }
        if let Some(mount) = self.mounts.iter().find(|m| m.idmap.is_some()) {
            return Err(SpecError::invalid(
                format!("mounts[{}]", mount.index),
                &mount.destination,
                "no idmapped mount without root: it needs CAP_SYS_ADMIN over the host filesystem (bind it without idmap, uidMappings and gidMappings)",
            ));
        }
        Ok(())
    }

    /// The bundle directory, absolute.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The container's root filesystem, absolute.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    pub fn namespaces(&self) -> &NamespacePlan {
        &self.namespaces
    }

    pub fn process(&self) -> &ProcessConfig {
        &self.process
    }

    /// The new user namespace's maps (empty when the container makes none).
    pub fn id_maps(&self) -> &IdMaps {
        &self.id_maps
    }

    /// The runtime denies setgroups(2) in the user namespace it makes: a runtime without
    /// root mapping only its own gid, as the kernel requires. Decided from the maps it
    /// writes, never read back from the container's `/proc`.
    pub fn setgroups_denied(&self) -> bool {
        self.setgroups_denied
    }

    pub fn root(&self) -> Root {
        self.root
    }

    pub fn mounts(&self) -> &[MountConfig] {
        &self.mounts
    }

    /// The device nodes to make: the default ones and `linux.devices` (a listed path
    /// replaces a default one); none without a mount namespace.
    pub fn devices(&self) -> Vec<DeviceNode> {
        if self.root.entry == RootEntry::Chroot {
            return Vec::new();
        }
        let mut devices = linux::default_devices();
        for device in &self.devices {
            devices.retain(|d| d.path != device.path);
            devices.push(device.clone());
        }
        devices
    }

    /// `linux.devices` as listed (the device cgroup allows each).
    pub fn listed_devices(&self) -> &[DeviceNode] {
        &self.devices
    }

    pub fn masked_paths(&self) -> &[PathBuf] {
        &self.masked_paths
    }

    pub fn readonly_paths(&self) -> &[PathBuf] {
        &self.readonly_paths
    }

    pub fn sysctls(&self) -> &[(String, String)] {
        &self.sysctls
    }

    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }

    pub fn domainname(&self) -> Option<&str> {
        self.domainname.as_deref()
    }

    /// The persona for `personality(2)`; exec'd processes get it too.
    pub fn personality(&self) -> Option<u32> {
        self.personality
    }

    pub fn memory_policy(&self) -> Option<&MemoryPolicy> {
        self.memory_policy.as_ref()
    }

    pub fn time_offsets(&self) -> &[TimeOffset] {
        &self.time_offsets
    }

    pub fn landlock(&self) -> &Landlock {
        &self.landlock
    }

    /// The annotation switching Landlock, for exec'd processes' own decision.
    pub fn landlock_annotation(&self) -> Option<&str> {
        self.spec
            .annotations()
            .as_ref()?
            .get(LANDLOCK)
            .map(String::as_str)
    }

    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Planned for a runtime without the host's root.
    pub fn rootless(&self) -> bool {
        self.rootless
    }

    /// Whether the container runs in a user namespace other than the host's: one of its
    /// own, or the one a rootless runtime itself runs in.
    pub fn in_user_namespace(&self) -> bool {
        self.namespaces.contains(NamespaceKind::User) || self.rootless
    }

    /// The configuration as written, for the crates that plan their own sections
    /// (`linux.resources`, `linux.seccomp`).
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub(crate) fn keep_json(&mut self, json: String) {
        self.json = json;
    }

    /// `config.json`'s text, when planned with [`crate::plan_json`] (empty otherwise):
    /// what the state directory keeps, so later commands plan the same config again.
    pub fn json(&self) -> &str {
        &self.json
    }
}

fn check_version(version: &str) -> Result<(), SpecError> {
    if version.split('.').next() != Some("1") {
        return Err(SpecError::invalid(
            "ociVersion",
            version,
            "a 1.x runtime-spec version such as 1.2.0",
        ));
    }
    Ok(())
}

/// An annotation that, when present, must say "true" or "false".
fn annotation<'a>(spec: &'a Spec, key: &str) -> Result<Option<&'a str>, SpecError> {
    match spec.annotations().as_ref().and_then(|a| a.get(key)) {
        Some(value) if value != "true" && value != "false" => Err(SpecError::invalid(
            format!("annotations[{key:?}]"),
            value,
            "\"true\" or \"false\"",
        )),
        value => Ok(value.map(String::as_str)),
    }
}

/// The maps of a new user namespace: present exactly when one is made, with the
/// process's ids inside them.
fn id_maps(
    linux: &Linux,
    namespaces: &NamespacePlan,
    process: &ProcessConfig,
) -> Result<IdMaps, SpecError> {
    let uids = ids::parse(
        linux.uid_mappings().as_deref().unwrap_or_default(),
        "linux.uidMappings",
    )?;
    let gids = ids::parse(
        linux.gid_mappings().as_deref().unwrap_or_default(),
        "linux.gidMappings",
    )?;
    if !namespaces.creates(NamespaceKind::User) {
        if !uids.is_empty() || !gids.is_empty() {
            return Err(SpecError::invalid(
                "linux.uidMappings",
                "set",
                "no mappings unless linux.namespaces creates a user namespace",
            ));
        }
        return Ok(IdMaps::default());
    }
    for (field, maps) in [("linux.uidMappings", &uids), ("linux.gidMappings", &gids)] {
        if maps.is_empty() {
            return Err(SpecError::invalid(
                field,
                "[]",
                "at least one mapping, since linux.namespaces creates a user namespace",
            ));
        }
    }
    let mapped = |maps: &[ids::IdMapping], id: u32| maps.iter().any(|m| m.contains(id));
    let user = process.user();
    if !mapped(&uids, user.uid) {
        return Err(SpecError::invalid(
            "process.user.uid",
            user.uid,
            "a uid inside linux.uidMappings",
        ));
    }
    if !mapped(&gids, user.gid) {
        return Err(SpecError::invalid(
            "process.user.gid",
            user.gid,
            "a gid inside linux.gidMappings",
        ));
    }
    if let Some((index, gid)) = user
        .additional_gids
        .iter()
        .enumerate()
        .find(|(_, gid)| !mapped(&gids, **gid))
    {
        return Err(SpecError::invalid(
            format!("process.user.additionalGids[{index}]"),
            gid,
            "a gid inside linux.gidMappings",
        ));
    }
    Ok(IdMaps { uids, gids })
}

fn root(spec: &Spec, linux: &Linux, namespaces: &NamespacePlan) -> Result<Root, SpecError> {
    let idmapped = annotation(spec, ROOTFS_IDMAP)? == Some("true");
    if idmapped && !namespaces.creates(NamespaceKind::User) {
        return Err(SpecError::invalid(
            format!("annotations[{ROOTFS_IDMAP:?}]"),
            "true",
            "linux.namespaces to create a user namespace, whose id mappings the root filesystem then shows",
        ));
    }
    Ok(Root {
        entry: if namespaces.contains(NamespaceKind::Mount) {
            RootEntry::Pivot
        } else {
            RootEntry::Chroot
        },
        readonly: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        propagation: linux::root_propagation(linux)?,
        idmapped,
    })
}

/// `hostname` or `domainname`: only with a UTS namespace, at most 64 bytes.
fn name(
    field: &str,
    value: &Option<String>,
    namespaces: &NamespacePlan,
) -> Result<Option<String>, SpecError> {
    let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if !namespaces.contains(NamespaceKind::Uts) {
        return Err(SpecError::invalid(
            field,
            value,
            "a uts namespace in linux.namespaces, or no hostname",
        ));
    }
    if value.len() > 64 {
        return Err(SpecError::invalid(field, value, "at most 64 bytes"));
    }
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_config;

    const BASE: &str = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

    fn with_host(
        patch: impl FnOnce(&mut serde_json::Value),
        host: &Host,
    ) -> Result<Planned, SpecError> {
        let mut value: serde_json::Value = serde_json::from_str(BASE).unwrap();
        patch(&mut value);
        let spec = parse_config(value.to_string().as_bytes())?;
        Config::plan(spec, "/b".into(), "/b/rootfs".into(), host)
    }

    fn with(patch: impl FnOnce(&mut serde_json::Value)) -> Result<Planned, SpecError> {
        with_host(patch, &Host::privileged())
    }

    fn err(patch: impl FnOnce(&mut serde_json::Value)) -> String {
        with(patch).unwrap_err().to_string()
    }

    #[test]
    fn base_config_is_valid() {
        let planned = with(|_| {}).unwrap();
        assert!(planned.warnings.is_empty());
        assert_eq!(planned.config.root().entry, RootEntry::Pivot);
        assert!(planned.config.landlock().applied);
        assert_eq!(planned.config.devices().len(), 6);
    }

    #[test]
    fn wrong_types_and_unknown_namespaces_name_the_field() {
        let e = err(|v| v["linux"]["namespaces"][1]["type"] = "netns".into());
        assert!(
            e.contains("linux.namespaces[1].type") && e.contains("netns"),
            "{e}"
        );
        assert!(err(|v| v["process"]["args"] = 7.into()).contains("process.args"));
        assert!(err(|v| v["process"]["user"]["uid"] = "root".into()).contains("process.user.uid"));
    }

    #[test]
    fn field_rules() {
        use serde_json::json;
        assert!(err(|v| v["ociVersion"] = "2.0.0".into()).contains("ociVersion"));
        assert!(err(|v| v["process"]["args"] = json!([])).contains("process.args"));
        assert!(err(|v| v["hostname"] = "box".into()).contains("uts namespace"));
        assert!(
            err(|v| v["linux"]["namespaces"][1] = json!({"type":"user"}))
                .contains("linux.uidMappings")
        );
        assert!(
            err(|v| v["mounts"] = json!([{"destination":"proc","type":"proc"}]))
                .contains("mounts[0].destination")
        );
        assert!(
            err(|v| v["linux"]["personality"] = json!({"domain":"LINUX","flags":["X"]}))
                .contains("linux.personality.flags")
        );
        assert!(err(|v| v["linux"]["rootfsPropagation"] = "bogus".into())
            .contains("linux.rootfsPropagation"));
        assert!(err(|v| v["linux"]["maskedPaths"] = json!(["/proc/../etc"]))
            .contains("linux.maskedPaths[0]"));
        assert!(err(|v| v["hooks"] = json!({"prestart":[{"path":"hook"}]}))
            .contains("hooks.prestart[0].path"));
        assert!(
            err(|v| v["linux"]["timeOffsets"] = json!({"monotonic":{"secs":1}}))
                .contains("time namespace")
        );
        assert!(err(|v| v["linux"]["intelRdt"] = json!({})).contains("linux.intelRdt"));
        assert!(
            err(|v| v["annotations"] = json!({"bulwark.landlock":"off"}))
                .contains("bulwark.landlock")
        );
        assert!(
            err(|v| v["linux"]["sysctl"] = json!({"kernel.panic":"1"})).contains("kernel.panic")
        );
    }

    #[test]
    fn without_a_mount_namespace_nothing_may_mount() {
        use serde_json::json;
        let no_mnt = |v: &mut serde_json::Value| v["linux"]["namespaces"] = json!([{"type":"pid"}]);
        let planned = with(no_mnt).unwrap();
        assert_eq!(planned.config.root().entry, RootEntry::Chroot);
        assert!(planned.config.devices().is_empty());
        for (patch, field) in [
            (
                json!({"mounts":[{"destination":"/proc","type":"proc"}]}),
                "mounts[0]",
            ),
            (
                json!({"linux":{"maskedPaths":["/proc/kcore"]}}),
                "linux.maskedPaths",
            ),
            (
                json!({"linux":{"readonlyPaths":["/proc/sys"]}}),
                "linux.readonlyPaths",
            ),
            (
                json!({"root":{"path":"rootfs","readonly":true}}),
                "root.readonly",
            ),
            (
                json!({"linux":{"rootfsPropagation":"rslave"}}),
                "linux.rootfsPropagation",
            ),
            (
                json!({"linux":{"devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229}]}}),
                "linux.devices[0]",
            ),
        ] {
            let e = err(|v| {
                for (key, value) in patch.as_object().unwrap() {
                    if key == "linux" {
                        for (k, x) in value.as_object().unwrap() {
                            v["linux"][k] = x.clone();
                        }
                    } else {
                        v[key] = value.clone();
                    }
                }
                no_mnt(v);
            });
            assert!(
                e.contains(field) && e.contains("mount namespace"),
                "{field}: {e}"
            );
        }
    }

    #[test]
    fn landlock_is_off_for_cap_sys_admin_or_by_annotation() {
        use serde_json::json;
        let planned = with(|v| {
            v["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN"]);
        })
        .unwrap();
        assert!(!planned.config.landlock().applied);
        assert!(planned.config.landlock().reason.contains("CAP_SYS_ADMIN"));
        let planned = with(|v| v["annotations"] = json!({"bulwark.landlock": "false"})).unwrap();
        assert!(!planned.config.landlock().applied);
        assert!(Landlock::RULE.contains("CAP_SYS_ADMIN"));
    }

    #[test]
    fn rootless_refusals_and_setgroups() {
        use serde_json::json;
        let user = Host {
            rootless: true,
            euid: 1000,
            egid: 1000,
            ..Host::privileged()
        };
        let e = with_host(|_| {}, &user).unwrap_err().to_string();
        assert!(
            e.contains("linux.namespaces") && e.contains("user namespace"),
            "{e}"
        );
        let own = |v: &mut serde_json::Value| {
            v["linux"]["namespaces"] = json!([{"type":"mount"},{"type":"user"}]);
            v["linux"]["uidMappings"] = json!([{"containerID":0,"hostID":1000,"size":1}]);
            v["linux"]["gidMappings"] = json!([{"containerID":0,"hostID":1000,"size":1}]);
        };
        let planned = with_host(own, &user).unwrap();
        assert!(planned.config.setgroups_denied());
        assert!(!with(own).unwrap().config.setgroups_denied());
        let e = with_host(
            |v| {
                own(v);
                v["annotations"] = json!({"bulwark.rootfs.idmap": "true"});
            },
            &user,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bulwark.rootfs.idmap"), "{e}");
        let e = with_host(
            |v| {
                own(v);
                v["mounts"] = json!([
                    {"destination": "/proc", "type": "proc", "source": "proc"},
                    {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]}
                ]);
            },
            &user,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mounts[1]") && e.contains("/data"), "{e}");
    }

    #[test]
    fn bad_json_names_position() {
        let e = parse_config(b"{\"ociVersion\": ").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }
}

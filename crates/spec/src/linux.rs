//! The rest of `linux` checked and turned into what the stages apply: device nodes,
//! masked and read-only paths, sysctls, personality, memory policy and time offsets.
//! (`linux.resources` and `linux.seccomp` are planned by the cgroups and seccomp crates.)
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxDeviceType, LinuxPersonalityDomain};

use crate::{sysctl, NamespaceKind, NamespacePlan, SpecError};

/// The kind of a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

/// A device node the container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: DeviceKind,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets, as the runtime spec lists them.
pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| DeviceNode {
        path: PathBuf::from("/dev").join(name),
        kind: DeviceKind::Char,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// `linux.devices`.
pub(crate) fn devices(linux: &Linux) -> Result<Vec<DeviceNode>, SpecError> {
    let mut out = Vec::new();
    for (index, device) in linux.devices().iter().flatten().enumerate() {
        let field = format!("linux.devices[{index}]");
        if !device.path().starts_with("/dev/") || has_dot_dot(device.path()) {
            return Err(SpecError::invalid(
                format!("{field}.path"),
                device.path(),
                "an absolute path under /dev without ..",
            ));
        }
        let kind = match device.typ() {
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => DeviceKind::Fifo,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::A => {
                return Err(SpecError::invalid(
                    format!("{field}.type"),
                    "a",
                    "one of c, b, u, p",
                ))
            }
        };
        out.push(DeviceNode {
            path: device.path().clone(),
            kind,
            major: device.major().max(0) as u64,
            minor: device.minor().max(0) as u64,
            mode: device.file_mode().unwrap_or(0o666) & 0o7777,
            uid: device.uid().unwrap_or(0),
            gid: device.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

/// `linux.maskedPaths` or `linux.readonlyPaths` (`field`).
pub(crate) fn paths(list: &Option<Vec<String>>, field: &str) -> Result<Vec<PathBuf>, SpecError> {
    list.iter()
        .flatten()
        .enumerate()
        .map(|(index, path)| {
            if !path.starts_with('/') || has_dot_dot(Path::new(path)) {
                return Err(SpecError::invalid(
                    format!("{field}[{index}]"),
                    path,
                    "an absolute path inside the container without ..",
                ));
            }
            Ok(PathBuf::from(path))
        })
        .collect()
}

/// `linux.sysctl`, in a stable order.
pub(crate) fn sysctls(
    linux: &Linux,
    namespaces: &NamespacePlan,
) -> Result<Vec<(String, String)>, SpecError> {
    let mut out: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    out.sort();
    for (key, _) in &out {
        sysctl::check(key, namespaces)?;
    }
    Ok(out)
}

/// `linux.personality` as the persona `personality(2)` takes.
pub(crate) fn personality(linux: &Linux) -> Result<Option<u32>, SpecError> {
    let Some(personality) = linux.personality() else {
        return Ok(None);
    };
    if let Some(flags) = personality.flags().as_ref().filter(|f| !f.is_empty()) {
        return Err(SpecError::invalid(
            "linux.personality.flags",
            flags,
            "no flags (the runtime spec defines none yet)",
        ));
    }
    Ok(Some(match personality.domain() {
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
        LinuxPersonalityDomain::PerLinux => 0,
    }))
}

/// `linux.memoryPolicy` in the numbers `set_mempolicy(2)` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPolicy {
    /// The mode with its flags.
    pub mode: i32,
    /// The node mask, 64 nodes a word.
    pub nodes: Vec<u64>,
}

pub(crate) fn memory_policy(linux: &Linux) -> Result<Option<MemoryPolicy>, SpecError> {
    use oci_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    let Some(policy) = linux.memory_policy() else {
        return Ok(None);
    };
    let mut mode = match policy.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    for flag in policy.flags().iter().flatten() {
        mode |= match flag {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        };
    }
    let mut nodes = Vec::new();
    if let Some(list) = policy.nodes() {
        for node in crate::process::parse_list(list, "linux.memoryPolicy.nodes")? {
            if nodes.len() <= node / 64 {
                nodes.resize(node / 64 + 1, 0u64);
            }
            nodes[node / 64] |= 1 << (node % 64);
        }
    }
    Ok(Some(MemoryPolicy { mode, nodes }))
}

/// One clock's offset in a new time namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOffset {
    /// `monotonic` or `boottime`.
    pub clock: &'static str,
    pub secs: i64,
    pub nanos: u32,
}

/// `linux.timeOffsets`: only with a new time namespace, only the two clocks it offsets.
pub(crate) fn time_offsets(
    linux: &Linux,
    namespaces: &NamespacePlan,
) -> Result<Vec<TimeOffset>, SpecError> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(Vec::new());
    };
    if !namespaces.creates(NamespaceKind::Time) {
        return Err(SpecError::invalid(
            "linux.timeOffsets",
            "set",
            "a new time namespace in linux.namespaces",
        ));
    }
    let mut out = Vec::new();
    for (clock, offset) in offsets {
        let clock = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => {
                return Err(SpecError::invalid(
                    format!("linux.timeOffsets[{other:?}]"),
                    other,
                    "monotonic or boottime",
                ))
            }
        };
        out.push(TimeOffset {
            clock,
            secs: offset.secs().unwrap_or(0),
            nanos: offset.nanosecs().unwrap_or(0),
        });
    }
    out.sort_by_key(|o| o.clock);
    Ok(out)
}

/// `linux.rootfsPropagation` as the flags applied to `/` (with `MS_REC` when recursive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootPropagation {
    /// `MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE` or `MS_UNBINDABLE`.
    pub flag: u64,
    pub recursive: bool,
}

impl RootPropagation {
    /// Whether mount events must not even come in from the host (`private` kinds).
    pub fn is_private(self) -> bool {
        self.flag == libc::MS_PRIVATE as u64
    }
}

pub(crate) fn root_propagation(linux: &Linux) -> Result<Option<RootPropagation>, SpecError> {
    let Some(propagation) = linux.rootfs_propagation() else {
        return Ok(None);
    };
    let recursive = propagation.starts_with('r');
    let base = if recursive {
        &propagation[1..]
    } else {
        propagation.as_str()
    };
    let flag = match base {
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "private" => libc::MS_PRIVATE,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => return Err(SpecError::invalid(
            "linux.rootfsPropagation",
            propagation,
            "one of shared, slave, private, unbindable (or rshared, rslave, rprivate, runbindable)",
        )),
    } as u64;
    Ok(Some(RootPropagation { flag, recursive }))
}

/// Fields of `linux` this runtime does not support: refused rather than ignored.
pub(crate) fn unsupported(linux: &Linux) -> Result<(), SpecError> {
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
    match unsupported.iter().find(|(_, set, _)| *set) {
        Some((field, _, reason)) => Err(SpecError::unsupported(*field, *reason)),
        None => Ok(()),
    }
}

fn has_dot_dot(path: &Path) -> bool {
    path.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
}

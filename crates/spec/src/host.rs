//! What planning needs to know about the host and the runtime itself. The caller gathers
//! it (see `bulwark_runtime::host`), so that planning stays pure: the same config and the
//! same facts always give the same plan, and tests can state the facts.
use crate::capabilities::CapSet;

/// Facts about the host and the runtime that decide what a config may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The runtime lacks the host's root privileges (a user, or root of another user
    /// namespace, as under rootless Podman).
    pub rootless: bool,
    /// The runtime's effective uid and gid (an unprivileged runtime may map only these).
    pub euid: u32,
    pub egid: u32,
    /// The capabilities this kernel has.
    pub supported: CapSet,
    /// The runtime's own bounding set: what it can grant at all.
    pub bounding: CapSet,
    /// AppArmor is enabled, so `process.apparmorProfile` can be applied.
    pub apparmor: bool,
    /// SELinux is enabled, so `process.selinuxLabel` can be applied.
    pub selinux: bool,
}

impl Host {
    /// The host's root on a kernel with every capability this build knows, and no LSM:
    /// the usual facts in unit tests.
    pub fn privileged() -> Host {
        Host {
            rootless: false,
            euid: 0,
            egid: 0,
            supported: CapSet::all(),
            bounding: CapSet::all(),
            apparmor: false,
            selinux: false,
        }
    }
}

//! The facts about this host and this runtime that planning a config depends on,
//! gathered once per command (a few small reads) so that planning itself stays pure.
use bulwark_spec::{CapSet, Host};
use caps::CapSet as Set;

/// The host as the runtime finds it; `rootless` is the command line's decision.
pub fn detect(rootless: bool) -> Host {
    let supported: CapSet = caps::runtime::thread_all_supported().into_iter().collect();
    let bounding = caps::read(None, Set::Bounding)
        .map(|set| set.into_iter().collect())
        .unwrap_or(supported);
    Host {
        rootless,
        euid: nix::unistd::geteuid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
        supported,
        bounding,
        apparmor: apparmor_enabled(),
        selinux: std::path::Path::new("/sys/fs/selinux/enforce").exists(),
    }
}

/// As runc decides it: the securityfs directory exists and the module says it is on.
fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

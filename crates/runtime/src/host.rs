//! The facts about this host and this runtime that planning a config depends on,
//! gathered once per command (a few small reads) so that planning itself stays pure.
use bulwark_spec::{CapSet, Host};
use caps::CapSet as Set;

use crate::RuntimeError;

/// The oldest kernel with everything the runtime builds containers with: open_tree,
/// mount_setattr (5.12), openat2 (5.6), clone3 with CLONE_INTO_CGROUP (5.7).
pub const MIN_KERNEL: (u32, u32) = (5, 12);

/// Refuses a kernel older than [`MIN_KERNEL`], before anything is made.
pub fn check_kernel() -> Result<(), RuntimeError> {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    match kernel_version(&release) {
        Some(version) if version < MIN_KERNEL => Err(RuntimeError::KernelTooOld { release }),
        _ => Ok(()),
    }
}

/// `(major, minor)` of a release string such as `6.1.0-18-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

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

/// The name `/etc/passwd` gives `uid`, as runc (built without cgo) looks it up: the
/// runtime does not load NSS modules, so users only a directory service knows show as
/// their number.
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

/// As runc decides it: the securityfs directory exists and the module says it is on.
fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.11.22"), Some((5, 11)));
        assert!(kernel_version("5.11.22").unwrap() < MIN_KERNEL);
        assert!(kernel_version("6.18.44-fc").unwrap() >= MIN_KERNEL);
        assert_eq!(kernel_version("weird"), None);
    }
}

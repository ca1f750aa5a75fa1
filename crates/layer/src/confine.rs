//! The unpacker's sandbox, entered by the child process the engine starts for each layer,
//! before it reads a byte of the layer:
//!
//! 1. the layer's directory is opened;
//! 2. a mount namespace of its own, with every mount private: nothing it could do to
//!    mounts reaches the host;
//! 3. capabilities cut to what unpacking needs (owners, modes, file capabilities,
//!    `trusted.` xattrs, device nodes only where allowed);
//! 4. the layer's directory becomes its root (pivot_root, the old root detached): no
//!    host file has a name in its world (the blob comes in on stdin, the result goes out
//!    on stdout);
//! 5. Landlock: file access only beneath that root, and no_new_privs;
//! 6. a seccomp filter refusing what an unpacker never does: mounting, namespaces,
//!    ptrace, sockets, keyrings, bpf, modules, io_uring and the like.
use std::os::fd::OwnedFd;
use std::path::Path;

use caps::{CapSet, Capability};
use landlock::{
    Access, AccessFs, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreatedAttr, ABI,
};
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use crate::UnpackError;

/// What the child keeps: all it needs to recreate files as the layer describes them.
const KEPT: [Capability; 7] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_SETFCAP,
    // `trusted.` xattrs (overlayfs's opaque directories among them).
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_MKNOD,
];

/// Syscalls an unpacker never makes (it runs no other program and starts no process
/// or thread); each is refused with EPERM.
const REFUSED: [&str; 45] = [
    "clone",
    "fork",
    "vfork",
    "execve",
    "execveat",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "clone3",
    "fsopen",
    "fsmount",
    "fsconfig",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "socket",
    "socketpair",
    "connect",
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
    "io_uring_setup",
    "reboot",
    "swapon",
    "swapoff",
    "sethostname",
    "setdomainname",
    "personality",
    "acct",
];

fn setup(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> UnpackError {
    move |e| UnpackError::Setup {
        what,
        reason: e.to_string(),
    }
}

/// Confines the calling process (single-threaded, just started) to the layer directory
/// `dir`, and returns that directory opened for the unpacker. `devices`: keep
/// CAP_MKNOD.
pub fn confine(dir: &Path, devices: bool) -> Result<OwnedFd, UnpackError> {
    let layer = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| setup("opening the layer's directory")(&e))?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|e| setup("a mount namespace of its own")(&e))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| setup("making every mount private")(&e))?;
    drop_capabilities(devices)?;
    let layer = root_at(layer, dir)?;
    landlock_to(&layer)?;
    let profile = refusals();
    let filter = bulwark_seccomp::compile(&profile).map_err(|e| setup("the seccomp filter")(&e))?;
    bulwark_sys::seccomp::install(&filter.program, filter.flags)
        .map_err(|e| setup("installing the seccomp filter")(&e))?;
    Ok(layer)
}

/// Makes the layer's directory this process's whole filesystem: bound onto itself,
/// pivoted to as the root, the old root detached. No absolute path, `..` or symlink can
/// name a host file any more, which covers what Landlock does not (chown, chmod,
/// xattrs, times). Returns the new root, opened.
fn root_at(layer: OwnedFd, dir: &Path) -> Result<OwnedFd, UnpackError> {
    let fail = setup("making the layer's directory the root");
    nix::mount::mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| fail(&e))?;
    nix::unistd::chdir(dir).map_err(|e| fail(&e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| fail(&e))?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).map_err(|e| fail(&e))?;
    nix::unistd::chdir("/").map_err(|e| fail(&e))?;
    // The descriptor opened before still reaches the old tree through `..`: replaced.
    drop(layer);
    nix::fcntl::open(
        "/",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| fail(&e))
}

/// File access only beneath the layer's directory (and no_new_privs).
fn landlock_to(layer: &OwnedFd) -> Result<(), UnpackError> {
    let fail = setup("Landlock");
    let access = AccessFs::from_all(ABI::V6);
    let dir = layer.try_clone().map_err(|e| fail(&e))?;
    Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(access)
        .map_err(|e| fail(&e))?
        .create()
        .map_err(|e| fail(&e))?
        .add_rule(PathBeneath::new(dir, access))
        .map_err(|e| fail(&e))?
        .restrict_self()
        .map_err(|e| fail(&e))?;
    Ok(())
}

fn drop_capabilities(devices: bool) -> Result<(), UnpackError> {
    let fail = setup("dropping capabilities");
    let keep: caps::CapsHashSet = KEPT
        .into_iter()
        .filter(|c| devices || *c != Capability::CAP_MKNOD)
        .collect();
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| fail(&e))?;
        }
    }
    let have = caps::read(None, CapSet::Permitted).map_err(|e| fail(&e))?;
    let kept: caps::CapsHashSet = have.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Effective, &kept).map_err(|e| fail(&e))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| fail(&e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| fail(&e))?;
    Ok(())
}

/// The seccomp profile: everything allowed but [`REFUSED`].
fn refusals() -> bulwark_spec::runtime::LinuxSeccomp {
    serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": REFUSED.as_slice(), "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}
        ]
    }))
    .expect("a valid seccomp profile")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_profile_compiles() {
        let filter = bulwark_seccomp::compile(&super::refusals()).unwrap();
        assert!(filter.program.len() > 10);
    }
}

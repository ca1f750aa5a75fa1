//! Writing `linux.sysctl` through the container's own `/proc/sys`.
use std::os::fd::AsFd;
use std::path::PathBuf;

use bulwark_sys::fs::{fs_magic, PROC_SUPER_MAGIC};
use nix::fcntl::{OFlag, ResolveFlag};

use crate::StepError;

/// Writes each sysctl. Paths are resolved beneath `/proc/sys` with no symlinks and no
/// crossing into another filesystem, and the result must be procfs.
pub fn apply(sysctls: &[(String, String)]) -> Result<(), StepError> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let proc_sys = nix::fcntl::open(
        "/proc/sys",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(StepError::sys("opening /proc/sys (is /proc mounted?)"))?;
    if fs_magic(proc_sys.as_fd()).map_err(StepError::sys("checking /proc/sys"))? != PROC_SUPER_MAGIC
    {
        return Err(StepError::msg("/proc/sys in the container is not procfs"));
    }
    for (key, value) in sysctls {
        let rel: PathBuf = key.split('.').collect();
        let how = nix::fcntl::OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let file = nix::fcntl::openat2(&proc_sys, &rel, how)
            .map_err(StepError::sys(format!("opening sysctl {key}")))?;
        nix::unistd::write(&file, value.as_bytes()).map_err(StepError::sys(format!(
            "writing linux.sysctl {key}={value:?}"
        )))?;
    }
    Ok(())
}

//! Protection of the runtime binary against CVE-2019-5736: a container must never be able
//! to write to the file behind `/proc/self/exe` of a runtime process that enters it.
//!
//! Before `create`, `run` or `exec` do anything, the runtime re-executes itself from a
//! detached, read-only bind mount of its own binary (`open_tree` + `mount_setattr` +
//! `execveat`): the executable is then on a read-only mount that exists in no mount
//! namespace, so opening `/proc/<pid>/exe` for writing fails with EROFS. Nothing is
//! copied; the cost is one exec.
//!
//! A runtime without root may not clone mounts. Its containers run as its own user (or
//! ids from its subordinate ranges), so a binary owned by the host's root and writable by
//! no one else is out of their reach already and runs as it is; any other binary is
//! copied into a sealed memfd (no writes, no resizing) and re-executed from there.
use crate::RuntimeError;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use bulwark_sys::mount::{clone_tree, set_attrs, Attrs, ATTR_RDONLY};
use nix::fcntl::SealFlag;
use nix::sys::memfd::{memfd_create, MFdFlags};

/// Whether the running binary sits on a read-only mount or in a write-sealed memfd.
fn exe_is_sealed() -> bool {
    let Ok(exe) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    let read_only = nix::sys::statvfs::fstatvfs(&exe)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    read_only
        || nix::fcntl::fcntl(&exe, nix::fcntl::FcntlArg::F_GET_SEALS)
            .is_ok_and(|seals| SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_WRITE))
}

/// Whether only the host's root can write the running binary: owned by root, writable by
/// no group or other, as seen from the host's user namespace (in another one, "root" may
/// be the caller itself). A runtime without root needs no seal for such a binary.
fn only_host_root_can_write(exe: &std::fs::File) -> bool {
    crate::rootless::in_host_user_namespace()
        && exe
            .metadata()
            .is_ok_and(|m| m.uid() == 0 && m.permissions().mode() & 0o022 == 0)
}

/// A sealed memfd holding a copy of the running binary.
fn sealed_copy(mut exe: std::fs::File) -> Result<OwnedFd, RuntimeError> {
    // Named after the file it copies, so the seccomp cache still knows this build.
    let identity = exe
        .metadata()
        .map(|m| crate::file_identity(&m))
        .unwrap_or_default();
    let name = format!("{}{identity}", crate::SEALED_COPY_PREFIX);
    let memfd = memfd_create(
        name.as_str(),
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(RuntimeError::sys(
        "creating a memfd for a sealed copy of the runtime",
    ))?;
    let mut copy = std::fs::File::from(memfd);
    std::io::copy(&mut exe, &mut copy).map_err(RuntimeError::io(
        "cannot copy the runtime binary into a memfd",
        "/proc/self/exe",
    ))?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    nix::fcntl::fcntl(&copy, nix::fcntl::FcntlArg::F_ADD_SEALS(seals))
        .map_err(RuntimeError::sys("sealing the runtime's memfd copy"))?;
    Ok(OwnedFd::from(copy))
}

fn sealed_binary() -> Result<OwnedFd, RuntimeError> {
    let tree = clone_tree(Path::new("/proc/self/exe"), false)
        .map_err(RuntimeError::sys("cloning the runtime binary's mount"))?;
    set_attrs(
        tree.as_fd(),
        Attrs {
            set: ATTR_RDONLY,
            clear: 0,
        },
        0,
        false,
    )
    .map_err(RuntimeError::sys(
        "making the runtime binary's mount read-only",
    ))?;
    Ok(tree)
}

/// Re-executes the runtime from a read-only mount (without root: from a sealed copy, or
/// not at all when only root can write it) unless it already runs from one. Returns
/// only if the binary is already protected, or with the reason it cannot be.
pub fn ensure_sealed(rootless: bool) -> Result<(), RuntimeError> {
    if exe_is_sealed() {
        return Ok(());
    }
    let binary = match sealed_binary() {
        Ok(binary) => binary,
        Err(_) if rootless => {
            let exe = std::fs::File::open("/proc/self/exe").map_err(RuntimeError::io(
                "cannot open the runtime binary",
                "/proc/self/exe",
            ))?;
            if only_host_root_can_write(&exe) {
                return Ok(());
            }
            sealed_copy(exe)?
        }
        Err(e) => return Err(e),
    };
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    let err = nix::unistd::execveat(
        binary.as_fd(),
        c"",
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    );
    Err(RuntimeError::sys(
        "re-executing the runtime from its sealed binary",
    )(err.unwrap_err()))
}

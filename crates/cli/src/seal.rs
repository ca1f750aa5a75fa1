//! Protection of the runtime binary against CVE-2019-5736: a container must never be able
//! to write to the file behind `/proc/self/exe` of a runtime process that enters it.
//!
//! Before `create`, `run` or `exec` do anything, the runtime re-executes itself from a
//! detached, read-only bind mount of its own binary (`open_tree` + `mount_setattr` +
//! `execveat`): the executable is then on a read-only mount that exists in no mount
//! namespace, so opening `/proc/<pid>/exe` for writing fails with EROFS. Nothing is
//! copied; the cost is one exec.
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use bulwark_sys::mount::{clone_tree, set_attrs, Attrs, ATTR_RDONLY};

/// Whether the running binary sits on a read-only mount.
fn exe_is_sealed() -> bool {
    let Ok(exe) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    nix::sys::statvfs::fstatvfs(&exe)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

fn sealed_binary() -> Result<OwnedFd, String> {
    let tree = clone_tree(Path::new("/proc/self/exe"), false)
        .map_err(|e| format!("cloning the runtime binary's mount: {e}"))?;
    set_attrs(
        tree.as_fd(),
        Attrs {
            set: ATTR_RDONLY,
            clear: 0,
        },
        0,
        false,
    )
    .map_err(|e| format!("making it read-only: {e}"))?;
    Ok(tree)
}

/// Re-executes the runtime from a read-only mount unless it already runs from one.
/// Returns only if the binary is already protected, or with the reason it cannot be.
pub fn ensure_sealed() -> Result<(), String> {
    if exe_is_sealed() {
        return Ok(());
    }
    let binary = sealed_binary()?;
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
    Err(format!(
        "re-executing the runtime from a read-only mount: {err:?}"
    ))
}

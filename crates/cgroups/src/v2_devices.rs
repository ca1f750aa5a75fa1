//! `linux.resources.devices` on a cgroup v2 directory: the compiled device program is
//! loaded (verified by the kernel) and then attached in place of the program an earlier
//! `apply` attached, so exactly one bulwark program decides. The programs go away with
//! the cgroup, so removal needs nothing.
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use bulwark_sys::bpf;
use bulwark_sys::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode as FileMode;
use oci_spec::runtime::LinuxDeviceCgroup;

use crate::controllers::resources_field;
use crate::device_filter::device_program;
use crate::error::{CgroupError, Result};

/// The license the generated programs are loaded under (bulwark's own).
const LICENSE: &CStr = c"Apache-2.0";

/// A device program the kernel accepted, not attached yet.
#[derive(Debug)]
pub(crate) struct DeviceProgram {
    fd: OwnedFd,
    rules: usize,
}

impl DeviceProgram {
    /// Compiles and loads the program for `rules`, to go on the cgroup `dir`.
    pub(crate) fn load(rules: &[LinuxDeviceCgroup], dir: &Path) -> Result<Self> {
        let insns = device_program(rules)?;
        let fd = bpf::load_cgroup_device_program(&insns, LICENSE).map_err(|e| {
            let reason = match e.errno {
                Errno::EPERM => format!(
                    "loading the device program was refused ({}): it needs CAP_BPF or \
                     CAP_SYS_ADMIN",
                    e.errno
                ),
                Errno::E2BIG if e.log.is_empty() => format!(
                    "the device program has {} instructions, more than the kernel takes \
                     (1,000,000 with CAP_BPF, 4,096 without) ({})",
                    insns.len(),
                    e.errno
                ),
                _ => format!("the kernel refused the device program: {e}"),
            };
            refused(rules.len(), dir, reason)
        })?;
        Ok(DeviceProgram {
            fd,
            rules: rules.len(),
        })
    }

    /// Attaches the program to `dir` and detaches every device program attached to `dir`
    /// before, swapping in one step (`BPF_F_REPLACE`) when there is exactly one. While
    /// both are attached both must allow, so no access is ever allowed by neither.
    pub(crate) fn attach(&self, dir: &Path) -> Result<()> {
        let fail = |what: &str, e: Errno| {
            refused(
                self.rules,
                dir,
                format!("cannot {what} the device program: {}", explain(e)),
            )
        };
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let cgroup = nix::fcntl::open(dir, flags, FileMode::empty()).map_err(|e| {
            CgroupError::io(
                "open to attach a device program to",
                dir,
                std::io::Error::from_raw_os_error(e as i32),
            )
        })?;
        let cgroup = cgroup.as_fd();
        let old = attached(cgroup).map_err(|e| fail("list the attached", e))?;
        if let [only] = old.as_slice() {
            match bpf::attach_cgroup_device(cgroup, self.fd.as_fd(), Some(only.as_fd())) {
                Ok(()) => return Ok(()),
                // Before Linux 5.6 there is no BPF_F_REPLACE: attach, then detach.
                Err(Errno::EINVAL) => {}
                Err(e) => return Err(fail("attach", e)),
            }
        }
        bpf::attach_cgroup_device(cgroup, self.fd.as_fd(), None).map_err(|e| fail("attach", e))?;
        for prog in &old {
            match bpf::detach_cgroup_device(cgroup, prog.as_fd()) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(fail("detach the previous", e)),
            }
        }
        Ok(())
    }
}

/// Fds of the device programs attached to `cgroup` itself; ones detached meanwhile are
/// left out.
fn attached(cgroup: BorrowedFd<'_>) -> std::result::Result<Vec<OwnedFd>, Errno> {
    let mut fds = Vec::new();
    for id in bpf::query_cgroup_device(cgroup)? {
        match bpf::prog_fd_by_id(id) {
            Ok(fd) => fds.push(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(fds)
}

fn explain(e: Errno) -> String {
    match e {
        Errno::EPERM => format!(
            "{e}: this needs CAP_SYS_ADMIN, and an ancestor cgroup's device program \
             attached without BPF_F_ALLOW_MULTI refuses others below it"
        ),
        _ => e.to_string(),
    }
}

fn refused(rules: usize, dir: &Path, reason: String) -> CgroupError {
    CgroupError::Apply {
        field: resources_field("devices"),
        value: format!("({rules} rules)"),
        path: PathBuf::from(dir),
        reason,
    }
}

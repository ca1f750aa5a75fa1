//! Writing a new user namespace's uid and gid maps from the parent.
//!
//! The host's root writes any maps. A runtime without root may write only a map of its
//! own id (and for gids only after denying `setgroups` in the namespace); anything more
//! goes through the setuid helpers `newuidmap`/`newgidmap`, which allow the ranges
//! `/etc/subuid` and `/etc/subgid` give the caller's user.
use std::path::{Path, PathBuf};
use std::process::Command;

use bulwark_spec::ids::{format as format_map, IdMapping, IdMaps};
use nix::unistd::Pid;

use crate::StepError;

/// One of the two maps.
#[derive(Clone, Copy)]
enum IdMapKind {
    Uid,
    Gid,
}

impl IdMapKind {
    fn field(self) -> &'static str {
        match self {
            IdMapKind::Uid => "linux.uidMappings",
            IdMapKind::Gid => "linux.gidMappings",
        }
    }
    fn file(self) -> &'static str {
        match self {
            IdMapKind::Uid => "uid_map",
            IdMapKind::Gid => "gid_map",
        }
    }
    fn helper(self) -> &'static str {
        match self {
            IdMapKind::Uid => "newuidmap",
            IdMapKind::Gid => "newgidmap",
        }
    }
    fn ranges(self) -> &'static str {
        match self {
            IdMapKind::Uid => "/etc/subuid",
            IdMapKind::Gid => "/etc/subgid",
        }
    }
    /// The caller's own effective id of this kind.
    fn own(self) -> u32 {
        match self {
            IdMapKind::Uid => nix::unistd::geteuid().as_raw(),
            IdMapKind::Gid => nix::unistd::getegid().as_raw(),
        }
    }

    /// Whether `maps` is the one map an unprivileged caller may write itself: its own
    /// id, once.
    fn own_only(self, maps: &[IdMapping]) -> bool {
        maps.len() == 1 && maps[0].size == 1 && maps[0].host_id == self.own()
    }
}

/// Writes `/proc/<pid>/{uid,gid}_map` for a process that just entered a new user
/// namespace; `setgroups_denied` (decided by planning) denies setgroups(2) first, as the
/// kernel requires of an unprivileged gid map.
pub fn write(pid: Pid, maps: &IdMaps, setgroups_denied: bool) -> Result<(), StepError> {
    let privileged = nix::unistd::geteuid().is_root();
    for (ids, maps) in [(IdMapKind::Uid, &maps.uids), (IdMapKind::Gid, &maps.gids)] {
        if privileged || ids.own_only(maps) {
            if matches!(ids, IdMapKind::Gid) && setgroups_denied {
                write_file(pid, "setgroups", "deny", ids)?;
            }
            write_file(pid, ids.file(), &format_map(maps), ids)?;
        } else {
            run_helper(pid, ids, maps)?;
        }
    }
    Ok(())
}

fn write_file(pid: Pid, file: &str, text: &str, ids: IdMapKind) -> Result<(), StepError> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, text).map_err(|e| {
        StepError::msg(format!(
            "writing {} to {path}: {e} (check that the host ids exist and the ranges do not overlap)",
            ids.field()
        ))
    })
}

/// `newuidmap PID ID LOWER COUNT...` (or newgidmap), which checks the ranges against
/// `/etc/subuid` (`/etc/subgid`) for the caller's user.
fn run_helper(pid: Pid, ids: IdMapKind, maps: &[IdMapping]) -> Result<(), StepError> {
    let helper = id_map_helper(ids.helper()).ok_or_else(|| {
        StepError::msg(format!(
            "{} maps more than your own id ({}), which a runtime without root can do only with {} (Debian's uidmap package) and a range in {}: {} is not in {}",
            ids.field(),
            ids.own(),
            ids.helper(),
            ids.ranges(),
            ids.helper(),
            HELPER_DIRS.join(" or ")
        ))
    })?;
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([
            m.container_id.to_string(),
            m.host_id.to_string(),
            m.size.to_string(),
        ]);
    }
    let output = Command::new(&helper)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| StepError::msg(format!("running {}: {e}", helper.display())))?;
    if output.status.success() {
        return Ok(());
    }
    Err(StepError::msg(format!(
        "{} {:?} cannot be mapped: `{} {}` failed ({}): {} (expected ranges that {} gives your user)",
        ids.field(),
        format_map(maps).trim().replace('\n', ", "),
        ids.helper(),
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim(),
        ids.ranges()
    )))
}

/// Where the setuid id-map helpers are looked for: the system's own directories only,
/// never the caller's PATH.
const HELPER_DIRS: [&str; 2] = ["/usr/bin", "/bin"];

/// The installed `newuidmap` or `newgidmap`, if any.
pub fn id_map_helper(name: &str) -> Option<PathBuf> {
    HELPER_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
}

/// After the maps are written, become root of the new namespace when 0 is mapped, so
/// files the setup creates belong to the container's root.
pub fn become_namespace_root() {
    let root = nix::unistd::Uid::from_raw(0);
    let group = nix::unistd::Gid::from_raw(0);
    let _ = nix::unistd::setresgid(group, group, group);
    let _ = nix::unistd::setresuid(root, root, root);
    // Changing ids clears the dumpable flag, which hands /proc/self to the host's root and
    // locks us out of our own /proc files (timens_offsets, oom_score_adj). Nothing else
    // runs in the new namespaces yet, and exec resets the flag for the user's program.
    let _ = nix::sys::prctl::set_dumpable(true);
}

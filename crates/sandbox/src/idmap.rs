//! Writing a new user namespace's uid and gid maps from the parent.
//!
//! The host's root writes any maps. A runtime without root may write only a map of its
//! own id (and for gids only after denying `setgroups` in the namespace); anything more
//! goes through the setuid helpers `newuidmap`/`newgidmap`, which allow the ranges
//! `/etc/subuid` and `/etc/subgid` give the caller's user.
use std::path::PathBuf;
use std::process::Command;

use bulwark_spec::runtime::LinuxIdMapping;
use nix::unistd::Pid;

use crate::StepError;

fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// One of the two maps.
#[derive(Clone, Copy)]
enum Ids {
    Uid,
    Gid,
}

impl Ids {
    fn field(self) -> &'static str {
        match self {
            Ids::Uid => "linux.uidMappings",
            Ids::Gid => "linux.gidMappings",
        }
    }
    fn file(self) -> &'static str {
        match self {
            Ids::Uid => "uid_map",
            Ids::Gid => "gid_map",
        }
    }
    fn helper(self) -> &'static str {
        match self {
            Ids::Uid => "newuidmap",
            Ids::Gid => "newgidmap",
        }
    }
    fn ranges(self) -> &'static str {
        match self {
            Ids::Uid => "/etc/subuid",
            Ids::Gid => "/etc/subgid",
        }
    }
    /// The caller's own effective id of this kind.
    fn own(self) -> u32 {
        match self {
            Ids::Uid => nix::unistd::geteuid().as_raw(),
            Ids::Gid => nix::unistd::getegid().as_raw(),
        }
    }
}

/// Writes `/proc/<pid>/{uid,gid}_map` for a process that just entered a new user namespace.
pub fn write(
    pid: Pid,
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
) -> Result<(), StepError> {
    let privileged = nix::unistd::geteuid().is_root();
    for (ids, maps) in [(Ids::Uid, uid_maps), (Ids::Gid, gid_maps)] {
        let own_only = maps.len() == 1 && maps[0].size() == 1 && maps[0].host_id() == ids.own();
        if privileged || own_only {
            if !privileged && matches!(ids, Ids::Gid) {
                // The kernel's condition for an unprivileged gid map.
                write_file(pid, "setgroups", "deny", ids)?;
            }
            write_file(pid, ids.file(), &format_map(maps), ids)?;
        } else {
            run_helper(pid, ids, maps)?;
        }
    }
    Ok(())
}

fn write_file(pid: Pid, file: &str, text: &str, ids: Ids) -> Result<(), StepError> {
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
fn run_helper(pid: Pid, ids: Ids, maps: &[LinuxIdMapping]) -> Result<(), StepError> {
    let helper = find_helper(ids.helper()).ok_or_else(|| {
        StepError::msg(format!(
            "{} maps more than your own id ({}), which a runtime without root can do only with {} (Debian's uidmap package) and a range in {}: {} was not found in PATH",
            ids.field(),
            ids.own(),
            ids.helper(),
            ids.ranges(),
            ids.helper()
        ))
    })?;
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
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

/// `name` in `PATH`, or in the directories Debian installs it to.
fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether `setgroups(2)` is denied in the calling process's user namespace (a runtime
/// without root mapped only its own gid).
pub fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
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

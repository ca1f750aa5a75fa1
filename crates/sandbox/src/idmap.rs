//! Writing a new user namespace's uid and gid maps from the parent.
use bulwark_spec::runtime::LinuxIdMapping;
use nix::unistd::Pid;

use crate::StepError;

fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes `/proc/<pid>/{uid,gid}_map` for a process that just entered a new user namespace.
pub fn write(
    pid: Pid,
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
) -> Result<(), StepError> {
    for (file, maps) in [("uid_map", uid_maps), ("gid_map", gid_maps)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, format_map(maps)).map_err(|e| {
            StepError::msg(format!(
                "writing linux.{}Mappings to {path}: {e} (check that the host ids exist and the ranges do not overlap)",
                if file == "uid_map" { "uid" } else { "gid" }
            ))
        })?;
    }
    Ok(())
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

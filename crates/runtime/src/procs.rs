//! Finding a container's processes. Until cgroups track them, a container with its own
//! pid namespace is every process in that namespace.
use std::os::unix::fs::MetadataExt;

/// The pids (in the runtime's namespace) of the container whose init is `init`.
pub fn container_pids(init: i32) -> Vec<i32> {
    let ns = |pid: &str| {
        std::fs::metadata(format!("/proc/{pid}/ns/pid"))
            .map(|m| m.ino())
            .ok()
    };
    let (Some(theirs), Some(ours)) = (ns(&init.to_string()), ns("self")) else {
        return Vec::new();
    };
    if theirs == ours {
        return vec![init];
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![init];
    };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|name| ns(name) == Some(theirs))
        .filter_map(|name| name.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

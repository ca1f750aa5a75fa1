//! A runtime without the host's root privileges (rootless): run by a user other than
//! root, or as root of a user namespace other than the host's (as under rootless Podman).
//! It makes the container's user namespace itself (the sandbox writes the id maps, with
//! `newuidmap`/`newgidmap` when more than the caller's own ids are mapped), uses only the
//! cgroups delegated to its user (see [`crate::cgroups::create`]), and keeps its state
//! under `$XDG_RUNTIME_DIR` (see the command line). What it cannot do at all is refused
//! by planning (`bulwark_spec::Config::plan`), before anything is made.
/// Whether this process lacks the host's root privileges: its effective uid is not 0, or
/// it is in a user namespace other than the host's.
pub fn detected() -> bool {
    !nix::unistd::geteuid().is_root() || !in_host_user_namespace()
}

/// In the host's (initial) user namespace `uid_map` maps all 2^32 - 1 ids onto themselves.
/// Without a readable `/proc`, the effective uid alone decides.
pub fn in_host_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").map_or(true, |map| {
        map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
    })
}

//! Engine integration: Docker, Podman and containerd started by the tests on their own
//! sockets and directories, driving runc and bulwark-runtime side by side over the same
//! scenarios, with a pass table per engine (`<target>/engines/<engine>.md`).
//!
//! - [`image`]: the busybox test image, as an archive every engine loads.
//! - [`daemon`]: daemons stopped by their pid on drop, and the local registry.
//! - [`cli`]: an engine's command line with one runtime selected; checks on output.
//! - [`matrix`]: runs the scenarios, writes the table, fails on a regression from runc.
//! - [`docker_like`]: the scenarios Docker and Podman share.

pub mod cli;
pub mod daemon;
pub mod docker_like;
pub mod image;
pub mod matrix;

/// Whether `program` is installed; engine tests skip (saying so) when it is not.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

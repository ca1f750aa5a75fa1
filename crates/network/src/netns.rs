//! A container's network namespace, kept alive by a bind mount on a file so it outlives
//! the container's processes (restarts keep their address) and can be set up before the
//! container starts. Work inside one runs on a thread of its own that joins it, so the
//! calling thread never changes namespace.
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::NetworkError;

/// Makes a new network namespace, pinned at `path`, with `lo` up.
pub fn create(path: &Path) -> Result<(), NetworkError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(NetworkError::io("cannot create", parent))?;
    }
    // A file another mount namespace pinned (a user's earlier command) is replaced.
    let _ = std::fs::remove_file(path);
    std::fs::File::create(path).map_err(NetworkError::io("cannot create", path))?;
    let pinned = path.to_path_buf();
    let made = run_on_thread(move || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetworkError::Other(format!("cannot make a network namespace: {e}")))?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &pinned,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            NetworkError::Other(format!(
                "cannot pin a network namespace at {}: {e}",
                pinned.display()
            ))
        })?;
        // As Docker does: ping works without CAP_NET_RAW (ICMP sockets for every group).
        // Best effort: in a user's namespace only its mapped groups can be named.
        let _ = std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
        crate::link::Netlink::open()?.configure_inside(None)
    });
    if made.is_err() {
        remove(path);
    }
    made
}

/// Whether `path` is a pinned network namespace in this mount namespace (a file left
/// behind, or one pinned in another mount namespace, is not).
pub fn is_pinned(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 as i64 == NSFS_MAGIC)
}

/// Unpins and forgets a namespace; one already gone is fine.
pub fn remove(path: &Path) {
    let _ = nix::mount::umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

pub fn open(path: &Path) -> Result<OwnedFd, NetworkError> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(NetworkError::io("cannot open network namespace", path))
}

/// Runs `work` on a thread that has joined the namespace pinned at `path`.
pub fn inside<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, NetworkError> + Send + 'static,
) -> Result<T, NetworkError> {
    let fd = open(path)?;
    let shown: PathBuf = path.to_path_buf();
    run_on_thread(move || {
        nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            NetworkError::Other(format!(
                "cannot join network namespace {}: {e}",
                shown.display()
            ))
        })?;
        work()
    })
}

fn run_on_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NetworkError> + Send + 'static,
) -> Result<T, NetworkError> {
    std::thread::spawn(work)
        .join()
        .unwrap_or_else(|_| Err(NetworkError::Other("network setup thread panicked".into())))
}

//! `linux.maskedPaths` and `linux.readonlyPaths`, applied inside the new root.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use bulwark_sys::fs::{fd_path, open_path_in_root};
use bulwark_sys::mount::{attach, clone_tree_fd, set_attrs, Attrs, ATTR_RDONLY};
use bulwark_sys::Errno;
use nix::mount::MsFlags;

use crate::StepError;

fn root() -> Result<OwnedFd, StepError> {
    nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(StepError::sys("opening /"))
}

/// Opens the container's `/dev/null` and checks it really is the null device, so a
/// planted symlink or file cannot be what gets mounted over a masked path.
fn verified_dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd, StepError> {
    let fd = open_path_in_root(root, Path::new("/dev/null"))
        .map_err(StepError::sys("opening /dev/null"))?;
    let stat = nix::sys::stat::fstat(&fd).map_err(StepError::sys("inspecting /dev/null"))?;
    let is_null = stat.st_mode & libc::S_IFMT == libc::S_IFCHR
        && nix::sys::stat::major(stat.st_rdev) == 1
        && nix::sys::stat::minor(stat.st_rdev) == 3;
    if !is_null {
        return Err(StepError::msg("/dev/null in the container is not the null device (1:3); refusing to mask paths with it"));
    }
    Ok(fd)
}

/// Hides each path: files behind `/dev/null`, directories behind an empty read-only tmpfs.
pub fn mask(paths: &[std::path::PathBuf]) -> Result<(), StepError> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = root()?;
    let null = verified_dev_null(root.as_fd())?;
    for path in paths {
        let shown = path.display();
        let target = match open_path_in_root(root.as_fd(), path) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(StepError::sys(format!("opening masked path {shown}"))(e)),
        };
        let stat = nix::sys::stat::fstat(&target)
            .map_err(StepError::sys(format!("inspecting masked path {shown}")))?;
        let result = if stat.st_mode & libc::S_IFMT == libc::S_IFDIR {
            nix::mount::mount(
                Some("tmpfs"),
                &fd_path(target.as_fd()),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0,mode=755"),
            )
            .map_err(StepError::sys(format!("masking {shown}")))
        } else {
            let tree =
                clone_tree_fd(null.as_fd(), false).map_err(StepError::sys("cloning /dev/null"))?;
            attach(tree.as_fd(), target.as_fd()).map_err(StepError::sys(format!("masking {shown}")))
        };
        result?;
    }
    Ok(())
}

/// Makes each path (and every mount below it) read-only.
pub fn make_readonly(paths: &[std::path::PathBuf]) -> Result<(), StepError> {
    let root = root()?;
    for path in paths {
        let shown = path.display();
        let target = match open_path_in_root(root.as_fd(), path) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(StepError::sys(format!("opening read-only path {shown}"))(e)),
        };
        let tree = clone_tree_fd(target.as_fd(), true)
            .map_err(StepError::sys(format!("cloning {shown}")))?;
        set_attrs(
            tree.as_fd(),
            Attrs {
                set: ATTR_RDONLY,
                clear: 0,
            },
            0,
            true,
        )
        .map_err(StepError::sys(format!("making {shown} read-only")))?;
        attach(tree.as_fd(), target.as_fd())
            .map_err(StepError::sys(format!("attaching read-only {shown}")))?;
    }
    Ok(())
}

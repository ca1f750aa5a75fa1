//! Paths inside a container's root, resolved so that no symlink or `..` can lead out of it.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::{Errno, SysResult};

fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

const SCOPED: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// `path` as a relative path with `.` and empty parts removed; `..` is kept for the
/// kernel to clamp at the root.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

/// Opens `path` as if `root` were `/`: symlinks and `..` cannot escape it, and magic
/// links (`/proc/self/fd/N`) are refused.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
    mode: u32,
) -> SysResult<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel.as_path()
    };
    rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
        SCOPED,
    )
    .map_err(errno)
}

/// Opens an `O_PATH` handle to `path` inside `root`.
pub fn open_path_in_root(root: BorrowedFd<'_>, path: &Path) -> SysResult<OwnedFd> {
    open_in_root(root, path, OFlags::PATH, 0)
}

/// Like `mkdir -p` inside `root`: every directory is created with `mkdirat` on a handle
/// to its parent, so a symlink planted by the image cannot redirect creation to the host.
/// Returns an `O_PATH` handle to the last directory.
pub fn mkdir_all_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> SysResult<OwnedFd> {
    let rel = relative(path);
    let mut done = PathBuf::new();
    let mut dir = open_path_in_root(root, &done)?;
    for part in rel.components() {
        done.push(part);
        match open_in_root(root, &done, OFlags::PATH | OFlags::DIRECTORY, 0) {
            Ok(next) => dir = next,
            Err(Errno::ENOENT) => {
                let parent = open_in_root(
                    root,
                    done.parent().unwrap_or(Path::new("")),
                    OFlags::DIRECTORY | OFlags::RDONLY,
                    0,
                )?;
                match rustix::fs::mkdirat(&parent, part.as_os_str(), Mode::from_raw_mode(mode)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(errno(e)),
                }
                dir = open_in_root(root, &done, OFlags::PATH | OFlags::DIRECTORY, 0)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Creates an empty file at `path` inside `root` if nothing is there (a target for a
/// file bind mount or a device), making parent directories as needed. Returns an
/// `O_PATH` handle to it.
pub fn touch_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> SysResult<OwnedFd> {
    if let Ok(existing) = open_path_in_root(root, path) {
        return Ok(existing);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or(Errno::EINVAL)?;
    let parent_dir = mkdir_all_in_root(root, parent, 0o755)?;
    let parent_dir = reopen(parent_dir.as_fd(), OFlags::DIRECTORY | OFlags::RDONLY)?;
    let created = rustix::fs::openat(
        &parent_dir,
        name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    );
    match created {
        Ok(_) | Err(rustix::io::Errno::EXIST) => open_path_in_root(root, path),
        Err(e) => Err(errno(e)),
    }
}

/// Reopens an `O_PATH` handle with real access flags.
pub fn reopen(fd: BorrowedFd<'_>, flags: OFlags) -> SysResult<OwnedFd> {
    rustix::fs::openat(
        rustix::fs::CWD,
        fd_path(fd),
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)
}

/// The `/proc/self/fd/N` path naming an open fd, for calls that only take paths.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The filesystem magic number (`statfs.f_type`) of the filesystem holding `fd`.
pub fn fs_magic(fd: BorrowedFd<'_>) -> SysResult<i64> {
    nix::sys::statfs::fstatfs(fd).map(|s| s.filesystem_type().0)
}

/// procfs's magic number.
pub const PROC_SUPER_MAGIC: i64 = libc::PROC_SUPER_MAGIC;

//! Copying a directory tree between two open directories, as `tmpcopyup` needs: what an
//! image has under a path is copied into the tmpfs mounted over it. Every step works on
//! fds relative to the two directories and never follows a symlink, so a tree planted
//! by the image cannot lead the copy out of it.
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat, Timespec, Timestamps};

use crate::{Errno, SysResult};

fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

const NOFOLLOW: AtFlags = AtFlags::SYMLINK_NOFOLLOW;

/// Copies everything in the directory `from` into the directory `to`: directories,
/// regular files, symlinks, fifos and device nodes, with their owners, modes and times.
/// Sockets are skipped (a socket file means nothing without its listener). Both fds
/// must be real directory fds (not `O_PATH`).
pub fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> SysResult<()> {
    for entry in Dir::read_from(from).map_err(errno)? {
        let entry = entry.map_err(errno)?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        copy_entry(from, to, name)?;
    }
    Ok(())
}

/// Gives the directory `to` the owner and mode of the directory `from` (a tmpfs root
/// takes its image directory's); `owner` and `mode` say which to copy.
pub fn copy_dir_attributes(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    owner: bool,
    mode: bool,
) -> SysResult<()> {
    let stat = rustix::fs::fstat(from).map_err(errno)?;
    if owner {
        let uid = Some(rustix::fs::Uid::from_raw(stat.st_uid));
        let gid = Some(rustix::fs::Gid::from_raw(stat.st_gid));
        rustix::fs::fchown(to, uid, gid).map_err(errno)?;
    }
    if mode {
        let bits = Mode::from_raw_mode(stat.st_mode) & Mode::from_bits_truncate(0o7777);
        rustix::fs::fchmod(to, bits).map_err(errno)?;
    }
    Ok(())
}

fn copy_entry(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &CStr) -> SysResult<()> {
    let stat = rustix::fs::statat(from, name, NOFOLLOW).map_err(errno)?;
    let mode = Mode::from_raw_mode(stat.st_mode) & Mode::from_bits_truncate(0o7777);
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => {
            rustix::fs::mkdirat(to, name, Mode::RWXU).map_err(errno)?;
            let source = open_dir(from, name)?;
            let copy = open_dir(to, name)?;
            copy_tree(source.as_fd(), copy.as_fd())?;
        }
        FileType::RegularFile => {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
            let source = rustix::fs::openat(from, name, flags, Mode::empty()).map_err(errno)?;
            let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
            let copy =
                rustix::fs::openat(to, name, create, Mode::RUSR | Mode::WUSR).map_err(errno)?;
            copy_contents(&source, &copy)?;
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(from, name, Vec::new()).map_err(errno)?;
            rustix::fs::symlinkat(target.as_c_str(), to, name).map_err(errno)?;
        }
        FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
            let kind = FileType::from_raw_mode(stat.st_mode);
            rustix::fs::mknodat(to, name, kind, Mode::RUSR | Mode::WUSR, stat.st_rdev)
                .map_err(errno)?;
        }
        FileType::Socket | FileType::Unknown => return Ok(()),
    }
    set_metadata(to, name, &stat, mode)
}

fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> SysResult<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(errno)
}

fn copy_contents(source: &OwnedFd, copy: &OwnedFd) -> SysResult<()> {
    let mut reader = std::fs::File::from(source.try_clone().map_err(io_errno)?);
    let mut writer = std::fs::File::from(copy.try_clone().map_err(io_errno)?);
    std::io::copy(&mut reader, &mut writer).map_err(io_errno)?;
    Ok(())
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Owner first (chown clears set-id bits), then the mode, then the times.
fn set_metadata(dir: BorrowedFd<'_>, name: &CStr, stat: &Stat, mode: Mode) -> SysResult<()> {
    let owner = Some(rustix::fs::Uid::from_raw(stat.st_uid));
    let group = Some(rustix::fs::Gid::from_raw(stat.st_gid));
    rustix::fs::chownat(dir, name, owner, group, NOFOLLOW).map_err(errno)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
        rustix::fs::chmodat(dir, name, mode, AtFlags::empty()).map_err(errno)?;
    }
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: stat.st_atime,
            tv_nsec: stat.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: stat.st_mtime,
            tv_nsec: stat.st_mtime_nsec as _,
        },
    };
    rustix::fs::utimensat(dir, name, &times, NOFOLLOW).map_err(errno)
}

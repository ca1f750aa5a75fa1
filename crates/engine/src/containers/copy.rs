//! `cp`: files and directories between a container's root filesystem and the host.
//! Every path on the container's side is resolved by the kernel inside the container's
//! root (`openat2` with `RESOLVE_IN_ROOT`) and every file is then reached relative to a
//! directory handle, one name at a time with `O_NOFOLLOW`: a symlink the container
//! planted is copied as a symlink, never followed to the host.
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

use crate::{Engine, EngineError};

/// One side of a copy.
#[derive(Debug, Clone)]
pub enum CopyEnd {
    Host(PathBuf),
    /// A container (name or id) and a path in it.
    Container(String, PathBuf),
}

fn failed(what: &str, path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::Other(format!("{what} {}: {e}", path.display()))
}

fn no_such(path: &Path) -> EngineError {
    EngineError::InvalidArgument(format!(
        "Could not find the file {} in container",
        path.display()
    ))
}

/// Whether the last component is `.` (`dir/.`: copy the directory's contents).
fn contents_only(path: &Path) -> bool {
    path.as_os_str().as_bytes().ends_with(b"/.")
}

impl Engine {
    /// `cp SRC DST`: one side a container's path, the other the host's.
    pub fn copy(&self, from: &CopyEnd, to: &CopyEnd) -> Result<(), EngineError> {
        match (from, to) {
            (CopyEnd::Container(c, src), CopyEnd::Host(dst)) => {
                let root = self.container_root(c)?;
                self.copy_out(&root, src, dst)
            }
            (CopyEnd::Host(src), CopyEnd::Container(c, dst)) => {
                let root = self.container_root(c)?;
                copy_in(&root, src, dst)
            }
            _ => Err(EngineError::InvalidArgument(
                "copying between containers, or between two host paths, is not supported: one side must be CONTAINER:PATH".into(),
            )),
        }
    }

    /// A handle to the container's root filesystem (mounted again if need be).
    fn container_root(&self, what: &str) -> Result<OwnedFd, EngineError> {
        let dir = self.container(what)?;
        let mounted = {
            let _store = self.store.lock()?;
            self.store.remount(&dir.id)?
        };
        let root =
            File::open(&mounted.merged).map_err(|e| failed("cannot open", &mounted.merged, e))?;
        Ok(root.into())
    }

    fn copy_out(&self, root: &OwnedFd, src: &Path, dst: &Path) -> Result<(), EngineError> {
        let source =
            bulwark_sys::fs::open_in_root(root.as_fd(), src, OFlags::PATH | OFlags::NOFOLLOW, 0)
                .map_err(|_| no_such(src))?;
        let stat = rustix::fs::fstat(&source).map_err(|e| failed("cannot stat", src, e))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        let name = src.file_name().unwrap_or(OsStr::new("root"));
        let target = if dst.is_dir() && !(kind == FileType::Directory && contents_only(src)) {
            dst.join(name)
        } else {
            dst.to_path_buf()
        };
        match kind {
            FileType::Directory => {
                let dir =
                    bulwark_sys::fs::reopen(source.as_fd(), OFlags::DIRECTORY | OFlags::RDONLY)
                        .map_err(|e| failed("cannot open", src, e))?;
                std::fs::create_dir_all(&target)
                    .map_err(|e| failed("cannot create", &target, e))?;
                out_dir(dir.as_fd(), &target)
            }
            _ => {
                let parent = bulwark_sys::fs::open_in_root(
                    root.as_fd(),
                    src.parent().unwrap_or(Path::new("/")),
                    OFlags::DIRECTORY | OFlags::RDONLY,
                    0,
                )
                .map_err(|_| no_such(src))?;
                out_entry(parent.as_fd(), name, &target)
            }
        }
    }
}

/// Copies the entry `name` of the container directory `dir` to `target` on the host.
fn out_entry(dir: BorrowedFd<'_>, name: &OsStr, target: &Path) -> Result<(), EngineError> {
    let stat = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| failed("cannot stat", Path::new(name), e))?;
    let mode = stat.st_mode & 0o7777;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => {
            let sub = rustix::fs::openat(
                dir,
                name,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| failed("cannot open", Path::new(name), e))?;
            std::fs::create_dir_all(target).map_err(|e| failed("cannot create", target, e))?;
            out_dir(sub.as_fd(), target)?;
            let _ = std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode));
            Ok(())
        }
        FileType::Symlink => {
            let link = rustix::fs::readlinkat(dir, name, Vec::new())
                .map_err(|e| failed("cannot read the link", Path::new(name), e))?;
            let _ = std::fs::remove_file(target);
            std::os::unix::fs::symlink(OsStr::from_bytes(link.as_bytes()), target)
                .map_err(|e| failed("cannot create", target, e))
        }
        FileType::RegularFile => {
            let file = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| failed("cannot open", Path::new(name), e))?;
            let mut from = File::from(file);
            let mut to = File::create(target).map_err(|e| failed("cannot create", target, e))?;
            std::io::copy(&mut from, &mut to).map_err(|e| failed("cannot copy to", target, e))?;
            to.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| failed("cannot set the mode of", target, e))
        }
        // Devices, fifos and sockets are not copied out (as Docker's archive would carry
        // them, but a host file in their place would be a surprise).
        _ => Ok(()),
    }
}

fn out_dir(dir: BorrowedFd<'_>, target: &Path) -> Result<(), EngineError> {
    let listing = rustix::fs::Dir::read_from(dir).map_err(|e| failed("cannot list", target, e))?;
    for entry in listing {
        let entry = entry.map_err(|e| failed("cannot list", target, e))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        out_entry(dir, name, &target.join(name))?;
    }
    Ok(())
}

/// Copies the host's `src` to `dst` in the container: directories are made with
/// `mkdirat`, files with `openat(O_CREAT | O_NOFOLLOW)`, each under a handle to its parent
/// inside the root; what is copied in belongs to the container's root.
fn copy_in(root: &OwnedFd, src: &Path, dst: &Path) -> Result<(), EngineError> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| failed("cannot read", src, e))?;
    let name = src.file_name().map(Path::new).unwrap_or(Path::new("root"));
    let existing =
        bulwark_sys::fs::open_in_root(root.as_fd(), dst, OFlags::DIRECTORY | OFlags::RDONLY, 0)
            .ok();
    let target = match existing {
        Some(_) if !(meta.is_dir() && contents_only(src)) => dst.join(name),
        _ => dst.to_path_buf(),
    };
    in_entry(root, src, &target)
}

fn in_entry(root: &OwnedFd, src: &Path, target: &Path) -> Result<(), EngineError> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| failed("cannot read", src, e))?;
    let parent_path = target.parent().unwrap_or(Path::new("/"));
    let name = target.file_name().ok_or_else(|| {
        EngineError::InvalidArgument(format!("{}: not a file name", target.display()))
    })?;
    let parent = bulwark_sys::fs::mkdir_all_in_root(root.as_fd(), parent_path, 0o755)
        .and_then(|p| bulwark_sys::fs::reopen(p.as_fd(), OFlags::DIRECTORY | OFlags::RDONLY))
        .map_err(|e| failed("cannot make the directory", parent_path, e))?;
    let mode = Mode::from_raw_mode(meta.mode() & 0o7777);
    let file_type = meta.file_type();
    if file_type.is_dir() {
        match rustix::fs::mkdirat(&parent, name, mode) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(failed("cannot make", target, e)),
        }
        let entries = std::fs::read_dir(src).map_err(|e| failed("cannot list", src, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| failed("cannot list", src, e))?;
            in_entry(root, &entry.path(), &target.join(entry.file_name()))?;
        }
        Ok(())
    } else if file_type.is_symlink() {
        let link = std::fs::read_link(src).map_err(|e| failed("cannot read", src, e))?;
        let _ = rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty());
        rustix::fs::symlinkat(&link, &parent, name).map_err(|e| failed("cannot create", target, e))
    } else if file_type.is_file() {
        // A symlink at the target is replaced, never written through.
        if rustix::fs::statat(&parent, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink)
        {
            let _ = rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty());
        }
        let fd = rustix::fs::openat(
            &parent,
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        )
        .map_err(|e| failed("cannot create", target, e))?;
        let mut to = File::from(fd);
        let mut from = File::open(src).map_err(|e| failed("cannot open", src, e))?;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = from
                .read(&mut buffer)
                .map_err(|e| failed("cannot read", src, e))?;
            if n == 0 {
                break;
            }
            to.write_all(&buffer[..n])
                .map_err(|e| failed("cannot write", target, e))?;
        }
        rustix::fs::fchmod(&to, mode).map_err(|e| failed("cannot set the mode of", target, e))
    } else {
        Err(EngineError::InvalidArgument(format!(
            "{}: only files, directories and symlinks can be copied",
            src.display()
        )))
    }
}

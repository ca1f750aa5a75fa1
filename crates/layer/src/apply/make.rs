//! Making each kind of object a layer entry describes, beneath the layer: directories,
//! files (content, owner, mode, xattrs, times), symlinks, hardlinks to the layer's own
//! files, device nodes where allowed, fifos, and overlayfs whiteouts.
use super::*;

impl Layer<'_> {
    pub(super) fn root_dir(&mut self, meta: &Meta) -> Result<(), String> {
        own_and_mode(self.root, ".", meta, true)?;
        self.dir_times.push((PathBuf::from("."), meta.mtime));
        Ok(())
    }

    pub(super) fn directory(
        &mut self,
        parent: &OwnedFd,
        path: &EntryPath,
        meta: &Meta,
    ) -> Result<(), String> {
        let name = path.name();
        if !self.clear(parent, name, true)? {
            rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
                .map_err(|e| format!("mkdir: {e}"))?;
        }
        own_and_mode(parent.as_fd(), name, meta, true)?;
        if !meta.xattrs.is_empty() {
            let dir = rfs::openat2(
                parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                beneath(),
            )
            .map_err(|e| format!("opening it: {e}"))?;
            set_xattrs(&dir, &meta.xattrs)?;
        }
        self.dir_times.push((path.as_path().to_owned(), meta.mtime));
        Ok(())
    }

    pub(super) fn file(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        data: &mut impl Read,
    ) -> Result<(), String> {
        let create = || {
            rfs::openat(
                parent,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        };
        // Most names are new: what is there is cleared only when the create says so.
        let fd = match create() {
            Err(Errno::EXIST) => {
                self.clear(parent, name, false)?;
                create()
            }
            other => other,
        }
        .map_err(|e| format!("creating it: {e}"))?;
        let mut file = File::from(fd);
        let content_error = |e: std::io::Error| match limit_of(&e) {
            Some(limit) => limit.to_string(),
            None => format!("writing its content: {e}"),
        };
        loop {
            let n = match data.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(content_error(e)),
            };
            file.write_all(&self.buffer[..n]).map_err(content_error)?;
            self.stats.file_bytes += n as u64;
        }
        rfs::fchown(&file, Some(uid(meta.uid)), Some(gid(meta.gid)))
            .map_err(|e| owner_error(meta, e))?;
        // After the chown, which clears setuid and setgid bits.
        rfs::fchmod(&file, Mode::from_raw_mode(meta.mode)).map_err(|e| format!("chmod: {e}"))?;
        set_xattrs(&file, &meta.xattrs)?;
        rfs::futimens(&file, &times(meta.mtime)).map_err(|e| format!("setting its mtime: {e}"))
    }

    pub(super) fn symlink(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        target: &Path,
        meta: &Meta,
    ) -> Result<(), String> {
        self.clear(parent, name, false)?;
        rfs::symlinkat(target, parent, name).map_err(|e| format!("making the symlink: {e}"))?;
        rfs::chownat(
            parent,
            name,
            Some(uid(meta.uid)),
            Some(gid(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| owner_error(meta, e))?;
        rfs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| format!("setting its mtime: {e}"))
    }

    /// A hardlink to a file the layer already has: the target is resolved beneath the
    /// layer like any name, so it can never be a host file.
    pub(super) fn hardlink(
        &mut self,
        parent: &OwnedFd,
        path: &EntryPath,
        target: &Path,
    ) -> Result<(), String> {
        let target = EntryPath::parse(target, self.options.limits.max_path)
            .map_err(|reason| format!("its link target {}: {reason}", target.display()))?;
        if target == *path {
            return Ok(());
        }
        let source = rfs::openat2(
            self.root,
            target.as_path(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            beneath(),
        )
        .map_err(|e| match e {
            Errno::NOENT => format!(
                "a hardlink to {target}, which this layer does not have (a layer may link only to its own files)"
            ),
            e => format!("its link target {target}: {}", resolve_error(target.as_path(), e)),
        })?;
        let st = rfs::fstat(&source).map_err(|e| format!("inspecting its link target: {e}"))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(format!("a hardlink to the directory {target}"));
        }
        // Linked by its (checked) directory and name, so no path is resolved again, and
        // without /proc (the confined unpacker has none).
        let source_dir = rfs::openat2(
            self.root,
            target.parent(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            beneath(),
        )
        .map_err(|e| {
            format!(
                "its link target {target}: {}",
                resolve_error(target.parent(), e)
            )
        })?;
        self.clear(parent, path.name(), false)?;
        rfs::linkat(
            &source_dir,
            target.name(),
            parent,
            path.name(),
            AtFlags::empty(),
        )
        .map_err(|e| format!("linking it to {target}: {e}"))?;
        let made = rfs::statat(parent, path.name(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| format!("inspecting the link: {e}"))?;
        if (made.st_dev, made.st_ino) != (st.st_dev, st.st_ino) {
            return Err(format!("the link to {target} is not the file checked"));
        }
        Ok(())
    }

    pub(super) fn device(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        kind: EntryType,
        major: u32,
        minor: u32,
        meta: &Meta,
    ) -> Result<(), String> {
        let (file_type, letter) = match kind {
            EntryType::Block => (FileType::BlockDevice, 'b'),
            _ => (FileType::CharacterDevice, 'c'),
        };
        if !self.options.devices {
            return Err(format!(
                "a device node ({letter} {major}:{minor}): only the host's root may unpack device nodes"
            ));
        }
        self.clear(parent, name, false)?;
        rfs::mknodat(
            parent,
            name,
            file_type,
            Mode::from_raw_mode(0o600),
            rfs::makedev(major, minor),
        )
        .map_err(|e| format!("mknod {letter} {major}:{minor}: {e}"))?;
        own_and_mode(parent.as_fd(), name, meta, false)?;
        rfs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| format!("setting its mtime: {e}"))
    }

    pub(super) fn fifo(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
    ) -> Result<(), String> {
        self.clear(parent, name, false)?;
        rfs::mkfifoat(parent, name, Mode::from_raw_mode(0o600))
            .map_err(|e| format!("mkfifo: {e}"))?;
        own_and_mode(parent.as_fd(), name, meta, false)?;
        rfs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| format!("setting its mtime: {e}"))
    }

    /// An OCI whiteout: `.wh..wh..opq` makes its directory opaque; `.wh.NAME` hides
    /// NAME of the layers below (an overlayfs whiteout, char 0:0).
    pub(super) fn whiteout(&mut self, path: &EntryPath, target: &OsStr) -> Result<(), String> {
        let parent_rel = path.parent();
        if target.as_bytes() == b".wh..opq" {
            let dir = self.dir(parent_rel)?;
            let dir = rfs::openat2(
                &dir,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                beneath(),
            )
            .map_err(|e| format!("opening its directory: {e}"))?;
            let xattr = overlay_xattr(self.options.user_xattrs, "opaque");
            return rfs::fsetxattr(&dir, xattr.as_str(), b"y", XattrFlags::empty())
                .map_err(|e| format!("marking {} opaque ({xattr}): {e}", parent_rel.display()));
        }
        if target.as_bytes().starts_with(b".wh.") {
            return Ok(()); // aufs's own bookkeeping (.wh..wh.plnk and such): nothing to make
        }
        if target.is_empty() || target.as_bytes().contains(&b'/') {
            return Err("a whiteout that names nothing".into());
        }
        let parent = self.dir(parent_rel)?;
        self.clear(&parent, target, false)?;
        make_whiteout(&parent, target)
    }
}

/// The name of an overlayfs xattr (`opaque`, `whiteout` ...) for the mode in use.
pub fn overlay_xattr(user: bool, what: &str) -> String {
    if user {
        format!("user.overlay.{what}")
    } else {
        format!("trusted.overlay.{what}")
    }
}

pub(super) fn make_whiteout(parent: &OwnedFd, name: &OsStr) -> Result<(), String> {
    // A 0:0 character device is overlayfs's whiteout; the kernel lets anyone make one.
    rfs::mknodat(
        parent,
        name,
        FileType::CharacterDevice,
        Mode::empty(),
        rfs::makedev(0, 0),
    )
    .map_err(|e| format!("making the whiteout for {}: {e}", Path::new(name).display()))
}

/// Which xattrs a layer may set: `user.*`, file capabilities, and `trusted.*` where the
/// host's root unpacks; never overlayfs's own (they would forge whiteouts, opaque
/// directories or redirects), never other `security.*` labels.
pub(super) fn xattr_allowed(name: &str, user_xattrs: bool) -> bool {
    if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
        return false;
    }
    name.starts_with("user.")
        || name == "security.capability"
        || (name.starts_with("trusted.") && !user_xattrs)
}

pub(super) fn set_xattrs(fd: &impl AsFd, xattrs: &[(String, Vec<u8>)]) -> Result<(), String> {
    for (name, value) in xattrs {
        rfs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty())
            .map_err(|e| format!("setting xattr {name}: {e}"))?;
    }
    Ok(())
}

/// Owner then mode (the chown clears setuid and setgid bits) of `name` in `dir`.
pub(super) fn own_and_mode(
    dir: BorrowedFd<'_>,
    name: impl rustix::path::Arg + Copy,
    meta: &Meta,
    is_dir: bool,
) -> Result<(), String> {
    rfs::chownat(
        dir,
        name,
        Some(uid(meta.uid)),
        Some(gid(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| owner_error(meta, e))?;
    let _ = is_dir;
    rfs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
        .map_err(|e| format!("chmod: {e}"))
}

pub(super) fn owner_error(meta: &Meta, e: Errno) -> String {
    match e {
        Errno::INVAL => format!(
            "its owner {}:{} is not mapped in the unpacker's user namespace (map more ids in /etc/subuid and /etc/subgid)",
            meta.uid, meta.gid
        ),
        e => format!("chown {}:{}: {e}", meta.uid, meta.gid),
    }
}

pub(super) fn uid(id: u32) -> rfs::Uid {
    rfs::Uid::from_raw(id)
}

pub(super) fn gid(id: u32) -> rfs::Gid {
    rfs::Gid::from_raw(id)
}

pub(super) fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

/// Removes the directory `name` in `parent` and everything below it, without following
/// any symlink.
pub fn remove_tree(parent: &impl AsFd, name: &OsStr) -> Result<(), Errno> {
    let dir = rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut entries = Vec::new();
    for entry in rfs::Dir::read_from(&dir)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        entries.push((
            OsStr::from_bytes(n).to_owned(),
            entry.file_type() == FileType::Directory,
        ));
    }
    for (child, is_dir) in entries {
        if is_dir {
            remove_tree(&dir, &child)?;
        } else {
            rfs::unlinkat(&dir, child.as_os_str(), AtFlags::empty())?;
        }
    }
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

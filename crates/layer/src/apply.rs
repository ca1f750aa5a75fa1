//! Creating a layer's entries beneath its directory. Every path is resolved by the kernel
//! from the layer's directory with `RESOLVE_IN_ROOT`, refusing symlinks, magic links and
//! mount crossings; every entry is made with `*at` calls on a directory fd, never by a
//! joined host path. A symlink in the layer is created, never followed; a hardlink may
//! only point at a file of the same layer.
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bulwark_image::digest::HashingReader;
use bulwark_image::manifest::Compression;
use bulwark_image::Digest;
use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

use crate::limits::{limit_of, Bounded, Counted, Limits};
use crate::path::EntryPath;
use crate::split::{Holes, Recorder};
use crate::UnpackError;

mod make;

use make::{make_whiteout, times, xattr_allowed};
pub use make::{overlay_xattr, remove_tree};

/// How to unpack one layer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Options {
    pub compression: Compression,
    /// The digest the uncompressed tar must have (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    pub limits: Limits,
    /// Device nodes may be made (the host's root unpacks); otherwise one is refused.
    pub devices: bool,
    /// overlayfs's xattrs in the `user.` namespace (`userxattr`, rootless overlayfs)
    /// rather than `trusted.`.
    pub user_xattrs: bool,
}

/// What a layer held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub entries: u64,
    /// Bytes of the uncompressed tar.
    pub tar_bytes: u64,
    /// Bytes of file content written.
    pub file_bytes: u64,
}

/// Unpacks the layer blob `blob` into the directory `root` (an `O_RDONLY|O_DIRECTORY` fd
/// of an empty directory), checking it against `options.diff_id`.
pub fn unpack<W: Write>(
    blob: impl Read,
    root: BorrowedFd<'_>,
    options: &Options,
    tar_split: W,
) -> Result<(Stats, W), UnpackError> {
    let (counted, compressed) = Counted::new(blob);
    let decompressed: Box<dyn Read> = match options.compression {
        Compression::None => Box::new(counted),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(counted)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(counted)
                .map_err(|e| UnpackError::Read(e.to_string()))?,
        ),
    };
    let mut hashed = HashingReader::new(Bounded::new(decompressed, compressed, options.limits));
    let (mut recorded, holes) = Recorder::new(&mut hashed, tar_split);
    let mut layer = Layer {
        root,
        options,
        stats: Stats::default(),
        dir_times: Vec::new(),
        buffer: vec![0; 1 << 20],
        last_parent: None,
        holes,
    };
    {
        let mut archive = tar::Archive::new(&mut recorded);
        for entry in archive.entries().map_err(read_error)? {
            let mut entry = entry.map_err(read_error)?;
            layer.stats.entries += 1;
            if layer.stats.entries > options.limits.max_entries {
                return Err(UnpackError::Limit(format!(
                    "the layer has more than {} entries (the limit)",
                    options.limits.max_entries
                )));
            }
            layer.apply(&mut entry)?;
        }
    }
    // The tar's end marker may come before the end of the stream: the digest covers all.
    std::io::copy(&mut recorded, &mut std::io::sink()).map_err(read_error)?;
    let tar_split = recorded
        .finish()
        .map_err(|e| UnpackError::Read(format!("writing the tar split: {e}")))?;
    layer.set_dir_times()?;
    let (actual, len) = hashed.finish();
    if actual != options.diff_id {
        return Err(UnpackError::DiffId {
            expected: options.diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    layer.stats.tar_bytes = len;
    Ok((layer.stats, tar_split))
}

fn read_error(e: std::io::Error) -> UnpackError {
    limit_of(&e).unwrap_or_else(|| UnpackError::Read(e.to_string()))
}

/// What one entry's header says about the object it makes.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Layer<'a> {
    root: BorrowedFd<'a>,
    options: &'a Options,
    stats: Stats,
    /// Directories whose mtime is set last (their entries change it).
    dir_times: Vec<(PathBuf, Timespec)>,
    /// File content passes through here, in large writes.
    buffer: Vec<u8>,
    /// The directory the last regular file went into: the next is most often there too.
    /// Forgotten at any other kind of entry, since only those change directories.
    last_parent: Option<(PathBuf, Rc<OwnedFd>)>,
    /// Where file contents are, for the tar split (see [`crate::split`]).
    holes: Holes,
}

/// Resolution beneath the layer: nothing may lead out of it or through a symlink.
fn beneath() -> ResolveFlags {
    ResolveFlags::IN_ROOT
        | ResolveFlags::NO_SYMLINKS
        | ResolveFlags::NO_MAGICLINKS
        | ResolveFlags::NO_XDEV
}

impl Layer<'_> {
    fn apply(&mut self, entry: &mut tar::Entry<'_, impl Read>) -> Result<(), UnpackError> {
        let raw = entry
            .path()
            .map_err(|e| UnpackError::entry("?", format!("an unreadable name: {e}")))?
            .into_owned();
        let shown = raw.display().to_string();
        let path = EntryPath::parse(&raw, self.options.limits.max_path)
            .map_err(|reason| UnpackError::entry(&shown, reason))?;
        let meta = self
            .meta(entry)
            .map_err(|reason| UnpackError::entry(&shown, reason))?;
        let kind = entry.header().entry_type();
        let fail = |reason: String| UnpackError::entry(&shown, reason);
        if path.is_root() {
            return self.root_dir(&meta).map_err(fail);
        }
        let name = path.name().to_owned();
        if let Some(target) = name.as_bytes().strip_prefix(b".wh.") {
            return self
                .whiteout(&path, OsStr::from_bytes(target))
                .map_err(fail);
        }
        let regular = matches!(kind, EntryType::Regular | EntryType::Continuous);
        let parent = match self.last_parent.take() {
            Some((rel, fd)) if regular && rel == path.parent() => fd,
            _ => Rc::new(self.dir(path.parent()).map_err(fail)?),
        };
        if regular {
            self.last_parent = Some((path.parent().to_owned(), parent.clone()));
            let size = entry.size();
            if size > 0 {
                let at = entry.raw_file_position();
                let name = path.as_path().as_os_str().as_bytes().to_vec();
                self.holes.borrow_mut().push_back((at, size, name));
            }
        }
        let result = match kind {
            EntryType::Directory => self.directory(&parent, &path, &meta),
            EntryType::Regular | EntryType::Continuous => self.file(&parent, &name, &meta, entry),
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| fail(format!("an unreadable link target: {e}")))?
                    .ok_or_else(|| fail("a symlink without a target".into()))?
                    .into_owned();
                self.symlink(&parent, &name, &target, &meta)
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| fail(format!("an unreadable link target: {e}")))?
                    .ok_or_else(|| fail("a hardlink without a target".into()))?
                    .into_owned();
                self.hardlink(&parent, &path, &target)
            }
            EntryType::Char | EntryType::Block => {
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                if kind == EntryType::Char && major == 0 && minor == 0 {
                    // An overlay-format whiteout carried as such.
                    self.clear(&parent, &name, false)
                        .and_then(|_| make_whiteout(&parent, &name))
                } else {
                    self.device(&parent, &name, kind, major, minor, &meta)
                }
            }
            EntryType::Fifo => self.fifo(&parent, &name, &meta),
            other => Err(format!("entry type {other:?} is not supported in a layer")),
        };
        result.map_err(fail)
    }

    /// Owner, mode, mtime and the xattrs the layer may set, from the entry's headers.
    fn meta(&self, entry: &mut tar::Entry<'_, impl Read>) -> Result<Meta, String> {
        let header = entry.header();
        let id = |v: std::io::Result<u64>, what: &str| -> Result<u32, String> {
            let v = v.map_err(|e| format!("an unreadable {what}: {e}"))?;
            u32::try_from(v).map_err(|_| format!("{what} {v} is out of range"))
        };
        let mut meta = Meta {
            uid: id(header.uid(), "uid")?,
            gid: id(header.gid(), "gid")?,
            mode: id(header.mode().map(u64::from), "mode")? & 0o7777,
            mtime: Timespec {
                tv_sec: header.mtime().unwrap_or(0).min(i64::MAX as u64) as i64,
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if xattr_allowed(name, self.options.user_xattrs) {
                        meta.xattrs
                            .push((name.to_owned(), ext.value_bytes().to_vec()));
                    }
                } else if key == "mtime" {
                    if let Some(ts) = pax_time(ext.value_bytes()) {
                        meta.mtime = ts;
                    }
                } else if key == "uid" || key == "gid" {
                    let value = std::str::from_utf8(ext.value_bytes())
                        .ok()
                        .and_then(|v| v.parse::<u32>().ok())
                        .ok_or_else(|| format!("PAX {key} is not a 32-bit id"))?;
                    if key == "uid" {
                        meta.uid = value;
                    } else {
                        meta.gid = value;
                    }
                }
            }
        }
        Ok(meta)
    }

    /// The directory `rel` beneath the layer (`.` for the layer's own), made with mode
    /// 0755 where missing.
    fn dir(&self, rel: &Path) -> Result<OwnedFd, String> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rfs::openat2(self.root, rel, flags, Mode::empty(), beneath()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(resolve_error(rel, e)),
        }
        let mut dir = rfs::openat2(self.root, ".", flags, Mode::empty(), beneath())
            .map_err(|e| format!("opening the layer's directory: {e}"))?;
        for part in rel.components() {
            let part = part.as_os_str();
            match rfs::openat2(&dir, part, flags, Mode::empty(), beneath()) {
                Ok(next) => dir = next,
                Err(Errno::NOENT) => {
                    rfs::mkdirat(&dir, part, Mode::from_raw_mode(0o755))
                        .map_err(|e| format!("making its directory {}: {e}", rel.display()))?;
                    dir = rfs::openat2(&dir, part, flags, Mode::empty(), beneath())
                        .map_err(|e| resolve_error(rel, e))?;
                }
                Err(e) => return Err(resolve_error(rel, e)),
            }
        }
        Ok(dir)
    }

    /// Removes what `name` is in `parent` now, unless it is a directory and `keep_dir`;
    /// returns whether a directory was kept.
    fn clear(&self, parent: &OwnedFd, name: &OsStr, keep_dir: bool) -> Result<bool, String> {
        match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(format!("inspecting what is there: {e}")),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                if keep_dir {
                    return Ok(true);
                }
                remove_tree(parent, name).map_err(|e| format!("removing the directory there: {e}"))?;
                Ok(false)
            }
            // The pattern of the unpack races (CVE-2025-47290 and kin): a symlink, then a
            // directory of the same name, then files meant to land through it. A layer has
            // no reason to do that to itself.
            Ok(st) if keep_dir && FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                Err("a directory in place of a symlink this layer made (refused: that is how unpackers are led out of the layer)".into())
            }
            Ok(_) => rfs::unlinkat(parent, name, AtFlags::empty())
                .map(|()| false)
                .map_err(|e| format!("removing what is there: {e}")),
        }
    }

    fn set_dir_times(&self) -> Result<(), UnpackError> {
        for (path, mtime) in self.dir_times.iter().rev() {
            let shown = path.display().to_string();
            let dir = rfs::openat2(
                self.root,
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                beneath(),
            )
            .map_err(|e| UnpackError::entry(&shown, resolve_error(path, e)))?;
            rfs::futimens(&dir, &times(*mtime))
                .map_err(|e| UnpackError::entry(&shown, format!("setting its mtime: {e}")))?;
        }
        Ok(())
    }
}

fn resolve_error(rel: &Path, e: Errno) -> String {
    match e {
        Errno::LOOP => format!(
            "its path {} goes through a symlink (a layer's entries are never written through one)",
            rel.display()
        ),
        Errno::NOTDIR => format!("a component of {} is not a directory", rel.display()),
        Errno::XDEV => format!("its path {} leaves the layer", rel.display()),
        e => format!("resolving {}: {e}", rel.display()),
    }
}

/// A PAX time (`1700000000.123456789`).
fn pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Timespec { tv_sec, tv_nsec })
}

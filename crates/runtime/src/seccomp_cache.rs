//! Compiled seccomp programs, kept under the state root so a profile is compiled once
//! per host rather than once per container and per exec (Docker's default profile takes
//! libseccomp about 10 ms).
//!
//! An entry is found by a hash but used only when the profile it was compiled from, and
//! the build that compiled it (this binary, libseccomp, the kernel), are byte-for-byte
//! the ones asked for now. The directory is root's alone (0700); entries not owned by
//! us, or writable by others, are ignored. Any problem with the cache only means
//! compiling again: it never fails a command.
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bulwark_seccomp::{Filter, Listener};
use bulwark_sys::seccomp::SockFilter;
use serde::{Deserialize, Serialize};

use crate::StateRoot;

/// The cache directory's name in the state root: `@` is not allowed in container ids.
const DIR: &str = "@seccomp";
/// Entries kept; the oldest go first.
const KEEP: usize = 64;

/// One compiled profile on disk.
#[derive(Serialize, Deserialize, PartialEq)]
struct Entry {
    build: String,
    profile: String,
    program: Vec<(u16, u8, u8, u32)>,
    flags: u32,
    listener: Option<(PathBuf, String)>,
    unknown_names: Vec<String>,
}

/// The cache for one profile, serialized as the runtime will compile it.
#[derive(Debug)]
pub struct Slot {
    path: PathBuf,
    build: String,
    profile: String,
}

impl Slot {
    pub fn new(root: &StateRoot, profile: String) -> Slot {
        let build = build_identity();
        let mut hasher = DefaultHasher::new();
        (&build, &profile).hash(&mut hasher);
        Slot {
            path: root
                .path
                .join(DIR)
                .join(format!("{:016x}.json", hasher.finish())),
            build,
            profile,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The filter compiled earlier from exactly this profile by exactly this build.
    pub fn load(&self) -> Option<Filter> {
        trusted_dir(self.path.parent()?).ok()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.path)
            .ok()?;
        let meta = file.metadata().ok()?;
        let ours = meta.uid() == nix::unistd::geteuid().as_raw();
        if !meta.is_file() || !ours || meta.mode() & 0o022 != 0 {
            return None;
        }
        let entry: Entry = serde_json::from_reader(std::io::BufReader::new(file)).ok()?;
        if entry.build != self.build || entry.profile != self.profile {
            return None;
        }
        Some(Filter {
            program: entry
                .program
                .into_iter()
                .map(|(code, jt, jf, k)| SockFilter { code, jt, jf, k })
                .collect(),
            flags: entry.flags,
            listener: entry
                .listener
                .map(|(path, metadata)| Listener { path, metadata }),
            unknown_names: entry.unknown_names,
        })
    }

    /// Keeps `filter` for the next container with this profile.
    pub fn store(&self, root: &StateRoot, filter: &Filter) -> std::io::Result<()> {
        root.ensure()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let dir = self.path.parent().unwrap_or(&root.path);
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        trusted_dir(dir)?;
        let entry = Entry {
            build: self.build.clone(),
            profile: self.profile.clone(),
            program: filter
                .program
                .iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect(),
            flags: filter.flags,
            listener: filter
                .listener
                .as_ref()
                .map(|l| (l.path.clone(), l.metadata.clone())),
            unknown_names: filter.unknown_names.clone(),
        };
        let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        let temp = self
            .path
            .with_extension(format!("{}.tmp", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut f| f.write_all(&bytes))
            .and_then(|()| std::fs::rename(&temp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        prune(dir);
        written
    }
}

/// The cache directory must be a real directory (not a symlink), the runtime user's, and
/// closed to everyone else; otherwise the cache is not used at all.
fn trusted_dir(dir: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let ours = meta.uid() == nix::unistd::geteuid().as_raw();
    if meta.is_dir() && ours && meta.mode() & 0o077 == 0 {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{} is not a directory only the runtime's user can use (mode 0700)",
            dir.display()
        )))
    }
}

/// The name a rootless runtime gives the sealed memfd it re-executes from: this prefix and
/// the [`file_identity`] of the binary it copied, so the cache still knows the build.
pub const SEALED_COPY_PREFIX: &str = "bulwark-runtime@";

/// A binary's identity for the cache: device, inode, size and modification time.
pub fn file_identity(meta: &std::fs::Metadata) -> String {
    let (dev, ino, size) = (meta.dev(), meta.ino(), meta.size());
    format!("{dev}:{ino}:{size}:{}.{}", meta.mtime(), meta.mtime_nsec())
}

/// What compiled an entry: this binary (by inode, size and time; for a sealed copy, the
/// file it was copied from), libseccomp's version and the kernel, since each can change
/// the program.
fn build_identity() -> String {
    let copied_from = std::fs::read_link("/proc/self/exe").ok().and_then(|link| {
        let name = link.to_str()?.strip_prefix("/memfd:")?;
        let name = name.strip_suffix(" (deleted)").unwrap_or(name);
        Some(name.strip_prefix(SEALED_COPY_PREFIX)?.to_string())
    });
    let exe = copied_from
        .or_else(|| {
            std::fs::metadata("/proc/self/exe")
                .ok()
                .map(|m| file_identity(&m))
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "bulwark {} exe {exe} libseccomp {} kernel {}",
        env!("CARGO_PKG_VERSION"),
        bulwark_seccomp::library_version(),
        kernel.trim()
    )
}

/// Removes the oldest entries beyond [`KEEP`] (regular files the cache wrote only).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let ours = |name: &str| name.ends_with(".json") || name.ends_with(".tmp");
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(ours))
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            Some((meta.modified().ok()?, e.path()))
        })
        .collect();
    if files.len() <= KEEP {
        return;
    }
    files.sort();
    for (_, path) in &files[..files.len() - KEEP] {
        let _ = std::fs::remove_file(path);
    }
}

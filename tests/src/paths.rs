//! Where things live: the workspace, its target directory, and unique temporary
//! directories that clean up after themselves without crossing a leaked mount.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::clean::mounts_under;

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `CARGO_TARGET_DIR` (a relative one is taken from the workspace root) or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique within this machine for the life of this process: `<prefix>-<pid>-<n>`.
pub(crate) fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh directory `temp_dir()/bulwark-tests-<pid>-<n>`, removed on drop.
///
/// Drop first detaches any mount a broken runtime left under it, and leaves the
/// directory in place (with a warning) if a mount survives, so that removal can never
/// reach through a bind mount into host files.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates the directory (mode 0700), panicking if the temp dir is unusable.
    pub fn new() -> TempDir {
        TempDir::with_mode(0o700)
    }

    /// Creates the directory with `mode`: 0711 or 0755 when another user must reach
    /// what is inside (the rootless tests).
    pub fn with_mode(mode: u32) -> TempDir {
        let dir = TempDir::create();
        std::fs::set_permissions(
            &dir.path,
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", dir.path.display()));
        dir
    }

    fn create() -> TempDir {
        loop {
            let path = std::env::temp_dir().join(unique_name("bulwark-tests"));
            // Root's alone, like an engine's storage: an idmapped rootfs inside must not be
            // reachable by other host users.
            match std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                .create(&path)
            {
                Ok(()) => return TempDir { path },
                // A leftover from an earlier process with the same pid: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("creating temp dir {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Deepest first, so each detach finds its mount point still reachable.
        let mut leaked = mounts_under(&self.path);
        leaked.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for mount in &leaked {
            let _ = nix::mount::umount2(mount, nix::mount::MntFlags::MNT_DETACH);
        }
        if !mounts_under(&self.path).is_empty() {
            eprintln!(
                "bulwark-tests: leaving {} in place: mounts remain under it",
                self.path.display()
            );
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("bulwark-tests: removing {}: {e}", self.path.display());
        }
    }
}

/// The newest modification time of any file under `paths` (recursively), if any exists.
pub(crate) fn newest_mtime(paths: &[PathBuf]) -> Option<SystemTime> {
    let mut newest = None;
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(Some(modified));
        }
    }
    newest
}

/// True if `binary` is missing or older than the newest file in `sources`.
pub(crate) fn is_stale(binary: &Path, sources: &[PathBuf]) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return true;
    };
    newest_mtime(sources).is_some_and(|newest| newest > built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_are_unique_and_removed() {
        let a = TempDir::new();
        let b = TempDir::new();
        assert_ne!(a.path(), b.path());
        assert!(a
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("bulwark-tests-"));
        std::fs::create_dir_all(a.path().join("x/y")).unwrap();
        std::fs::write(a.path().join("x/y/z"), "z").unwrap();
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn staleness_follows_sources() {
        let dir = TempDir::new();
        let source = dir.path().join("src/main.rs");
        let binary = dir.path().join("bin");
        std::fs::create_dir(dir.path().join("src")).unwrap();
        assert!(is_stale(&binary, &[dir.path().join("src")]));
        std::fs::write(&source, "fn main() {}").unwrap();
        std::fs::write(&binary, "").unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&source)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(!is_stale(&binary, &[dir.path().join("src")]));
        std::fs::File::options()
            .write(true)
            .open(&binary)
            .unwrap()
            .set_modified(old - std::time::Duration::from_secs(1))
            .unwrap();
        assert!(is_stale(&binary, &[dir.path().join("src")]));
    }
}

//! Helpers shared by the host integration tests: unique test cgroup names, skipping
//! with a printed reason, and cleanup that runs even when a test fails.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use bulwark_cgroups::CgroupManager;
use oci_spec::runtime::LinuxResources;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `bulwark-test-<pid>-<n>`, unique within this machine's running tests.
pub fn unique_name() -> String {
    format!(
        "bulwark-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Prints why a test does not run here.
pub fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("test resources parse")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A `sleep` child, killed and reaped on drop.
pub struct Sleeper(pub Child);

impl Sleeper {
    pub fn spawn() -> Self {
        let child = Command::new("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        Sleeper(child)
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    pub fn state(&self) -> String {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .unwrap_or("?")
            .trim()
            .to_string()
    }

    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes a test's cgroups when dropped, even after a failed assertion: first through
/// the manager, then any directory left (including `extra` parents), deepest first.
pub struct Cleanup {
    pub manager: Box<dyn CgroupManager>,
    pub extra: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = self.manager.destroy() {
            eprintln!("cleanup: destroy: {e}");
        }
        // The manager's paths once more in case destroy failed part way, then parents.
        for dir in self.manager.paths().iter().chain(&self.extra) {
            remove_cgroup_tree(dir);
        }
    }
}

/// rmdir of a cgroup and its sub-cgroups, deepest first; missing is fine.
pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => eprintln!("cleanup: rmdir {}: {e}", dir.display()),
    }
}

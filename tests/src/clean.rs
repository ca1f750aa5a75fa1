//! Checks that a test left nothing behind (state entries, mounts, processes), and
//! small polling helpers for watching host-side state change.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long leftovers may take to go away (processes being reaped, lazy unmounts).
const SETTLE: Duration = Duration::from_secs(5);

/// Asserts nothing is left behind by the containers of one test:
/// - no entries in the state root `rt_root` (a missing root counts as empty),
/// - no mount in this mount namespace at or below `bundle`,
/// - no process whose command line mentions `bundle`.
///
/// Leftovers get a few seconds to disappear before the assertion fails.
#[track_caller]
pub fn assert_clean(rt_root: &Path, bundle: &Path) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let leftovers = leftovers(rt_root, bundle);
        if leftovers.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("left behind after the test:\n  {}", leftovers.join("\n  "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn leftovers(rt_root: &Path, bundle: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(rt_root) {
        // `@seccomp` holds compiled seccomp programs, kept on purpose for the next container.
        for entry in entries.flatten().filter(|e| e.file_name() != "@seccomp") {
            found.push(format!("state entry {}", entry.path().display()));
        }
    }
    for mount in mounts_under(bundle) {
        found.push(format!("mount {}", mount.display()));
    }
    for (pid, cmdline) in processes_mentioning(&bundle.to_string_lossy()) {
        found.push(format!("process {pid}: {cmdline}"));
    }
    found
}

/// Mount points in this process's mount namespace at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mount_field(field)))
        .filter(|mount_point| mount_point.starts_with(&dir))
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space and so on).
fn unescape_mount_field(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], digits) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (pid, command line) of every other process whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim_end()
                .to_owned();
            let pid = i32::try_from(pid).ok()?;
            names_path(&cmdline, needle).then_some((pid, cmdline))
        })
        .collect()
}

/// Whether `cmdline` names the path `needle` or something below it (`/tmp/b-2` is not
/// named by `/tmp/b-21/rootfs`).
fn names_path(cmdline: &str, needle: &str) -> bool {
    cmdline.match_indices(needle).any(|(at, _)| {
        cmdline[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| c == '/' || c.is_whitespace())
    })
}

/// Polls `condition` every 20 ms until it holds, panicking with `what` after
/// [`default_timeout`] (a minute, or `BULWARK_TEST_TIMEOUT`): the deadline catches a hang,
/// never a slow machine.
#[track_caller]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let timeout = crate::process::default_timeout();
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True if process `pid` has a handler for signal `signo` (its `SigCgt` mask). This is
/// how to know `bulwark-check wait-signal` is ready before signalling it.
pub fn catches_signal(pid: i32, signo: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let Some(mask) = status.lines().find_map(|l| l.strip_prefix("SigCgt:")) else {
        return false;
    };
    let Ok(mask) = u64::from_str_radix(mask.trim(), 16) else {
        return false;
    };
    (1..=64).contains(&signo) && mask & (1 << (signo - 1)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;
    use std::os::unix::process::CommandExt;

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape_mount_field(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_field(r"/plain"), "/plain");
    }

    #[test]
    fn empty_root_and_unused_bundle_are_clean() {
        let root = TempDir::new();
        let bundle = TempDir::new();
        assert_clean(root.path(), bundle.path());
        assert_clean(&root.path().join("missing"), bundle.path());
    }

    #[test]
    fn state_entries_are_leftovers() {
        let root = TempDir::new();
        let bundle = TempDir::new();
        std::fs::create_dir(root.path().join("c1")).unwrap();
        std::fs::create_dir(root.path().join("@seccomp")).unwrap();
        let found = leftovers(root.path(), bundle.path());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("c1"));
    }

    #[test]
    fn processes_naming_the_bundle_are_leftovers() {
        let bundle = TempDir::new();
        let marker = bundle.path().join("marker");
        // `; :` keeps the shell from exec'ing sleep, so the marker stays in its cmdline.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :"])
            .arg(&marker)
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let needle = bundle.path().to_string_lossy().into_owned();
        let seen = std::panic::catch_unwind(|| {
            wait_until("the child shows up", || {
                processes_mentioning(&needle).iter().any(|(p, _)| *p == pid)
            })
        });
        let _ =
            nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        let _ = child.wait();
        assert!(seen.is_ok());
    }

    #[test]
    fn a_path_is_named_by_itself_and_what_is_below_it_only() {
        assert!(names_path("cp -a /src /tmp/b-2", "/tmp/b-2"));
        assert!(names_path("cp -a /src /tmp/b-2/rootfs x", "/tmp/b-2"));
        assert!(!names_path("cp -a /src /tmp/b-21/rootfs", "/tmp/b-2"));
        assert!(names_path("x /tmp/b-21 /tmp/b-2/y", "/tmp/b-2"));
    }

    #[test]
    fn caught_signals_are_visible() {
        let own = std::process::id() as i32;
        // Rust's stack-overflow guard handles SIGSEGV; nothing handles SIGUSR2 here.
        assert!(catches_signal(own, libc::SIGSEGV));
        assert!(!catches_signal(own, libc::SIGUSR2));
        assert!(!catches_signal(own, 0));
    }
}

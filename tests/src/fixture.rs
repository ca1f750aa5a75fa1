//! The shared busybox rootfs every test bundle is copied from, and the binaries the
//! tests need (the static in-container checker and the runtime under test).
//!
//! The rootfs lives in `<target>/bulwark-fixtures/rootfs-<hash>`, where the hash covers
//! busybox, the checker and the layout below, so a rebuilt checker gets a new rootfs.
//! It is built under a temporary name and renamed into place, so concurrent test
//! processes never see a half-built one.

use std::fs::Permissions;
use std::hash::{DefaultHasher, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::paths::{is_stale, target_dir, unique_name, workspace_root};

/// Where the checker sits inside every container.
pub const CHECKER: &str = "/usr/bin/bulwark-check";

/// Bump when the rootfs layout below changes, so old fixtures are not reused.
const LAYOUT_VERSION: &str = "1";

const BUSYBOX: &str = "/bin/busybox";

/// (directory, mode) in creation order.
const DIRS: [(&str, u32); 15] = [
    ("bin", 0o755),
    ("sbin", 0o755),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("etc", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("tmp", 0o1777),
    ("root", 0o700),
    ("home", 0o755),
    ("home/bulwark", 0o755),
    ("mnt", 0o755),
    ("run", 0o755),
];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
bulwark:x:1000:1000:bulwark:/home/bulwark:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";

const GROUP: &str = "root:x:0:
tty:x:5:
bulwark:x:1000:
extra:x:2000:bulwark
nobody:x:65534:
";

/// The built fixture: one per test binary.
#[derive(Debug)]
pub struct Fixture {
    rootfs: PathBuf,
    checker: PathBuf,
}

impl Fixture {
    /// Builds the fixture on first use (including the static checker, if it is missing
    /// or older than its sources) and returns it.
    pub fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let checker = checker_binary();
            let rootfs = ensure_rootfs(&checker)
                .unwrap_or_else(|e| panic!("building the busybox rootfs fixture: {e}"));
            Fixture { rootfs, checker }
        })
    }

    /// The shared rootfs. Read it, chroot into it, copy it; never write to it.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// The static checker on the host.
    pub fn checker(&self) -> &Path {
        &self.checker
    }
}

/// The runtime under test: `$BULWARK_RUNTIME` (used as is), or
/// `<target>/debug/bulwark-runtime`, built with `cargo build -p bulwark-cli` when
/// missing or older than the workspace's sources (testing a stale runtime would
/// silently test old code).
pub fn runtime_binary() -> &'static Path {
    static RUNTIME: OnceLock<PathBuf> = OnceLock::new();
    RUNTIME.get_or_init(|| built_binary("BULWARK_RUNTIME", "bulwark-runtime", "bulwark-cli"))
}

/// `$<var>` (used as is), or `<target>/debug/<name>`, built with `cargo build -p
/// <package>` when missing or older than the workspace's sources.
pub(crate) fn built_binary(var: &str, name: &str, package: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{var}={} is not a file", path.display());
        return path;
    }
    let binary = target_dir().join("debug").join(name);
    let root = workspace_root();
    if is_stale(
        &binary,
        &[
            root.join("crates"),
            root.join("Cargo.toml"),
            root.join("Cargo.lock"),
        ],
    ) {
        cargo(&["build", "-p", package]);
    }
    assert!(
        binary.is_file(),
        "`cargo build -p {package}` did not produce {}",
        binary.display()
    );
    binary
}

/// `<target>/release/bulwark-check`, (re)built static when missing or stale.
fn checker_binary() -> PathBuf {
    let binary = target_dir().join("release/bulwark-check");
    if is_stale(&binary, &[workspace_root().join("crates/checker")]) {
        cargo(&[
            "rustc",
            "-p",
            "bulwark-check",
            "--release",
            "--",
            "-C",
            "target-feature=+crt-static",
        ]);
    }
    assert!(
        binary.is_file(),
        "building bulwark-check did not produce {}",
        binary.display()
    );
    binary
}

/// Runs cargo in the workspace, with its output going straight to the test's stderr.
fn cargo(args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .unwrap_or_else(|e| panic!("running {cargo:?}: {e}"));
    assert!(
        status.success(),
        "`cargo {}` failed: {status}",
        args.join(" ")
    );
}

/// Returns the rootfs for this busybox + checker, building it if no process has yet.
fn ensure_rootfs(checker: &Path) -> std::io::Result<PathBuf> {
    let fixtures = target_dir().join("bulwark-fixtures");
    std::fs::create_dir_all(&fixtures)?;
    let rootfs = fixtures.join(format!("rootfs-{:016x}", content_key(checker)?));
    if rootfs.is_dir() {
        return Ok(rootfs);
    }
    let building = fixtures.join(format!(".{}", unique_name("building")));
    let built = populate(&building, checker).and_then(|()| std::fs::rename(&building, &rootfs));
    if built.is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    match built {
        Ok(()) => {}
        // Another process renamed its copy into place first: use that one.
        Err(_) if rootfs.is_dir() => {}
        Err(e) => return Err(e),
    }
    remove_old_rootfs(&fixtures, &rootfs);
    Ok(rootfs)
}

fn content_key(checker: &Path) -> std::io::Result<u64> {
    let mut hasher = DefaultHasher::new();
    hasher.write(LAYOUT_VERSION.as_bytes());
    hasher.write(&std::fs::read(BUSYBOX)?);
    hasher.write(&std::fs::read(checker)?);
    Ok(hasher.finish())
}

fn populate(root: &Path, checker: &Path) -> std::io::Result<()> {
    std::fs::create_dir(root)?;
    std::fs::set_permissions(root, Permissions::from_mode(0o755))?;
    for (dir, mode) in DIRS {
        let path = root.join(dir);
        std::fs::create_dir(&path)?;
        std::fs::set_permissions(&path, Permissions::from_mode(mode))?;
    }
    std::os::unix::fs::chown(root.join("home/bulwark"), Some(1000), Some(1000))?;

    install(Path::new(BUSYBOX), &root.join("bin/busybox"), 0o755)?;
    for applet in busybox_applets()? {
        let link = root.join("bin").join(&applet);
        if applet != "busybox" && !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    install(checker, &root.join(CHECKER.trim_start_matches('/')), 0o755)?;
    write(&root.join("etc/passwd"), PASSWD, 0o644)?;
    write(&root.join("etc/group"), GROUP, 0o644)?;
    write(
        &root.join("bin/not-exec"),
        "#!/bin/sh\necho this file is not executable\n",
        0o644,
    )
}

fn busybox_applets() -> std::io::Result<Vec<String>> {
    let output = Command::new(BUSYBOX).arg("--list").output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "{BUSYBOX} --list: {}",
            output.status
        )));
    }
    let list = String::from_utf8_lossy(&output.stdout);
    Ok(list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .map(str::to_owned)
        .collect())
}

fn install(from: &Path, to: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::copy(from, to)?;
    std::fs::set_permissions(to, Permissions::from_mode(mode))
}

fn write(path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    std::fs::write(path, contents)?;
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}

/// Drops other fixture versions that nobody has built for an hour (a rebuilt checker
/// leaves its predecessor behind otherwise).
fn remove_old_rootfs(fixtures: &Path, current: &Path) {
    let Ok(entries) = std::fs::read_dir(fixtures) else {
        return;
    };
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < hour_ago);
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path != current && old && (name.starts_with("rootfs-") || name.starts_with(".building-"))
        {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

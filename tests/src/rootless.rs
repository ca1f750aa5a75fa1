//! What the rootless tests need from the host, made by root: a real user without root
//! (with subordinate id ranges for `newuidmap`/`newgidmap`), and cgroup subtrees
//! delegated to it the way systemd or an administrator would.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::paths::unique_name;

/// The user the rootless tests run the runtime as.
pub const USER: &str = "bulwark-rootless";
/// Its ranges in `/etc/subuid` and `/etc/subgid`: clear of the 100000 Debian gives the
/// first ordinary user and of the hardened profile's default.
pub const SUBORDINATE: (u32, u32) = (400_000, 65_536);

/// A real user without root, with its ids.
#[derive(Debug)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

impl User {
    /// [`USER`], created on first use (once per machine; later calls find it).
    pub fn get() -> &'static User {
        static USER_ONCE: OnceLock<User> = OnceLock::new();
        USER_ONCE.get_or_init(|| ensure_user().unwrap_or_else(|e| panic!("{e}")))
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} {}: {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

fn ensure_user() -> Result<User, String> {
    let lookup = || nix::unistd::User::from_name(USER).ok().flatten();
    if lookup().is_none() {
        // No home, no login; the subordinate ranges are given below, not by useradd.
        let made = run(
            "useradd",
            &[
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "-K",
                "SUB_UID_COUNT=0",
                "-K",
                "SUB_GID_COUNT=0",
                USER,
            ],
        );
        // Another test process may have made it in the meantime.
        if lookup().is_none() {
            made?;
        }
    }
    let user = lookup().ok_or_else(|| format!("user {USER} does not exist"))?;
    let (start, size) = SUBORDINATE;
    let range = format!("{start}-{}", start + size - 1);
    for (file, flag) in [
        ("/etc/subuid", "--add-subuids"),
        ("/etc/subgid", "--add-subgids"),
    ] {
        let listed = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(&format!("{USER}:{start}:{size}")));
        if !listed {
            run("usermod", &[flag, &range, USER])?;
        }
    }
    Ok(User {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

/// Whether `/sys/fs/cgroup` is one cgroup2 hierarchy.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A cgroup subtree owned by a user, in every hierarchy a container uses (each v1
/// hierarchy; on v2 the one tree, with the pids and memory controllers passed down).
/// Removed on drop, deepest first.
#[derive(Debug)]
pub struct Delegated {
    /// The subtree's name below each hierarchy's root.
    pub name: String,
    dirs: Vec<PathBuf>,
}

impl Delegated {
    /// A new subtree `/bulwark-rootless-<pid>-<n>`, owned by `user`.
    pub fn to(user: &User) -> Delegated {
        let name = unique_name("bulwark-rootless");
        let mut delegated = Delegated {
            name: name.clone(),
            dirs: Vec::new(),
        };
        for hierarchy in hierarchies() {
            let dir = hierarchy.join(&name);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            delegated.dirs.push(dir.clone());
            if cgroup_v2() {
                write(&dir.join("cgroup.subtree_control"), "+pids +memory");
            }
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if dir.join(file).exists() && !cgroup_v2() {
                    // A new v1 cpuset has none; give it its parent's, as systemd would.
                    let parent = std::fs::read_to_string(hierarchy.join(file)).unwrap();
                    write(&dir.join(file), parent.trim());
                }
            }
            chown_cgroup(&dir, user);
        }
        delegated
    }

    /// A child of the subtree (on each hierarchy) owned by `user` too, for the runtime's
    /// own processes: on v2 they must be inside the subtree to move containers into it.
    pub fn child(&mut self, name: &str, user: &User) -> PathBuf {
        let mut first = None;
        for dir in self.dirs.clone() {
            let child = dir.join(name);
            std::fs::create_dir(&child)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", child.display()));
            chown_cgroup(&child, user);
            self.dirs.push(child.clone());
            first.get_or_insert(child);
        }
        first.expect("at least one hierarchy")
    }

    /// The subtree's directory in the hierarchy holding `controller` (v2: the one tree).
    pub fn dir_for(&self, controller: &str) -> PathBuf {
        if cgroup_v2() {
            return Path::new("/sys/fs/cgroup").join(&self.name);
        }
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.name)
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Children first (containers the runtime left, then the subtree itself).
        let mut dirs = self.dirs.clone();
        for dir in &self.dirs {
            if let Ok(entries) = std::fs::read_dir(dir) {
                dirs.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        dirs.dedup();
        for dir in dirs {
            if let Err(e) = std::fs::remove_dir(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("bulwark-tests: removing cgroup {}: {e}", dir.display());
                }
            }
        }
    }
}

/// The hierarchy roots a container's cgroups go in: `/sys/fs/cgroup` on v2; else each
/// v1 hierarchy (a directory with a `tasks` file, not a symlink to a joined one).
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if cgroup_v2() {
        return vec![root.to_path_buf()];
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| p.join("tasks").exists())
        .collect();
    found.sort();
    found
}

fn write(path: &Path, value: &str) {
    std::fs::write(path, value)
        .unwrap_or_else(|e| panic!("writing {value:?} to {}: {e}", path.display()));
}

/// What delegation hands over: the directory and the files that create children and
/// move processes (systemd's list for `Delegate=yes`).
fn chown_cgroup(dir: &Path, user: &User) {
    let chown = |path: &Path| {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    };
    chown(dir);
    for file in [
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.threads",
        "tasks",
    ] {
        let path = dir.join(file);
        if path.exists() {
            chown(&path);
        }
    }
}

/// The owner of `path`, for checks that a file was written as the expected host id.
pub fn owner(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .uid()
}

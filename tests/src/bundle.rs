//! A fresh OCI bundle per test: a private copy of the fixture rootfs plus a
//! `config.json` that starts from runc's default spec and that the test edits.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::fixture::{Fixture, CHECKER};
use crate::paths::TempDir;

/// runc's `runc spec` defaults, minus the terminal, the cgroup namespace and mount and
/// the device cgroup rule, and running `bulwark-check report`.
pub fn default_config() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": [CHECKER, "report"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "bulwark",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            }
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
                "/sys/devices/virtual/tpm"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory (`config.json` + `rootfs/`), removed on drop.
///
/// Edits through [`Bundle::config_mut`] reach the file only on [`Bundle::save`];
/// [`Bundle::edit`] and [`Bundle::set_args`] save by themselves.
#[derive(Debug)]
pub struct Bundle {
    dir: TempDir,
    config: Value,
}

impl Bundle {
    /// A bundle with [`default_config`] and its own writable copy of the fixture rootfs.
    pub fn new() -> Bundle {
        let fixture = Fixture::get();
        let dir = TempDir::new();
        let rootfs = dir.path().join("rootfs");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(fixture.rootfs())
            .arg(&rootfs)
            .status()
            .unwrap_or_else(|e| panic!("running cp: {e}"));
        assert!(
            copied.success(),
            "cp -a {} {}: {copied}",
            fixture.rootfs().display(),
            rootfs.display()
        );
        let bundle = Bundle {
            dir,
            config: default_config(),
        };
        bundle.save();
        bundle
    }

    /// A new bundle whose config `edit` has changed (and which is saved).
    pub fn with(edit: impl FnOnce(&mut Value)) -> Bundle {
        let mut bundle = Bundle::new();
        bundle.edit(edit);
        bundle
    }

    /// The bundle directory, as passed to `--bundle`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.json")
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config to change in place; call [`Bundle::save`] afterwards.
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// Changes the config and saves it.
    pub fn edit(&mut self, edit: impl FnOnce(&mut Value)) {
        edit(&mut self.config);
        self.save();
    }

    /// Sets `process.args` and saves.
    pub fn set_args(&mut self, args: &[&str]) {
        self.edit(|config| config["process"]["args"] = json!(args));
    }

    /// Hands the bundle to a user without root: its directory becomes reachable by
    /// others (0711) and everything in it the user's.
    pub fn give_to(&self, uid: u32, gid: u32) {
        std::fs::set_permissions(
            self.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .unwrap_or_else(|e| panic!("chmod {}: {e}", self.path().display()));
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(self.path())
            .status()
            .unwrap_or_else(|e| panic!("running chown: {e}"));
        assert!(
            status.success(),
            "chown -R {uid}:{gid} {}: {status}",
            self.path().display()
        );
    }

    /// Writes the config to `config.json`.
    pub fn save(&self) {
        self.write_config(&self.config);
    }

    pub(crate) fn write_config(&self, config: &Value) {
        let text = serde_json::to_string_pretty(config).expect("a JSON value always serializes");
        std::fs::write(self.config_path(), text)
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.config_path().display()));
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Bundle::new()
    }
}

/// Adds a new user namespace to `config`, mapping container ids 0-65535 to host ids from
/// 100000 (root in the container is an unprivileged host id).
pub fn add_user_namespace(config: &mut Value) {
    config["linux"]["namespaces"]
        .as_array_mut()
        .expect("linux.namespaces is a list")
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    config["linux"]["uidMappings"] = map.clone();
    config["linux"]["gidMappings"] = map;
}

//! `bulwark`, the engine's command line, run by the tests: a store and a Docker client
//! config of each test's own, as root or as the rootless tests' user.
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::fixture::built_binary;
use crate::paths::TempDir;
use crate::process::{default_timeout, run_captured, Output};
use crate::rootless::User;

/// The engine under test: `$BULWARK_ENGINE` (used as is), or `<target>/debug/bulwark`,
/// built with `cargo build -p bulwark-engine-cli` when missing or stale.
pub fn engine_binary() -> &'static Path {
    static ENGINE: OnceLock<PathBuf> = OnceLock::new();
    ENGINE.get_or_init(|| built_binary("BULWARK_ENGINE", "bulwark", "bulwark-engine-cli"))
}

/// The per-container monitor beside it: `$BULWARK_MONITOR`, or `<target>/debug/bulwark-mon`,
/// built when missing or stale.
pub fn monitor_binary() -> &'static Path {
    static MONITOR: OnceLock<PathBuf> = OnceLock::new();
    MONITOR.get_or_init(|| built_binary("BULWARK_MONITOR", "bulwark-mon", "bulwark-monitor"))
}

/// The name resolver of user networks: `$BULWARK_DNS`, or `<target>/debug/bulwark-dns`,
/// built when missing or stale.
pub fn resolver_binary() -> &'static Path {
    static DNS: OnceLock<PathBuf> = OnceLock::new();
    DNS.get_or_init(|| built_binary("BULWARK_DNS", "bulwark-dns", "bulwark-dns"))
}

/// The engine names its host-wide things after its store (see the engine's
/// `networks::host_names`): FNV-1a of the store's path.
fn store_hash(store: &Path) -> String {
    let text = store.display().to_string();
    let hash = text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

/// The nftables table (family ip) of the engine whose store is `store`.
pub fn firewall_table(store: &Path) -> String {
    format!("bulwark-{}", store_hash(store))
}

/// The default bridge of the engine whose store is `store`.
pub fn default_bridge(store: &Path) -> String {
    format!("bw-d{}", store_hash(store))
}

/// The engine with a store and client config of its own.
#[derive(Debug)]
pub struct Bulwark {
    home: TempDir,
    user: Option<(u32, u32)>,
    binary: PathBuf,
    monitor: PathBuf,
}

impl Default for Bulwark {
    fn default() -> Self {
        Bulwark::new()
    }
}

impl Bulwark {
    /// As root, with the store in a fresh directory.
    pub fn new() -> Bulwark {
        let home = TempDir::new();
        Bulwark {
            home,
            user: None,
            binary: engine_binary().to_owned(),
            monitor: monitor_binary().to_owned(),
        }
    }

    /// As the rootless tests' user ([`User`]), with a fresh `$HOME` of its own, so the
    /// store is at its default place, `$HOME/.local/share/bulwark`.
    pub fn rootless() -> Bulwark {
        let user = User::get();
        let home = TempDir::with_mode(0o755);
        std::os::unix::fs::chown(home.path(), Some(user.uid), Some(user.gid))
            .expect("chown of the user's home");
        // A copy the user can reach, as an installed binary would be.
        let bin = home.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir bin");
        let binary = bin.join("bulwark");
        std::fs::copy(engine_binary(), &binary).expect("copying bulwark");
        let monitor = bin.join("bulwark-mon");
        std::fs::copy(monitor_binary(), &monitor).expect("copying bulwark-mon");
        Bulwark {
            home,
            user: Some((user.uid, user.gid)),
            binary,
            monitor,
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The store's directory.
    pub fn store(&self) -> PathBuf {
        match self.user {
            Some(_) => self.home.path().join(".local/share/bulwark"),
            None => self.home.path().join("store"),
        }
    }

    /// The Docker client config directory (`$DOCKER_CONFIG`).
    pub fn docker_config(&self) -> PathBuf {
        self.home.path().join(".docker")
    }

    /// The engine's own config file (`$BULWARK_CONFIG`), written by [`Bulwark::configure`].
    pub fn engine_config(&self) -> PathBuf {
        self.home.path().join("engine.json")
    }

    /// Writes the engine's config file.
    pub fn configure(&self, config: &serde_json::Value) {
        std::fs::write(self.engine_config(), config.to_string()).expect("writing engine.json");
    }

    /// `bulwark <args>`, ready to run, with stdin from /dev/null.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = match self.user {
            None => {
                let mut c = Command::new(&self.binary);
                c.env("BULWARK_STORE", self.store());
                c
            }
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--"])
                    .arg(&self.binary)
                    .env_remove("BULWARK_STORE")
                    .env_remove("XDG_DATA_HOME")
                    .env_remove("XDG_CONFIG_HOME")
                    .env("USER", crate::rootless::USER);
                c
            }
        };
        command
            .args(args)
            .env("BULWARK_MONITOR", &self.monitor)
            .env("BULWARK_DNS", resolver_binary())
            .env("HOME", self.home.path())
            .env("DOCKER_CONFIG", self.docker_config())
            .env("BULWARK_CONFIG", self.engine_config())
            .env_remove("BULWARK_USERNS")
            .env_remove("BULWARK_UNSHARED")
            .stdin(Stdio::null());
        command
    }

    /// Runs `bulwark <args>` to completion.
    #[track_caller]
    pub fn cmd<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_captured(&mut self.command(args), default_timeout() * 5)
    }

    /// Runs `bulwark <args>` after `adjust` changed the command (its stdin, its
    /// environment).
    #[track_caller]
    pub fn cmd_with<I, S>(&self, args: I, adjust: impl FnOnce(&mut Command)) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(args);
        adjust(&mut command);
        run_captured(&mut command, default_timeout() * 5)
    }

    /// Runs `bulwark <args>` with `input` on its stdin.
    #[track_caller]
    pub fn cmd_input<I, S>(&self, args: I, input: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let file = self.home.path().join(".stdin");
        std::fs::write(&file, input).expect("writing the input");
        let out = self.cmd_with(args, |c| {
            c.stdin(std::fs::File::open(&file).expect("the input"));
        });
        let _ = std::fs::remove_file(&file);
        out
    }

    /// Runs `bulwark <args>`, which must succeed; its stdout.
    #[track_caller]
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cmd(args);
        out.assert_success();
        out.stdout
    }

    /// The containers' directory in the store.
    pub fn containers_dir(&self) -> PathBuf {
        self.store().join("containers")
    }

    /// Every path in the store, relative to it (to compare before and after).
    pub fn store_tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.store(), &self.store(), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        out.push(
            path.strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string(),
        );
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out);
        }
    }
}

impl Drop for Bulwark {
    /// Removes what a failed test left running, so its store can go.
    fn drop(&mut self) {
        if !self.store().is_dir() {
            return;
        }
        let out = self.cmd(["ps", "-aq", "--no-trunc"]);
        for id in out.stdout.split_whitespace() {
            let _ = self.cmd(["rm", "-f", id]);
        }
        if self.user.is_some() {
            return;
        }
        // Networks are host-wide: their bridges and rules outlive the store otherwise.
        let _ = self.cmd(["network", "prune", "-f"]);
        let _ = Command::new("ip")
            .args(["link", "del", &default_bridge(&self.store())])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &firewall_table(&self.store())])
            .stderr(Stdio::null())
            .status();
    }
}

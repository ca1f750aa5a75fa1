//! Driving the runtime under test through its runc-compatible command line, with a
//! private state root per test.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::bundle::Bundle;
use crate::clean::assert_clean;
use crate::fixture::{runtime_binary, CHECKER};
use crate::paths::TempDir;
use crate::process::{default_timeout, run_captured, try_run_captured, Output};

/// The runtime binary plus a temporary `--root`. Drop force-deletes whatever
/// containers are still listed and removes the root.
#[derive(Debug)]
pub struct Runtime {
    binary: PathBuf,
    base: TempDir,
    timeout: Duration,
    user: Option<AsUser>,
}

/// How a rootless runtime is started: as `uid`/`gid` (no supplementary groups), with
/// `XDG_RUNTIME_DIR` in the runtime's base directory and no `--root`, optionally from
/// inside a cgroup (`cgroup.procs` of it is written first, as root).
#[derive(Debug, Clone)]
struct AsUser {
    uid: u32,
    gid: u32,
    cgroup: Option<PathBuf>,
}

impl Runtime {
    /// The runtime from [`runtime_binary`] (built if needed).
    pub fn new() -> Runtime {
        Runtime::with_binary(runtime_binary())
    }

    /// Any runc-compatible binary, e.g. a stand-in for the runtime.
    pub fn with_binary(binary: impl Into<PathBuf>) -> Runtime {
        let base = TempDir::new();
        let root = base.path().join("root");
        std::fs::create_dir(&root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
        Runtime {
            binary: binary.into(),
            base,
            timeout: default_timeout(),
            user: None,
        }
    }

    /// The runtime run by `uid`/`gid`, a user without root: a root-owned copy of
    /// [`runtime_binary`] in a directory the user can reach, state under the
    /// `XDG_RUNTIME_DIR` it gets (see [`Runtime::root`]).
    pub fn as_user(uid: u32, gid: u32) -> Runtime {
        let binary = runtime_binary();
        Runtime::as_user_with(uid, gid, |dir| {
            let copy = dir.join("bulwark-runtime");
            std::fs::copy(binary, &copy)
                .unwrap_or_else(|e| panic!("copying {}: {e}", binary.display()));
            copy
        })
    }

    /// Like [`Runtime::as_user`], with the binary `place` puts in the given directory.
    pub fn as_user_with(uid: u32, gid: u32, place: impl FnOnce(&Path) -> PathBuf) -> Runtime {
        let base = TempDir::with_mode(0o755);
        let xdg = base.path().join("xdg");
        std::fs::create_dir(&xdg).unwrap_or_else(|e| panic!("creating {}: {e}", xdg.display()));
        std::os::unix::fs::chown(&xdg, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", xdg.display()));
        let binary = place(base.path());
        Runtime {
            binary,
            base,
            timeout: default_timeout(),
            user: Some(AsUser {
                uid,
                gid,
                cgroup: None,
            }),
        }
    }

    /// A rootless runtime's commands start inside the cgroup `dir` (cgroup v2 moves a
    /// process into a delegated subtree only from inside it).
    pub fn start_in_cgroup(&mut self, dir: &Path) {
        let user = self
            .user
            .as_mut()
            .expect("start_in_cgroup is for a runtime as_user");
        user.cgroup = Some(dir.to_path_buf());
    }

    /// The uid and gid of a runtime [`as_user`](Runtime::as_user); `None` for root.
    pub fn user(&self) -> Option<(u32, u32)> {
        self.user.as_ref().map(|u| (u.uid, u.gid))
    }

    /// The `XDG_RUNTIME_DIR` a runtime [`as_user`](Runtime::as_user) gets.
    pub fn xdg_runtime_dir(&self) -> PathBuf {
        self.base.path().join("xdg")
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The state root: passed as `--root`, or for a runtime [`as_user`](Runtime::as_user)
    /// the default it must choose, `$XDG_RUNTIME_DIR/bulwark-runtime`.
    pub fn root(&self) -> PathBuf {
        match self.user {
            None => self.base.path().join("root"),
            Some(_) => self.xdg_runtime_dir().join("bulwark-runtime"),
        }
    }

    /// The time limit for each command (default [`default_timeout`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// A fresh container id, unique within this runtime's root.
    pub fn unique_id(&self) -> String {
        // Unique across every Runtime of the process: ids name default cgroup paths,
        // which all containers on the host share.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        format!(
            "bulwark-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// `<runtime> --root <root> <args...>` with stdin from /dev/null, for tests that
    /// need their own stdio or want to spawn it.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let Some(user) = &self.user else {
            let mut command = Command::new(&self.binary);
            command
                .arg("--root")
                .arg(self.root())
                .args(args)
                .stdin(Stdio::null());
            return command;
        };
        let mut command = Command::new("/bin/sh");
        // Into the cgroup as root, then the user's ids with no groups, then the runtime.
        command.args([
            "-c",
            r#"[ -z "$1" ] || echo $$ > "$1/cgroup.procs" || exit 125; shift; exec "$@""#,
            "sh",
        ]);
        command.arg(user.cgroup.as_deref().unwrap_or(Path::new("")));
        command
            .arg("setpriv")
            .arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .args(["--clear-groups", "--"])
            .arg(&self.binary)
            .args(args)
            .env("XDG_RUNTIME_DIR", self.xdg_runtime_dir())
            .stdin(Stdio::null());
        command
    }

    /// Runs `<runtime> --root <root> <args...>` to completion (or panics at the time limit).
    #[track_caller]
    pub fn cmd<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_captured(&mut self.command(args), self.timeout)
    }

    /// `run --bundle <bundle> <id>` in the foreground.
    #[track_caller]
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        self.cmd([
            OsStr::new("run"),
            OsStr::new("--bundle"),
            bundle.path().as_os_str(),
            OsStr::new(id),
        ])
    }

    /// Runs the bundle's current config with `process.args` set to `bulwark-check report`
    /// and returns the parsed report, panicking (with the output) if that fails.
    /// `config.json` is restored to the bundle's config afterwards.
    #[track_caller]
    pub fn report(&self, bundle: &Bundle) -> Value {
        let mut config = bundle.config().clone();
        config["process"]["args"] = json!([CHECKER, "report"]);
        bundle.write_config(&config);
        let output = self.run(bundle, &self.unique_id());
        bundle.save();
        output.assert_success();
        serde_json::from_str(&output.stdout)
            .unwrap_or_else(|e| panic!("the report is not JSON ({e}): {output}"))
    }

    /// `run --detach` of `bundle` under a fresh id, which it returns; panics on failure.
    #[track_caller]
    pub fn run_detached(&self, bundle: &Bundle) -> String {
        let id = self.unique_id();
        self.cmd([
            OsStr::new("run"),
            OsStr::new("--detach"),
            OsStr::new("--bundle"),
            bundle.path().as_os_str(),
            OsStr::new(&id),
        ])
        .assert_success();
        id
    }

    /// `state <id>`, parsed, panicking if the command fails.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let output = self.cmd(["state", id]);
        output.assert_success();
        serde_json::from_str(&output.stdout)
            .unwrap_or_else(|e| panic!("state of {id} is not JSON ({e}): {output}"))
    }

    /// Ids from `list --format json`, panicking if the command fails.
    #[track_caller]
    pub fn list(&self) -> Vec<String> {
        let output = self.cmd(["list", "--format", "json"]);
        output.assert_success();
        parse_list(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output}"))
    }

    /// [`assert_clean`] for this runtime's root and `bundle`.
    #[track_caller]
    pub fn assert_clean(&self, bundle: &Bundle) {
        assert_clean(&self.root(), bundle.path());
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let listed = try_run_captured(
            &mut self.command(["list", "--format", "json"]),
            self.timeout,
        );
        let ids = match listed.map(|output| parse_list(&output.stdout)) {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => {
                eprintln!("bulwark-tests: cleanup: {e}");
                return;
            }
            Err(e) => {
                eprintln!("bulwark-tests: cleanup: listing containers: {e}");
                return;
            }
        };
        for id in ids {
            match try_run_captured(&mut self.command(["delete", "--force", &id]), self.timeout) {
                Ok(output) if output.success() => {}
                Ok(output) => eprintln!("bulwark-tests: cleanup: delete --force {id}: {output}"),
                Err(e) => eprintln!("bulwark-tests: cleanup: delete --force {id}: {e}"),
            }
        }
    }
}

/// `list --format json` prints an array of states, or `null` when there are none.
fn parse_list(stdout: &str) -> Result<Vec<String>, String> {
    let list: Value =
        serde_json::from_str(stdout).map_err(|e| format!("list output is not JSON: {e}"))?;
    match list {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("list entry without an id: {item}"))
            })
            .collect(),
        other => Err(format!("list output is not an array: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A shell stand-in that logs its arguments and lists two containers.
    fn fake_runtime(dir: &Path) -> PathBuf {
        let script = dir.join("fake-runtime");
        let log = dir.join("log");
        let body = format!(
            "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$3\" in\n  list) echo '[{{\"id\":\"a\"}},{{\"id\":\"b\"}}]' ;;\n  state) echo '{{\"id\":\"'$4'\",\"status\":\"running\"}}' ;;\nesac\n",
            log = log.display()
        );
        std::fs::write(&script, body).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    #[test]
    fn commands_carry_the_root_and_drop_deletes_listed_containers() {
        let dir = TempDir::new();
        let runtime = Runtime::with_binary(fake_runtime(dir.path()));
        let root = runtime.root();
        assert!(root.is_dir());
        assert_eq!(runtime.state("x")["status"], "running");
        assert_eq!(runtime.list(), ["a", "b"]);
        drop(runtime);
        assert!(!root.exists());
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
        let root = root.display();
        let expected = format!(
            "--root {root} state x\n--root {root} list --format json\n--root {root} list --format json\n\
             --root {root} delete --force a\n--root {root} delete --force b\n"
        );
        assert_eq!(log, expected);
    }

    #[test]
    fn list_output_forms() {
        assert_eq!(parse_list("null"), Ok(vec![]));
        assert_eq!(parse_list("[]"), Ok(vec![]));
        assert_eq!(
            parse_list(r#"[{"id":"c1","status":"stopped"}]"#),
            Ok(vec!["c1".to_owned()])
        );
        assert!(parse_list("{}").is_err());
        assert!(parse_list(r#"[{"status":"x"}]"#).is_err());
    }

    #[test]
    fn ids_are_unique() {
        let dir = TempDir::new();
        let runtime = Runtime::with_binary(fake_runtime(dir.path()));
        assert_ne!(runtime.unique_id(), runtime.unique_id());
    }
}

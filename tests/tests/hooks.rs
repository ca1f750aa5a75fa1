//! OCI hooks: each of the six kinds runs at its point of the lifecycle with the container
//! state on stdin, gets exactly its own args and env, and fails (or only warns) as the
//! runtime spec says.
//!
//! Every hook here appends one line, `<name> <what it read on stdin>`, to a log file in
//! a host directory that is also bind-mounted into the container at `/hooklog`, so hooks
//! in the runtime's namespaces and hooks inside the container write to the same log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bulwark_tests::{
    default_timeout, processes_mentioning, run_captured, wait_until, Bundle, Output, Runtime,
    TempDir, CHECKER,
};
use serde_json::{json, Value};

/// Where the log directory appears inside the container.
const IN_CONTAINER: &str = "/hooklog";

/// The shared hook log: a host directory holding `log`.
struct HookLog(TempDir);

impl HookLog {
    fn new() -> HookLog {
        HookLog(TempDir::new())
    }

    fn dir(&self) -> &Path {
        self.0.path()
    }

    fn host_file(&self) -> PathBuf {
        self.dir().join("log")
    }

    /// `(name, state)` for each line logged so far; the state is `null` if it was not JSON.
    fn entries(&self) -> Vec<(String, Value)> {
        let text = std::fs::read_to_string(self.host_file()).unwrap_or_default();
        let entry = |line: &str| {
            let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
            let state = serde_json::from_str(rest).unwrap_or(Value::Null);
            (name.to_owned(), state)
        };
        text.lines().map(entry).collect()
    }

    fn names(&self) -> Vec<String> {
        self.entries().into_iter().map(|(name, _)| name).collect()
    }

    /// The raw text logged by the hook `name`.
    fn line_of(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.host_file()).unwrap_or_default();
        let found = text.lines().find(|l| l.split(' ').next() == Some(name));
        found
            .unwrap_or_else(|| panic!("no {name} line in {text:?}"))
            .to_owned()
    }
}

/// A hook running `script` with `sh -c`; `sh` is the host's, or the container's for
/// `startContainer`.
fn sh_hook(script: &str) -> Value {
    json!({ "path": "/bin/sh", "args": ["sh", "-c", script] })
}

/// A hook that appends `<name> <stdin>` to `log` (a path as the hook sees it).
fn logging_hook(name: &str, log: &str) -> Value {
    sh_hook(&format!("printf '%s %s\\n' {name} \"$(cat)\" >> {log}"))
}

fn failing_hook() -> Value {
    sh_hook("echo failing on purpose >&2; exit 3")
}

/// The log path as a hook of `kind` sees it: only startContainer runs after pivot_root.
fn log_path_for(kind: &str, log: &HookLog) -> String {
    if kind == "startContainer" {
        format!("{IN_CONTAINER}/log")
    } else {
        log.host_file().to_str().expect("UTF-8 path").to_owned()
    }
}

/// A bundle running `args`, with the log dir bind-mounted and `hooks` as given.
fn bundle_with_hooks(log: &HookLog, args: &[&str], hooks: Value) -> Bundle {
    let source = log.dir().to_str().expect("UTF-8 path").to_owned();
    Bundle::with(|config| {
        config["process"]["args"] = json!(args);
        config["hooks"] = hooks;
        config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": IN_CONTAINER, "type": "bind", "source": source, "options": ["bind"]
        }));
    })
}

/// A logging hook for each of `kinds`, one per kind.
fn logging_hooks(log: &HookLog, kinds: &[&str]) -> Value {
    let hooks = kinds.iter().map(|kind| {
        (
            kind.to_string(),
            json!([logging_hook(kind, &log_path_for(kind, log))]),
        )
    });
    Value::Object(hooks.collect())
}

const ALL_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

fn bundle_arg(bundle: &Bundle) -> &str {
    bundle.path().to_str().expect("UTF-8 path")
}

#[track_caller]
fn create(rt: &Runtime, bundle: &Bundle, id: &str) -> Output {
    rt.cmd(["create", "--bundle", bundle_arg(bundle), id])
}

/// Kills the container, waits until it is stopped, and deletes it.
#[track_caller]
fn stop_and_delete(rt: &Runtime, id: &str) -> Output {
    rt.cmd(["kill", id, "KILL"]).assert_success();
    wait_until("the container stops", || {
        rt.state(id)["status"] == "stopped"
    });
    rt.cmd(["delete", id])
}

#[test]
fn all_six_hooks_run_at_their_points_with_the_state() {
    let rt = Runtime::new();
    let log = HookLog::new();
    let hooks = logging_hooks(&log, &ALL_KINDS);
    let bundle = bundle_with_hooks(&log, &[CHECKER, "sleep", "60"], hooks);
    let id = rt.unique_id();

    create(&rt, &bundle, &id).assert_success();
    assert_eq!(log.names(), ALL_KINDS[..3]);
    let pid = rt.state(&id)["pid"].clone();
    assert!(pid.as_i64().is_some_and(|p| p > 0), "state pid {pid}");

    rt.cmd(["start", &id]).assert_success();
    // Their relative order is poststart_runs_after_the_program_is_executed's business.
    wait_until("both start hooks log", || log.names().len() == 5);
    let mut started = log.names()[3..].to_vec();
    started.sort();
    assert_eq!(started, ["poststart", "startContainer"]);
    stop_and_delete(&rt, &id).assert_success();
    assert_eq!(log.names().len(), 6);
    assert_eq!(log.names()[5], "poststop");

    let bundle_dir = bundle_arg(&bundle);
    for (name, state) in log.entries() {
        assert_eq!(state["id"], id.as_str(), "{name}: {state}");
        assert_eq!(state["bundle"], bundle_dir, "{name}: {state}");
        assert!(state["ociVersion"].is_string(), "{name}: {state}");
        if name != "poststop" {
            assert_eq!(state["pid"], pid, "{name}: the init's pid on the host");
        }
        let expected = match name.as_str() {
            "poststart" => "running",
            "poststop" => "stopped",
            // See start_container_hooks_see_status_created.
            "startContainer" => continue,
            _ => "creating",
        };
        assert_eq!(state["status"], expected, "{name}: {state}");
    }
    rt.assert_clean(&bundle);
}

/// The spec's `created`: create has finished and the user's program has not run yet,
/// which is exactly when startContainer hooks run (runc passes `created` too).
#[test]

fn start_container_hooks_see_status_created() {
    let rt = Runtime::new();
    let log = HookLog::new();
    let hooks = logging_hooks(&log, &["startContainer"]);
    let bundle = bundle_with_hooks(&log, &[CHECKER, "exit", "0"], hooks);
    rt.run(&bundle, &rt.unique_id()).assert_success();
    let entries = log.entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].1["status"], "created", "{}", entries[0].1);
}

/// poststart must run after the user's program is executed, so after startContainer
/// hooks (however slow) and with the program already in place of the init.
#[test]

fn poststart_runs_after_the_program_is_executed() {
    let rt = Runtime::new();
    let log = HookLog::new();
    let slow_start = format!("sleep 1; printf 'startContainer\\n' >> {IN_CONTAINER}/log");
    let host_log = log.host_file();
    let host_log = host_log.display();
    let show_program = format!(
        "pid=$(sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p'); \
         printf 'poststart %s\\n' \"$(tr '\\0' ' ' < /proc/$pid/cmdline)\" >> {host_log}"
    );
    let mut poststart = sh_hook(&show_program);
    poststart["env"] = json!(["PATH=/usr/bin:/bin"]);
    let hooks = json!({ "startContainer": [sh_hook(&slow_start)], "poststart": [poststart] });
    let bundle = bundle_with_hooks(&log, &[CHECKER, "sleep", "60"], hooks);
    let id = rt.unique_id();
    create(&rt, &bundle, &id).assert_success();
    rt.cmd(["start", &id]).assert_success();
    let text = std::fs::read_to_string(log.host_file()).unwrap_or_default();
    assert_eq!(log.names(), ["startContainer", "poststart"], "{text}");
    let seen = log.line_of("poststart");
    assert_eq!(seen.trim_end(), format!("poststart {CHECKER} sleep 60"));
}

#[test]
fn hooks_get_their_args_and_env_and_nothing_of_the_runtimes() {
    let rt = Runtime::new();
    let log = HookLog::new();
    let host_log = log.host_file();
    let script = format!(
        "printf '%s|%s|%s|%s|%s\\n' \"$0\" \"$1\" \"$2\" \"$HOOKVAR\" \"${{LEAK-unset}}\" >> {}",
        host_log.display()
    );
    let hook = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script, "hook-name", "one two", "three"],
        "env": ["HOOKVAR=from the config"]
    });
    let hooks = json!({ "createRuntime": [hook] });
    let bundle = bundle_with_hooks(&log, &[CHECKER, "exit", "0"], hooks);
    let mut command = rt.command(["run", "--bundle", bundle_arg(&bundle), &rt.unique_id()]);
    command.env("LEAK", "from the runtime's environment");
    run_captured(&mut command, default_timeout()).assert_success();
    let text = std::fs::read_to_string(&host_log).unwrap();
    assert_eq!(text, "hook-name|one two|three|from the config|unset\n");
}

#[test]
fn hook_timeout_kills_the_hook_and_fails_create() {
    let rt = Runtime::new();
    let log = HookLog::new();
    // A distinctive duration, to find the hook among the host's processes.
    let sleeper = json!({ "path": "/bin/sleep", "args": ["sleep", "37.25"], "timeout": 1 });
    let poststop = logging_hook("poststop", &log_path_for("poststop", &log));
    let hooks = json!({ "createRuntime": [sleeper], "poststop": [poststop] });
    let bundle = bundle_with_hooks(&log, &[CHECKER, "exit", "0"], hooks);
    let started = Instant::now();
    let output = create(&rt, &bundle, &rt.unique_id());
    let took = started.elapsed();
    output.assert_failure();
    // Killed at its timeout, not waited for: the hook alone would take 37 s.
    assert!(took < Duration::from_secs(35), "create took {took:?}");
    assert!(output.stderr.contains("hooks.createRuntime[0]"), "{output}");
    assert!(output.stderr.contains("timeout"), "{output}");
    let left = processes_mentioning("sleep 37.25");
    assert!(left.is_empty(), "the timed-out hook still runs: {left:?}");
    assert_eq!(log.names(), ["poststop"]);
    rt.assert_clean(&bundle);
}

/// Create fails naming the hook, nothing is left, and poststop still runs (the spec
/// goes on at delete).
#[track_caller]
fn check_failing_create_hook(kind: &str) {
    let rt = Runtime::new();
    let log = HookLog::new();
    let poststop = logging_hook("poststop", &log_path_for("poststop", &log));
    let hooks = json!({ kind: [failing_hook()], "poststop": [poststop] });
    let bundle = bundle_with_hooks(&log, &[CHECKER, "exit", "0"], hooks);
    let output = create(&rt, &bundle, &rt.unique_id());
    output.assert_failure();
    let field = format!("hooks.{kind}[0]");
    assert!(output.stderr.contains(&field), "{output}");
    rt.assert_clean(&bundle);
    assert_eq!(
        log.names(),
        ["poststop"],
        "poststop runs after a failed {kind} hook"
    );
}

#[test]
fn a_failing_prestart_hook_fails_create_and_leaves_nothing() {
    check_failing_create_hook("prestart");
}

#[test]
fn a_failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    check_failing_create_hook("createRuntime");
}

#[test]

fn a_failing_create_container_hook_fails_create_and_leaves_nothing() {
    check_failing_create_hook("createContainer");
}

#[test]
fn failing_poststart_and_poststop_hooks_only_warn() {
    let rt = Runtime::new();
    let log = HookLog::new();
    let hooks = json!({ "poststart": [failing_hook()], "poststop": [failing_hook()] });
    let bundle = bundle_with_hooks(&log, &[CHECKER, "sleep", "60"], hooks);
    let id = rt.unique_id();
    create(&rt, &bundle, &id).assert_success();
    let started = rt.cmd(["start", &id]);
    started.assert_success();
    assert!(started.stderr.contains("hooks.poststart[0]"), "{started}");
    assert_eq!(rt.state(&id)["status"], "running");
    let deleted = stop_and_delete(&rt, &id);
    deleted.assert_success();
    assert!(deleted.stderr.contains("hooks.poststop[0]"), "{deleted}");
    rt.assert_clean(&bundle);
}

/// The spec: a failed poststart or poststop hook is a warning, and "the remaining hooks
/// and lifecycle continue as if the hook had succeeded".
#[test]

fn hooks_after_a_failed_poststart_or_poststop_hook_still_run() {
    let rt = Runtime::new();
    let log = HookLog::new();
    let host_log = log_path_for("poststart", &log);
    let hooks = json!({
        "poststart": [failing_hook(), logging_hook("poststart", &host_log)],
        "poststop": [failing_hook(), logging_hook("poststop", &host_log)]
    });
    let bundle = bundle_with_hooks(&log, &[CHECKER, "sleep", "60"], hooks);
    let id = rt.unique_id();
    create(&rt, &bundle, &id).assert_success();
    rt.cmd(["start", &id]).assert_success();
    stop_and_delete(&rt, &id).assert_success();
    assert_eq!(log.names(), ["poststart", "poststop"]);
}

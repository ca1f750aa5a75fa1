//! The runc command line end to end: create/start/state/kill/delete, run, exec, list,
//! ps, pid files, exit codes and signal forwarding, on real containers.
use std::process::Stdio;

use bulwark_tests::{
    catches_signal, default_timeout, wait_until, Bundle, Runtime, Spawned, CHECKER,
};
use serde_json::json;

fn sleeper() -> Bundle {
    Bundle::with(|c| c["process"]["args"] = json!([CHECKER, "sleep", "600"]))
}

fn pid_of(rt: &Runtime, id: &str) -> i32 {
    rt.state(id)["pid"].as_i64().unwrap() as i32
}

#[test]
fn create_start_kill_delete_walks_the_states() {
    let rt = Runtime::new();
    let bundle = sleeper();
    let id = rt.unique_id();
    let pid_file = bundle.path().join("init.pid");
    rt.cmd([
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ])
    .assert_success();
    let state = rt.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["bundle"], bundle.path().to_str().unwrap());
    assert_eq!(state["ociVersion"], "1.2.0");
    let pid = pid_of(&rt, &id);
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // Created: the init exists but the user's program has not started.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("sleep"),
        "program ran before start"
    );

    rt.cmd(["start", &id]).assert_success();
    assert_eq!(rt.state(&id)["status"], "running");
    wait_until("the program to exec", || {
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
            .contains("sleep")
    });
    assert!(rt.list().contains(&id));
    rt.cmd(["start", &id]).assert_failure();

    rt.cmd(["delete", &id]).assert_failure();
    rt.cmd(["kill", &id, "KILL"]).assert_success();
    wait_until("the container to stop", || {
        rt.state(&id)["status"] == "stopped"
    });
    assert_eq!(rt.state(&id)["pid"], 0);
    rt.cmd(["kill", &id, "KILL"]).assert_failure();
    rt.cmd(["delete", &id]).assert_success();
    rt.cmd(["state", &id]).assert_failure();
    rt.assert_clean(&bundle);
}

#[test]
fn options_may_follow_the_container_id() {
    let rt = Runtime::new();
    let bundle = sleeper();
    let id = rt.unique_id();
    rt.cmd(["create", &id, "--bundle", bundle.path().to_str().unwrap()])
        .assert_success();
    rt.cmd(["delete", &id, "--force"]).assert_success();
    rt.assert_clean(&bundle);
}

#[test]
fn delete_force_kills_a_running_container() {
    let rt = Runtime::new();
    let bundle = sleeper();
    let id = rt.run_detached(&bundle);
    assert_eq!(rt.state(&id)["status"], "running");
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.assert_clean(&bundle);
}

#[test]
fn delete_of_a_created_container_needs_no_force() {
    let rt = Runtime::new();
    let bundle = sleeper();
    let id = rt.unique_id();
    rt.cmd(["create", "--bundle", bundle.path().to_str().unwrap(), &id])
        .assert_success();
    rt.cmd(["delete", &id]).assert_success();
    rt.assert_clean(&bundle);
}

#[test]
fn run_returns_the_exit_status() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|c| c["process"]["args"] = json!([CHECKER, "exit", "42"]));
    rt.run(&bundle, &rt.unique_id()).assert_code(42);
    // Killed from outside (an init cannot SIGKILL itself): 128 + 9.
    let killed = sleeper();
    let id = rt.unique_id();
    let child =
        Spawned::new(&mut rt.command(["run", "--bundle", killed.path().to_str().unwrap(), &id]))
            .unwrap();
    wait_until("the container to run", || {
        rt.cmd(["state", &id]).stdout.contains("\"running\"")
    });
    rt.cmd(["kill", &id, "KILL"]).assert_success();
    child.finish(default_timeout()).assert_code(137);
    rt.assert_clean(&bundle);
    rt.assert_clean(&killed);
}

/// Runs `bundle` (whose program is `bulwark-check wait-signal`) in the foreground, sends
/// SIGUSR1 to the runtime once the container catches it, and checks it was forwarded.
fn assert_foreground_run_forwards_sigusr1(rt: &Runtime, bundle: &Bundle) {
    let id = rt.unique_id();
    let child =
        Spawned::new(&mut rt.command(["run", "--bundle", bundle.path().to_str().unwrap(), &id]))
            .unwrap();
    wait_until("the container to catch SIGUSR1", || {
        let state = rt.cmd(["state", &id]);
        let pid = serde_json::from_str::<serde_json::Value>(&state.stdout)
            .map_or(0, |s| s["pid"].as_i64().unwrap_or(0) as i32);
        state.success() && pid > 0 && catches_signal(pid, libc::SIGUSR1)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    let output = child.finish(default_timeout());
    output.assert_code(128 + libc::SIGUSR1);
    assert!(output.stdout.contains("SIGUSR1"), "{output}");
    rt.assert_clean(bundle);
}

#[test]
fn foreground_run_forwards_signals() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|c| c["process"]["args"] = json!([CHECKER, "wait-signal"]));
    assert_foreground_run_forwards_sigusr1(&rt, &bundle);
}

#[test]
fn exec_runs_in_the_containers_namespaces_with_its_settings() {
    let rt = Runtime::new();
    let bundle = sleeper();
    let id = rt.run_detached(&bundle);
    let init = pid_of(&rt, &id);
    let out = rt.cmd([
        "exec",
        "--env",
        "EXTRA=1",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        &id,
        CHECKER,
        "report",
    ]);
    out.assert_success();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["uid"], 1000);
    assert_eq!(report["gid"], 1000);
    assert_eq!(report["cwd"], "/tmp");
    assert_eq!(report["env"]["EXTRA"], "1");
    assert_eq!(report["hostname"], "bulwark");
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        let theirs = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert_eq!(report["namespaces"][ns], theirs.to_str().unwrap(), "{ns}");
    }
    let fds: Vec<String> = report["fds"].as_object().unwrap().keys().cloned().collect();
    assert!(
        fds.iter().all(|fd| ["0", "1", "2"].contains(&fd.as_str())),
        "leaked fds: {fds:?}"
    );

    rt.cmd(["exec", &id, CHECKER, "exit", "7"]).assert_code(7);

    let pid_file = bundle.path().join("exec.pid");
    rt.cmd([
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        CHECKER,
        "sleep",
        "600",
    ])
    .assert_success();
    let exec_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{exec_pid}")).exists());
    let ps = rt.cmd(["ps", "--format", "json", &id]);
    ps.assert_success();
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    assert!(pids.contains(&init) && pids.contains(&exec_pid), "{pids:?}");
    let table = rt.cmd(["ps", &id]);
    assert!(table.stdout.contains("PID") && table.stdout.contains(&exec_pid.to_string()));

    rt.cmd(["kill", "--all", &id, "9"]).assert_success();
    wait_until("every process to die", || {
        !std::path::Path::new(&format!("/proc/{exec_pid}")).exists()
            && rt.state(&id)["status"] == "stopped"
    });
    rt.cmd(["delete", &id]).assert_success();
    rt.assert_clean(&bundle);
}

#[test]
fn exec_reports_missing_and_non_executable_programs() {
    let rt = Runtime::new();
    let bundle = sleeper();
    let id = rt.run_detached(&bundle);
    let missing = rt.cmd(["exec", &id, "no-such-program"]);
    missing.assert_failure();
    assert!(
        missing
            .stderr
            .contains("executable file not found in $PATH"),
        "{missing}"
    );
    let denied = rt.cmd(["exec", &id, "/bin/not-exec"]);
    denied.assert_failure();
    assert!(denied.stderr.contains("permission denied"), "{denied}");
    rt.cmd(["exec", &id, "--user", "bob", "true"])
        .assert_failure();
}

#[test]
fn list_formats() {
    let rt = Runtime::new();
    let bundle = sleeper();
    let id = rt.unique_id();
    rt.cmd(["create", "--bundle", bundle.path().to_str().unwrap(), &id])
        .assert_success();
    let table = rt.cmd(["list"]);
    assert!(table.stdout.starts_with("ID"));
    assert!(table.stdout.contains(&id) && table.stdout.contains("created"));
    let json: serde_json::Value =
        serde_json::from_str(&rt.cmd(["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[0]["status"], "created");
    assert_eq!(rt.cmd(["list", "-q"]).stdout.trim(), id);
}

#[test]
fn kill_takes_names_and_numbers() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|c| c["process"]["args"] = json!([CHECKER, "wait-signal"]));
    let id = rt.run_detached(&bundle);
    let pid = pid_of(&rt, &id);
    wait_until("the handler", || catches_signal(pid, libc::SIGUSR2));
    rt.cmd(["kill", &id, "NOSUCHSIG"]).assert_failure();
    rt.cmd(["kill", &id, "99"]).assert_failure();
    rt.cmd(["kill", &id, "usr2"]).assert_success();
    wait_until("the container to exit", || {
        rt.state(&id)["status"] == "stopped"
    });
}

#[test]
fn concurrent_commands_on_one_container_are_serialised() {
    let rt = Runtime::new();
    let bundle = sleeper();
    let id = rt.run_detached(&bundle);
    let deletes: Vec<_> = (0..4)
        .map(|_| {
            rt.command(["delete", "--force", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let ok = deletes
        .into_iter()
        .map(|mut c| c.wait().unwrap().success())
        .filter(|s| *s)
        .count();
    assert!(ok >= 1, "no delete succeeded");
    rt.assert_clean(&bundle);
}

#[test]
fn version_and_features() {
    let rt = Runtime::new();
    let version = rt.cmd(["--version"]);
    assert!(version.stdout.contains("bulwark-runtime") && version.stdout.contains("spec: 1.2"));
    let features: serde_json::Value = serde_json::from_str(&rt.cmd(["features"]).stdout).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    let namespaces = features["linux"]["namespaces"].as_array().unwrap();
    assert_eq!(namespaces.len(), 8);
    // Truthful: what is not implemented is reported as such.
    assert_eq!(features["linux"]["seccomp"]["enabled"], true);
    assert_eq!(
        features["linux"]["seccomp"]["operators"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert_eq!(features["linux"]["apparmor"]["enabled"], false);
    assert_eq!(features["linux"]["cgroup"]["v1"], true);
    assert_eq!(features["linux"]["cgroup"]["systemd"], false);
    let options: Vec<&str> = features["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for option in ["rbind", "rro", "nosymfollow", "rslave"] {
        assert!(options.contains(&option), "{option}");
    }
}

#[test]
fn spec_writes_a_config_that_runs() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new();
    std::fs::remove_file(bundle.config_path()).unwrap();
    // The hardened default idmaps the rootfs; where that cannot be done (the v2 guest's
    // 6.1 kernel has no idmapped tmpfs), run Docker's profile instead.
    let unsupported = bulwark_tests::idmap_unsupported(&bundle.rootfs());
    let spec: &[&str] = match &unsupported {
        None => &["spec"],
        Some(why) => {
            eprintln!("running `spec --profile docker`: {why}");
            &["spec", "--profile", "docker"]
        }
    };
    rt.command(spec)
        .current_dir(bundle.path())
        .status()
        .unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.config_path()).unwrap()).unwrap();
    assert_eq!(
        written["process"]["noNewPrivileges"],
        unsupported.is_none(),
        "hardened sets it, docker does not"
    );
    rt.command(["spec"])
        .current_dir(bundle.path())
        .stderr(Stdio::null())
        .status()
        .map(|s| assert!(!s.success()))
        .unwrap();
    bundle.edit(|c| {
        *c = written.clone();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!([CHECKER, "report"]);
    });
    let report = rt.report(&bundle);
    assert_eq!(report["hostname"], "bulwark");
    let rootless = Bundle::new();
    std::fs::remove_file(rootless.config_path()).unwrap();
    let out = rt
        .command(["spec", "--rootless"])
        .current_dir(rootless.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rootless.config_path()).unwrap()).unwrap();
    assert!(config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));
}

#[test]
fn json_log_lines_carry_errors() {
    let rt = Runtime::new();
    let log = bulwark_tests::TempDir::new();
    let log_file = log.path().join("runtime.log");
    let out = rt.cmd([
        "--log",
        log_file.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "no-such-container",
    ]);
    out.assert_failure();
    let line = std::fs::read_to_string(&log_file).unwrap();
    let entry: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(entry["level"], "error");
    assert!(entry["msg"].as_str().unwrap().contains("does not exist"));
    assert!(entry["time"].as_str().is_some());
}

/// The program's signal dispositions are its own: nothing the runtime ignored (Rust
/// ignores SIGPIPE) leaks through exec into the container.
/// The runtime ignores SIGPIPE and, in the foreground, blocks the signals it forwards;
/// neither may reach the container's processes. (busybox grep reads its own status: a
/// Rust checker would show the SIGPIPE its own runtime ignores.)
#[test]
fn container_processes_start_with_no_signal_blocked_or_ignored() {
    let masks = |out: &bulwark_tests::Output| -> Vec<(String, u64)> {
        out.assert_success();
        out.stdout
            .lines()
            .map(|line| {
                let (key, hex) = line.split_once(':').unwrap();
                (key.to_owned(), u64::from_str_radix(hex.trim(), 16).unwrap())
            })
            .collect()
    };
    let expected = vec![("SigBlk".to_owned(), 0), ("SigIgn".to_owned(), 0)];
    let grep = ["/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"];
    let rt = Runtime::new();
    let bundle = Bundle::with(|c| c["process"]["args"] = json!(grep));
    assert_eq!(masks(&rt.run(&bundle, &rt.unique_id())), expected);

    let running = sleeper();
    let id = rt.run_detached(&running);
    let exec: Vec<&str> = ["exec", id.as_str()].into_iter().chain(grep).collect();
    assert_eq!(masks(&rt.cmd(exec)), expected);
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.assert_clean(&bundle);
    rt.assert_clean(&running);
}

/// A signal that reaches a foreground `run` after the container started, while the
/// runtime is still busy (here in a slow poststart hook), is forwarded, not fatal: a
/// runtime killed there would leave the container running with nobody waiting for it.
#[test]
fn a_signal_during_a_slow_poststart_hook_is_forwarded() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|c| {
        c["process"]["args"] = json!([CHECKER, "wait-signal"]);
        c["hooks"] = json!({"poststart": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]});
    });
    assert_foreground_run_forwards_sigusr1(&rt, &bundle);
}

#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    let rt = Runtime::new();
    let bundle =
        Bundle::with(|c| c["process"]["args"] = json!([CHECKER, "cat", "/sys/class/net/lo/flags"]));
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_success();
    let flags = u32::from_str_radix(out.stdout.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(
        flags & libc::IFF_UP as u32,
        libc::IFF_UP as u32,
        "lo is down: {out}"
    );
}

#[test]
fn delete_force_of_a_missing_container_succeeds() {
    let rt = Runtime::new();
    rt.cmd(["delete", "--force", "never-created"])
        .assert_success();
    rt.cmd(["delete", "never-created"]).assert_failure();
}

/// /sys/fs/cgroup shows the container's own cgroup, with or without a cgroup namespace,
/// never a hierarchy's root with every other cgroup of the host in it.
#[test]
fn the_cgroup_mount_shows_only_the_containers_own_cgroup() {
    let rt = Runtime::new();
    for own_namespace in [false, true] {
        let bundle = Bundle::with(|c| {
            if own_namespace {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "cgroup"}));
            }
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/sys/fs/cgroup",
                "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]}));
            c["linux"]["resources"] = json!({"pids": {"limit": 33}});
            c["process"]["args"] = json!([
                "/bin/sh",
                "-c",
                "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
                 find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d | grep -c bulwark || true"
            ]);
        });
        let out = rt.run(&bundle, &rt.unique_id());
        out.assert_success();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines, ["33", "0"], "own namespace {own_namespace}: {out}");
    }
}

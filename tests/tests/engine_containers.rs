//! The container commands on the host only (they do not depend on the cgroup layout):
//! Docker's exit codes, bad input with nothing left behind, logs and rotation, a
//! terminal, restart policies, health checks, `stats`, `update`, `system boot`, killed
//! inits, monitors and clients, 50 containers at once, and stalled log readers.
mod support;

use std::path::Path;

use bulwark_tests::registry::registries;
use bulwark_tests::{wait_until, Bulwark};
use serde_json::Value;
use support::{assert_nothing_left, engine, image, inspect, status};

#[test]
fn exit_codes_are_dockers() {
    let engine = engine();
    let out = engine.cmd(["run", "--rm", image(), "no-such-program"]);
    out.assert_code(127);
    assert!(out.stderr.contains("executable file not found"), "{out}");
    engine
        .cmd(["run", "--rm", image(), "/etc/passwd"])
        .assert_code(126);
    // A program killed by a signal (a child: the container's init ignores signals it
    // does not handle, as any pid namespace's init does).
    engine
        .cmd([
            "run",
            "--rm",
            image(),
            "sh",
            "-c",
            "sh -c 'kill -9 $$'; exit $?",
        ])
        .assert_code(137);
    // The engine's own errors are 125; a missing container is 1.
    engine
        .cmd(["run", "--rm", "--memory", "lots", image()])
        .assert_code(125);
    engine
        .cmd(["run", "--rm", "--no-such-flag", image()])
        .assert_code(125);
    engine.cmd(["stop", "no-such-container"]).assert_code(1);
    assert_nothing_left(&engine);
}

#[test]
fn bad_input_is_named_and_leaves_nothing_behind() {
    let engine = engine();
    let missing = format!("{}/containers/missing:1", registries().plain.addr);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![missing.clone()], "containers/missing"),
        (
            vec!["--memory".into(), "12q".into(), image().into()],
            "\"12q\" for \"--memory\"",
        ),
        (vec!["--cpus".into(), "0".into(), image().into()], "--cpus"),
        (
            vec!["--restart".into(), "sometimes".into(), image().into()],
            "\"sometimes\" for \"--restart\"",
        ),
        (
            vec!["--ulimit".into(), "nofile".into(), image().into()],
            "--ulimit",
        ),
        (
            vec!["--cap-add".into(), "NOT_A_CAP".into(), image().into()],
            "NOT_A_CAP",
        ),
        (
            vec!["-v".into(), "/no/such/dir:/data".into(), image().into()],
            "bind source path does not exist: /no/such/dir",
        ),
        (
            vec!["--network".into(), "bridge-x".into(), image().into()],
            "network bridge-x not found",
        ),
        (
            vec![
                "--security-opt".into(),
                "seccomp=/no/such/profile.json".into(),
                image().into(),
            ],
            "/no/such/profile.json",
        ),
        (
            vec!["--name".into(), "bad/name".into(), image().into()],
            "Invalid container name (bad/name)",
        ),
        (
            vec!["--log-opt".into(), "max-file=0".into(), image().into()],
            "max-file",
        ),
    ];
    for (args, wanted) in cases {
        let mut full = vec!["run".to_string(), "--rm".into()];
        full.extend(args.iter().cloned());
        let out = engine.cmd(&full);
        out.assert_code(125);
        assert!(
            out.stderr.contains(wanted),
            "{args:?}: wanted {wanted:?} in {out}"
        );
        assert_nothing_left(&engine);
    }
    // A name already in use.
    engine.ok(["create", "--name", "taken", image(), "true"]);
    let out = engine.cmd(["run", "--name", "taken", image(), "true"]);
    out.assert_code(125);
    assert!(
        out.stderr
            .contains("The container name \"/taken\" is already in use"),
        "{out}"
    );
    engine.ok(["rm", "taken"]);
    for verb in [
        "logs", "inspect", "rm", "start", "kill", "stop", "wait", "exec",
    ] {
        let mut args = vec![verb, "no-such-container"];
        if verb == "exec" {
            args.push("true");
        }
        let out = engine.cmd(&args);
        out.assert_failure();
        assert!(
            out.stderr.contains("No such container: no-such-container")
                || out.stderr.contains("No such object"),
            "{args:?}: {out}"
        );
    }
    assert_nothing_left(&engine);
}

#[test]
fn logs_follow_until_the_container_ends_and_rotate() {
    let engine = engine();
    engine.ok([
        "run",
        "-d",
        "--name",
        "talker",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        image(),
        "sh",
        "-c",
        "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done; sleep 1; echo last",
    ]);
    let followed = engine.ok(["logs", "-f", "talker"]);
    assert!(followed.ends_with("line 399\nlast\n"), "{followed}");
    let dir = engine.containers_dir();
    let container = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().len() == 64)
        .unwrap()
        .path();
    let files: Vec<u64> = std::fs::read_dir(&container)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert_eq!(files.len(), 3, "the log and two rotated files");
    assert!(files.iter().all(|s| *s <= 2048), "{files:?}");
    engine.ok(["rm", "talker"]);
    // With the `none` driver there is nothing to read.
    engine.ok([
        "run",
        "-d",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        image(),
        "echo",
        "x",
    ]);
    engine.ok(["wait", "quiet"]);
    let out = engine.cmd(["logs", "quiet"]);
    out.assert_failure();
    assert!(out.stderr.contains("does not support reading"), "{out}");
    engine.ok(["rm", "quiet"]);
    assert_nothing_left(&engine);
}

#[test]
fn a_terminal_through_a_pty() {
    let engine = engine();
    let out = in_terminal(
        &engine,
        "",
        &format!("run --rm -it {} sh -c 'tty; echo done'", image()),
    );
    out.assert_success();
    assert!(
        out.stdout.contains("/dev/pts/0") && out.stdout.contains("done"),
        "{out}"
    );
    // ctrl-p ctrl-q detaches from `run -it`; the container runs on.
    let out = in_terminal(
        &engine,
        "(sleep 2; printf 'echo before\\n'; sleep 2; printf '\\020\\021'; sleep 2) | ",
        &format!("run -it --name detached {} sh", image()),
    );
    out.assert_success();
    assert!(
        out.stdout.contains("before") && out.stdout.contains("read escape sequence"),
        "{out}"
    );
    assert_eq!(status(&engine, "detached"), "running");
    engine.ok(["rm", "-f", "detached"]);
    assert_nothing_left(&engine);
}

#[test]
fn restart_policies_apply_to_exits_and_crashes_but_not_to_a_stop() {
    let engine = engine();
    engine.ok([
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        image(),
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    wait_until("on-failure:2 gives up", || {
        status(&engine, "flaky") == "exited" && inspect(&engine, "flaky")["RestartCount"] == 2
    });
    assert_eq!(engine.ok(["logs", "flaky"]), "run\nrun\nrun\n");
    assert_eq!(engine.ok(["wait", "flaky"]).trim(), "1");
    // A crash (SIGSEGV) restarts under on-failure too; a clean exit does not.
    engine.ok([
        "run",
        "-d",
        "--name",
        "crash",
        "--restart",
        "on-failure:1",
        image(),
        "sh",
        "-c",
        "echo up; sh -c 'kill -SEGV $$'; exit $?",
    ]);
    wait_until("the crash is retried once", || {
        status(&engine, "crash") == "exited" && inspect(&engine, "crash")["RestartCount"] == 1
    });
    assert_eq!(inspect(&engine, "crash")["State"]["ExitCode"], 139);
    engine.ok([
        "run",
        "-d",
        "--name",
        "clean",
        "--restart",
        "on-failure",
        image(),
        "true",
    ]);
    assert_eq!(engine.ok(["wait", "clean"]).trim(), "0");
    assert_eq!(inspect(&engine, "clean")["RestartCount"], 0);
    // always: comes back after its program exits, until a user stops it.
    engine.ok([
        "run",
        "-d",
        "--name",
        "forever",
        "--restart",
        "always",
        image(),
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    wait_until("always restarts", || {
        inspect(&engine, "forever")["RestartCount"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    });
    engine.ok(["stop", "forever"]);
    let count = inspect(&engine, "forever")["RestartCount"].clone();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(status(&engine, "forever"), "exited");
    assert_eq!(
        inspect(&engine, "forever")["RestartCount"],
        count,
        "restarted after stop"
    );
    engine.ok(["rm", "flaky", "crash", "clean", "forever"]);
    assert_nothing_left(&engine);
}

/// The container's init on the host.
fn init_pid(engine: &Bulwark, name: &str) -> i32 {
    inspect(engine, name)["State"]["Pid"].as_i64().unwrap() as i32
}

fn monitor_pid(engine: &Bulwark, name: &str) -> i32 {
    let id = inspect(engine, name)["Id"].as_str().unwrap().to_owned();
    let state: Value = serde_json::from_slice(
        &std::fs::read(engine.containers_dir().join(id).join("state.json")).unwrap(),
    )
    .unwrap();
    state["monitor_pid"].as_i64().unwrap() as i32
}

#[test]
fn killed_inits_monitors_and_clients_are_noticed_and_cleaned_up() {
    let engine = engine();
    // The container's init killed from the host: recorded as 137.
    engine.ok(["run", "-d", "--name", "victim", image(), "sleep", "1000"]);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init_pid(&engine, "victim")),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(engine.ok(["wait", "victim"]).trim(), "137");
    engine.ok(["rm", "victim"]);
    // The monitor killed: the container is reported as ended with the reason, and
    // rm -f removes everything (the orphaned processes too).
    engine.ok(["run", "-d", "--name", "orphan", image(), "sleep", "1234"]);
    let monitor = monitor_pid(&engine, "orphan");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    );
    wait_until("the monitor's death is noticed", || {
        status(&engine, "orphan") == "exited"
    });
    let error = inspect(&engine, "orphan")["State"]["Error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("monitor") && error.contains(&monitor.to_string()),
        "{error}"
    );
    engine.ok(["rm", "-f", "orphan"]);
    assert!(bulwark_tests::processes_mentioning("sleep 1234").is_empty());
    // The client (`bulwark run` in the foreground) killed: the container runs on, its
    // log and exit code are kept.
    let mut client = engine
        .command([
            "run",
            "--name",
            "survivor",
            image(),
            "sh",
            "-c",
            "echo started; sleep 2; echo finished; exit 5",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the container started", || {
        engine.cmd(["logs", "survivor"]).stdout.contains("started")
    });
    client.kill().unwrap();
    client.wait().unwrap();
    assert_eq!(engine.ok(["wait", "survivor"]).trim(), "5");
    assert_eq!(engine.ok(["logs", "survivor"]), "started\nfinished\n");
    engine.ok(["rm", "survivor"]);
    // `bulwark rm -f` killed at every stage: the next rm -f finishes the job.
    for delay_ms in [0u64, 5, 20, 60] {
        engine.ok(["run", "-d", "--name", "half", image(), "sleep", "1000"]);
        let mut rm = engine
            .command(["rm", "-f", "half"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = rm.kill();
        rm.wait().unwrap();
        let _ = engine.cmd(["rm", "-f", "half"]);
        assert_nothing_left(&engine);
    }
    // `bulwark run -d` killed at every stage: whatever it made goes with rm -f.
    for delay_ms in [0u64, 5, 10, 15, 20, 25, 30, 40, 60, 100] {
        let mut run = engine
            .command(["run", "-d", "--name", "partial", image(), "sleep", "1000"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = run.kill();
        run.wait().unwrap();
        // What it made is a container (rm -f removes it) or half of one, which the next
        // command that lists containers finishes removing.
        for id in engine.ok(["ps", "-aq"]).split_whitespace() {
            engine.ok(["rm", "-f", id]);
        }
        wait_until("a half-made container is collected", || {
            engine.ok(["ps", "-aq"]);
            std::fs::read_dir(engine.containers_dir()).map_or(true, |e| {
                e.flatten()
                    .all(|e| e.file_name() == "names" || e.file_name() == "events.log")
            })
        });
        assert_nothing_left(&engine);
    }
}

#[test]
fn fifty_containers_at_once_then_removed_at_once_leave_nothing() {
    let engine = engine();
    let each = |args: &dyn Fn(usize) -> Vec<String>| {
        std::thread::scope(|s| {
            let all: Vec<_> = (0..50)
                .map(|i| {
                    let engine = &engine;
                    let args = args(i);
                    s.spawn(move || engine.cmd(&args))
                })
                .collect();
            for one in all {
                one.join().unwrap().assert_success();
            }
        })
    };
    each(&|i| {
        vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            format!("c{i}"),
            image().into(),
            "sleep".into(),
            "1000".into(),
        ]
    });
    assert_eq!(engine.ok(["ps", "-q"]).lines().count(), 50);
    each(&|i| vec!["rm".into(), "-f".into(), format!("c{i}")]);
    assert_eq!(engine.ok(["ps", "-aq"]), "");
    assert_nothing_left(&engine);
}

#[test]
fn a_stalled_reader_never_blocks_the_container() {
    let engine = engine();
    // 100 MB through the log while a `logs -f` reader never reads (its stdout is a pipe
    // nobody drains).
    engine.ok([
        "run",
        "-d",
        "--name",
        "writer",
        image(),
        "sh",
        "-c",
        "head -c 75000000 /dev/zero | base64 -w 1000",
    ]);
    let mut stalled = engine
        .command(["logs", "-f", "writer"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(engine.ok(["wait", "writer"]).trim(), "0");
    let log_size: u64 = std::fs::read_dir(engine.containers_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 64)
        .map(|e| {
            e.path()
                .join(format!("{}-json.log", e.file_name().to_string_lossy()))
        })
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(log_size > 100_000_000, "{log_size}");
    let _ = stalled.kill();
    let _ = stalled.wait();
    engine.ok(["rm", "writer"]);
    // An attached client that stops reading, with mode=non-blocking: the container
    // finishes, and the log says how much the client missed.
    let mut client = engine
        .command([
            "run",
            "--name",
            "fast",
            "--log-opt",
            "mode=non-blocking",
            "--log-opt",
            "max-buffer-size=64k",
            image(),
            "sh",
            "-c",
            "head -c 20000000 /dev/zero | base64 -w 1000; echo end",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the attached run created its container", || {
        engine.cmd(["inspect", "fast"]).success()
    });
    assert_eq!(engine.ok(["wait", "fast"]).trim(), "0");
    let logs = engine.ok(["logs", "--tail", "3", "fast"]);
    assert!(logs.contains("end"), "{logs}");
    let all = engine.cmd(["logs", "fast"]);
    assert!(
        all.stderr.contains("bulwark: dropped"),
        "the drop is not reported"
    );
    let _ = client.kill();
    let _ = client.wait();
    engine.ok(["rm", "fast"]);
    assert_nothing_left(&engine);
}

#[test]
fn the_image_config_is_merged_with_the_flags_as_docker_merges_it() {
    let engine = engine();
    // The image: Cmd ["/bin/sh"], Env PATH, WorkingDir "/".
    assert_eq!(engine.ok(["run", "--rm", image(), "pwd"]).trim(), "/");
    let out = engine.ok([
        "run",
        "--rm",
        "-e",
        "PATH=/bin",
        "-e",
        "A=1",
        image(),
        "sh",
        "-c",
        "echo $PATH $A $HOSTNAME",
    ]);
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&fields[..2], ["/bin", "1"]);
    assert_eq!(fields[2].len(), 12, "HOSTNAME is the short id: {out}");
    // --entrypoint replaces the image's and drops its command.
    assert_eq!(
        engine.ok(["run", "--rm", "--entrypoint", "echo", image(), "a", "b"]),
        "a b\n"
    );
    assert_eq!(
        engine.ok(["run", "--rm", "--entrypoint", "echo", image()]),
        "\n"
    );
    let env_file = bulwark_tests::TempDir::new();
    let path = env_file.path().join("env");
    std::fs::write(&path, "# comment\nFROM_FILE=yes\n").unwrap();
    let path = path.display().to_string();
    assert_eq!(
        engine.ok([
            "run",
            "--rm",
            "--env-file",
            &path,
            image(),
            "sh",
            "-c",
            "echo $FROM_FILE"
        ]),
        "yes\n"
    );
    let info = {
        engine.ok([
            "create",
            "--name",
            "merged",
            "--stop-signal",
            "SIGUSR1",
            "--stop-timeout",
            "3",
            image(),
        ]);
        inspect(&engine, "merged")
    };
    assert_eq!(info["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(info["Config"]["StopSignal"], "SIGUSR1");
    assert_eq!(info["Config"]["StopTimeout"], 3);
    assert_eq!(info["State"]["Status"], "created");
    engine.ok(["rm", "merged"]);
    // prune counts what the containers wrote (their upper layers).
    engine.ok([
        "run",
        "--name",
        "writes",
        image(),
        "sh",
        "-c",
        "head -c 3000000 /dev/zero > /big",
    ]);
    let pruned = engine.ok(["container", "prune", "-f"]);
    assert!(
        pruned.ends_with("Total reclaimed space: 3MB\n")
            || pruned.ends_with("Total reclaimed space: 3.01MB\n"),
        "{pruned}"
    );
    assert!(!Path::new(&engine.store().join("containers/names/merged")).exists());
    assert_nothing_left(&engine);
}

/// `bulwark ARGS` on a terminal (util-linux's `script` makes the pty), after `input |`
/// (a shell pipeline feeding it, or "").
fn in_terminal(engine: &Bulwark, input: &str, args: &str) -> bulwark_tests::Output {
    let command = format!(
        "{input}BULWARK_STORE={} BULWARK_MONITOR={} script -qec \"{} {args}\" /dev/null",
        engine.store().display(),
        bulwark_tests::monitor_binary().display(),
        bulwark_tests::engine_binary().display(),
    );
    bulwark_tests::run_captured(
        std::process::Command::new("sh")
            .args(["-c", &command])
            .stdin(std::process::Stdio::null()),
        bulwark_tests::default_timeout(),
    )
}

fn health(engine: &Bulwark, name: &str) -> String {
    let info = inspect(engine, name);
    info["State"]["Health"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn health_checks_stats_update_and_boot() {
    let engine = engine();
    engine.ok([
        "run",
        "-d",
        "--name",
        "checked",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        image(),
        "sleep",
        "1000",
    ]);
    wait_until("two failed checks make it unhealthy", || {
        health(&engine, "checked") == "unhealthy"
    });
    assert!(engine.ok(["ps"]).contains("(unhealthy)"));
    engine.ok(["exec", "checked", "touch", "/tmp/ok"]);
    wait_until("a passing check makes it healthy", || {
        health(&engine, "checked") == "healthy"
    });
    assert_eq!(
        inspect(&engine, "checked")["State"]["Health"]["FailingStreak"],
        0
    );
    // stats: the container's processes (sleep, and a health check now and then) and
    // memory against its limit.
    let stats = engine.ok(["stats", "--no-stream", "checked"]);
    let row = stats.lines().nth(1).unwrap_or_default().to_owned();
    let pids: u32 = row
        .split_whitespace()
        .last()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert!(
        stats.starts_with("CONTAINER ID") && row.contains("checked") && (1..=3).contains(&pids),
        "{stats}"
    );
    // update: new limits on the running container, a new restart policy.
    engine.ok([
        "update",
        "-m",
        "96m",
        "--pids-limit",
        "40",
        "--restart",
        "always",
        "checked",
    ]);
    let limits = engine.ok([
        "exec", "checked", "sh", "-c",
        "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(limits, format!("40\n{}\n", 96u64 << 20));
    assert_eq!(
        inspect(&engine, "checked")["HostConfig"]["RestartPolicy"]["Name"],
        "always"
    );
    // A reboot, as the files see it: the monitor and the container gone, the root
    // filesystem unmounted, the state from another boot. `system boot` starts it again.
    let id = inspect(&engine, "checked")["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let monitor = monitor_pid(&engine, "checked");
    let init = init_pid(&engine, "checked");
    for pid in [monitor, init] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    wait_until("the container's processes are gone", || {
        !Path::new(&format!("/proc/{init}")).exists()
    });
    let merged = engine.store().join("mounts").join(&id).join("merged");
    nix::mount::umount(&merged).expect("unmounting the root filesystem");
    let state_path = engine.containers_dir().join(&id).join("state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["boot_id"] = "a-boot-before-this-one".into();
    std::fs::write(&state_path, state.to_string()).unwrap();
    assert_eq!(status(&engine, "checked"), "exited");
    let booted = engine.ok(["system", "boot"]);
    assert_eq!(booted.trim(), id);
    assert_eq!(status(&engine, "checked"), "running");
    assert_eq!(
        engine.ok(["exec", "checked", "cat", "/tmp/ok"]),
        "",
        "the upper layer came back"
    );
    // A container that exited on its own is not started by boot unless its policy says so.
    engine.ok(["run", "-d", "--name", "done", image(), "true"]);
    engine.ok(["wait", "done"]);
    assert_eq!(engine.ok(["system", "boot"]).trim(), "");
    engine.ok(["rm", "-f", "checked", "done"]);
    assert_nothing_left(&engine);
}

#[test]
fn cp_both_ways_never_follows_the_containers_symlinks() {
    let engine = engine();
    engine.ok([
        "run", "-d", "--name", "files", image(), "sh", "-c",
        "mkdir -p /data/sub && echo inside > /data/sub/f && ln -s / /data/root && ln -s /host-secret /data/abs && sleep 1000",
    ]);
    wait_until("the files exist", || {
        engine
            .cmd(["exec", "files", "test", "-L", "/data/abs"])
            .success()
    });
    // Out: a directory, with its symlinks as symlinks.
    let host = bulwark_tests::TempDir::new();
    engine.ok(["cp", "files:/data", &host.path().display().to_string()]);
    let copied = host.path().join("data");
    assert_eq!(
        std::fs::read_to_string(copied.join("sub/f")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        std::fs::read_link(copied.join("root")).unwrap(),
        Path::new("/")
    );
    assert_eq!(
        std::fs::read_link(copied.join("abs")).unwrap(),
        Path::new("/host-secret")
    );
    // A path through a symlink to / resolves inside the container's root, not the host's.
    let passwd = host.path().join("passwd");
    engine.ok([
        "cp",
        "files:/data/root/etc/passwd",
        &passwd.display().to_string(),
    ]);
    let ours =
        std::fs::read_to_string(bulwark_tests::Fixture::get().rootfs().join("etc/passwd")).unwrap();
    assert_eq!(std::fs::read_to_string(&passwd).unwrap(), ours);
    // In: a file, then a file onto a symlink the container planted towards a host path,
    // which is replaced (the host path stays untouched).
    let target = bulwark_tests::TempDir::new();
    let victim = target.path().join("victim");
    engine.ok([
        "exec",
        "files",
        "ln",
        "-s",
        &victim.display().to_string(),
        "/data/trap",
    ]);
    let input = host.path().join("input");
    std::fs::write(&input, "from host\n").unwrap();
    engine.ok(["cp", &input.display().to_string(), "files:/data/sub/"]);
    assert_eq!(
        engine.ok(["exec", "files", "cat", "/data/sub/input"]),
        "from host\n"
    );
    engine.ok(["cp", &input.display().to_string(), "files:/data/trap"]);
    assert!(
        !victim.exists(),
        "cp wrote through the container's symlink to the host"
    );
    assert_eq!(
        engine.ok(["exec", "files", "cat", "/data/trap"]),
        "from host\n"
    );
    let out = engine.cmd(["cp", "files:/no/such", &host.path().display().to_string()]);
    out.assert_failure();
    assert!(
        out.stderr
            .contains("Could not find the file /no/such in container"),
        "{out}"
    );
    engine.ok(["rm", "-f", "files"]);
    assert_nothing_left(&engine);
}

#[test]
fn events_init_and_an_exec_terminal() {
    let engine = engine();
    // --init: tini is pid 1 and the program its child; signals reach the program.
    let out = engine.ok([
        "run",
        "--rm",
        "--init",
        image(),
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("/sbin/docker-init -- sh"), "{out}");
    assert_ne!(lines[1], "1", "the program is not pid 1 under --init");
    engine.ok([
        "run",
        "-d",
        "--name",
        "inited",
        "--init",
        image(),
        "sleep",
        "1000",
    ]);
    engine.ok(["stop", "-t", "30", "inited"]);
    assert_eq!(
        engine.ok(["wait", "inited"]).trim(),
        "143",
        "SIGTERM reached sleep through the init"
    );
    // events: what happened to the container, in order.
    let events = engine.ok([
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "container=inited",
        "--format",
        "{{.Action}}",
    ]);
    // The monitor records the death while `stop` waits; `stop` records itself after.
    assert_eq!(
        events.split_whitespace().collect::<Vec<_>>(),
        ["create", "start", "die", "stop"],
        "{events}"
    );
    engine.ok(["rm", "inited"]);
    // exec -t: a terminal through a pty, relayed by `bulwark exec`.
    engine.ok(["run", "-d", "--name", "shell", image(), "sleep", "1000"]);
    let out = in_terminal(&engine, "", "exec -t shell sh -c 'tty; echo in-terminal'");
    out.assert_success();
    assert!(
        out.stdout.contains("/dev/pts/") && out.stdout.contains("in-terminal"),
        "{out}"
    );
    engine.ok(["rm", "-f", "shell"]);
    assert_nothing_left(&engine);
}

#[test]
fn attach_streams_output_and_drives_a_terminal() {
    let engine = engine();
    engine.ok([
        "run", "-d", "--name", "talk", image(), "sh", "-c",
        "sleep 1; i=0; while [ $i -lt 5 ]; do echo out $i; echo err $i >&2; i=$((i+1)); sleep 0.1; done; exit 6",
    ]);
    let out = engine.cmd(["attach", "talk"]);
    out.assert_code(6);
    assert!(
        out.stdout.ends_with("out 3\nout 4\n") && !out.stdout.contains("err"),
        "{out}"
    );
    assert!(
        out.stderr.ends_with("err 3\nerr 4\n") && !out.stderr.contains("out"),
        "{out}"
    );
    let out = engine.cmd(["attach", "talk"]);
    out.assert_failure();
    assert!(
        out.stderr
            .contains("You cannot attach to a stopped container"),
        "{out}"
    );
    engine.ok(["rm", "talk"]);
    // A terminal: typed input reaches the shell, its exit status comes back.
    engine.ok(["run", "-d", "-it", "--name", "term", image(), "sh"]);
    let out = in_terminal(
        &engine,
        "(echo 'echo typed-$((6*7))'; sleep 2; echo 'exit 3'; sleep 2) | ",
        "attach term",
    );
    assert!(out.stdout.contains("typed-42"), "{out}");
    assert_eq!(engine.ok(["wait", "term"]).trim(), "3");
    engine.ok(["rm", "term"]);
    assert_nothing_left(&engine);
}

#[test]
fn containers_without_root() {
    let engine = Bulwark::rootless();
    engine.ok(["pull", "-q", image()]);
    // Foreground, with its exit status; the container's root is the user (uid 0 inside).
    let out = engine.cmd([
        "run",
        "--rm",
        image(),
        "sh",
        "-c",
        "id -u; echo err >&2; exit 4",
    ]);
    out.assert_code(4);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("0\n", "err\n"),
        "{out}"
    );
    // Detached: ps, logs, exec (which joins the monitor's namespaces), cp, stop, rm.
    engine.ok([
        "run",
        "-d",
        "--name",
        "mine",
        image(),
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo up; while true; do sleep 0.1; done",
    ]);
    wait_until("the container logged", || {
        engine.ok(["logs", "mine"]) == "up\n"
    });
    assert!(engine.ok(["ps"]).contains("mine"));
    assert_eq!(
        engine.ok([
            "exec",
            "-u",
            "nobody",
            "mine",
            "sh",
            "-c",
            "id -u; echo x > /tmp/f"
        ]),
        "65534\n"
    );
    let host = engine.home().join("copied");
    engine.ok(["cp", "mine:/tmp/f", &host.display().to_string()]);
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "x\n");
    engine.ok(["stop", "mine"]);
    assert_eq!(engine.ok(["wait", "mine"]).trim(), "0");
    // Started again on the same root filesystem (mounted anew for the new monitor).
    engine.ok(["start", "mine"]);
    assert_eq!(engine.ok(["exec", "mine", "cat", "/tmp/f"]), "x\n");
    engine.ok(["rm", "-f", "mine"]);
    assert_eq!(engine.ok(["ps", "-aq"]), "");
    let mounts = std::fs::read_dir(engine.store().join("mounts")).map_or(0, |e| e.count());
    assert_eq!(mounts, 0, "root filesystems left in the store");
    let monitors = bulwark_tests::processes_mentioning(&engine.store().display().to_string());
    assert!(monitors.is_empty(), "processes left: {monitors:?}");
}

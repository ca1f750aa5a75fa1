//! Containers from images pulled from the local registry, as root: `run` in the
//! foreground and detached, `ps`, `logs`, `exec`, `top`, `inspect`, `stop`, `kill`,
//! `wait`, `pause`, `rename`, `rm`, `container prune`; Docker's exit codes; bad input with
//! nothing left behind; and the hardened defaults, tried from inside.
use std::path::Path;
use std::sync::OnceLock;

use bulwark_tests::images::{fixture_layer, Compression, Format, Image};
use bulwark_tests::registry::registries;
use bulwark_tests::{mounts_under, wait_until, Bulwark};
use serde_json::Value;

/// The fixture (busybox and bulwark-check) as an image in the plain registry.
pub fn image() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let image = Image::build(
            &[(fixture_layer(), Compression::Gzip)],
            "amd64",
            Format::Oci,
        );
        let registry = &registries().plain;
        registry.push_image("containers/busybox", "1", &image);
        format!("{}/containers/busybox:1", registry.addr)
    })
}

/// An engine with the image pulled.
fn engine() -> Bulwark {
    let engine = Bulwark::new();
    engine.ok(["pull", "-q", image()]);
    engine
}

fn inspect(engine: &Bulwark, what: &str) -> Value {
    let text = engine.ok(["inspect", what]);
    let all: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    all[0].clone()
}

fn status(engine: &Bulwark, what: &str) -> String {
    engine
        .ok(["inspect", "-f", "{{.State.Status}}", what])
        .trim()
        .to_owned()
}

/// Nothing of any container is left: no container directories or names, no root
/// filesystem mounts, no runtime state, no process of the store's.
#[track_caller]
fn assert_nothing_left(engine: &Bulwark) {
    let containers = engine.containers_dir();
    let left: Vec<String> = std::fs::read_dir(&containers)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "names")
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "container directories left: {left:?}");
    let names: Vec<_> = std::fs::read_dir(containers.join("names"))
        .map(|e| e.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "names left: {names:?}");
    assert_eq!(
        mounts_under(&engine.store()),
        Vec::<std::path::PathBuf>::new(),
        "mounts left"
    );
    let mounts = std::fs::read_dir(engine.store().join("mounts"))
        .map(|e| e.count())
        .unwrap_or(0);
    assert_eq!(mounts, 0, "root filesystems left in the store");
    let monitors = bulwark_tests::processes_mentioning(&engine.store().display().to_string());
    assert!(monitors.is_empty(), "processes left: {monitors:?}");
}

#[test]
fn run_in_the_foreground_relays_output_and_returns_the_exit_code() {
    let engine = engine();
    let out = engine.cmd([
        "run",
        "--rm",
        image(),
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    out.assert_code(3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    // stdin: none without -i, the client's with it.
    let out = engine.cmd_input(["run", "--rm", image(), "cat"], "ignored\n");
    out.assert_success();
    assert_eq!(out.stdout, "");
    let out = engine.cmd_input(
        ["run", "--rm", "-i", image(), "sh"],
        "echo from-stdin\nexit 4\n",
    );
    out.assert_code(4);
    assert_eq!(out.stdout, "from-stdin\n");
    assert_nothing_left(&engine);
}

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
fn a_detached_container_through_its_life() {
    let engine = engine();
    let id = engine
        .ok([
            "run", "-d", "--name", "web", "-e", "GREETING=hi", "--label", "tier=front", "-w", "/tmp",
            "--hostname", "webhost", image(), "sh", "-c",
            "trap 'echo bye; exit 0' TERM; echo \"$GREETING from $(hostname) in $(pwd)\"; while true; do sleep 0.1; done",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    wait_until("the first line is logged", || {
        engine
            .ok(["logs", "web"])
            .contains("hi from webhost in /tmp")
    });
    let ps = engine.ok([
        "ps",
        "--format",
        "{{.ID}} {{.Names}} {{.State}} {{.Labels}}",
    ]);
    assert_eq!(ps.trim(), format!("{} web running tier=front", &id[..12]));
    assert!(
        engine.ok(["ps"]).starts_with("CONTAINER ID   IMAGE"),
        "a table with a header"
    );
    assert_eq!(
        engine
            .ok(["ps", "-q", "--filter", "label=tier=front"])
            .trim(),
        &id[..12]
    );
    assert_eq!(
        engine.ok(["ps", "-q", "--filter", "name=nothing"]).trim(),
        ""
    );
    // exec: the container's environment and working directory, with overrides.
    let out = engine.ok([
        "exec",
        "-e",
        "EXTRA=1",
        "-w",
        "/",
        "-u",
        "nobody",
        "web",
        "sh",
        "-c",
        "echo $GREETING $EXTRA $(pwd) $(id -u)",
    ]);
    assert_eq!(out.trim(), "hi 1 / 65534");
    engine
        .cmd(["exec", "web", "sh", "-c", "exit 7"])
        .assert_code(7);
    let top = engine.ok(["top", "web"]);
    assert!(top.starts_with("UID") && top.contains("sleep"), "{top}");
    let info = inspect(&engine, "web");
    assert_eq!(info["Id"], id.as_str());
    assert_eq!(info["Name"], "/web");
    assert_eq!(info["State"]["Running"], true);
    assert!(info["State"]["Pid"].as_i64().unwrap() > 1);
    assert_eq!(info["Config"]["Labels"]["tier"], "front");
    assert_eq!(info["Config"]["WorkingDir"], "/tmp");
    assert_eq!(info["HostConfig"]["RestartPolicy"]["Name"], "no");
    // pause and unpause.
    engine.ok(["pause", "web"]);
    assert_eq!(status(&engine, "web"), "paused");
    assert!(engine.ok(["ps"]).contains("(Paused)"));
    engine.ok(["unpause", "web"]);
    assert_eq!(status(&engine, "web"), "running");
    engine.ok(["rename", "web", "site"]);
    assert_eq!(inspect(&engine, "site")["Name"], "/site");
    engine.cmd(["inspect", "web"]).assert_failure();
    // A running container is not removed without -f.
    let out = engine.cmd(["rm", "site"]);
    out.assert_failure();
    assert!(
        out.stderr
            .contains("container is running: stop the container before removing or force remove"),
        "{out}"
    );
    // stop: the program's TERM handler runs, its code is recorded, wait reports it.
    engine.ok(["stop", "site"]);
    assert_eq!(status(&engine, "site"), "exited");
    assert_eq!(engine.ok(["wait", "site"]).trim(), "0");
    let logs = engine.ok(["logs", "site"]);
    assert!(logs.ends_with("bye\n"), "{logs}");
    assert_eq!(engine.ok(["logs", "--tail", "1", "site"]), "bye\n");
    let stamped = engine.ok(["logs", "-t", "--tail", "1", "site"]);
    assert!(
        stamped.len() > 30 && stamped.ends_with(" bye\n") && stamped.starts_with("20"),
        "{stamped}"
    );
    assert_eq!(
        engine.ok(["logs", "--since", "2999-01-01T00:00:00Z", "site"]),
        ""
    );
    assert_eq!(
        engine.ok(["logs", "--until", "2000-01-01T00:00:00Z", "site"]),
        ""
    );
    assert!(engine.ok(["ps", "-a"]).contains("Exited (0)"));
    // Started again, then killed: 137.
    engine.ok(["start", "site"]);
    assert_eq!(status(&engine, "site"), "running");
    engine.ok(["kill", "site"]);
    assert_eq!(engine.ok(["wait", "site"]).trim(), "137");
    let pruned = engine.ok(["container", "prune", "-f"]);
    assert!(pruned.contains(&id), "{pruned}");
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
        .find(|e| e.file_name() != "names")
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
    let command = format!(
        "BULWARK_STORE={} BULWARK_MONITOR={} {} run --rm -it {} sh -c 'tty; echo done'",
        engine.store().display(),
        bulwark_tests::monitor_binary().display(),
        bulwark_tests::engine_binary().display(),
        image()
    );
    let out = bulwark_tests::run_captured(
        std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(std::process::Stdio::null()),
        bulwark_tests::default_timeout(),
    );
    out.assert_success();
    assert!(
        out.stdout.contains("/dev/pts/0") && out.stdout.contains("done"),
        "{out}"
    );
    assert_nothing_left(&engine);
}

#[test]
fn hardened_defaults_hold_inside_and_flags_change_them() {
    let engine = engine();
    let run = |args: &[&str], script: &str| -> String {
        let mut full = vec!["run", "--rm"];
        full.extend_from_slice(args);
        full.extend_from_slice(&[image(), "sh", "-c", script]);
        engine.ok(&full)
    };
    // The profile's capabilities, no_new_privs, a seccomp filter, no network but loopback.
    let out = run(
        &[],
        "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; ls /sys/class/net",
    );
    assert!(
        out.contains("NoNewPrivs:\t1") && out.contains("Seccomp:\t2"),
        "{out}"
    );
    assert!(
        out.contains("CapEff:\t00000000") && !out.contains("CapEff:\t000001ffffffffff"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("lo"), "{out}");
    // Attacks the defaults stop: mounting, raw sockets, reading masked /proc files.
    let out = run(&[], "mount -t tmpfs x /mnt 2>&1 || echo mount-refused");
    assert!(out.contains("mount-refused"), "{out}");
    assert!(run(
        &[],
        "ping -c1 -W1 127.0.0.1 >/dev/null 2>&1 && echo pinged || echo no-raw-socket"
    )
    .contains("no-raw-socket"));
    // --privileged: every capability, no filter (loud about it).
    let out = engine.cmd([
        "run",
        "--rm",
        "--privileged",
        image(),
        "grep",
        "-E",
        "^(CapEff|Seccomp):",
        "/proc/self/status",
    ]);
    out.assert_success();
    assert!(
        out.stdout.contains("Seccomp:\t0") && out.stderr.contains("WARNING: --privileged"),
        "{out}"
    );
    // --cap-drop ALL, --read-only, --tmpfs, -m, --pids-limit, --ulimit, --user.
    let out = run(
        &["--cap-drop", "ALL", "--read-only", "--tmpfs", "/scratch", "-m", "64m", "--pids-limit", "33", "--ulimit", "nofile=77:88", "-u", "nobody"],
        "grep CapEff /proc/self/status; touch /x 2>/dev/null && echo root-writable; touch /scratch/y && echo tmpfs-writable; ulimit -n; id -u; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "CapEff:\t0000000000000000",
            "tmpfs-writable",
            "77",
            "65534",
            "33",
            &(64u64 << 20).to_string()
        ],
        "{out}"
    );
    // --network host: the host's interfaces.
    let host_ifaces = std::fs::read_dir("/sys/class/net").unwrap().count();
    let out = run(&["--network", "host"], "ls /sys/class/net | wc -l");
    assert_eq!(out.trim(), host_ifaces.to_string());
    // Binds, read-only and read-write.
    let host = bulwark_tests::TempDir::new();
    std::fs::write(host.path().join("in"), "from host\n").unwrap();
    let ro = format!("{}:/data:ro", host.path().display());
    let out = run(
        &["-v", &ro],
        "cat /data/in; touch /data/new 2>/dev/null || echo read-only",
    );
    assert_eq!(out, "from host\nread-only\n");
    let rw = format!("type=bind,source={},target=/data", host.path().display());
    run(&["--mount", &rw], "echo from container > /data/out");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "from container\n"
    );
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
    for delay_ms in [0u64, 10, 40, 100] {
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
            std::fs::read_dir(engine.containers_dir())
                .map_or(true, |e| e.flatten().all(|e| e.file_name() == "names"))
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
        .filter(|e| e.file_name() != "names")
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
    assert!(!Path::new(&engine.store().join("containers/names/merged")).exists());
    assert_nothing_left(&engine);
}

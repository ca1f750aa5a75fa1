//! Containers from images pulled from the local registry, as root, where the cgroup
//! layout matters (these run on this hybrid host and again in the cgroup v2 guest):
//! `run` in the foreground and detached, `ps`, `logs`, `exec`, `top`, `inspect`, `stop`,
//! `kill`, `wait`, `pause`, `rename`, `rm`, `container prune`, and the hardened defaults
//! and resource flags, tried from inside. The rest of the container commands:
//! `engine_containers.rs`.
mod support;

use bulwark_tests::wait_until;
use support::{assert_nothing_left, engine, image, inspect, status};

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
    // A signal sent to the client goes to the container (Docker's --sig-proxy).
    let mut client = engine
        .command([
            "run",
            "--rm",
            "--name",
            "proxied",
            image(),
            "sh",
            "-c",
            "trap 'echo got-int; exit 9' INT; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the container is ready", || {
        engine.cmd(["logs", "proxied"]).stdout == "ready\n"
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(client.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(client.wait().unwrap().code(), Some(9));
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
    assert!(
        pruned.contains(&id) && pruned.contains("Total reclaimed space: "),
        "{pruned}"
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

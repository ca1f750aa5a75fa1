//! containerd (Debian's containerd and ctr) driving runc and bulwark-runtime over the
//! same scenarios: a containerd of the test's own (root, state and sockets in a temp
//! dir), with `ctr run --runc-binary` choosing the runtime its shim calls.
use std::process::Command;
use std::time::Duration;

use bulwark_tests::engines::cli::{
    bind_source, cgroup_file, expect, sh, skip, succeed, Cli, Flavor,
};
use bulwark_tests::engines::daemon::{socket_ready, Daemon};
use bulwark_tests::engines::image::IMAGE_NAME;
use bulwark_tests::engines::matrix::{run_matrix, scenario, Scenario};
use bulwark_tests::engines::Stage;
use bulwark_tests::{runtime_binary, CHECKER};

/// A detached task, killed and removed on drop.
struct Task<'a> {
    cli: &'a Cli,
    id: String,
}

impl<'a> Task<'a> {
    fn start(cli: &'a Cli, command: &[&str]) -> Result<Task<'a>, String> {
        let args = cli.run_args(&["-d"], command);
        let id = args[args.len() - command.len() - 1].clone();
        succeed(&cli.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>()))?;
        Ok(Task { cli, id })
    }

    fn task(&self, verb: &[&str]) -> Result<String, String> {
        let mut args = vec!["task"];
        args.extend_from_slice(verb);
        args.push(&self.id);
        succeed(&self.cli.cmd(&args))
    }

    fn status(&self) -> Result<String, String> {
        let list = succeed(&self.cli.cmd(&["task", "ls"]))?;
        list.lines()
            .find(|l| l.starts_with(&self.id))
            .and_then(|l| l.split_whitespace().nth(2))
            .map(str::to_owned)
            .ok_or(format!("task {} not listed: {list}", self.id))
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        let _ = self.cli.cmd(&["task", "kill", "-s", "SIGKILL", &self.id]);
        for _ in 0..50 {
            if self.cli.cmd(&["task", "delete", &self.id]).success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.cli.cmd(&["container", "delete", &self.id]);
    }
}

fn scenarios(dir: &std::path::Path, registry_image: String) -> Vec<Scenario> {
    let bind = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        bind_source(dir).display()
    );
    vec![
        scenario("exit code", |c| {
            expect(&c.run(&["--rm"], &sh("exit 3")), 3, "")
        }),
        scenario("not found is an error", |c| {
            let out = c.run(&["--rm"], &["/nonexistent"]);
            match out.success() || !out.stderr.contains("/nonexistent") {
                true => Err(format!("{out}")),
                false => Ok(()),
            }
        }),
        scenario("env", |c| {
            expect(
                &c.run(&["--rm", "--env", "FOO=bar"], &sh("echo $FOO")),
                0,
                "bar",
            )
        }),
        scenario("cwd", |c| {
            expect(&c.run(&["--rm", "--cwd", "/tmp"], &["pwd"]), 0, "/tmp")
        }),
        scenario("read-only root", |c| {
            let out = c.run(&["--rm", "--read-only"], &sh("touch /x 2>&1; true"));
            expect(&out, 0, "Read-only file system")
        }),
        scenario("tmpfs mount", |c| {
            let mount = "type=tmpfs,src=tmpfs,dst=/scratch,options=size=1m";
            let out = c.run(
                &["--rm", "--mount", mount],
                &sh("grep ' /scratch ' /proc/mounts"),
            );
            expect(&out, 0, "tmpfs /scratch tmpfs")
        }),
        scenario("bind mount", move |c| {
            let out = c.run(
                &["--rm", "--mount", &bind],
                &sh("cat /data/f; touch /data/g 2>&1; true"),
            );
            expect(&out, 0, "bound\ntouch: /data/g: Read-only file system")
        }),
        scenario("memory limit set", |c| {
            let script = cgroup_file("memory.max", "memory/memory.limit_in_bytes");
            let out = c.run(&["--rm", "--memory-limit", "67108864"], &sh(&script));
            expect(&out, 0, "67108864")
        }),
        scenario("memory limit enforced (OOM kill: 137)", |c| {
            let out = c.run(
                &["--rm", "--memory-limit", "33554432"],
                &sh("x=a; while true; do x=$x$x; done"),
            );
            expect(&out, 137, "")
        }),
        scenario("cpu limit set", |c| {
            let script = cgroup_file("cpu.max", "cpu/cpu.cfs_quota_us");
            expect(&c.run(&["--rm", "--cpus", "0.5"], &sh(&script)), 0, "50000")
        }),
        scenario("cap-add", |c| {
            let flags = ["--rm", "--cap-add", "CAP_NET_ADMIN"];
            let out = c.run(&flags, &sh("ip link set lo mtu 1000 && echo changed"));
            expect(&out, 0, "changed")
        }),
        scenario("cap-drop", |c| {
            let out = c.run(
                &["--rm", "--cap-drop", "CAP_CHOWN"],
                &sh("chown 1 /tmp 2>&1"),
            );
            expect(&out, 1, "Operation not permitted")
        }),
        scenario("seccomp", |c| {
            let out = c.run(
                &["--rm", "--seccomp"],
                &["grep", "Seccomp:", "/proc/self/status"],
            );
            expect(&out, 0, "\t2")
        }),
        scenario("no-new-privileges by default, off on request", |c| {
            let status = ["grep", "NoNewPrivs:", "/proc/self/status"];
            expect(&c.run(&["--rm"], &status), 0, "\t1")?;
            expect(&c.run(&["--rm", "--allow-new-privs"], &status), 0, "\t0")
        }),
        scenario("masked paths", |c| {
            let out = c.run(
                &["--rm"],
                &sh("wc -c < /proc/timer_list; ls /sys/firmware | wc -l"),
            );
            expect(&out, 0, "0\n0")
        }),
        scenario("devices", |c| {
            if !std::path::Path::new("/dev/kvm").exists() {
                return skip("no /dev/kvm on this host to pass in");
            }
            let out = c.run(&["--rm", "--device", "/dev/kvm"], &sh("ls -l /dev/kvm"));
            expect(&out, 0, "10, 232")
        }),
        scenario("own network namespace", |c| {
            expect(&c.run(&["--rm"], &["ls", "/sys/class/net"]), 0, "lo")
        }),
        scenario("host network", |c| {
            let out = c.run(&["--rm", "--net-host"], &sh("ls /sys/class/net | wc -l"));
            let host = std::fs::read_dir("/sys/class/net").unwrap().count();
            expect(&out, 0, &host.to_string())
        }),
        scenario("host pid namespace", |c| {
            let host = std::fs::read_to_string("/proc/1/comm").unwrap();
            let flags = ["--rm", "--with-ns", "pid:/proc/1/ns/pid"];
            expect(&c.run(&flags, &["cat", "/proc/1/comm"]), 0, host.trim())
        }),
        scenario("pids limit by the checker's fork bomb", |c| {
            // ctr has no pids flag: the container is unlimited and the bomb is bounded.
            expect(&c.run(&["--rm"], &[CHECKER, "forks", "20"]), 0, "forked 20")
        }),
        scenario("user namespace mapping", |c| {
            let flags = [
                "--rm",
                "--uidmap",
                "0:100000:65536",
                "--gidmap",
                "0:100000:65536",
            ];
            let out = c.run(&flags, &sh("cat /proc/self/uid_map; id -u"));
            expect(&out, 0, "100000")
        }),
        scenario("task exec", |c| {
            let task = Task::start(c, &["sleep", "600"])?;
            let out = c.cmd(&[
                "task",
                "exec",
                "--exec-id",
                "e1",
                &task.id,
                "echo",
                "in-exec",
            ]);
            expect(&out, 0, "in-exec")
        }),
        scenario("task ps", |c| {
            let task = Task::start(c, &["sleep", "600"])?;
            let pids = task.task(&["ps"])?;
            (pids.lines().count() >= 2).then_some(()).ok_or(pids)
        }),
        scenario("pause and resume", |c| {
            let task = Task::start(c, &["sleep", "600"])?;
            task.task(&["pause"])?;
            let paused = task.status()?;
            task.task(&["resume"])?;
            let running = task.status()?;
            match (paused.as_str(), running.as_str()) {
                ("PAUSED", "RUNNING") => Ok(()),
                _ => Err(format!("statuses {paused} then {running}")),
            }
        }),
        scenario("kill", |c| {
            let task = Task::start(c, &["sleep", "600"])?;
            task.task(&["kill", "-s", "SIGTERM"])?;
            task.task(&["kill", "-s", "SIGKILL"])?;
            let deadline = std::time::Instant::now() + bulwark_tests::default_timeout();
            while std::time::Instant::now() < deadline {
                if task.status()? == "STOPPED" {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(format!("still {} after SIGKILL", task.status()?))
        }),
        scenario("metrics", |c| {
            let task = Task::start(c, &["sleep", "600"])?;
            let metrics = task.task(&["metrics"])?;
            metrics.contains("memory").then_some(()).ok_or(metrics)
        }),
        scenario("pull from the local registry and run", move |c| {
            succeed(&c.cmd(&["images", "pull", "--plain-http", &registry_image]))?;
            let mut pulled = c.clone();
            pulled.image = registry_image.clone();
            expect(&pulled.run(&["--rm"], &["echo", "pulled"]), 0, "pulled")
        }),
    ]
}

#[test]
fn containerd_runs_bulwark_runtime_as_it_runs_runc() {
    let Some(stage) = Stage::prepare(&["containerd", "ctr", "runc", "skopeo", "docker-registry"])
    else {
        return;
    };
    let dir = stage.dir();
    let socket = dir.join("containerd.sock");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{root}/root\"\nstate = \"{root}/state\"\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n",
            root = dir.display(),
            sock = socket.display()
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(
        "containerd",
        Command::new("containerd").arg("--config").arg(&config),
        &dir.join("containerd.log"),
        || socket_ready(&socket),
    );
    daemon.kill_leftovers_naming(dir);
    let runtime_flag = |binary: String| vec!["--runc-binary".to_owned(), binary];
    let runc = Cli {
        runtime: "runc".into(),
        program: "ctr".into(),
        global: vec![
            "--address".into(),
            socket.display().to_string(),
            "--namespace".into(),
            "bulwark-test".into(),
        ],
        env: Vec::new(),
        runtime_flags: runtime_flag("/usr/sbin/runc".into()),
        image: format!("docker.io/{IMAGE_NAME}"),
        flavor: Flavor::Ctr,
    };
    let archive = stage.archive();
    succeed(&runc.cmd(&["images", "import", &archive])).expect("ctr images import");
    let bulwark = Cli {
        runtime: "bulwark-runtime".into(),
        runtime_flags: runtime_flag(runtime_binary().display().to_string()),
        ..runc.clone()
    };
    let registry_image = stage.registry_image();
    run_matrix(
        "containerd",
        &[runc, bulwark],
        &scenarios(dir, registry_image),
    );
    drop(daemon);
}

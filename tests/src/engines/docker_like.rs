//! The scenarios Docker and Podman share: the same command line, run once with runc and
//! once with bulwark-runtime.
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::cli::{bind_source, cgroup_file, expect, sh, skip, succeed, Cli, Verdict};
use super::matrix::{scenario, Scenario};
use crate::fixture::CHECKER;

/// What the scenarios need from the test that runs them.
#[derive(Debug)]
pub struct Setup {
    /// Scratch space on the host (bind sources).
    pub dir: PathBuf,
    /// The test image in the local registry (`127.0.0.1:PORT/NAME`).
    pub registry_image: String,
    /// Flags `pull` needs for the plain-HTTP registry.
    pub pull_flags: Vec<String>,
    /// Why a per-container user namespace mapping cannot be tested, if it cannot.
    pub no_userns_mapping: Option<&'static str>,
}

/// A detached container, removed on drop.
struct Container<'a> {
    cli: &'a Cli,
    id: String,
}

impl<'a> Container<'a> {
    fn start(cli: &'a Cli, flags: &[&str], command: &[&str]) -> Result<Container<'a>, String> {
        let mut all = vec!["-d"];
        all.extend_from_slice(flags);
        let id = succeed(&cli.run(&all, command))?;
        let id = id.lines().last().unwrap_or_default().to_owned();
        Ok(Container { cli, id })
    }

    fn cmd(&self, args: &[&str]) -> Result<String, String> {
        let (verb, rest) = args.split_first().unwrap();
        let mut all = vec![*verb];
        all.extend_from_slice(rest);
        all.push(&self.id);
        succeed(&self.cli.cmd(&all))
    }

    fn exec(&self, command: &[&str]) -> Result<String, String> {
        let mut args = vec!["exec", self.id.as_str()];
        args.extend_from_slice(command);
        succeed(&self.cli.cmd(&args))
    }

    /// Waits until the container's log shows `line` (it says so once it is ready).
    fn wait_for_log(&self, line: &str) {
        crate::clean::wait_until(&format!("the log line {line:?}"), || {
            self.cmd(&["logs"])
                .is_ok_and(|l| l.lines().any(|l| l == line))
        });
    }

    fn inspect(&self, field: &str) -> Result<String, String> {
        self.cmd(&["inspect", "-f", &format!("{{{{{field}}}}}")])
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        // SIGKILL first: podman's `rm -f` would give a sleeping pid 1 ten seconds.
        let _ = self.cli.cmd(&["kill", &self.id]);
        let _ = self.cli.cmd(&["rm", "-f", &self.id]);
    }
}

fn equal(what: &str, got: String, wanted: &str) -> Verdict {
    if got.trim() == wanted {
        Ok(())
    } else {
        Err(format!("{what}: wanted {wanted:?}, got {got:?}"))
    }
}

const MEMORY: &str = "memory.max";
const MEMORY_V1: &str = "memory/memory.limit_in_bytes";
/// Says "started" once its TERM trap is in place.
const TRAP_TERM: &str = "trap 'echo got-term; exit 7' TERM; echo started; \
                         while true; do sleep 0.2; done";

fn host_links() -> String {
    let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    links.sort();
    links.join(" ")
}

/// The test HTTP GET of `path` from 127.0.0.1:`port`, retried while the server starts.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let mut last = String::new();
    let deadline = std::time::Instant::now() + crate::default_timeout();
    while std::time::Instant::now() < deadline {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut stream) => {
                let _ = stream.set_read_timeout(Some(crate::default_timeout()));
                let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut response = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut response).is_ok()
                    && !response.is_empty()
                {
                    return Ok(response);
                }
                last = "an empty response".into();
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("GET {path} on port {port}: {last}"))
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// Every scenario, in table order.
pub fn scenarios(setup: Setup) -> Vec<Scenario> {
    let source = bind_source(&setup.dir);
    let mut list = vec![
        scenario("exit code", |c| {
            expect(&c.run(&["--rm"], &sh("exit 3")), 3, "")
        }),
        scenario("not found: 127", |c| {
            expect(&c.run(&["--rm"], &["/nonexistent"]), 127, "")
        }),
        scenario("not executable: 126", |c| {
            expect(&c.run(&["--rm"], &["/etc/passwd"]), 126, "")
        }),
        scenario("env", |c| {
            expect(
                &c.run(&["--rm", "-e", "FOO=bar"], &sh("echo $FOO")),
                0,
                "bar",
            )
        }),
        scenario("workdir", |c| {
            expect(&c.run(&["--rm", "-w", "/tmp"], &["pwd"]), 0, "/tmp")
        }),
        scenario("user", |c| {
            let out = c.run(&["--rm", "-u", "1000:1000"], &["id"]);
            expect(&out, 0, "uid=1000(bulwark) gid=1000(bulwark)")
        }),
        scenario("read-only root", |c| {
            let out = c.run(&["--rm", "--read-only"], &sh("touch /x 2>&1; true"));
            expect(&out, 0, "Read-only file system")
        }),
        scenario("tmpfs mount", |c| {
            let out = c.run(
                &["--rm", "--tmpfs", "/scratch:size=1m"],
                &sh("grep ' /scratch ' /proc/mounts"),
            );
            expect(&out, 0, "tmpfs /scratch tmpfs")
        }),
    ];
    let bind = format!("{}:/data:ro", source.display());
    list.push(scenario("bind mount", move |c| {
        let out = c.run(
            &["--rm", "-v", &bind],
            &sh("cat /data/f; touch /data/g 2>&1; true"),
        );
        expect(&out, 0, "bound\ntouch: /data/g: Read-only file system")
    }));
    list.extend([
        scenario("memory limit set", |c| {
            let out = c.run(&["--rm", "-m", "64m"], &sh(&cgroup_file(MEMORY, MEMORY_V1)));
            expect(&out, 0, "67108864")
        }),
        scenario("memory limit enforced (OOM kill: 137)", |c| {
            let flags = ["--rm", "-m", "32m", "--memory-swap", "32m"];
            expect(&c.run(&flags, &sh("x=a; while true; do x=$x$x; done")), 137, "")
        }),
        scenario("OOM kill reported", |c| {
            let flags = ["-m", "32m", "--memory-swap", "32m"];
            let box_ = Container::start(c, &flags, &sh("x=a; while true; do x=$x$x; done"))?;
            box_.cmd(&["wait"])?;
            equal("OOMKilled", box_.inspect(".State.OOMKilled")?, "true")
        }),
        scenario("pids limit enforced", |c| {
            let out = c.run(&["--rm", "--pids-limit", "10"], &[CHECKER, "forks", "50"]);
            expect(&out, 0, "stopped by EAGAIN")
        }),
        scenario("cpu limit set", |c| {
            let script = cgroup_file("cpu.max", "cpu/cpu.cfs_quota_us");
            expect(&c.run(&["--rm", "--cpus", "0.5"], &sh(&script)), 0, "50000")
        }),
        scenario("ulimits", |c| {
            let flags = ["--rm", "--ulimit", "nofile=100:200", "--ulimit", "nproc=1000:1000"];
            expect(&c.run(&flags, &sh("ulimit -n; ulimit -Hn; ulimit -u")), 0, "100\n200\n1000")
        }),
        scenario("cap-drop", |c| {
            let out = c.run(&["--rm", "--cap-drop", "CHOWN"], &sh("chown 1 /tmp 2>&1"));
            expect(&out, 1, "Operation not permitted")
        }),
        scenario("cap-add", |c| {
            let out = c.run(&["--rm", "--cap-add", "NET_ADMIN"], &sh("ip link set lo mtu 1000 && echo changed"));
            expect(&out, 0, "changed")
        }),
        scenario("seccomp on by default", |c| {
            expect(&c.run(&["--rm"], &["grep", "Seccomp:", "/proc/self/status"]), 0, "2")
        }),
        scenario("seccomp unconfined", |c| {
            let flags = ["--rm", "--security-opt", "seccomp=unconfined"];
            expect(&c.run(&flags, &["grep", "Seccomp:", "/proc/self/status"]), 0, "\t0")
        }),
        scenario("no-new-privileges", |c| {
            let flags = ["--rm", "--security-opt", "no-new-privileges"];
            expect(&c.run(&flags, &["grep", "NoNewPrivs:", "/proc/self/status"]), 0, "\t1")
        }),
        scenario("masked paths", |c| {
            let out = c.run(&["--rm"], &sh("wc -c < /proc/timer_list; ls /sys/firmware | wc -l"));
            expect(&out, 0, "0\n0")
        }),
        scenario("devices", |c| {
            let flags = ["--rm", "--device", "/dev/null:/dev/mynull"];
            let out = c.run(&flags, &sh("echo x > /dev/mynull && ls -l /dev/mynull"));
            expect(&out, 0, "1,   3")
        }),
        scenario("network none", |c| {
            let out = c.run(&["--rm", "--network", "none"], &["ls", "/sys/class/net"]);
            equal("links", succeed(&out)?.replace('\n', " "), "lo")
        }),
        scenario("network host", |c| {
            let out = c.run(&["--rm", "--network", "host"], &sh("ls /sys/class/net | sort"));
            equal("links", succeed(&out)?.replace('\n', " "), &host_links())
        }),
        scenario("pid host", |c| {
            let host = std::fs::read_to_string("/proc/1/comm").unwrap();
            let out = c.run(&["--rm", "--pid", "host"], &["cat", "/proc/1/comm"]);
            equal("pid 1", succeed(&out)?, host.trim())
        }),
        scenario("sysctl", |c| {
            let flags = ["--rm", "--sysctl", "net.ipv4.ip_forward=1"];
            expect(&c.run(&flags, &["cat", "/proc/sys/net/ipv4/ip_forward"]), 0, "1")
        }),
        scenario("shm size", |c| {
            expect(&c.run(&["--rm", "--shm-size", "16m"], &["df", "-k", "/dev/shm"]), 0, "16384")
        }),
        scenario("--init", |c| {
            let out = c.run(&["--rm", "--init"], &sh("cat /proc/1/comm; echo $$"));
            let text = succeed(&out)?;
            if text.lines().next().is_some_and(|l| l.contains("init") || l == "catatonit") {
                Ok(())
            } else {
                Err(format!("pid 1 is not the engine's init: {text:?}"))
            }
        }),
        scenario("stdin pipe", |c| {
            expect(&c.run_with_stdin(&["--rm", "-i"], &["cat"], "piped\n"), 0, "piped")
        }),
        scenario("tty", |c| expect(&c.run(&["--rm", "-t"], &["tty"]), 0, "/dev/pts/")),
        scenario("interactive tty", |c| {
            let args = c.run_args(&["--rm", "-it"], &sh("tty; echo $((6*7))"));
            let mut words = vec![c.program.display().to_string()];
            words.extend(c.global.iter().cloned());
            words.extend(args);
            let line: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
            let mut script = std::process::Command::new("script");
            script.args(["-qec", &line.join(" "), "/dev/null"]);
            script.envs(c.env.iter().map(|(k, v)| (k, v)));
            let out = crate::process::run_captured(
                // A pipe held open until `script` exits: at EOF on its input, `script`
                // would end the terminal session early (seen once in CI, with runc too).
                script.stdin(std::process::Stdio::piped()),
                Duration::from_secs(60),
            );
            expect(&out, 0, "/dev/pts/")?;
            expect(&out, 0, "42")
        }),
        scenario("logs", |c| {
            let box_ = Container::start(c, &[], &sh("echo started; sleep 600"))?;
            crate::clean::wait_until("the log line", || {
                box_.cmd(&["logs"]).is_ok_and(|l| l.contains("started"))
            });
            Ok(())
        }),
        scenario("exec", |c| {
            let box_ = Container::start(c, &[], &["sleep", "600"])?;
            equal("exec", box_.exec(&["echo", "in-exec"])?, "in-exec")
        }),
        scenario("exec -i", |c| {
            let box_ = Container::start(c, &[], &["sleep", "600"])?;
            let out = c.cmd_with_stdin(&["exec", "-i", &box_.id, "cat"], "piped\n");
            expect(&out, 0, "piped")
        }),
        scenario("exec -t", |c| {
            let box_ = Container::start(c, &[], &["sleep", "600"])?;
            expect(&c.cmd(&["exec", "-t", &box_.id, "tty"]), 0, "/dev/pts/")
        }),
        scenario("top", |c| {
            let box_ = Container::start(c, &[], &["sleep", "600"])?;
            let out = box_.cmd(&["top"])?;
            out.contains("sleep").then_some(()).ok_or(format!("top: {out}"))
        }),
        scenario("wait", |c| {
            let box_ = Container::start(c, &[], &sh("exit 5"))?;
            equal("wait", box_.cmd(&["wait"])?, "5")
        }),
        scenario("stop by SIGTERM", |c| {
            let box_ = Container::start(c, &[], &sh(TRAP_TERM))?;
            box_.wait_for_log("started");
            box_.cmd(&["stop", "-t", "20"])?;
            equal("exit code", box_.inspect(".State.ExitCode")?, "7")
        }),
        scenario("stop falls back to SIGKILL", |c| {
            let box_ = Container::start(c, &[], &["sleep", "600"])?;
            box_.cmd(&["stop", "-t", "1"])?;
            equal("exit code", box_.inspect(".State.ExitCode")?, "137")
        }),
        scenario("kill", |c| {
            let script = "trap 'exit 9' USR1; echo ready; while true; do sleep 0.2; done";
            let box_ = Container::start(c, &[], &sh(script))?;
            box_.wait_for_log("ready");
            box_.cmd(&["kill", "-s", "USR1"])?;
            equal("wait", box_.cmd(&["wait"])?, "9")
        }),
        scenario("pause and unpause", |c| {
            let box_ = Container::start(c, &[], &["sleep", "600"])?;
            box_.cmd(&["pause"])?;
            equal("paused", box_.inspect(".State.Status")?, "paused")?;
            box_.cmd(&["unpause"])?;
            equal("running", box_.inspect(".State.Status")?, "running")?;
            equal("exec", box_.exec(&["echo", "alive"])?, "alive")
        }),
        scenario("restart", |c| {
            let box_ = Container::start(c, &[], &sh(TRAP_TERM))?;
            box_.wait_for_log("started");
            box_.cmd(&["restart", "-t", "5"])?;
            equal("running", box_.inspect(".State.Running")?, "true")?;
            crate::clean::wait_until("the second start", || {
                box_.cmd(&["logs"]).is_ok_and(|l| l.matches("started").count() == 2)
            });
            Ok(())
        }),
        scenario("update", |c| {
            let box_ = Container::start(c, &["-m", "64m", "--memory-swap", "64m"], &["sleep", "600"])?;
            box_.cmd(&["update", "--memory", "96m", "--memory-swap", "96m"])?;
            let limit = box_.exec(&["sh", "-c", &cgroup_file(MEMORY, MEMORY_V1)])?;
            equal("memory limit", limit, "100663296")
        }),
        scenario("stats", |c| {
            let box_ = Container::start(c, &["-m", "64m"], &["sleep", "600"])?;
            let usage = box_.cmd(&["stats", "--no-stream", "--format", "{{.MemUsage}}"])?;
            let used = usage.split('/').next().unwrap_or_default().trim();
            let nonzero = used.chars().any(|ch| ch.is_ascii_digit() && ch != '0');
            (nonzero && usage.contains('/'))
                .then_some(())
                .ok_or(format!("stats: {usage:?}"))
        }),
        scenario("port publishing", |c| {
            let port = super::daemon::free_port();
            let publish = format!("127.0.0.1:{port}:80");
            let _box = Container::start(c, &["-p", &publish], &["httpd", "-f", "-p", "80", "-h", "/etc"])?;
            let page = http_get(port, "/passwd")?;
            page.contains("root:x:0:0").then_some(()).ok_or(page)
        }),
        scenario("container to container", |c| {
            let server = Container::start(c, &[], &["httpd", "-f", "-p", "80", "-h", "/etc"])?;
            let ip = server.inspect(".NetworkSettings.IPAddress")?;
            if ip.is_empty() {
                return Err("the server has no address on the default network".into());
            }
            let url = format!("http://{ip}/group");
            let script = format!("for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - {url} && exit; sleep 0.3; done; exit 1");
            expect(&c.run(&["--rm"], &sh(&script)), 0, "bulwark:x:1000:")
        }),
    ]);
    let no_userns = setup.no_userns_mapping;
    list.push(scenario("user namespace mapping", move |c| {
        if let Some(reason) = no_userns {
            return skip(reason);
        }
        let flags = [
            "--rm",
            "--uidmap",
            "0:100000:65536",
            "--gidmap",
            "0:100000:65536",
        ];
        let out = c.run(&flags, &sh("cat /proc/self/uid_map; id -u"));
        expect(&out, 0, "100000")?;
        expect(&out, 0, "\n0")
    }));
    let (image, pull_flags) = (setup.registry_image, setup.pull_flags);
    list.push(scenario("pull from the local registry and run", move |c| {
        let mut pull = vec!["pull"];
        pull.extend(pull_flags.iter().map(String::as_str));
        pull.push(&image);
        succeed(&c.cmd(&pull))?;
        let mut pulled = c.clone();
        pulled.image = image.clone();
        expect(&pulled.run(&["--rm"], &["echo", "pulled"]), 0, "pulled")
    }));
    list
}

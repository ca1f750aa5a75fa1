#!/usr/bin/env python3
"""Benchmark containers from images: `bulwark run` next to `podman run` (crun and runc),
`docker run` (a dockerd of the harness's own) and `ctr run` (a containerd of its own), the
same small busybox image already in every engine's store:

1. `run --rm IMAGE true`, wall time, the tools interleaved in a new order every round;
2. 50 `run -d IMAGE sleep 1000` started at once, until every command returned;
3. the memory of idle containers: the private memory of every supervisor process
   (bulwark-mon, conmon, containerd-shim-runc-v2) and of the daemons.

    sudo python3 bench/engine.py [--rounds N] [--quick]

Writes bench/results/engine.{json,md}. It reports; it never fails on a time. A tool that
cannot work on this host is reported as unavailable, with the reason.
See bench/README.md ("Containers").
"""
from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse
import ctypes
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from benchkit import host, spawn
from benchkit.pulls import Containerd, Image, Registry, _add, _tar
from benchkit.stats import Results, summary

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TOOLS = ("bulwark", "podman-crun", "podman-runc", "docker", "ctr")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
CTR_NAMESPACE = "bulwark-bench"
UNTIMED_TIMEOUT_S = 120
SETTLE_S = 3.0
IDLE_BATCH = 10  # idle containers are started this many at once
# Host directories the tools create outside the harness's own ones; removed at the end
# when the harness created them and they are empty again.
HOST_DIRS = [f"/run/containerd/runc/{CTR_NAMESPACE}", "/run/containerd/fifo", "/run/containerd/runc", "/run/containerd/s", "/run/containerd",
             "/run/docker/plugins", "/run/docker", "/run/libpod", "/run/containers", "/var/lib/containers",
             "/var/lib/cni", "/run/netns"]
# Cgroups the peers make below these names (bulwark's own are left alone: it removes them,
# and other users of the host share its parent); new empty ones are removed at the end.
CGROUP_NAMES = {"docker", "libpod_parent", CTR_NAMESPACE}


CAP_SYS_RESOURCE = 24


def has_capability(cap: int) -> bool:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    return False


class Unavailable(Exception):
    """The tool cannot run here; the message says why."""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, help="rounds of `run --rm IMAGE true` (default 20; 3 with --quick)")
    p.add_argument("--idle", type=int, help="idle containers for the memory figures (default 100; 10 with --quick)")
    p.add_argument("--parallel", type=int, default=50, help="containers started at once (default 50)")
    p.add_argument("--batch-rounds", type=int, help="rounds of the at-once start (default 3; 1 with --quick)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    p.add_argument("--quick", action="store_true", help="a smoke test: --rounds 3 --idle 10 --batch-rounds 1")
    p.add_argument("--bulwark", type=Path, default=REPO / "target" / "release" / "bulwark",
                   help="the bulwark binary (bulwark-mon beside it; default target/release/bulwark)")
    p.add_argument("--seed", type=int, help="seed of the shuffles (default: random, recorded in the report)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before one command counts as hung (default 60)")
    p.add_argument("--host-cgroups-as-is", action="store_true",
                   help="do not hide a cgroup2 mount crun refuses on hybrid hosts (see README)")
    p.add_argument("--out", type=Path, default=BENCH / "results", help="directory for engine.{json,md}")
    args = p.parse_args()
    quick = args.quick
    args.rounds = args.rounds if args.rounds is not None else (3 if quick else 20)
    args.idle = args.idle if args.idle is not None else (10 if quick else 100)
    args.batch_rounds = args.batch_rounds if args.batch_rounds is not None else (1 if quick else 3)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - set(TOOLS)
    if unknown or not args.tools:
        p.error(f"--tools: {', '.join(sorted(unknown)) or 'empty'}: expected some of {', '.join(TOOLS)}")
    for name in ("rounds", "idle", "parallel", "batch_rounds"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be 0 or more")
    return args


# --- the image -------------------------------------------------------------------------

def busybox_image() -> Image:
    """One layer: the static busybox with its applets as symlinks, /etc/passwd and
    /etc/group, and the usual empty mount points."""
    busybox = Path("/bin/busybox").read_bytes()
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()

    def layer(t):
        for d in ("bin", "dev", "etc", "proc", "root", "sys", "tmp"):
            _add(t, d, type=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(t, "bin/busybox", busybox, 0o755)
        for a in applets:
            if a != "busybox":
                _add(t, f"bin/{a}", type=tarfile.SYMTYPE, linkname="busybox", mode=0o777)
        _add(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
        _add(t, "etc/group", b"root:x:0:\nnobody:x:65534:\n")

    return Image("busybox", "busybox-static, one layer", [_tar(layer)]).finish()


# --- processes and memory ---------------------------------------------------------------

def processes() -> dict[int, list[str]]:
    """pid -> argv of every process (kernel threads and vanished ones left out)."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            out[int(entry.name)] = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
    return out


def memory_kb(pid: int) -> dict | None:
    """Private (Private_Clean + Private_Dirty), Pss and Rss in kB from smaps_rollup."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            fields[parts[0][:-1]] = int(parts[1])
    return {
        "private_kb": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
        "pss_kb": fields.get("Pss", 0),
        "rss_kb": fields.get("Rss", 0),
    }


def top_mappings(pid: int, count: int = 6) -> list[dict]:
    """The mappings of `pid` holding the most private memory (kB), to see where it goes."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return []
    maps, current = [], None
    for line in text.splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and not parts[0].endswith(":"):
            current = {"mapping": " ".join(parts[5:]) or "[anonymous]", "perms": parts[1], "private_kb": 0}
            maps.append(current)
        elif current is not None and parts and parts[0] in ("Private_Clean:", "Private_Dirty:"):
            current["private_kb"] += int(parts[1])
    merged: dict[tuple, int] = {}
    for m in maps:
        key = (m["mapping"], m["perms"])
        merged[key] = merged.get(key, 0) + m["private_kb"]
    top = sorted(merged.items(), key=lambda kv: kv[1], reverse=True)[:count]
    return [{"mapping": k[0], "perms": k[1], "private_kb": v} for k, v in top if v]


def base(argv: list[str]) -> str:
    return os.path.basename(argv[0]) if argv else ""


def mentions(argv: list[str], *paths: Path) -> bool:
    return any(str(p) in a for a in argv for p in paths)


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    left = list(pids)
    while left and time.monotonic() < deadline:
        spawn.reap_orphans()
        left = [p for p in left if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if left:
            time.sleep(0.1)
    return left


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# --- the tools -----------------------------------------------------------------------

class Tool:
    """One engine: how to prepare it (daemons, the pull), the commands measured, how to
    remove its containers, and which processes are its supervisors and daemons."""

    name = ""
    supervisor = ""

    def __init__(self, ctx: "Context") -> None:
        self.ctx = ctx
        self.unavailable = ""
        self.started = False  # start() was called: clean up after it
        self._n = 0

    # preparation and teardown (untimed)
    def start(self) -> None: ...
    def stop(self) -> None: ...

    # measured commands
    def run_rm(self) -> list[str]: ...
    def run_d(self) -> tuple[list[str], str | None]:
        """argv of a detached run, and the container id when the harness chooses it."""
    def remove_argvs(self, ids: list[str]) -> list[list[str]]: ...
    def list_argv(self) -> list[str]: ...

    # processes
    def supervisors(self, procs: dict[int, list[str]]) -> list[int]: ...
    def daemons(self, procs: dict[int, list[str]]) -> dict[str, int]:
        return {}

    # helpers
    def next_id(self) -> str:
        self._n += 1
        return f"bb{os.getpid()}-{self._n}"

    def untimed(self, argv: list[str], timeout: float = UNTIMED_TIMEOUT_S) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(argv, capture_output=True, text=True, env=self.ctx.env,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(argv, -1, "", f"timed out after {e.timeout:.0f} s: {' '.join(argv)}")
        except OSError as e:
            return subprocess.CompletedProcess(argv, -1, "", str(e))

    def must(self, argv: list[str], what: str) -> str:
        r = self.untimed(argv)
        if r.returncode != 0:
            raise Unavailable(f"{what} failed: {last_line(r.stderr or r.stdout) or f'exit {r.returncode}'}")
        return r.stdout

    def listed(self) -> list[str]:
        r = self.untimed(self.list_argv(), timeout=60)
        return r.stdout.split() if r.returncode == 0 else []

    def remove_all(self, ids: list[str] = ()) -> list[str]:
        """Removes the given containers and any the tool still lists; returns what is
        still listed afterwards."""
        ids = sorted(set(ids) | set(self.listed()))
        for start in range(0, len(ids), 50):
            for argv in self.remove_argvs(ids[start:start + 50]):
                self.untimed(argv)
        return self.listed()


def last_line(text: str) -> str:
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    return lines[-1] if lines else ""


class Bulwark(Tool):
    name = "bulwark"
    supervisor = "bulwark-mon"

    def start(self) -> None:
        b = self.ctx.bulwark
        if not os.access(b, os.X_OK):
            raise Unavailable(f"{b} is not an executable (build it: cargo build --release)")
        if not os.access(b.parent / "bulwark-mon", os.X_OK):
            raise Unavailable(f"{b.parent / 'bulwark-mon'} is missing (cargo build --release builds it)")
        self.must([str(b), "pull", "-q", self.ctx.ref], "bulwark pull")

    def run_rm(self):
        return [str(self.ctx.bulwark), "run", "--rm", "--network", "none", self.ctx.ref, "true"]

    def run_d(self):
        return [str(self.ctx.bulwark), "run", "-d", "--network", "none", self.ctx.ref, "sleep", "1000"], None

    def remove_argvs(self, ids):
        return [[str(self.ctx.bulwark), "rm", "-f", *ids]]

    def list_argv(self):
        return [str(self.ctx.bulwark), "ps", "-aq", "--no-trunc"]

    def supervisors(self, procs):
        return [pid for pid, argv in procs.items()
                if base(argv) == "bulwark-mon" and mentions(argv, self.ctx.bulwark_store)]

    def others(self, procs) -> list[dict]:
        """Processes of bulwark itself other than the monitors (there should be none
        while containers idle)."""
        out = []
        for pid, argv in procs.items():
            if base(argv) == "bulwark-mon":
                continue
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                exe = ""
            if base(argv).startswith("bulwark") or os.path.basename(exe.split(" (")[0]).startswith("bulwark"):
                out.append({"pid": pid, "argv": argv, "exe": exe})
        return out


class Podman(Tool):
    supervisor = "conmon"

    def __init__(self, ctx, runtime: str) -> None:
        super().__init__(ctx)
        self.runtime = runtime
        self.name = f"podman-{runtime}"

    def argv(self, *args: str) -> list[str]:
        c = self.ctx
        return [c.podman, "--root", str(c.podman_root), "--runroot", str(c.podman_runroot),
                "--tmpdir", str(c.podman_tmp), "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", "--runtime", self.runtime, "--log-level", "error", *args]

    def start(self):
        if not shutil.which(self.runtime):
            raise Unavailable(f"{self.runtime} is not installed")
        self.must(self.argv("pull", "-q", "--tls-verify=false", self.ctx.ref), "podman pull")

    def run_rm(self):
        return self.argv("run", "--rm", "--network", "none", self.ctx.ref, "true")

    def run_d(self):
        return self.argv("run", "-d", "--network", "none", self.ctx.ref, "sleep", "1000"), None

    def remove_argvs(self, ids):
        return [self.argv("rm", "-f", "-t", "0", *ids)]

    def list_argv(self):
        return self.argv("ps", "-aq", "--no-trunc")

    def supervisors(self, procs):
        return [pid for pid, argv in procs.items()
                if base(argv) == "conmon" and mentions(argv, self.ctx.podman_root, self.ctx.podman_runroot)]


class Docker(Tool):
    name = "docker"
    supervisor = "containerd-shim-runc-v2"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.proc: subprocess.Popen | None = None
        self.client = "/usr/local/bin/docker" if os.access("/usr/local/bin/docker", os.X_OK) else shutil.which("docker")
        self.exec_root = ctx.run_base / "docker"
        self.sock = ctx.run_base / "docker.sock"
        self.log = ctx.work / "dockerd.log"

    def argv(self, *args: str) -> list[str]:
        return [self.client, "-H", f"unix://{self.sock}", *args]

    def start(self):
        dockerd = shutil.which("dockerd")
        if not dockerd:
            raise Unavailable("dockerd is not installed (apt-get install docker.io)")
        if not self.client:
            raise Unavailable("no docker client (/usr/local/bin/docker or docker on PATH)")
        data = self.ctx.work / "docker"
        config = self.ctx.work / "daemon.json"
        config.write_text("{}\n")
        helptext = host.command_output([dockerd, "--help"])
        argv = [dockerd, "--data-root", str(data), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.ctx.run_base / "docker.pid"), "-H", f"unix://{self.sock}",
                "--config-file", str(config), "--storage-driver", "overlay2", "--log-level", "error"]
        for flag in ("--bridge=none", "--iptables=false", "--ip6tables=false"):
            if flag.split("=")[0] in helptext:
                argv.append(flag)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, env=self.ctx.env)
        deadline = time.monotonic() + 60
        while self.untimed(self.argv("version"), timeout=10).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Unavailable(f"dockerd did not start: {last_line(self.log.read_text(errors='replace'))}")
            time.sleep(0.2)
        self.must(self.argv("pull", "-q", self.ctx.ref), "docker pull")

    def stop(self):
        if self.proc is None:
            return
        containerd = list(self.daemons(processes()).values())
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        kill_pids(wait_gone(containerd, 15))
        self.proc = None

    def run_rm(self):
        return self.argv("run", "--rm", "--network", "none", self.ctx.ref, "true")

    def run_d(self):
        return self.argv("run", "-d", "--network", "none", self.ctx.ref, "sleep", "1000"), None

    def remove_argvs(self, ids):
        return [self.argv("rm", "-f", *ids)]

    def list_argv(self):
        return self.argv("ps", "-aq", "--no-trunc")

    def supervisors(self, procs):
        return [pid for pid, argv in procs.items()
                if base(argv) == "containerd-shim-runc-v2" and mentions(argv, self.exec_root)]

    def daemons(self, procs):
        out = {}
        if self.proc and self.proc.poll() is None:
            out["dockerd"] = self.proc.pid
        for pid, argv in procs.items():
            if base(argv) == "containerd" and mentions(argv, self.exec_root):
                out["containerd"] = pid
        return out


class Ctr(Tool):
    name = "ctr"
    supervisor = "containerd-shim-runc-v2"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.daemon: Containerd | None = None
        self.base = ctx.work / "ctr"

    def argv(self, *args: str) -> list[str]:
        return [self.ctx.ctr, "--address", str(self.base / "containerd.sock"), "-n", CTR_NAMESPACE, *args]

    def start(self):
        if not shutil.which("containerd"):
            raise Unavailable("containerd is not installed")
        self.base.mkdir(parents=True, exist_ok=True)
        try:
            # The CRI plugin is left out, as in the containerd dockerd starts: ctr does
            # not use it.
            self.daemon = Containerd(self.base, disabled_plugins=("io.containerd.grpc.v1.cri",))
        except SystemExit as e:
            raise Unavailable(str(e))
        self.must(self.argv("images", "pull", "--plain-http", self.ctx.ref), "ctr images pull")

    def stop(self):
        if self.daemon:
            self.daemon.stop()
            self.daemon = None

    def run_rm(self):
        return self.argv("run", "--rm", self.ctx.ref, self.next_id(), "true")

    def run_d(self):
        cid = self.next_id()
        return self.argv("run", "-d", self.ctx.ref, cid, "sleep", "1000"), cid

    def remove_argvs(self, ids):
        return [self.argv("tasks", "rm", "-f", *ids), self.argv("containers", "rm", *ids)]

    def list_argv(self):
        return self.argv("containers", "ls", "-q")

    def supervisors(self, procs):
        sock = str(self.base / "containerd.sock")
        return [pid for pid, argv in procs.items()
                if base(argv) == "containerd-shim-runc-v2" and sock in argv]

    def daemons(self, procs):
        if self.daemon and self.daemon.proc.poll() is None:
            return {"containerd": self.daemon.proc.pid}
        return {}


class Context:
    """Paths and settings every tool shares."""

    def __init__(self, args, work: Path, run_base: Path) -> None:
        self.work = work
        self.run_base = run_base
        self.bulwark = args.bulwark.resolve()
        self.bulwark_store = work / "bulwark"
        self.podman = shutil.which("podman") or "podman"
        self.ctr = shutil.which("ctr") or "ctr"
        self.podman_root = work / "podman"
        self.podman_runroot = run_base / "podman"  # podman refuses a run root over 50 characters
        self.podman_tmp = run_base / "libpod"
        self.ref = ""
        engine_config = work / "bulwark-engine.json"
        # The engine's own configuration: the host's /etc/bulwark/engine.json does not
        # apply, and its containers' runtime state stays in the harness's directory.
        engine_config.write_text(json.dumps({"runtime-root": str(run_base / "bulwark")}) + "\n")
        # The docker client's own configuration directory (podman reads its auth file too).
        docker_config = work / "docker-client"
        docker_config.mkdir()
        (docker_config / "config.json").write_text("{}\n")
        self.env = dict(spawn.ENV, BULWARK_STORE=str(self.bulwark_store), BULWARK_CONFIG=str(engine_config),
                        DOCKER_CONFIG=str(docker_config))
        self.notes: list[str] = []
        if not has_capability(CAP_SYS_RESOURCE):
            # podman gives a root container RLIMIT_NOFILE 1048576 and RLIMIT_NPROC 4194304,
            # above the hard limits here; raising a hard limit takes CAP_SYS_RESOURCE, which
            # this host withholds, so every podman container would fail. Its configuration
            # of its own keeps the host's hard limits instead (what docker's containers get).
            # podman lowers its own RLIMIT_NPROC to kernel.pid_max when that is lower (seen
            # with podman 4.3), and its runtime inherits that, so nproc is capped there too.
            limits = {name: resource.getrlimit(r)[1] for name, r in
                      (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC))}
            try:
                pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
                limits["nproc"] = min(limits["nproc"], pid_max) if limits["nproc"] >= 0 else pid_max
            except (OSError, ValueError):
                pass
            shipped = Path("/usr/share/containers/containers.conf")
            text = shipped.read_text() if shipped.is_file() else "[containers]\n"
            ulimits = ", ".join(f'"{k}={v}:{v}"' for k, v in limits.items())
            if "[containers]" not in text:
                text = "[containers]\n" + text
            text = text.replace("[containers]", f"[containers]\ndefault_ulimits = [{ulimits}]", 1)
            conf = work / "containers.conf"
            conf.write_text(text)
            self.env["CONTAINERS_CONF"] = str(conf)
            self.notes.append(
                "the harness has no CAP_SYS_RESOURCE, so podman's default RLIMIT_NOFILE (1048576) and RLIMIT_NPROC "
                "(4194304) for root's containers cannot be set; podman ran with a containers.conf of the "
                "harness's own (Debian's, plus default_ulimits = the host's hard limits, nproc capped at "
                "kernel.pid_max as podman caps its own: " + ", ".join(f"{k} {v}" for k, v in limits.items()) + ").")


def make_tool(name: str, ctx: Context) -> Tool:
    if name == "bulwark":
        return Bulwark(ctx)
    if name.startswith("podman-"):
        return Podman(ctx, name.split("-", 1)[1])
    if name == "docker":
        return Docker(ctx)
    return Ctr(ctx)


class EnvSpawner(spawn.Spawner):
    """benchkit's spawner with the benchmark's environment (the stores' variables)."""

    def __init__(self, binary: str, env: dict) -> None:
        self._proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                      start_new_session=True)


# --- the measurements ---------------------------------------------------------------

class Bench:
    def __init__(self, args, ctx: Context, tools: list[Tool], spawner: EnvSpawner, rng: random.Random) -> None:
        self.args = args
        self.ctx = ctx
        self.tools = tools
        self.spawner = spawner
        self.rng = rng
        self.results = Results()
        self.memory: dict[str, dict] = {}
        self.logs = ctx.work / "logs"
        self.logs.mkdir(exist_ok=True)
        self._log_n = 0

    def log(self) -> str:
        self._log_n += 1
        return str(self.logs / f"{self._log_n}.log")

    def able(self) -> list[Tool]:
        return [t for t in self.tools if not t.unavailable]

    def shuffled(self) -> list[Tool]:
        tools = self.able()
        self.rng.shuffle(tools)
        return tools

    def probe(self) -> None:
        """One untimed `run --rm IMAGE true` each (warms the caches); a tool that fails
        it is unavailable, with what it printed."""
        for tool in self.able():
            out = self.spawner.timed(tool.run_rm(), self.log(), self.args.timeout)
            if not out.ok:
                tool.unavailable = f"`run --rm IMAGE true` failed: {out.first_line()}"
                host.say(f"{tool.name}: unavailable: {tool.unavailable}")
            spawn.reap_orphans()
            tool.remove_all()

    def run_rm_round(self) -> None:
        for tool in self.shuffled():
            out = self.spawner.timed(tool.run_rm(), self.log(), self.args.timeout)
            series = self.results.get("run --rm", tool.name)
            if out.ok:
                series.add(out.ms, out.maxrss_kib)
            else:
                series.fail(out.first_line())
                tool.remove_all()
            spawn.reap_orphans()

    def start_detached(self, tool: Tool, count: int) -> tuple[float, list[str], list[spawn.Outcome]]:
        """`count` detached runs started at once; the total time and the ids."""
        argvs, chosen = [], []
        for _ in range(count):
            argv, cid = tool.run_d()
            argvs.append(argv)
            chosen.append(cid)
        logs = [self.log() for _ in argvs]
        total, outs = self.spawner.timed_together(argvs, logs, self.args.timeout)
        ids = []
        for cid, out in zip(chosen, outs):
            if cid is not None:
                ids.append(cid)
                continue
            try:
                lines = Path(out.output_path).read_text(errors="replace").split()
            except OSError:
                lines = []
            ids += [l for l in lines if HEX64.match(l)][-1:]
        return total, ids, outs

    def remove_timed(self, tool: Tool, ids: list[str], measurement: str) -> None:
        total, ok = 0.0, True
        for argv in tool.remove_argvs(ids):
            out = self.spawner.timed(argv, self.log(), max(self.args.timeout, UNTIMED_TIMEOUT_S))
            total += out.ms
            if not out.ok:
                self.results.get(measurement, tool.name).fail(out.first_line())
                ok = False
        if ok:
            self.results.get(measurement, tool.name).add(total)
        left = tool.remove_all()
        if left:
            host.say(f"{tool.name}: {len(left)} containers still listed after removal")
        spawn.reap_orphans()

    def at_once_round(self) -> None:
        n = self.args.parallel
        for tool in self.shuffled():
            total, ids, outs = self.start_detached(tool, n)
            series = self.results.get("run -d at once", tool.name)
            failed = [o for o in outs if not o.ok]
            if failed:
                series.fail(f"{len(failed)} of {n} failed, first: {failed[0].first_line()}")
            else:
                series.add(total)
            spawn.reap_orphans()
            self.remove_timed(tool, ids, "rm -f at once")

    def idle_memory(self, tool: Tool) -> None:
        n = self.args.idle
        procs = processes()
        before = {name: memory_kb(pid) for name, pid in tool.daemons(procs).items()}
        ids, failures, first = [], 0, ""
        t0 = time.monotonic()
        for start in range(0, n, IDLE_BATCH):
            _, batch_ids, outs = self.start_detached(tool, min(IDLE_BATCH, n - start))
            ids += batch_ids
            bad = [o for o in outs if not o.ok]
            failures += len(bad)
            first = first or (bad[0].first_line() if bad else "")
        started_s = time.monotonic() - t0
        spawn.reap_orphans()
        time.sleep(SETTLE_S)
        procs = processes()
        sup = {pid: memory_kb(pid) for pid in tool.supervisors(procs)}
        sup = {pid: m for pid, m in sup.items() if m}
        daemons = {name: memory_kb(pid) for name, pid in tool.daemons(procs).items()}
        running = n - failures
        entry = {
            "requested": n,
            "started": running,
            "failures": failures,
            "first_failure": first or None,
            "start_seconds": round(started_s, 2),
            "supervisor": tool.supervisor,
            "supervisor_processes": len(sup),
            "supervisor_private_kb_total": sum(m["private_kb"] for m in sup.values()),
            "supervisor_pss_kb_total": sum(m["pss_kb"] for m in sup.values()),
            "supervisor_rss_kb_total": sum(m["rss_kb"] for m in sup.values()),
            "daemons": {name: {"with_containers": daemons.get(name), "before": before.get(name)}
                        for name in sorted(set(daemons) | set(before))},
        }
        if running > 0:
            entry["supervisor_private_kb_per_container"] = round(entry["supervisor_private_kb_total"] / running, 1)
            entry["supervisor_pss_kb_per_container"] = round(entry["supervisor_pss_kb_total"] / running, 1)
        entry["daemon_private_kb_total"] = sum((d or {}).get("private_kb", 0) for d in daemons.values()) if daemons else None
        entry["daemon_private_kb_total_before"] = sum((d or {}).get("private_kb", 0) for d in before.values()) if before else None
        if sup:
            sample = min(sup)
            entry["sample_supervisor"] = {"pid": sample, "argv": procs.get(sample, []),
                                          "top_private_mappings": top_mappings(sample)}
        if isinstance(tool, Bulwark):
            entry["other_bulwark_processes"] = tool.others(procs)
        self.memory[tool.name] = entry
        host.say(f"{tool.name}: {running} idle containers, {len(sup)} {tool.supervisor} processes, "
                 f"{entry['supervisor_private_kb_total']} kB private")
        self.remove_timed(tool, ids, "rm -f idle")


def measure(bench: Bench) -> None:
    args = bench.args
    host.say("probing each tool with one untimed run --rm")
    bench.probe()
    for i in range(args.rounds):
        t = time.monotonic()
        bench.run_rm_round()
        host.say(f"run --rm round {i + 1}/{args.rounds} ({time.monotonic() - t:.1f} s)")
    for i in range(args.batch_rounds):
        t = time.monotonic()
        bench.at_once_round()
        host.say(f"{args.parallel} at once, round {i + 1}/{args.batch_rounds} ({time.monotonic() - t:.1f} s)")
    if args.idle > 0:
        for tool in bench.able():
            bench.idle_memory(tool)


# --- set-up and clean-up -------------------------------------------------------------

def ensure_tools(names: list[str]) -> None:
    wanted = {"docker-registry": "docker-registry", "busybox": "busybox-static", "cc": "gcc"}
    if any(n.startswith("podman") for n in names):
        wanted |= {"podman": "podman", "conmon": "conmon"}
    if "podman-crun" in names:
        wanted["crun"] = "crun"
    if "podman-runc" in names:
        wanted["runc"] = "runc"
    if "docker" in names:
        wanted |= {"dockerd": "docker.io", "containerd": "containerd", "runc": "runc"}
    if "ctr" in names:
        wanted |= {"ctr": "containerd", "containerd": "containerd", "runc": "runc"}
    try:
        host.ensure_packages(wanted)
    except SystemExit as e:  # the tools that miss something are reported as unavailable
        host.say(str(e))


def unmount_under(prefixes: list[Path]) -> list[str]:
    """Detaches every mount at or below the prefixes, deepest first; returns failures."""
    libc = ctypes.CDLL(None, use_errno=True)
    failed = []
    for _ in range(3):
        points = []
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                point = line.split()[4].encode().decode("unicode_escape")
                if any(point == str(p) or point.startswith(str(p) + "/") for p in prefixes):
                    points.append(point)
        if not points:
            return []
        failed = []
        for point in sorted(set(points), key=len, reverse=True):
            if libc.umount2(point.encode(), 2) != 0:  # MNT_DETACH
                failed.append(f"{point}: {os.strerror(ctypes.get_errno())}")
    return failed


def peer_cgroups() -> set[Path]:
    """Every cgroup directory at or below CGROUP_NAMES, in every hierarchy."""
    out = set()
    root = Path("/sys/fs/cgroup")
    for hierarchy in [root, *(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []:
        for name in CGROUP_NAMES:
            top = hierarchy / name
            if top.is_dir():
                out.add(top)
                out.update(d for d in top.glob("**/") if d.is_dir())
    return out


def remove_empty_tree(top: Path) -> None:
    for d in sorted(top.glob("**/"), key=lambda p: len(p.parts), reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


def clean_up(tools: list[Tool], ctx: Context | None, spawner, registry, work: Path, run_base: Path,
             host_dirs_before: set[str], cgroups_before: set[Path]) -> list[str]:
    """Everything the harness started or made goes, whatever happened. Returns what
    could not be removed."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not skip this
        signal.signal(sig, signal.SIG_IGN)
    problems = []
    if spawner:  # commands in flight finish (or time out) first, so none adds a container later
        spawner.close()
    for tool in tools:
        if getattr(tool, "started", False):
            try:
                left = tool.remove_all()
            except Exception as e:  # go on with the others
                left = [f"({e})"]
            if left:
                problems.append(f"{tool.name}: {len(left)} containers still listed after removal, "
                                f"first {left[0]}")
    for tool in tools:
        try:
            tool.stop()
        except Exception as e:
            problems.append(f"{tool.name}: stopping its daemon: {e}")
    if registry:
        registry.stop()
    # Whatever still runs from the harness's directories: supervisors, shims, container
    # processes (their root is in a store here).
    leftovers = []
    me = os.getpid()
    for pid, argv in processes().items():
        if pid == me:
            continue
        try:
            root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            root = "/"
        if mentions(argv, work, run_base) or root.startswith((str(work), str(run_base))):
            leftovers.append(pid)
    if leftovers:
        problems.append(f"killed {len(leftovers)} leftover processes: "
                        + ", ".join(f"{p} ({' '.join(processes().get(p, ['?'])[:3])})" for p in leftovers))
        kill_pids(leftovers)
        wait_gone(leftovers, 10)
    spawn.reap_orphans()
    problems += [f"cannot unmount {f}" for f in unmount_under([work, run_base])]
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(run_base, ignore_errors=True)
    for d in (work, run_base):
        if d.exists():
            problems.append(f"could not remove {d}")
    for d in HOST_DIRS:
        if d not in host_dirs_before and os.path.isdir(d):
            remove_empty_tree(Path(d))
    for cg in sorted(peer_cgroups() - cgroups_before, key=lambda p: len(p.parts), reverse=True):
        try:
            os.rmdir(cg)  # fails, as it should, on a cgroup still in use
        except OSError:
            pass
    return problems


# --- reports -----------------------------------------------------------------------

def versions(ctx: Context, names: list[str]) -> dict[str, str]:
    commands = {"bulwark": [str(ctx.bulwark), "--version"]}
    if any(n.startswith("podman") for n in names):
        commands |= {"podman": ["podman", "--version"], "conmon": ["conmon", "--version"]}
    if "podman-crun" in names:
        commands["crun"] = ["crun", "--version"]
    if "podman-runc" in names or "docker" in names or "ctr" in names:
        commands["runc"] = ["runc", "--version"]
    if "docker" in names:
        commands |= {"dockerd": ["dockerd", "--version"], "docker (client)": [
            "/usr/local/bin/docker" if os.access("/usr/local/bin/docker", os.X_OK) else "docker", "--version"]}
    if "docker" in names or "ctr" in names:
        commands["containerd"] = ["containerd", "--version"]
    out = {k: host.first_line(host.command_output(v)) for k, v in commands.items()}
    out["bulwark"] += f", git {host.git_revision(REPO)}"
    return out


def ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def markdown(meta: dict, results: Results, memory: dict, tools: list[str], unavailable: dict) -> str:
    s = meta["settings"]
    m = meta["machine"]
    lines = [
        f"# Containers from images ({meta['date']})",
        "",
        f"{m['kernel']}, {m['cpus']} CPUs ({m['cpu_model']}), load average {m['loadavg_at_start'][0]:.2f} at start, "
        f"{m['loadavg_at_end'][0]:.2f} at end. Seed {meta['seed']}; measuring took {meta['duration_s']:.0f} s.",
        "",
        f"The image: {meta['image']['label']} ({meta['image']['compressed'] / 1024:.0f} KiB compressed), "
        "pulled from a docker-registry on 127.0.0.1 into every store before measuring. "
        f"`run --rm IMAGE true`: {s['rounds']} rounds, the tools in a new random order every round. "
        f"At once: {s['parallel']} `run -d IMAGE sleep 1000` started together, until every command returned "
        f"({s['batch_rounds']} round(s), median). Memory: {s['idle']} idle `sleep 1000` containers per tool; "
        "private = Private_Clean + Private_Dirty of /proc/PID/smaps_rollup.",
    ]
    for note in meta["notes"]:
        lines += ["", f"Note: {note}"]
    bulwark_run = next((summary(x.samples_ms) for x in results.all()
                        if x.measurement == "run --rm" and x.subject == "bulwark" and x.samples_ms), None)
    lines += ["", "| tool | run --rm median (ms) | p90 (ms) | median ÷ bulwark | "
              f"{s['parallel']} at once (ms) | supervisor private kB / container | daemon private MB |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name in tools:
        if name in unavailable:
            lines.append(f"| {name} | unavailable: {unavailable[name].replace('|', '/')} | | | | | |")
            continue
        run = results.get("run --rm", name)
        st = summary(run.samples_ms)
        at_once = summary(results.get("run -d at once", name).samples_ms)
        mem = memory.get(name, {})
        ratio = f"{st['median'] / bulwark_run['median']:.2f}" if st and bulwark_run else "-"
        per = mem.get("supervisor_private_kb_per_container")
        daemon = mem.get("daemon_private_kb_total")
        daemon_text = "none" if mem and daemon is None else (f"{daemon / 1024:.1f}" if daemon is not None else "-")
        run_text = ms(st["median"]) if st else ("failed" if run.failures else "-")
        lines.append(f"| {name} | {run_text} | {ms(st['p90']) if st else '-'} | {ratio} | "
                     f"{ms(at_once['median']) if at_once else '-'} | {f'{per:.0f}' if per is not None else '-'} "
                     f"| {daemon_text} |")
    lines += ["", "## Idle containers: memory", "",
              "| tool | supervisor | processes / containers | private kB total | private kB / container "
              "| Pss kB / container | daemons: private MB before → with containers |",
              "|---|---|---:|---:|---:|---:|---|"]
    for name in tools:
        mem = memory.get(name)
        if not mem:
            continue
        daemons = ", ".join(
            f"{d}: {(v['before'] or {}).get('private_kb', 0) / 1024:.1f} → {(v['with_containers'] or {}).get('private_kb', 0) / 1024:.1f}"
            for d, v in mem["daemons"].items()) or "none"
        per = mem.get("supervisor_private_kb_per_container")
        pss = mem.get("supervisor_pss_kb_per_container")
        lines.append(f"| {name} | {mem['supervisor']} | {mem['supervisor_processes']} / {mem['started']} | "
                     f"{mem['supervisor_private_kb_total']} | {f'{per:.0f}' if per is not None else '-'} | "
                     f"{f'{pss:.0f}' if pss is not None else '-'} | {daemons} |")
    if "bulwark" in memory:
        others = memory["bulwark"].get("other_bulwark_processes") or []
        lines += ["", "Bulwark processes other than the monitors while idle: "
                  + ("none." if not others else "; ".join(f"{o['pid']}: `{' '.join(o['argv'])}`" for o in others))]
    samples = [(n, memory[n]["sample_supervisor"]) for n in tools if memory.get(n, {}).get("sample_supervisor")]
    if samples:
        lines += ["", "Where one supervisor's private memory goes (its largest mappings, kB):", ""]
        for name, sample in samples:
            maps = ", ".join(f"{m['mapping'].rsplit('/', 1)[-1] or m['mapping']} {m['perms']} {m['private_kb']}"
                             for m in sample["top_private_mappings"])
            lines.append(f"- {name} ({memory[name]['supervisor']}): {maps or '-'}")
    lines += ["", "## Other figures (ms)", "", "| tool | measurement | median | min | p90 | max | n |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for x in results.all():
        st = summary(x.samples_ms)
        if st:
            lines.append(f"| {x.subject} | {x.measurement} | {ms(st['median'])} | {ms(st['min'])} | {ms(st['p90'])} "
                         f"| {ms(st['max'])} | {st['n']} |")
    failures = [x for x in results.all() if x.failures]
    memfail = [(n, v) for n, v in memory.items() if v.get("failures")]
    if failures or memfail or unavailable:
        lines += ["", "## Failures and unavailable tools", ""]
        lines += [f"- {n}: unavailable: {why}" for n, why in unavailable.items()]
        lines += [f"- {x.subject}, {x.measurement}: {x.failures} failed, first: `{x.first_failure}`" for x in failures]
        lines += [f"- {n}, idle containers: {v['failures']} of {v['requested']} failed, first: `{v['first_failure']}`"
                  for n, v in memfail]
    lines += ["", "Versions: " + "; ".join(f"{k}: {v}" for k, v in meta["versions"].items()) + ".", ""]
    return "\n".join(lines)


def raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    args = parse_args()
    host.require_root()
    began = time.monotonic()
    machine = host.machine_facts()
    ensure_tools(args.tools)
    notes = []
    spawn.become_subreaper()
    if "podman-crun" in args.tools and not args.host_cgroups_as_is and host.hybrid_cgroups_with_v2_controllers():
        host.hide_unified_hierarchy()
        notes.append(f"hybrid cgroup host with a controller on the cgroup2 side, which crun refuses; the harness "
                     f"detached {host.UNIFIED} in its own mount namespace, so every tool (and the daemons it "
                     f"started) saw plain cgroup v1.")
        host.say(notes[-1])
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    host_dirs_before = {d for d in HOST_DIRS if os.path.isdir(d)}
    cgroups_before = peer_cgroups()
    work = Path(tempfile.mkdtemp(prefix="bulwark-engine-bench-"))
    run_base = Path("/run") / f"bbe-{hashlib.sha256(str(work).encode()).hexdigest()[:12]}"
    run_base.mkdir(mode=0o700)
    ctx = Context(args, work, run_base)
    if any(n.startswith("podman") for n in args.tools):
        notes += ctx.notes
    tools = [make_tool(n, ctx) for n in args.tools]
    spawner = registry = bench = None
    image = None
    stopped_early = ""
    measured_from = time.monotonic()
    try:
        spawner = EnvSpawner(spawn.build_spawner(work), ctx.env)
        image = busybox_image()
        registry = Registry(work)
        ctx.ref = registry.push("bench/busybox", image)
        host.say(f"work directory {work}; image {ctx.ref}; seed {seed}")
        for tool in tools:
            host.say(f"{tool.name}: preparing (daemon, pull)")
            tool.started = True
            try:
                tool.start()
            except Unavailable as e:
                tool.unavailable = str(e)
                host.say(f"{tool.name}: unavailable: {tool.unavailable}")
        bench = Bench(args, ctx, tools, spawner, random.Random(seed))
        measured_from = time.monotonic()
        measure(bench)
    except KeyboardInterrupt:
        stopped_early = "the run was interrupted"
        host.say("interrupted: cleaning up, then reporting what was measured")
    except Exception:
        traceback.print_exc()
        stopped_early = "the harness failed (see its output)"
    finally:
        host.say("cleaning up")
        problems = clean_up(tools, ctx, spawner, registry, work, run_base, host_dirs_before, cgroups_before)
        for p in problems:
            host.say(f"clean-up: {p}")
    time.sleep(0.5)
    spawn.reap_orphans()  # supervisors that ended during the clean-up
    if bench is None:
        return 1
    if stopped_early:
        notes.append(f"{stopped_early}; the figures cover only what was measured before that.")
    notes += [f"clean-up: {p}" for p in problems]
    unavailable = {t.name: t.unavailable for t in tools if t.unavailable}
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine | {"loadavg_at_end": list(os.getloadavg())},
        "revision": host.git_revision(REPO),
        "versions": versions(ctx, args.tools),
        "settings": {"rounds": args.rounds, "batch_rounds": args.batch_rounds, "parallel": args.parallel,
                     "idle": args.idle, "tools": args.tools, "timeout_s": args.timeout, "settle_s": SETTLE_S},
        "image": {"label": image.label, "layers": len(image.tars), "compressed": image.size()[0],
                  "uncompressed": image.size()[1]} if image else None,
        "seed": seed,
        "duration_s": round(time.monotonic() - measured_from, 1),
        "total_duration_s": round(time.monotonic() - began, 1),
        "stopped_early": stopped_early or None,
        "unavailable": unavailable,
        "notes": notes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "results": [x.to_json() for x in bench.results.all()], "memory": bench.memory}
    (args.out / "engine.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "engine.md").write_text(markdown(meta, bench.results, bench.memory, args.tools, unavailable))
    print((args.out / "engine.md").read_text())
    return 1 if stopped_early else 0


if __name__ == "__main__":
    sys.exit(main())

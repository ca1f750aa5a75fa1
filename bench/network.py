#!/usr/bin/env python3
"""Benchmark container networking: bulwark (bridge, nftables DNAT, no proxy) next to
Podman (netavark) and Docker (a dockerd of the harness's own, with its docker-proxy),
all on one host in one run, with the same image (busybox and Debian's iperf3):

1. TCP throughput (iperf3, 5 s): host loopback (the reference); from the host through
   a published port on 127.0.0.1; container to container on one network; container to
   the host (the bridge's gateway address);
2. connection latency through a published port: connect, request, read the answer of a
   busybox httpd, from the host on 127.0.0.1 (median of many);
3. what networking adds to `run --rm IMAGE true`: the default network against
   `--network none`, interleaved, medians.

    sudo python3 bench/network.py [--rounds N] [--quick]

Writes bench/results/network.{json,md}. It reports; it never fails on a number. A tool
that cannot run here is reported as unavailable, with the reason. See bench/README.md
("Networking").
"""
from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TAG = "bench/iperf:1"
IPERF_PORT = 5201


def sh(argv, check=True, timeout=180, env=None, capture=True):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=capture, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {(p.stderr or '').strip()[-300:]} (from: {' '.join(map(str, argv))[-160:]})")
    return (p.stdout or "").strip()


def build_image(work: Path) -> Path:
    """busybox-static and iperf3 with the libraries it links, as a docker-archive."""
    root = work / "rootfs"
    for d in ("bin", "usr/bin", "proc", "sys", "dev", "tmp", "etc", "root"):
        (root / d).mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    shutil.copy(busybox, root / "bin/busybox")
    for applet in sh([busybox, "--list"]).split():
        if applet != "busybox" and not (root / "bin" / applet).exists():
            os.symlink("busybox", root / "bin" / applet)
    iperf = shutil.which("iperf3")
    shutil.copy(iperf, root / "usr/bin/iperf3")
    for line in sh(["ldd", iperf]).splitlines():
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if lib.startswith("/"):
            dest = root / lib.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(lib), dest)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nnobody:x:65534:\n")
    out = work / "iperf.tar"
    sh([sys.executable, str(REPO / "scripts/demo-image.py"), str(root), str(out), TAG])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iperf_gbits(argv_client, timeout=90) -> float:
    out = sh(argv_client + ["-J"], timeout=timeout)
    data = json.loads(out[out.index("{"):])
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def wait_tcp(port: int, deadline_s=60.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


def request_ms(port: int) -> float:
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
        while s.recv(4096):
            pass
    return (time.perf_counter() - start) * 1000


class Engine:
    """One engine's command line; `argv(...)` prefixes its own flags."""

    name = ""

    def argv(self, *args):
        raise NotImplementedError

    def start(self, image_tar: Path): ...

    def stop(self): ...

    def run_d(self, *args) -> str:
        return sh(self.argv("run", "-d", *args), env=self.env).splitlines()[-1]

    env = None

    def network_field(self, cid: str, key: str) -> str:
        text = sh(self.argv("inspect", "-f", "{{json .NetworkSettings.Networks}}", cid), env=self.env)
        return next(iter(json.loads(text).values()))[key]

    def ip_of(self, cid: str) -> str:
        return self.network_field(cid, "IPAddress")

    def gateway_of(self, cid: str) -> str:
        return self.network_field(cid, "Gateway")

    def rm(self, *ids):
        if ids:
            sh(self.argv("rm", "-f", *ids), check=False, env=self.env)


class Bulwark(Engine):
    name = "bulwark"

    def __init__(self, work: Path, binary: Path):
        self.binary = binary
        self.env = dict(os.environ, BULWARK_STORE=str(work / "bulwark-store"),
                        BULWARK_MONITOR=str(binary.parent / "bulwark-mon"), BULWARK_DNS=str(binary.parent / "bulwark-dns"))

    def argv(self, *args):
        return [str(self.binary), *args]

    def start(self, image_tar):
        sh(self.argv("load", "-i", str(image_tar)), env=self.env)

    def run_d(self, *args):
        return sh(self.argv("run", "-d", *args), env=self.env).splitlines()[-1]

    def rm(self, *ids):
        if ids:
            sh(self.argv("rm", "-f", *ids), check=False, env=self.env)

    def stop(self):
        ids = sh(self.argv("ps", "-aq", "--no-trunc"), check=False, env=self.env).split()
        self.rm(*ids)
        sh(self.argv("network", "prune", "-f"), check=False, env=self.env)
        # The store's default bridge and nftables table are named after its path
        # (FNV-1a, as the engine names them) and outlive it otherwise.
        h = 0x811C9DC5
        for byte in self.env["BULWARK_STORE"].encode():
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
        sh(["ip", "link", "del", f"bw-d{h:08x}"], check=False)
        sh(["nft", "delete", "table", "ip", f"bulwark-{h:08x}"], check=False)

    def run_rm(self, network):
        return self.argv("run", "--rm", "--network", network, TAG, "true")


class Podman(Engine):
    name = "podman"

    def __init__(self, work: Path):
        self.root, self.runroot = work / "podman-root", work / "podman-run"
        # Podman gives root's containers RLIMIT_NOFILE 1048576, above this host's hard
        # limit (raising it takes CAP_SYS_RESOURCE, withheld here): the host's hard limits
        # instead, as bench/engine.py does.
        import resource
        limits = {"nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[1], "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[1]}
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        limits["nproc"] = min(limits["nproc"], pid_max) if limits["nproc"] >= 0 else pid_max
        shipped = Path("/usr/share/containers/containers.conf")
        text = shipped.read_text() if shipped.is_file() else "[containers]\n"
        if "[containers]" not in text:
            text = "[containers]\n" + text
        ulimits = ", ".join(f'"{k}={v}:{v}"' for k, v in limits.items())
        text = text.replace("[containers]", f"[containers]\ndefault_ulimits = [{ulimits}]", 1)
        (work / "containers.conf").write_text(text)
        self.env = dict(os.environ, CONTAINERS_CONF=str(work / "containers.conf"))

    def argv(self, *args):
        # runc: crun 1.8 refuses this host's hybrid cgroup layout.
        return ["podman", "--root", str(self.root), "--runroot", str(self.runroot), "--runtime", "runc", "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", "--log-level", "error", *args]

    def start(self, image_tar):
        if not shutil.which("podman"):
            raise RuntimeError("podman is not installed")
        sh(self.argv("load", "-i", str(image_tar)), env=self.env)

    def stop(self):
        sh(self.argv("rm", "-af", "-t", "0"), check=False, env=self.env)

    def run_rm(self, network):
        return self.argv("run", "--rm", "--network", network, f"localhost/{TAG}", "true")

    def run_d(self, *args):
        args = [f"localhost/{TAG}" if a == TAG else a for a in args]
        return sh(self.argv("run", "-d", *args), env=self.env).splitlines()[-1]


class Docker(Engine):
    name = "docker"

    def __init__(self, work: Path):
        self.work = work
        self.sock = Path(tempfile.mkdtemp(prefix="bwnet-")) / "docker.sock"
        self.proc = None
        self.client = "/usr/local/bin/docker" if os.access("/usr/local/bin/docker", os.X_OK) else shutil.which("docker")

    def argv(self, *args):
        return [self.client, "-H", f"unix://{self.sock}", *args]

    def start(self, image_tar):
        dockerd = shutil.which("dockerd")
        if not dockerd or not self.client:
            raise RuntimeError("dockerd or the docker client is not installed")
        # Its own bridge subnet, apart from bulwark's and Podman's; its proxy stays on
        # (Docker's default), iptables too.
        argv = [dockerd, "--data-root", str(self.work / "docker"), "--exec-root", str(self.work / "docker-exec"),
                "--pidfile", str(self.work / "docker.pid"), "-H", f"unix://{self.sock}", "--bip", "10.99.0.1/24",
                "--storage-driver", "overlay2", "--log-level", "error"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(self.work / "dockerd.log", "w"),
                                     stderr=subprocess.STDOUT)
        end = time.monotonic() + 90
        while sh(self.argv("version"), check=False, timeout=15) == "" or subprocess.run(self.argv("info"), capture_output=True).returncode:
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("dockerd did not start: " + (self.work / "dockerd.log").read_text()[-300:])
            time.sleep(0.3)
        sh(self.argv("load", "-i", str(image_tar)), env=self.env)

    def stop(self):
        if self.proc:
            sh(self.argv("rm", "-f", *sh(self.argv("ps", "-aq"), check=False).split()), check=False)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        sh(["ip", "link", "del", "docker0"], check=False)

    def run_rm(self, network):
        return self.argv("run", "--rm", "--network", network, TAG, "true")


ROOTLESS_USER = "bulwark-rootless"  # the tests' user (tests/src/rootless.rs makes it)


class Rootless(Engine):
    """An engine run by an ordinary user: bulwark (pasta) or Podman (its default,
    slirp4netns with rootlessport, on 4.3); only published-port figures."""

    def __init__(self, work: Path, kind: str, bulwark: Path):
        import pwd
        self.kind, self.name = kind, f"{kind}-rootless"
        user = pwd.getpwnam(ROOTLESS_USER)
        self.uid, self.gid = user.pw_uid, user.pw_gid
        self.home = work / f"home-{kind}"
        self.home.mkdir(parents=True)
        (self.home / "run").mkdir(mode=0o700)
        bindir = self.home / "bin"
        bindir.mkdir()
        for name in ("bulwark", "bulwark-mon", "bulwark-dns"):
            shutil.copy(bulwark.parent / name, bindir / name)
        # Podman refuses a run root longer than 50 characters.
        self.runroot = Path(tempfile.mkdtemp(prefix="bwp-", dir="/tmp"))
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(self.home), str(self.runroot)], check=True)
        os.chmod(work, 0o755)
        self.env = None

    def argv(self, *args):
        env = ["env", f"HOME={self.home}", f"XDG_RUNTIME_DIR={self.home}/run", f"USER={ROOTLESS_USER}",
               f"BULWARK_MONITOR={self.home}/bin/bulwark-mon"]
        base = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--", *env]
        if self.kind == "bulwark":
            return [*base, str(self.home / "bin/bulwark"), *args]
        return [*base, "podman", "--root", str(self.home / "root"), "--runroot", str(self.runroot),
                "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args]

    def start(self, image_tar):
        if not shutil.which("setpriv"):
            raise RuntimeError("setpriv is missing")
        copy = self.home / "image.tar"
        shutil.copy(image_tar, copy)
        os.chown(copy, self.uid, self.gid)
        sh(self.argv("load", "-i", str(copy)))

    def run_d(self, *args):
        args = [f"localhost/{TAG}" if a == TAG and self.kind == "podman" else a for a in args]
        return sh(self.argv("run", "-d", *args)).splitlines()[-1]

    def stop(self):
        ids = sh(self.argv("ps", "-aq"), check=False).split()
        if ids:
            sh(self.argv("rm", "-f", *ids), check=False)
        if self.kind == "podman":
            sh(self.argv("system", "reset", "-f"), check=False)
        shutil.rmtree(self.runroot, ignore_errors=True)


def measure_rootless(engine: Rootless, seconds: int, requests: int, results: dict):
    own = results.setdefault(engine.name, {})
    hostport, web_port = free_port(), free_port()
    server = engine.run_d("-p", f"{hostport}:{IPERF_PORT}", TAG, "iperf3", "-s")
    web = engine.run_d("-p", f"{web_port}:80", TAG, "httpd", "-f", "-p", "80", "-h", "/etc")
    try:
        wait_tcp(hostport)
        own["published_gbits"] = iperf_gbits(["iperf3", "-c", "127.0.0.1", "-p", str(hostport), "-t", str(seconds)])
        wait_tcp(web_port)
        samples = [request_ms(web_port) for _ in range(requests)]
        own["request_ms"] = {"median": statistics.median(samples), "n": len(samples)}
    finally:
        engine.rm(server, web)


def measure_engine(engine: Engine, seconds: int, requests: int, results: dict):
    net = engine.name
    own = results.setdefault(net, {})
    hostport = free_port()
    server = engine.run_d("-p", f"{hostport}:{IPERF_PORT}", TAG, "iperf3", "-s")
    web_port = free_port()
    web = engine.run_d("-p", f"{web_port}:80", TAG, "httpd", "-f", "-p", "80", "-h", "/etc")
    try:
        wait_tcp(hostport)
        own["published_gbits"] = iperf_gbits(["iperf3", "-c", "127.0.0.1", "-p", str(hostport), "-t", str(seconds)])
        ip = engine.ip_of(server)
        client = engine.run_d(TAG, "iperf3", "-c", ip, "-t", str(seconds), "-J")
        own["container_to_container_gbits"] = container_iperf(engine, client)
        gateway = engine.gateway_of(server)
        host_server = subprocess.Popen(["iperf3", "-s", "-1", "-B", gateway, "-p", str(IPERF_PORT + 1)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        client = engine.run_d(TAG, "iperf3", "-c", gateway, "-p", str(IPERF_PORT + 1), "-t", str(seconds), "-J")
        own["container_to_host_gbits"] = container_iperf(engine, client)
        host_server.kill()
        wait_tcp(web_port)
        samples = [request_ms(web_port) for _ in range(requests)]
        own["request_ms"] = {"median": statistics.median(samples), "p90": sorted(samples)[int(0.9 * len(samples)) - 1], "n": len(samples)}
    finally:
        engine.rm(server, web)


def container_iperf(engine: Engine, cid: str) -> float:
    end = time.monotonic() + 120
    while time.monotonic() < end:
        env = getattr(engine, "env", None)
        state = sh(engine.argv("inspect", "-f", "{{.State.Status}}", cid), check=False, env=env)
        if state == "exited":
            break
        time.sleep(0.3)
    env = getattr(engine, "env", None)
    out = sh(engine.argv("logs", cid), env=env)
    engine.rm(cid)
    data = json.loads(out[out.index("{"):])
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def run_times(engines: list, rounds: int, results: dict):
    """`run --rm IMAGE true` with the default network and with none, interleaved."""
    plan = [(e, n) for e in engines for n in ("default", "none")]
    samples = {(e.name, n): [] for e, n in plan}
    for _ in range(rounds):
        random.shuffle(plan)
        for e, n in plan:
            network = "none" if n == "none" else ("bridge" if e.name != "podman" else "podman")
            argv = e.run_rm(network)
            env = getattr(e, "env", None)
            start = time.perf_counter()
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=180)
            took = (time.perf_counter() - start) * 1000
            if p.returncode == 0:
                samples[(e.name, n)].append(took)
    for (name, n), s in samples.items():
        if s:
            results.setdefault(name, {})[f"run_rm_{n}_ms"] = statistics.median(s)


def jumbo(started: list, seconds: int, results: dict):
    """bulwark's published port and container-to-container path on a network whose
    interfaces have a 65520-byte MTU (-o com.docker.network.driver.mtu), as loopback has."""
    b = next((e for e in started if e.name == "bulwark"), None)
    if b is None:
        return
    own = results.setdefault("bulwark-mtu65520", {})
    try:
        sh(b.argv("network", "create", "-o", "com.docker.network.driver.mtu=65520", "jumbo"), env=b.env)
        hostport = free_port()
        server = b.run_d("--network", "jumbo", "-p", f"{hostport}:{IPERF_PORT}", TAG, "iperf3", "-s")
        wait_tcp(hostport)
        own["published_gbits"] = iperf_gbits(["iperf3", "-c", "127.0.0.1", "-p", str(hostport), "-t", str(seconds)])
        client = b.run_d("--network", "jumbo", TAG, "iperf3", "-c", b.ip_of(server), "-t", str(seconds), "-J")
        own["container_to_container_gbits"] = container_iperf(b, client)
        b.rm(server)
    except Exception as err:  # noqa: BLE001
        own["error"] = str(err)[:300]


def write(results: dict, args):
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "network.json").write_text(json.dumps(results, indent=2) + "\n")
    ref = results.get("host", {}).get("loopback_gbits")
    lines = [f"# Networking ({results['when']}, {results['rounds']} rounds, iperf3 {results['seconds']} s)", "",
             f"Host loopback (reference): {ref:.1f} Gbit/s" if ref else "Host loopback: not measured", "",
             "| engine | published port, host -> 127.0.0.1 (Gbit/s) | vs loopback | container -> container | container -> host | request via published port (median ms) | run --rm default network (ms) | run --rm --network none (ms) | networking adds (ms) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("bulwark", "bulwark-mtu65520", "podman", "docker", "bulwark-rootless", "podman-rootless"):
        r = results.get(name)
        if not r:
            continue
        if "error" in r:
            lines.append(f"| {name} | unavailable: {r['error']} |||||||| ")
            continue
        pub = r.get("published_gbits")
        add = (r["run_rm_default_ms"] - r["run_rm_none_ms"]) if "run_rm_default_ms" in r and "run_rm_none_ms" in r else None
        f = lambda v, fmt="{:.1f}": fmt.format(v) if isinstance(v, (int, float)) else "-"
        lines.append(f"| {name} | {f(pub)} | {f(pub / ref if pub and ref else None, '{:.2f}x')} | {f(r.get('container_to_container_gbits'))} | "
                     f"{f(r.get('container_to_host_gbits'))} | {f(r.get('request_ms', {}).get('median'), '{:.2f}')} | "
                     f"{f(r.get('run_rm_default_ms'))} | {f(r.get('run_rm_none_ms'))} | {f(add)} |")
    lines += ["", "Docker publishes 127.0.0.1 through its docker-proxy process (its default); bulwark by nftables DNAT with route_localnet; Podman through netavark's nftables/iptables DNAT. "
              "bulwark-mtu65520: a network made with -o com.docker.network.driver.mtu=65520 (loopback's MTU is 65536; the default 1500 costs per-packet work). "
              "Rootless: bulwark through pasta; Podman 4.3 through slirp4netns with its rootlessport proxy (its default; pasta came in Podman 4.4).", ""]
    (out / "network.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--quick", action="store_true", help="3 rounds, 2 s transfers, 50 requests")
    p.add_argument("--bulwark", type=Path, default=REPO / "target/release/bulwark")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.requests = 3, 2, 50
    if os.geteuid() != 0:
        sys.exit("network.py: run as root (bridges, nftables, dockerd)")

    for tool in ("iperf3",):
        if not shutil.which(tool):
            sys.exit(f"network.py: {tool} is missing (apt-get install {tool})")
    work = Path(tempfile.mkdtemp(prefix="bulwark-netbench-", dir="/var/tmp"))
    results = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rounds": args.rounds, "seconds": args.seconds}
    server = subprocess.Popen(["iperf3", "-s", "-p", str(IPERF_PORT + 7)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_tcp(IPERF_PORT + 7)
        results["host"] = {"loopback_gbits": iperf_gbits(["iperf3", "-c", "127.0.0.1", "-p", str(IPERF_PORT + 7), "-t", str(args.seconds)])}
    finally:
        server.kill()
    image = build_image(work)
    engines = [Bulwark(work, args.bulwark), Podman(work), Docker(work)]
    started = []
    try:
        for e in engines:
            try:
                e.start(image)
                started.append(e)
            except Exception as err:  # noqa: BLE001 - reported, not hidden
                results[e.name] = {"error": str(err)[:300]}
        for e in started:
            try:
                measure_engine(e, args.seconds, args.requests, results)
            except Exception as err:  # noqa: BLE001
                results.setdefault(e.name, {})["error"] = str(err)[:300]
        run_times(started, args.rounds, results)
        for kind in ("bulwark", "podman"):
            try:
                r = Rootless(work, kind, args.bulwark)
                r.start(image)
                started.append(r)
                measure_rootless(r, args.seconds, args.requests, results)
            except Exception as err:  # noqa: BLE001
                results.setdefault(f"{kind}-rootless", {})["error"] = str(err)[:300]
        jumbo(started, args.seconds, results)
    finally:
        for e in started:
            e.stop()
        shutil.rmtree(work, ignore_errors=True)
    write(results, args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Scores runtimes against the attack suite (tests/attacks/probes.sh), side by side.

    sudo python3 tests/attacks/score.py            # after `scripts/test.sh` built the fixture

Runs the probes once in a container from each subject and prints a Markdown table
(also written to tests/attacks/results.md):

- bulwark-runtime with its hardened default (`spec`),
- bulwark-runtime run by a user without root, with `spec --rootless` (the user
  `bulwark-rootless` the tests use, made here if missing; no cgroup delegated),
- bulwark-runtime with `spec --profile docker` (Docker's defaults),
- runc and crun (Debian's packages) with that same Docker-default config.

Every config also runs exe-hook.sh as a startContainer hook (the CVE-2019-5736 probe),
and each subject gets a second round of small containers whose process.cwd is
/proc/self/fd/N for N in 3..9 (CVE-2024-21626: a leaked host directory as the cwd).

The rootfs is the test fixture (static busybox and bulwark-check), built by the test
suite under target/bulwark-fixtures. Like bench/run.py it hides the cgroup2 mount of a
hybrid host in its own mount namespace, which crun needs here. It reports; it never
fails on a verdict.
"""
from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import json
import os
import pty
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from benchkit import host  # noqa: E402  (the bench's host helpers: packages, cgroup2 hiding)

ATTACKS = REPO / "tests" / "attacks"
# The rootless tests' user and subordinate range (tests/src/rootless.rs).
USER, SUBORDINATE = "bulwark-rootless", (400000, 65536)
SUBJECTS = [
    ("bulwark hardened (default)", "bulwark", "hardened"),
    ("bulwark rootless (a user, spec --rootless)", "bulwark-rootless", "hardened"),
    ("bulwark --profile docker", "bulwark", "docker"),
    ("runc, Docker's defaults", "runc", "docker"),
    ("crun, Docker's defaults", "crun", "docker"),
]
# Walks up from the cwd: in the container's root `..` of / is / again; from a leaked
# host directory it reaches the host's root instead, which is another directory.
CWD_PROBE = (
    'here=$(stat -c %d:%i /); i=0; while [ $i -lt 40 ]; do cd -P .. 2>/dev/null; i=$((i+1)); done; '
    '[ "$(stat -c %d:%i .)" = "$here" ] && echo "cwd_fd_leak: blocked (the cwd is inside the root)" '
    '|| echo "cwd_fd_leak: OPEN (the cwd leads out of the root to the host)"'
)


def fixture_rootfs() -> Path:
    candidates = sorted((REPO / "target" / "bulwark-fixtures").glob("rootfs-*"), key=lambda p: p.stat().st_mtime)
    candidates = [c for c in candidates if (c / "usr/bin/bulwark-check").exists()]
    if not candidates:
        sys.exit("score: no fixture rootfs with bulwark-check under target/bulwark-fixtures: run scripts/test.sh first")
    return candidates[-1]


def ensure_user() -> pwd.struct_passwd:
    """The rootless tests' user, with its subordinate ranges (as tests/src/rootless.rs)."""
    try:
        user = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", USER], check=True)
        user = pwd.getpwnam(USER)
    start, size = SUBORDINATE
    for file, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        text = Path(file).read_text() if Path(file).exists() else ""
        if f"{USER}:{start}:{size}" not in text:
            subprocess.run(["usermod", flag, f"{start}-{start + size - 1}", USER], check=True)
    return user


class Subject:
    """How to start one runtime: its binary, state root and, for rootless, its user."""

    def __init__(self, work: Path, index: int, runtime: str, bulwark: Path):
        self.user = ensure_user() if runtime == "bulwark-rootless" else None
        self.binary = str(bulwark) if runtime.startswith("bulwark") else shutil.which(runtime)
        self.root = work / f"state-{index}"
        self.root.mkdir()
        if self.user:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.runtime = runtime

    def as_user(self) -> list[str]:
        if not self.user:
            return []
        return ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--clear-groups", "--"]

    def argv(self, *args: str) -> list[str]:
        return [*self.as_user(), self.binary, "--root", str(self.root), *args]

    def give(self, path: Path) -> None:
        if self.user:
            subprocess.run(["chown", "-R", f"{self.user.pw_uid}:{self.user.pw_gid}", str(path)], check=True)


def bundle_for(work: Path, subject: Subject, bulwark: Path, name: str, profile: str, rootfs: Path) -> Path:
    bundle = work / name
    # Closed to other users, as an engine keeps its bundles (the idmapped rootfs needs it).
    bundle.mkdir(mode=0o700)
    subprocess.run(["cp", "-a", str(rootfs), str(bundle / "rootfs")], check=True)
    shutil.copy(ATTACKS / "probes.sh", bundle / "rootfs" / "attacks.sh")
    shutil.copy(ATTACKS / "exe-hook.sh", bundle / "rootfs" / "attacks-exe-hook.sh")
    subject.give(bundle)
    # bulwark's spec for every subject, as whoever runs the runtime: a user's config maps
    # the user's own ids.
    spec = [*subject.as_user(), str(bulwark), "spec", "--bundle", str(bundle), "--profile", profile]
    subprocess.run(spec, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/sh", "/attacks.sh"]
    config["process"]["env"].append(f"BUNDLE={bundle}")
    config.setdefault("hooks", {})["startContainer"] = [{"path": "/bin/sh", "args": ["sh", "/attacks-exe-hook.sh"]}]
    if subject.runtime in ("runc", "crun"):
        config["ociVersion"] = "1.0.2"  # crun 1.8 refuses versions it does not know
    (bundle / "config.json").write_text(json.dumps(config, indent=1))
    return bundle


def run(subject: Subject, bundle: Path, cid: str) -> dict[str, str]:
    """Runs the probes as a user at a terminal would: the runtime leads a session whose
    controlling terminal (a pty) is the container's stdin, so the TIOCSTI probe applies."""
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            ["setsid", "--ctty", "--wait", *subject.argv("run", "--bundle", str(bundle), cid)],
            stdin=slave, capture_output=True, text=True, timeout=300,
        )
    finally:
        os.close(slave)
        os.close(master)
    subprocess.run(subject.argv("delete", "--force", cid), capture_output=True)
    verdicts = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    if done.returncode != 0 and not verdicts:
        verdicts["(run failed)"] = f"OPEN? exit {done.returncode}: {done.stderr.strip()[:200]}"
    return verdicts


def cwd_leak(subject: Subject, bundle: Path, cid: str) -> str:
    """The worst of the containers whose cwd is /proc/self/fd/N: OPEN if any cwd led out;
    blocked if every one was refused or stayed inside."""
    config_path = bundle / "config.json"
    original = config_path.read_text()
    seen = []
    try:
        for fd in range(3, 10):
            config = json.loads(original)
            config["process"]["cwd"] = f"/proc/self/fd/{fd}"
            config["process"]["args"] = ["/bin/sh", "-c", CWD_PROBE]
            config.pop("hooks", None)
            config_path.write_text(json.dumps(config, indent=1))
            done = subprocess.run(subject.argv("run", "--bundle", str(bundle), f"{cid}-{fd}"),
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
            subprocess.run(subject.argv("delete", "--force", f"{cid}-{fd}"), capture_output=True)
            line = next((l for l in done.stdout.splitlines() if l.startswith("cwd_fd_leak: ")), None)
            if line and "OPEN" in line:
                return f"OPEN (fd {fd}: {line.split(': ', 1)[1]})"
            seen.append("refused" if line is None else "inside")
    finally:
        config_path.write_text(original)
    return f"blocked ({seen.count('refused')} of {len(seen)} refused, the rest inside the root)"


def cell(verdict: str | None) -> str:
    if verdict is None:
        return "-"
    word = verdict.split(" ", 1)[0]
    return {"blocked": "blocked", "OPEN": "**OPEN**", "n/a": "n/a"}.get(word, verdict)


def main() -> int:
    host.require_root()
    host.ensure_packages({"runc": "runc", "crun": "crun", "busybox": "busybox-static",
                          "newuidmap": "uidmap", "setpriv": "util-linux"})
    bulwark = host.build_bulwark(REPO)
    rootfs = fixture_rootfs()
    if host.hybrid_cgroups_with_v2_controllers():
        host.hide_unified_hierarchy()
    work = Path(tempfile.mkdtemp(prefix="bulwark-attacks."))
    os.chmod(work, 0o755)  # the rootless subject's user reaches its bundle below
    try:
        results = {}
        for i, (label, runtime, profile) in enumerate(SUBJECTS):
            subject = Subject(work, i, runtime, bulwark)
            bundle = bundle_for(work, subject, bulwark, f"b{i}", profile, rootfs)
            results[label] = run(subject, bundle, f"attack-{i}")
            results[label]["cwd_fd_leak"] = cwd_leak(subject, bundle, f"attack-cwd-{i}")
            host.say(f"{label}: {sum(v.startswith('OPEN') for v in results[label].values())} probes got through")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    probes = sorted({p for verdicts in results.values() for p in verdicts})
    lines = [
        "| probe | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for probe in probes:
        lines.append(f"| {probe} | " + " | ".join(cell(v.get(probe)) for v in results.values()) + " |")
    lines.append(
        "| **got through** | "
        + " | ".join(str(sum(v.startswith("OPEN") for v in r.values())) for r in results.values())
        + " |"
    )
    table = "\n".join(lines)
    print(table)
    (ATTACKS / "results.md").write_text(
        "# Attack suite scores\n\nFrom `python3 tests/attacks/score.py` "
        f"(kernel {Path('/proc/sys/kernel/osrelease').read_text().strip()}).\n\n" + table + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

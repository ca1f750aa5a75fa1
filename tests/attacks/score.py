#!/usr/bin/env python3
"""Scores runtimes against the attack suite (tests/attacks/probes.sh), side by side.

    sudo python3 tests/attacks/score.py            # after `scripts/test.sh` built the fixture

Runs the probes once in a container from each subject and prints a Markdown table
(also written to tests/attacks/results.md):

- bulwark-runtime with its hardened default (`spec`),
- bulwark-runtime with `spec --profile docker` (Docker's defaults),
- runc and crun (Debian's packages) with that same Docker-default config.

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
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from benchkit import host  # noqa: E402  (the bench's host helpers: packages, cgroup2 hiding)

PROBES = REPO / "tests" / "attacks" / "probes.sh"
SUBJECTS = [
    ("bulwark hardened (default)", "bulwark", "hardened"),
    ("bulwark --profile docker", "bulwark", "docker"),
    ("runc, Docker's defaults", "runc", "docker"),
    ("crun, Docker's defaults", "crun", "docker"),
]


def fixture_rootfs() -> Path:
    candidates = sorted((REPO / "target" / "bulwark-fixtures").glob("rootfs-*"), key=lambda p: p.stat().st_mtime)
    candidates = [c for c in candidates if (c / "usr/bin/bulwark-check").exists()]
    if not candidates:
        sys.exit("score: no fixture rootfs with bulwark-check under target/bulwark-fixtures: run scripts/test.sh first")
    return candidates[-1]


def bundle_for(work: Path, bulwark: Path, name: str, profile: str, rootfs: Path, runtime: str) -> Path:
    bundle = work / name
    bundle.mkdir()
    subprocess.run(["cp", "-a", str(rootfs), str(bundle / "rootfs")], check=True)
    shutil.copy(PROBES, bundle / "rootfs" / "attacks.sh")
    subprocess.run([str(bulwark), "spec", "--bundle", str(bundle), "--profile", profile], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/sh", "/attacks.sh"]
    config["process"]["env"].append(f"BUNDLE={bundle}")
    if runtime != "bulwark":
        config["ociVersion"] = "1.0.2"  # crun 1.8 refuses versions it does not know
    (bundle / "config.json").write_text(json.dumps(config, indent=1))
    return bundle


def run(binary: str, root: Path, bundle: Path, cid: str) -> dict[str, str]:
    """Runs the probes as a user at a terminal would: the runtime leads a session whose
    controlling terminal (a pty) is the container's stdin, so the TIOCSTI probe applies."""
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            ["setsid", "--ctty", "--wait", binary, "--root", str(root), "run", "--bundle", str(bundle), cid],
            stdin=slave, capture_output=True, text=True, timeout=300,
        )
    finally:
        os.close(slave)
        os.close(master)
    subprocess.run([binary, "--root", str(root), "delete", "--force", cid], capture_output=True)
    verdicts = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    if done.returncode != 0 and not verdicts:
        verdicts["(run failed)"] = f"OPEN? exit {done.returncode}: {done.stderr.strip()[:200]}"
    return verdicts


def cell(verdict: str | None) -> str:
    if verdict is None:
        return "-"
    word = verdict.split(" ", 1)[0]
    return {"blocked": "blocked", "OPEN": "**OPEN**", "n/a": "n/a"}.get(word, verdict)


def main() -> int:
    host.require_root()
    host.ensure_packages({"runc": "runc", "crun": "crun", "busybox": "busybox-static"})
    bulwark = host.build_bulwark(REPO)
    rootfs = fixture_rootfs()
    if host.hybrid_cgroups_with_v2_controllers():
        host.hide_unified_hierarchy()
    work = Path(tempfile.mkdtemp(prefix="bulwark-attacks."))
    try:
        results = {}
        for i, (label, runtime, profile) in enumerate(SUBJECTS):
            binary = str(bulwark) if runtime == "bulwark" else shutil.which(runtime)
            bundle = bundle_for(work, bulwark, f"b{i}", profile, rootfs, runtime)
            results[label] = run(binary, work / f"state-{i}", bundle, f"attack-{i}")
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
    (REPO / "tests" / "attacks" / "results.md").write_text(
        "# Attack suite scores\n\nFrom `python3 tests/attacks/score.py` "
        f"(kernel {Path('/proc/sys/kernel/osrelease').read_text().strip()}).\n\n" + table + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

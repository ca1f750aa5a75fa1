#!/usr/bin/env python3
"""Where the time of one `bulwark-runtime run` goes: a median timeline of its phases.

    sudo python3 bench/phases.py                 # /bin/true, 40 runs
    sudo python3 bench/phases.py --variant seccomp --runs 30

bulwark-runtime marks its phases on stderr when BULWARK_PHASES is set (one line each:
`bulwark-phase <CLOCK_MONOTONIC µs> <pid> <label>`, from the runtime and from the
container's init until it execs). This runs the benchmark's bundles that way and prints,
for each phase, the median time since the command was forked and the median step from
the phase before. Like bench/run.py it sees plain cgroup v1 on a hybrid host, and it
reports only: it never fails on a time.
"""
from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchkit import bundles, host

BENCH = Path(__file__).resolve().parent
DEFAULT_SECCOMP = Path(os.environ.get("BENCH_SECCOMP", "/work/shared/reference/docker-default-seccomp-oci-amd64.json"))
MARK = re.compile(r"bulwark-phase (\d+) (\d+) ([^\n]*)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", choices=["true", "limits", "seccomp"], default="true")
    p.add_argument("--runs", type=int, default=40, help="containers run, one after another (default 40)")
    p.add_argument("--bulwark", help="the bulwark-runtime to profile (default: build target/release)")
    p.add_argument("--seccomp", type=Path, default=DEFAULT_SECCOMP, help="linux.seccomp JSON for --variant seccomp")
    return p.parse_args()


def one_run(binary: str, root: Path, bundle: Path, name: str) -> tuple[dict[str, int], int]:
    """Runs one container; returns {label: µs since fork} and the total in µs."""
    env = dict(os.environ, BULWARK_PHASES="1")
    began = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    done = subprocess.run(
        [binary, "--root", str(root), "run", "--bundle", str(bundle), name],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
    )
    total = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000 - began
    if done.returncode != 0:
        sys.exit(f"phases: run {name} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    marks: dict[str, int] = {}
    for stamp, _pid, label in MARK.findall(done.stderr.decode(errors="replace")):
        # The runtime re-executes itself once (CVE-2019-5736): keep both starts apart.
        while label in marks:
            label += "'"
        marks[label] = int(stamp) - began
    return marks, total


def main() -> int:
    args = parse_args()
    host.require_root()
    binary = args.bulwark or str(host.build_bulwark(BENCH.parent))
    if host.hybrid_cgroups_with_v2_controllers():
        host.hide_unified_hierarchy()
    seccomp = bundles.load_seccomp(args.seccomp) if args.variant == "seccomp" else {}
    work = Path(tempfile.mkdtemp(prefix="bulwark-phases-"))
    try:
        rootfs = bundles.make_rootfs(work / "rootfs", shutil.which("busybox") or "/bin/busybox")
        bundle = work / args.variant
        bundle.mkdir()
        config = bundles.variant_config(args.variant, rootfs, "/bulwark-phases", "bulwark", seccomp)
        (bundle / "config.json").write_text(json.dumps(config))
        root = work / "state"
        one_run(binary, root, bundle, "warm-up")  # fills the page cache and the seccomp cache
        runs = [one_run(binary, root, bundle, f"p{i}") for i in range(args.runs)]
    finally:
        subprocess.run([binary, "--root", str(work / "state"), "delete", "--force", "warm-up"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        bundles.remove_cgroups("/bulwark-phases")

    labels = {label for marks, _ in runs for label in marks}
    medians = {label: statistics.median(m[label] for m, _ in runs if label in m) for label in labels}
    total = statistics.median(t for _, t in runs)
    print(f"{args.variant}: median of {args.runs} runs of {binary}, ms since the command was forked\n")
    print(f"{'at':>8} {'step':>7}  phase")
    previous = 0.0
    for label in sorted(labels, key=medians.get):
        at = medians[label]
        print(f"{at / 1000:8.2f} {(at - previous) / 1000:7.2f}  {label}")
        previous = at
    print(f"{total / 1000:8.2f} {(total - previous) / 1000:7.2f}  (exited, as the caller sees it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

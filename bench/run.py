#!/usr/bin/env python3
"""Benchmark bulwark-runtime against runc and crun (and the floor: fork+exec, unshare).

    sudo python3 bench/run.py            # defaults finish in a few minutes

Writes bench/results/latest.{json,md,png}. It reports; it never fails on a time.
See bench/README.md for what each figure means.
"""
from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__

import argparse
import os
import random
import shutil
import signal
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from benchkit import bundles, host, report, spawn
from benchkit.plot import plot_png
from benchkit.runtimes import Floor, Runtime
from benchkit.scenarios import Bench, Settings

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DEFAULT_SECCOMP = Path("/work/shared/reference/docker-default-seccomp-oci-amd64.json")
KNOWN_RUNTIMES = ("bulwark", "runc", "crun")
UNSHARE_FLAGS = ["--pid", "--net", "--ipc", "--uts", "--mount", "--fork"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20, help="rounds of the per-container figures (default 20)")
    p.add_argument("--batch-rounds", type=int, default=5, help="rounds of the batch totals (default 5)")
    p.add_argument("--sequential", type=int, default=100, help="containers run one after another (default 100)")
    p.add_argument("--parallel", type=int, default=50, help="containers started at once (default 50)")
    p.add_argument("--runtimes", default=",".join(KNOWN_RUNTIMES), help="comma-separated subset of bulwark,runc,crun")
    p.add_argument("--seed", type=int, help="seed of the shuffles (default: random, recorded in the report)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before one command counts as hung (default 30)")
    p.add_argument("--no-build", action="store_true", help="measure the bulwark-runtime already built")
    p.add_argument("--bulwark", type=Path, help="measure this bulwark-runtime binary (implies --no-build)")
    p.add_argument("--seccomp", type=Path, default=Path(os.environ.get("BENCH_SECCOMP", DEFAULT_SECCOMP)),
                   help=f"OCI linux.seccomp JSON for the seccomp variant (default {DEFAULT_SECCOMP}, or $BENCH_SECCOMP)")
    p.add_argument("--host-cgroups-as-is", action="store_true",
                   help="do not hide a cgroup2 mount crun refuses on hybrid hosts (see README)")
    p.add_argument("--out", type=Path, default=BENCH / "results", help="directory for latest.{json,md,png}")
    args = p.parse_args()
    args.runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = set(args.runtimes) - set(KNOWN_RUNTIMES)
    if unknown or not args.runtimes:
        p.error(f"--runtimes: {', '.join(sorted(unknown)) or 'empty'}: expected some of {', '.join(KNOWN_RUNTIMES)}")
    for name in ("rounds", "batch_rounds", "sequential", "parallel"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be 0 or more")
    return args


def binaries(args: argparse.Namespace) -> dict[str, str]:
    """The path of each runtime to measure, building or installing what is missing."""
    paths = {}
    if "bulwark" in args.runtimes:
        if args.bulwark:
            paths["bulwark"] = str(args.bulwark.resolve())
        elif args.no_build:
            paths["bulwark"] = str(REPO / "target" / "release" / "bulwark-runtime")
        else:
            paths["bulwark"] = str(host.build_bulwark(REPO))
        if not os.access(paths["bulwark"], os.X_OK):
            sys.exit(f"bench: {paths['bulwark']} is not an executable (build it, or pass --bulwark)")
    debian = {name: name for name in ("runc", "crun") if name in args.runtimes}
    host.ensure_packages({**debian, "unshare": "util-linux", "busybox": "busybox-static", "cc": "gcc"})
    for name in debian:
        paths[name] = shutil.which(name)
    if not host.is_static_elf(shutil.which("busybox")):
        sys.exit(f"bench: {shutil.which('busybox')} is not statically linked: install busybox-static")
    return paths


def versions(paths: dict[str, str], repo: Path) -> dict[str, str]:
    out = {}
    for name, path in paths.items():
        out[name] = host.first_line(host.command_output([path, "--version"]))
        if name == "bulwark":
            out[name] += f", git {host.git_revision(repo)}"
    out["unshare"] = host.first_line(host.command_output(["unshare", "--version"]))
    return out


def raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def prepare_host(args: argparse.Namespace) -> tuple[dict[str, str], dict, list[str]]:
    """Binaries, the seccomp profile, orphan care and the cgroup view; returns the
    runtime paths, the seccomp object and notes for the report."""
    paths = binaries(args)
    try:
        seccomp = bundles.load_seccomp(args.seccomp)
    except (OSError, ValueError) as e:
        sys.exit(f"bench: seccomp profile: {e} (pass --seccomp FILE)")
    notes = []
    spawn.become_subreaper()
    if "crun" in paths and not args.host_cgroups_as_is and host.hybrid_cgroups_with_v2_controllers():
        host.hide_unified_hierarchy()
        notes.append(
            f"hybrid cgroup host with a controller on the cgroup2 side, which crun refuses; the harness "
            f"detached {host.UNIFIED} in its own mount namespace, so every runtime saw plain cgroup v1."
        )
        host.say(notes[-1])
    return paths, seccomp, notes


def measure(bench: Bench) -> None:
    bench.probe()
    bench.start_exec_targets()
    settings = bench.settings
    for i in range(settings.rounds):
        t = time.monotonic()
        bench.per_container_round()
        host.say(f"per-container round {i + 1}/{settings.rounds} ({time.monotonic() - t:.1f} s)")
    for i in range(settings.batch_rounds):
        t = time.monotonic()
        bench.batch_round()
        host.say(f"batch round {i + 1}/{settings.batch_rounds} ({time.monotonic() - t:.1f} s)")


def clean_up(runtimes: list[Runtime], spawner: spawn.Spawner | None, cgroup_parent: str, work: Path) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
    if spawner:
        spawner.close()
    for rt in runtimes:
        left = rt.clean_up()
        if left:
            host.say(f"{rt.name}: could not delete {', '.join(left)} (state in {rt.root})")
    spawn.reap_orphans()
    bundles.remove_cgroups(cgroup_parent)
    shutil.rmtree(work, ignore_errors=True)


def sizes_of(paths: dict[str, str]) -> dict[str, dict]:
    subjects = dict(paths, **{"fork+exec": "/bin/true", "unshare": shutil.which("unshare")})
    return {
        name: {"binary": os.path.getsize(os.path.realpath(p)), "shared_libraries": host.shared_library_bytes(p)}
        for name, p in subjects.items()
    }


def write_reports(out: Path, meta: dict, bench: Bench, sizes: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    all_series = bench.results.all()
    why_no_plot = plot_png(out / "latest.png", all_series, meta["settings"])
    if why_no_plot:
        meta["notes"].append(f"no plot: {why_no_plot}")
        host.say(f"CANNOT PLOT: {why_no_plot}; writing JSON and Markdown only")
    report.write_json(out / "latest.json", meta, all_series, sizes)
    (out / "latest.md").write_text(report.markdown(meta, all_series, sizes))
    written = ["latest.json", "latest.md"] + ([] if why_no_plot else ["latest.png"])
    host.say(f"wrote {', '.join(str(out / w) for w in written)} in {meta['total_duration_s']:.0f} s")


def main() -> int:
    args = parse_args()
    host.require_root()
    began = time.monotonic()
    machine = host.machine_facts()
    paths, seccomp, notes = prepare_host(args)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    work = Path(tempfile.mkdtemp(prefix="bulwark-bench."))
    cgroup_parent = f"/bulwark-bench-{os.getpid()}"
    runtimes = [Runtime(name, paths[name], str(work / "state" / name)) for name in args.runtimes]
    floors = [Floor("fork+exec", ["/bin/true"]), Floor("unshare", [shutil.which("unshare"), *UNSHARE_FLAGS, "/bin/true"])]
    settings = Settings(args.rounds, args.batch_rounds, args.sequential, args.parallel, args.timeout)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)

    stopped_early = ""
    measured_from = time.monotonic()
    bench = spawner = None
    try:
        spawner = spawn.Spawner(spawn.build_spawner(work))
        rootfs = bundles.make_rootfs(work / "rootfs", shutil.which("busybox"))
        bundle_dirs = bundles.write_bundles(work / "bundles", rootfs, args.runtimes, cgroup_parent, seccomp)
        bench = Bench(spawner, runtimes, floors, bundle_dirs, work, settings, random.Random(seed))
        host.say(f"work directory {work}; seed {seed}; probing each runtime and variant")
        measure(bench)
    except KeyboardInterrupt:
        stopped_early = "the run was interrupted"
        host.say("interrupted: cleaning up, then reporting what was measured")
    except Exception:  # report what was measured, whatever broke
        traceback.print_exc()
        stopped_early = "the harness failed (see its output)"
    finally:
        clean_up(runtimes, spawner, cgroup_parent, work)
    if bench is None:
        return 1

    if stopped_early:
        notes.append(f"{stopped_early}; the figures cover only what was measured before that.")
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine | {"loadavg_at_end": list(os.getloadavg())},
        "versions": versions(paths, REPO),
        "binaries": paths,
        "settings": {
            "rounds": settings.rounds,
            "batch_rounds": settings.batch_rounds,
            "sequential": settings.sequential,
            "parallel": settings.parallel,
            "timeout_s": settings.timeout_s,
            "runtimes": args.runtimes,
            "seccomp_profile": str(args.seccomp),
        },
        "seed": seed,
        "duration_s": round(time.monotonic() - measured_from, 1),
        "total_duration_s": round(time.monotonic() - began, 1),
        "stopped_early": stopped_early or None,
        "notes": notes,
    }
    write_reports(args.out, meta, bench, sizes_of(paths))
    return 1 if stopped_early else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark image pulls: `bulwark pull` next to `podman pull`, `ctr images pull` (which
unpacks) and `skopeo copy` to a directory, all from one docker-registry on 127.0.0.1,
each into a cold store every round; unpacking alone next to GNU tar; store sizes.

    sudo python3 bench/pull.py            # about five minutes with the defaults

Writes bench/results/pull.{json,md}. It reports; it never fails on a time.
See bench/README.md ("Pulls").
"""
from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchkit import host
from benchkit.pulls import PULLERS, Puller, Registry, debian_image, disk_usage, multi_layer_image, sha256, short_run_root
from benchkit.stats import Results, summary

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OTHERS = ("podman", "ctr", "skopeo")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="cold pulls per image and tool (default 5)")
    p.add_argument("--images", default="multi,debian", help="comma-separated subset of multi,debian")
    p.add_argument("--bulwark", type=Path, help="measure this bulwark binary (default: a release build)")
    p.add_argument("--seed", type=int, help="seed of the shuffles (default: random)")
    p.add_argument("--out", type=Path, default=BENCH / "results", help="directory for pull.{json,md}")
    return p.parse_args()


def build() -> Path:
    host.say("building bulwark (cargo build --release -p bulwark-engine-cli)")
    if subprocess.run(["cargo", "build", "--release", "-p", "bulwark-engine-cli"], cwd=REPO).returncode != 0:
        sys.exit("bench: cargo build failed")
    return REPO / "target" / "release" / "bulwark"


def timed(argv: list[str], stdin=None) -> tuple[float, str]:
    """Milliseconds the command took, and its error output when it failed ('' if not).
    The disk is synced first (untimed), so no command pays for the writes of the one
    before it."""
    os.sync()
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ms = (time.perf_counter() - t0) * 1000
    return ms, "" if r.returncode == 0 else (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]


def pull_once(puller: Puller, bulwark: Path, base: Path, ref: str) -> tuple[float, str, int]:
    base.mkdir(parents=True)
    daemon = puller.prepare(base)
    try:
        ms, error = timed(puller.argv(bulwark, base, ref))
        size = disk_usage(puller.store(base)) if not error else 0
    finally:
        if daemon:
            daemon.stop()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(short_run_root(base), ignore_errors=True)
    return ms, error, size


def unpack_once(tool: str, bulwark: Path, work: Path, image, blob_files: list[Path]) -> tuple[float, str]:
    """Unpacks every layer of `image` into fresh directories; total milliseconds."""
    total = 0.0
    for i, (blob, tar) in enumerate(zip(blob_files, image.tars)):
        target = work / f"unpack-{tool}-{i}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        if tool == "bulwark":
            options = json.dumps({
                "compression": "gzip", "diff_id": sha256(tar), "devices": True, "user_xattrs": False,
                "limits": {"max-bytes": 64 << 30, "max-entries": 2_000_000, "max-path": 4096, "max-ratio": 250},
            })
            with open(blob, "rb") as stdin:
                ms, error = timed([str(bulwark), "__unpack-layer", str(target), options], stdin=stdin)
        else:
            ms, error = timed(["tar", "--xattrs", "--xattrs-include=*", "-xzf", str(blob), "-C", str(target)])
        shutil.rmtree(target, ignore_errors=True)
        if error:
            return 0.0, error
        total += ms
    return total, ""


def main() -> int:
    args = parse_args()
    host.require_root()
    host.ensure_packages({"docker-registry": "docker-registry", "podman": "podman", "ctr": "containerd",
                          "containerd": "containerd", "skopeo": "skopeo", "debootstrap": "debootstrap",
                          "busybox": "busybox-static", "tar": "tar"})
    bulwark = args.bulwark.resolve() if args.bulwark else build()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    wanted = [i.strip() for i in args.images.split(",") if i.strip()]
    work = Path(tempfile.mkdtemp(prefix="bulwark-pull-bench-"))
    results = Results()
    sizes: dict[str, dict[str, int]] = {}
    images = {}
    registry = None
    try:
        host.say("building the test images")
        makers = {"multi": multi_layer_image, "debian": debian_image}
        images = {name: makers[name]() for name in wanted}
        registry = Registry(work)
        refs = {name: registry.push(f"bench/{name}", image) for name, image in images.items()}
        blob_files = {}
        for name, image in images.items():
            blob_files[name] = []
            for i, blob in enumerate(image.blobs):
                path = work / f"{name}-layer{i}.tar.gz"
                path.write_bytes(blob)
                blob_files[name].append(path)
        pullers = [Puller(p) for p in PULLERS]
        host.say("one untimed pull of each image by each tool (warming the caches)")
        for name, ref in refs.items():
            for p in pullers:
                _, error, _ = pull_once(p, bulwark, work / f"warm-{p.name}-{name}", ref)
                if error:
                    results.get(f"pull {name}", p.name).fail(error)
        for r in range(args.rounds):
            host.say(f"round {r + 1}/{args.rounds}")
            for name, ref in refs.items():
                order = pullers[:]
                rng.shuffle(order)
                for p in order:
                    ms, error, size = pull_once(p, bulwark, work / f"{p.name}-{name}-{r}", ref)
                    series = results.get(f"pull {name}", p.name)
                    if error:
                        series.fail(error)
                    else:
                        series.add(ms)
                        sizes.setdefault(name, {})[p.name] = size
                tools = ["bulwark", "tar"]
                rng.shuffle(tools)
                for tool in tools:
                    ms, error = unpack_once(tool, bulwark, work, images[name], blob_files[name])
                    series = results.get(f"unpack {name}", tool)
                    series.fail(error) if error else series.add(ms)
    finally:
        if registry:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "rounds": args.rounds,
        "host": host.machine_facts(),
        "revision": host.git_revision(REPO),
        "images": {n: {"label": i.label, "layers": len(i.tars), "compressed": i.size()[0], "uncompressed": i.size()[1]}
                   for n, i in images.items()},
        "versions": versions(bulwark),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "sizes_bytes": sizes, "results": [s.to_json() for s in results.all()]}
    (args.out / "pull.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "pull.md").write_text(markdown(meta, results, sizes))
    print((args.out / "pull.md").read_text())
    return 0


def versions(bulwark: Path) -> dict[str, str]:
    out = {}
    for name, argv in {"bulwark": [str(bulwark), "--version"], "podman": ["podman", "--version"],
                       "ctr": ["ctr", "--version"], "skopeo": ["skopeo", "--version"], "tar": ["tar", "--version"]}.items():
        r = subprocess.run(argv, capture_output=True, text=True)
        out[name] = (r.stdout.strip().splitlines() or ["?"])[0]
    return out


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f}"


def markdown(meta: dict, results: Results, sizes: dict) -> str:
    lines = [f"# Pull benchmark ({meta['date']}, {meta['rounds']} cold rounds, seed {meta['seed']})", ""]
    for name, info in meta["images"].items():
        lines.append(f"- **{name}**: {info['label']}, {info['layers']} layers, {mib(info['compressed'])} MiB "
                     f"compressed, {mib(info['uncompressed'])} MiB of tar")
    lines += ["", "## Pull (ms, cold store, same local registry)", "",
              "| image | tool | median | min | p90 | n | median ÷ fastest other | store on disk (MiB) |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name in meta["images"]:
        rows = [s for s in results.all() if s.measurement == f"pull {name}"]
        medians = {s.subject: summary(s.samples_ms)["median"] for s in rows if s.samples_ms}
        fastest = min((medians[o] for o in OTHERS if o in medians), default=None)
        for s in rows:
            st = summary(s.samples_ms)
            if not st:
                lines.append(f"| {name} | {s.subject} | failed: {s.first_failure} | | | | | |")
                continue
            ratio = f"{st['median'] / fastest:.2f}" if fastest else "-"
            size = sizes.get(name, {}).get(s.subject)
            lines.append(f"| {name} | {s.subject} | {st['median']:.0f} | {st['min']:.0f} | {st['p90']:.0f} | {st['n']} "
                         f"| {ratio} | {mib(size) if size else '-'} |")
    lines += ["", "## Unpack alone (ms, all layers, gzip in, files out)", "",
              "| image | tool | median | min | p90 | n | median ÷ tar -x |", "|---|---|---:|---:|---:|---:|---:|"]
    for name in meta["images"]:
        rows = [s for s in results.all() if s.measurement == f"unpack {name}"]
        tar = next((summary(s.samples_ms) for s in rows if s.subject == "tar" and s.samples_ms), None)
        for s in rows:
            st = summary(s.samples_ms)
            if not st:
                lines.append(f"| {name} | {s.subject} | failed: {s.first_failure} | | | | |")
                continue
            ratio = f"{st['median'] / tar['median']:.2f}" if tar else "-"
            lines.append(f"| {name} | {s.subject} | {st['median']:.0f} | {st['min']:.0f} | {st['p90']:.0f} | {st['n']} | {ratio} |")
    lines += ["", "Versions: " + "; ".join(f"{k}: {v}" for k, v in meta["versions"].items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

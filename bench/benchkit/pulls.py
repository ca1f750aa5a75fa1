"""The pull benchmark's parts: test images built here (a multi-layer image on busybox,
and Debian minbase made with debootstrap), one docker-registry on 127.0.0.1 serving them,
the pullers (bulwark, podman, ctr with a containerd of its own, skopeo to a directory),
each with a cold store per pull, and unpacking alone next to GNU tar."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .host import say

CACHE = Path("/var/cache/bulwark-bench")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    name: str
    label: str
    tars: list[bytes]
    blobs: list[bytes] = field(default_factory=list)
    config: bytes = b""
    manifest: bytes = b""

    def finish(self) -> "Image":
        self.blobs = [gzip.compress(t, compresslevel=6, mtime=0) for t in self.tars]
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in self.tars]},
        }
        self.config = json.dumps(config).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(self.config), "size": len(self.config)},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(b), "size": len(b)}
                for b in self.blobs
            ],
        }
        self.manifest = json.dumps(manifest).encode()
        return self

    def size(self) -> tuple[int, int]:
        """(compressed, uncompressed) bytes of the layers."""
        return sum(map(len, self.blobs)), sum(map(len, self.tars))


def _add(t: tarfile.TarFile, name: str, data: bytes = b"", mode: int = 0o644, **kw) -> None:
    info = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(info, k, v)
    info.mode = mode
    info.mtime = 1_700_000_000
    if info.type == tarfile.REGTYPE:
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    else:
        t.addfile(info)


def _tar(build) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        build(t)
    return raw.getvalue()


def multi_layer_image() -> Image:
    """busybox, then layers with deletions, an opaque directory, links, a setuid file,
    a file capability and some bulk (pseudo-random, so it does not compress away)."""
    busybox = Path("/bin/busybox").read_bytes()
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()

    def base(t):
        _add(t, "bin", type=tarfile.DIRTYPE, mode=0o755)
        _add(t, "bin/busybox", busybox, 0o755)
        for a in applets:
            if a != "busybox":
                _add(t, f"bin/{a}", type=tarfile.SYMTYPE, linkname="busybox", mode=0o777)
        _add(t, "etc", type=tarfile.DIRTYPE, mode=0o755)
        _add(t, "etc/old", b"old\n")
        _add(t, "data", type=tarfile.DIRTYPE, mode=0o755)
        for i in range(200):
            _add(t, f"data/base-{i}", os.urandom(40_000))

    def middle(t):
        _add(t, "etc", type=tarfile.DIRTYPE, mode=0o755)
        _add(t, "etc/.wh.old")
        _add(t, "data", type=tarfile.DIRTYPE, mode=0o755)
        _add(t, "data/.wh..wh..opq")
        for i in range(300):
            _add(t, f"data/mid-{i}", os.urandom(20_000))
        _add(t, "usr", type=tarfile.DIRTYPE, mode=0o755)
        _add(t, "usr/lib", type=tarfile.DIRTYPE, mode=0o755)
        for i in range(2000):
            _add(t, f"usr/lib/small-{i}", f"small file {i}\n".encode() * 20)

    def top(t):
        _add(t, "bin", type=tarfile.DIRTYPE, mode=0o755)
        _add(t, "bin/suid", b"#!/bin/sh\n", 0o4755)
        cap = bytes([1, 0, 0, 2, 0, 4, 0, 0] + [0] * 12)
        info = tarfile.TarInfo("bin/capped")
        info.size, info.mode, info.mtime = 7, 0o755, 1_700_000_000
        info.pax_headers = {"SCHILY.xattr.security.capability": cap.decode("latin-1")}
        t.addfile(info, io.BytesIO(b"capped\n"))
        _add(t, "bin/hard", type=tarfile.LNKTYPE, linkname="bin/suid")
        _add(t, "data", type=tarfile.DIRTYPE, mode=0o755)
        _add(t, "data/top", os.urandom(2_000_000))

    return Image("multi", "multi-layer test image (busybox + 2 layers)", [_tar(base), _tar(middle), _tar(top)]).finish()


def debian_image() -> Image:
    """Debian bookworm minbase from debootstrap (cached under /var/cache/bulwark-bench),
    as one layer, without the contents of /dev, /proc and /sys as images have them."""
    CACHE.mkdir(parents=True, exist_ok=True)
    root = CACHE / "minbase"
    if not root.is_dir():
        say("building Debian minbase with debootstrap (once; cached in /var/cache/bulwark-bench)")
        tmp = CACHE / "minbase.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(tmp), "http://deb.debian.org/debian"],
                       check=True, stdout=subprocess.DEVNULL)
        tmp.rename(root)
    layer = subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--sort=name",
         "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "-C", str(root), "-cf", "-", "."],
        capture_output=True, check=True,
    ).stdout
    return Image("debian", "Debian bookworm minbase (debootstrap)", [layer]).finish()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry on 127.0.0.1, storage in `work`."""

    def __init__(self, work: Path) -> None:
        self.addr = f"127.0.0.1:{free_port()}"
        config = work / "registry.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {work / 'registry'}\n"
            f"http:\n  addr: {self.addr}\n  secret: bench\n"
        )
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=5)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("bench: docker-registry did not start")
                time.sleep(0.1)

    def push(self, repo: str, image: Image) -> str:
        for blob in [image.config, *image.blobs]:
            start = urllib.request.Request(f"http://{self.addr}/v2/{repo}/blobs/uploads/", method="POST")
            with urllib.request.urlopen(start) as r:
                location = r.headers["Location"]
            if location.startswith("/"):
                location = f"http://{self.addr}{location}"
            sep = "&" if "?" in location else "?"
            put = urllib.request.Request(f"{location}{sep}digest={sha256(blob)}", data=blob, method="PUT",
                                         headers={"Content-Type": "application/octet-stream"})
            urllib.request.urlopen(put).close()
        put = urllib.request.Request(f"http://{self.addr}/v2/{repo}/manifests/latest", data=image.manifest, method="PUT",
                                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        urllib.request.urlopen(put).close()
        return f"{self.addr}/{repo}:latest"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def disk_usage(path: Path) -> int:
    """Bytes on disk under `path` (du's block count), hardlinks counted once."""
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout else 0


class Containerd:
    """A containerd of the benchmark's own (fresh root and state per pull)."""

    def __init__(self, base: Path, disabled_plugins: tuple[str, ...] = ()) -> None:
        self.base = base
        self.sock = base / "containerd.sock"
        config = base / "config.toml"
        disabled = ", ".join(f'"{p}"' for p in disabled_plugins)
        config.write_text(
            'version = 2\n'
            f'root = "{base / "root"}"\nstate = "{base / "state"}"\n'
            + (f'disabled_plugins = [{disabled}]\n' if disabled_plugins else '')
            + f'[grpc]\n  address = "{self.sock}"\n'
            '[plugins."io.containerd.grpc.v1.cri"]\n  disable_cgroup = true\n'
        )
        self.proc = subprocess.Popen(["containerd", "--config", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=open(base / "containerd.log", "w"))
        deadline = time.monotonic() + 60
        while subprocess.run(["ctr", "--address", str(self.sock), "version"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"bench: containerd did not start (see {base / 'containerd.log'})")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def short_run_root(base: Path) -> Path:
    return Path("/run") / f"bpb-{hashlib.sha256(str(base).encode()).hexdigest()[:12]}"


@dataclass
class Puller:
    """One tool that pulls: how to run it into a fresh directory, and where its store is."""

    name: str

    def prepare(self, base: Path):
        return Containerd(base) if self.name == "ctr" else None

    def argv(self, bulwark: Path, base: Path, ref: str) -> list[str]:
        if self.name == "bulwark":
            return [str(bulwark), "--store", str(base / "store"), "pull", "-q", ref]
        if self.name == "podman":
            # podman refuses a run root longer than 50 characters.
            return ["podman", "--root", str(base / "store"), "--runroot", str(short_run_root(base)),
                    "--storage-driver", "overlay", "--log-level", "error", "pull", "-q", "--tls-verify=false", ref]
        if self.name == "ctr":
            return ["ctr", "--address", str(base / "containerd.sock"), "-n", "bench", "images", "pull", "--plain-http", ref]
        if self.name == "skopeo":
            return ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{base / 'store'}"]
        raise ValueError(self.name)

    def store(self, base: Path) -> Path:
        return base / ("root" if self.name == "ctr" else "store")


PULLERS = ["bulwark", "podman", "ctr", "skopeo"]

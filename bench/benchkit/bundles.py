"""Bundles: one static busybox root filesystem, shared read-only by every container, and
one hand-written config.json per (variant, runtime). Each config names the rootfs by its
absolute path, so a bundle directory holds nothing but its config.json."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

# The variants a runtime is asked to run, with what each one adds to the default.
VARIANTS = {
    "true": "/bin/true, default config",
    "limits": "/bin/true, memory + pids limits",
    "seccomp": "/bin/true, Docker's default seccomp profile",
    "sleep": "/bin/sleep 3600, the long-running target of exec",
}

MEMORY_LIMIT = 256 * 1024 * 1024
PIDS_LIMIT = 128


def make_rootfs(dest: Path, busybox: str) -> Path:
    """A static busybox with its applets as symlinks, plus the mount points the config
    needs (the rootfs is mounted read-only, so they must exist beforehand)."""
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"]:
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, dest / "bin" / "busybox")
    applets = subprocess.run(
        [str(dest / "bin" / "busybox"), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet == "busybox":  # the list names busybox itself: keep the real binary
            continue
        link = dest / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")
    return dest


def default_config(rootfs: Path, args: list[str]) -> dict:
    """A runc-like default: new pid, network, ipc, uts and mount namespaces; the usual
    /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue and read-only /sys mounts; three
    capabilities; no_new_privs; no terminal; a read-only rootfs."""
    nosuid_noexec_nodev = ["nosuid", "noexec", "nodev"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {k: list(CAPS) for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": nosuid_noexec_nodev + ["mode=1777", "size=65536k"],
            },
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nosuid_noexec_nodev},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": nosuid_noexec_nodev + ["ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def variant_config(variant: str, rootfs: Path, cgroup_parent: str, runtime: str, seccomp: dict) -> dict:
    if variant == "sleep":
        return default_config(rootfs, ["/bin/sleep", "3600"])
    config = default_config(rootfs, ["/bin/true"])
    if variant == "limits":
        config["linux"]["resources"] = {
            "memory": {"limit": MEMORY_LIMIT},
            "pids": {"limit": PIDS_LIMIT},
        }
        # One cgroup per runtime; each container leaves it empty when deleted.
        config["linux"]["cgroupsPath"] = f"{cgroup_parent}/{runtime}"
    elif variant == "seccomp":
        config["linux"]["seccomp"] = copy.deepcopy(seccomp)
    return config


def load_seccomp(path: Path) -> dict:
    """The profile as the OCI `linux.seccomp` object; a whole config is accepted too."""
    data = json.loads(path.read_text())
    if "defaultAction" not in data:
        data = data.get("linux", {}).get("seccomp", data)
    if "defaultAction" not in data:
        raise ValueError(f"{path}: no seccomp defaultAction: not an OCI linux.seccomp object")
    return data


def write_bundles(top: Path, rootfs: Path, runtimes: list[str], cgroup_parent: str, seccomp: dict) -> dict:
    """Writes <top>/<variant>-<runtime>/config.json; returns {(variant, runtime): dir}."""
    bundles = {}
    for variant in VARIANTS:
        for runtime in runtimes:
            bundle = top / f"{variant}-{runtime}"
            bundle.mkdir(parents=True)
            config = variant_config(variant, rootfs, cgroup_parent, runtime, seccomp)
            (bundle / "config.json").write_text(json.dumps(config, indent=2) + "\n")
            bundles[(variant, runtime)] = bundle
    return bundles


def remove_cgroups(cgroup_parent: str) -> None:
    """Removes the (empty) cgroups the limits variant left, in every hierarchy."""
    base = Path("/sys/fs/cgroup")
    candidates = [base / cgroup_parent.lstrip("/")]
    if base.is_dir():
        candidates += [h / cgroup_parent.lstrip("/") for h in base.iterdir() if h.is_dir()]
    for parent in candidates:
        if not parent.is_dir():
            continue
        for child in sorted(parent.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            try:
                os.rmdir(child)
            except OSError:
                pass

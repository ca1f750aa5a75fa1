"""Host preparation: root check, building bulwark-runtime, installing runc and crun from
Debian's packages when missing, the cgroup set-up every runtime can use, and facts about
the machine for the report."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

_CLONE_NEWNS = 0x00020000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_MNT_DETACH = 2
UNIFIED = "/sys/fs/cgroup/unified"


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("bench: run as root (the runtimes create namespaces, mounts and cgroups)")


def build_bulwark(repo: Path) -> Path:
    """`scripts/build.sh` (a static release build); returns target/release/bulwark-runtime."""
    say("building bulwark-runtime (scripts/build.sh: static, release)")
    result = subprocess.run(["scripts/build.sh"], cwd=repo)
    if result.returncode != 0:
        sys.exit(
            "bench: cargo build failed (see above); fix the build or pass --no-build "
            "to measure the binary already in target/release"
        )
    return repo / "target" / "release" / "bulwark-runtime"


def ensure_packages(commands: dict[str, str]) -> None:
    """Installs the Debian package of each command (name -> package) not on PATH."""
    missing = sorted({pkg for cmd, pkg in commands.items() if shutil.which(cmd) is None})
    if not missing:
        return
    say(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        if subprocess.run(argv, env=env).returncode != 0:
            sys.exit(f"bench: {' '.join(argv)} failed; install {' '.join(missing)} by hand")


def _mounted(path: str, fstype: str) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4] == path and fields[sep + 1] == fstype:
                return True
    return False


def hybrid_cgroups_with_v2_controllers() -> bool:
    """True on a hybrid cgroup host (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)
    whose v2 side holds a controller: crun 1.8 refuses to run there at all."""
    if not _mounted(UNIFIED, "cgroup2"):
        return False
    try:
        return bool(Path(UNIFIED, "cgroup.controllers").read_text().split())
    except OSError:
        return False


def hide_unified_hierarchy() -> None:
    """Moves the harness into a private mount namespace and detaches the cgroup2 mount
    there only, so every runtime it starts sees plain cgroup v1. The host's mounts are not
    changed. Must run before the harness starts any thread."""
    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    check(libc.umount2(UNIFIED.encode(), _MNT_DETACH), f"umount {UNIFIED}")


def is_static_elf(path: str) -> bool:
    """True for an ELF executable without a program interpreter (a static binary)."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
            return False
        phoff = int.from_bytes(header[32:40], "little")
        phentsize = int.from_bytes(header[54:56], "little")
        phnum = int.from_bytes(header[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(
        int.from_bytes(table[i * phentsize : i * phentsize + 4], "little") != pt_interp
        for i in range(phnum)
    )


def shared_library_bytes(path: str) -> int:
    """Total size of the shared libraries `path` loads, leaving out the C library and
    the dynamic loader that every program here shares."""
    total = 0
    for line in command_output(["ldd", path]).splitlines():
        parts = line.split()
        if "=>" not in parts or len(parts) < 3 or not parts[2].startswith("/"):
            continue
        name = parts[0]
        if name.startswith(("libc.so", "ld-linux", "libm.so", "libpthread.so", "libdl.so")):
            continue
        try:
            total += os.path.getsize(os.path.realpath(parts[2]))
        except OSError:
            pass
    return total


def command_output(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({e})"
    return (out.stdout or out.stderr).strip()


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def git_revision(repo: Path) -> str:
    rev = command_output(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    return rev + (" (with uncommitted changes)" if dirty else "")


def machine_facts() -> dict:
    uname = os.uname()
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    return {
        "kernel": f"{uname.sysname} {uname.release}",
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "loadavg_at_start": list(os.getloadavg()),
    }

"""Timed spawning: start a command, wait for it, and report how long that took as its
caller sees it (fork + exec + wait), its exit status and its peak RSS (wait4's
ru_maxrss); and the care of orphaned container processes.

Every subject (the runtimes and the floor) is measured through `Spawner`, so the
harness's own overhead is the same for all of them.
"""
from __future__ import annotations

import ctypes
import os
import select
import subprocess
from dataclasses import dataclass
from pathlib import Path

# A fixed environment, the same for every command, so no subject sees a different one.
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C",
}

_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Outcome:
    """What one command did."""

    ms: float
    code: int | None  # exit status; negative when killed by a signal; None if it hung
    maxrss_kib: int
    output_path: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def first_line(self) -> str:
        """The first non-empty line the command printed (stdout and stderr together)."""
        if self.code is None:
            return "timed out (killed by the harness)"
        try:
            with open(self.output_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.strip():
                        return line.strip()
        except OSError:
            pass
        return f"exit status {self.code} and no output"


def become_subreaper() -> None:
    """Adopt orphans: container inits left behind by `create`/`run -d` are re-parented to
    the harness instead of to the host's pid 1, which may never reap them (a zombie init
    makes some runtimes think the container still runs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


def reap_orphans() -> int:
    """Reap every exited child without blocking. Only call between measurements, when the
    harness waits for no particular child (it would steal that child's status)."""
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped += 1


class Spawner:
    """Runs timed commands through the small C process in spawner.c (see there for why
    and for the protocol). Every subject is measured this way: fork, exec, wait4."""

    def __init__(self, binary: str) -> None:
        # Its own session: a Ctrl-C at the terminal reaches the harness, which then cleans
        # up, but not the commands in flight, which finish or time out.
        self._proc = subprocess.Popen(
            [binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV, start_new_session=True
        )

    def timed(self, argv: list[str], output_path: str, timeout_s: float) -> Outcome:
        """Runs one command; the time covers fork to exit collected, as a caller sees it."""
        _, outcomes = self._request([(argv, output_path)], timeout_s)
        return outcomes[0]

    def timed_together(
        self, argvs: list[list[str]], output_paths: list[str], timeout_s: float
    ) -> tuple[float, list[Outcome]]:
        """Starts all commands back to back, then waits for all. Returns the total time
        from the first fork to the last exit, and each command's outcome (its `ms` runs
        from the first fork to its own exit)."""
        return self._request(list(zip(argvs, output_paths)), timeout_s)

    def close(self) -> None:
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()

    def _request(self, commands: list[tuple[list[str], str]], timeout_s: float) -> tuple[float, list[Outcome]]:
        fields = [str(len(commands)), str(int(timeout_s * 1000))]
        for argv, output_path in commands:
            fields += [output_path, str(len(argv)), *argv]
        self._proc.stdin.write(b"".join(os.fsencode(f) + b"\0" for f in fields))
        self._proc.stdin.flush()
        outcomes = []
        for _, output_path in commands:
            status, maxrss, ns = self._line().split()
            code = None if status == "hung" else int(status)
            outcomes.append(Outcome(int(ns) / 1e6, code, int(maxrss), output_path))
        _, total_ns = self._line().split()
        return int(total_ns) / 1e6, outcomes

    def _line(self) -> str:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the spawner process died")
        return line.decode()


def build_spawner(work: Path) -> str:
    """Compiles spawner.c into the work directory."""
    source = Path(__file__).with_name("spawner.c")
    binary = work / "spawner"
    subprocess.run(["cc", "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return str(binary)


def wait_for_exit(pid: int, timeout_s: float) -> bool:
    """Waits until process `pid` has exited (reaping it if it is the harness's child).
    Returns False if it still runs after `timeout_s`."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(int(timeout_s * 1000)):
            return False
    finally:
        os.close(pidfd)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return True

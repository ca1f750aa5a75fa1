"""The subjects under test: each runtime with its own state directory (`--root`), the
containers it currently holds, and how to remove them whatever happened."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
from dataclasses import dataclass, field

from . import spawn

CLEANUP_TIMEOUT_S = 20


@dataclass
class Runtime:
    """One OCI runtime with runc's command line."""

    name: str
    path: str
    root: str
    live: set[str] = field(default_factory=set)
    _ids: itertools.count = field(default_factory=itertools.count)

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", self.root, *args]

    def new_id(self, tag: str) -> str:
        """A container id used once; it counts as live until deleted."""
        cid = f"b{os.getpid()}-{self.name}-{tag}-{next(self._ids)}"
        self.live.add(cid)
        return cid

    def untimed(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            env=spawn.ENV,
            stdin=subprocess.DEVNULL,
            timeout=CLEANUP_TIMEOUT_S,
        )

    def init_pid(self, cid: str) -> int | None:
        """The container's init pid from `state`, or None if the runtime cannot say."""
        try:
            out = self.untimed("state", cid)
            return int(json.loads(out.stdout)["pid"]) if out.returncode == 0 else None
        except (ValueError, KeyError, TypeError, subprocess.TimeoutExpired):
            return None

    def force_delete(self, cid: str) -> None:
        """`delete --force`, errors ignored: the container may already be gone."""
        try:
            self.untimed("delete", "--force", cid)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.live.discard(cid)

    def forget(self, cid: str) -> None:
        """The runtime removed the container itself (a foreground `run`, a `delete`)."""
        self.live.discard(cid)

    def clean_up(self) -> list[str]:
        """Deletes every container the harness created, then any the runtime still lists
        in the harness's state directory. Returns the ids it could not remove."""
        for cid in sorted(self.live):
            self.force_delete(cid)
        leftovers = []
        try:
            listed = self.untimed("list", "-q").stdout.split()
        except (OSError, subprocess.TimeoutExpired):
            listed = []
        for cid in listed:
            self.force_delete(cid)
            try:
                still = cid in self.untimed("list", "-q").stdout.split()
            except (OSError, subprocess.TimeoutExpired):
                still = True
            if still:
                leftovers.append(cid)
        return leftovers


@dataclass
class Floor:
    """A baseline that is not a runtime: the least a `run` of /bin/true could cost."""

    name: str
    argv_run: list[str]

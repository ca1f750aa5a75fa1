"""The measurements. Within every round each measurement visits the subjects in a freshly
shuffled order, so drift on a noisy machine spreads over all of them instead of
favouring whichever happens to run first."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from . import spawn
from .host import say
from .runtimes import Floor, Runtime
from .stats import Results

# id -> (label, kind). "per-container" figures are one command each; "batch" are totals.
MEASUREMENTS = {
    "run": ("run /bin/true (create+start+wait+delete)", "per-container"),
    "create": ("create alone", "per-container"),
    "start": ("start alone (until it returns)", "per-container"),
    "delete": ("delete alone (stopped container)", "per-container"),
    "exec": ("exec /bin/true into a running container", "per-container"),
    "run-limits": ("run /bin/true, memory+pids limits", "per-container"),
    "run-seccomp": ("run /bin/true, Docker default seccomp", "per-container"),
    "sequential": ("{sequential} containers in sequence (run, total)", "batch"),
    "parallel": ("{parallel} started at once (run -d, total)", "batch"),
}
VARIANT_OF_RUN = {"run": "true", "run-limits": "limits", "run-seccomp": "seccomp"}


@dataclass
class Settings:
    rounds: int
    batch_rounds: int
    sequential: int
    parallel: int
    timeout_s: float


class Bench:
    def __init__(
        self,
        spawner: spawn.Spawner,
        runtimes: list[Runtime],
        floors: list[Floor],
        bundles: dict,
        work: Path,
        settings: Settings,
        rng: random.Random,
    ) -> None:
        self.spawner = spawner
        self.runtimes = runtimes
        self.floors = floors
        self.bundles = bundles
        self.settings = settings
        self.rng = rng
        self.results = Results()
        self.log = str(work / "command.log")
        self.par_dir = work / "parallel-logs"
        self.par_dir.mkdir()
        self.exec_target: dict[str, str] = {}
        for measurement in MEASUREMENTS:  # fix the report order up front
            for rt in runtimes:
                self.results.get(measurement, rt.name)
            if measurement == "run":
                for floor in floors:
                    self.results.get(measurement, floor.name)

    # --- preparation --------------------------------------------------------------

    def probe(self) -> None:
        """One untimed `run` of each variant per runtime (it also warms the caches). A
        runtime that refuses a variant has it recorded as unsupported, with its words."""
        for rt in self.runtimes:
            for measurement, variant in VARIANT_OF_RUN.items():
                cid = rt.new_id("probe")
                out = self.spawner.timed(self._run_argv(rt, variant, cid), self.log, self.settings.timeout_s)
                if out.ok:
                    rt.forget(cid)
                    continue
                rt.force_delete(cid)
                reason = out.first_line()
                say(f"{rt.name}: {VARIANT_OF_RUN[measurement]} variant unsupported: {reason}")
                measurements = list(MEASUREMENTS) if variant == "true" else [measurement]
                for m in measurements:
                    series = self.results.get(m, rt.name)
                    series.unsupported = series.unsupported or reason
        for floor in self.floors:
            out = self.spawner.timed(floor.argv_run, self.log, self.settings.timeout_s)
            if not out.ok:
                self.results.get("run", floor.name).unsupported = out.first_line()
        spawn.reap_orphans()

    def start_exec_targets(self) -> None:
        """A long-running container per runtime for `exec` to enter."""
        for rt in self._able("exec"):
            cid = rt.new_id("exec")
            out = self.spawner.timed(self._run_argv(rt, "sleep", cid, detach=True), self.log, self.settings.timeout_s)
            if out.ok:
                self.exec_target[rt.name] = cid
            else:
                rt.force_delete(cid)
                self.results.get("exec", rt.name).unsupported = out.first_line()

    # --- rounds -------------------------------------------------------------------

    def per_container_round(self) -> None:
        for measurement, variant in VARIANT_OF_RUN.items():
            subjects = self._able(measurement) + (self._floors() if measurement == "run" else [])
            for subject in self._shuffled(subjects):
                self._run_once(subject, variant, measurement)
            if measurement == "run":
                for rt in self._shuffled(self._able("create")):
                    self._phases_once(rt)
                for rt in self._shuffled([r for r in self._able("exec") if r.name in self.exec_target]):
                    self._exec_once(rt)
        spawn.reap_orphans()

    def batch_round(self) -> None:
        for rt in self._shuffled(self._able("sequential")):
            self._sequential_once(rt)
        for rt in self._shuffled(self._able("parallel")):
            self._parallel_once(rt)
        spawn.reap_orphans()

    # --- one sample each ----------------------------------------------------------

    def _run_once(self, subject: Runtime | Floor, variant: str, measurement: str) -> None:
        series = self.results.get(measurement, subject.name)
        if isinstance(subject, Floor):
            out = self.spawner.timed(subject.argv_run, self.log, self.settings.timeout_s)
            if out.ok:
                series.add(out.ms, out.maxrss_kib)
            else:
                series.fail(out.first_line())
            return
        cid = subject.new_id(variant)
        out = self.spawner.timed(self._run_argv(subject, variant, cid), self.log, self.settings.timeout_s)
        if out.ok:
            series.add(out.ms, out.maxrss_kib)
            subject.forget(cid)
        else:
            series.fail(out.first_line())
            subject.force_delete(cid)

    def _phases_once(self, rt: Runtime) -> None:
        """create, start and delete of one container, each timed alone."""
        timeout = self.settings.timeout_s
        cid = rt.new_id("phase")
        bundle = str(self.bundles[("true", rt.name)])
        out = self.spawner.timed(rt.argv("create", "--bundle", bundle, cid), self.log, timeout)
        if not self._record("create", rt, out):
            rt.force_delete(cid)
            return
        pid = rt.init_pid(cid)  # untimed
        out = self.spawner.timed(rt.argv("start", cid), self.log, timeout)
        if not self._record("start", rt, out):
            rt.force_delete(cid)
            return
        if not self._wait_stopped(rt, cid, pid):
            self.results.get("delete", rt.name).fail("container still running after start + 10 s")
            rt.force_delete(cid)
            return
        out = self.spawner.timed(rt.argv("delete", cid), self.log, timeout)
        if self._record("delete", rt, out):
            rt.forget(cid)
        else:
            rt.force_delete(cid)

    def _exec_once(self, rt: Runtime) -> None:
        cid = self.exec_target[rt.name]
        out = self.spawner.timed(rt.argv("exec", cid, "/bin/true"), self.log, self.settings.timeout_s)
        self._record("exec", rt, out)

    def _sequential_once(self, rt: Runtime) -> None:
        """N foreground `run`s back to back; the total is the sum of their times, so the
        harness's own work between two commands is left out."""
        series = self.results.get("sequential", rt.name)
        total = 0.0
        for _ in range(self.settings.sequential):
            cid = rt.new_id("seq")
            out = self.spawner.timed(self._run_argv(rt, "true", cid), self.log, self.settings.timeout_s)
            if not out.ok:
                series.fail(out.first_line())
                rt.force_delete(cid)
                return
            rt.forget(cid)
            total += out.ms
        series.add(total)

    def _parallel_once(self, rt: Runtime) -> None:
        """`run -d` of N containers at once; the total ends when every `run` returned,
        that is when every container was started. Deleting them is not timed."""
        series = self.results.get("parallel", rt.name)
        ids = [rt.new_id("par") for _ in range(self.settings.parallel)]
        argvs = [self._run_argv(rt, "true", cid, detach=True) for cid in ids]
        logs = [str(self.par_dir / f"{i}.log") for i in range(len(ids))]
        total, outs = self.spawner.timed_together(argvs, logs, self.settings.timeout_s)
        failed = [o for o in outs if not o.ok]
        if failed:
            series.fail(f"{len(failed)} of {len(ids)} failed, first: {failed[0].first_line()}")
        else:
            series.add(total)
        for cid in ids:
            rt.force_delete(cid)

    # --- helpers ------------------------------------------------------------------

    def _record(self, measurement: str, rt: Runtime, out: spawn.Outcome) -> bool:
        series = self.results.get(measurement, rt.name)
        if out.ok:
            series.add(out.ms, out.maxrss_kib)
        else:
            series.fail(out.first_line())
        return out.ok

    def _wait_stopped(self, rt: Runtime, cid: str, pid: int | None) -> bool:
        if pid is not None:
            return spawn.wait_for_exit(pid, 10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = rt.untimed("state", cid)
            if '"stopped"' in state.stdout:
                return True
            time.sleep(0.005)
        return False

    def _run_argv(self, rt: Runtime, variant: str, cid: str, detach: bool = False) -> list[str]:
        bundle = str(self.bundles[(variant, rt.name)])
        return rt.argv("run", *(["-d"] if detach else []), "--bundle", bundle, cid)

    def _able(self, measurement: str) -> list[Runtime]:
        return [rt for rt in self.runtimes if not self.results.get(measurement, rt.name).unsupported]

    def _floors(self) -> list[Floor]:
        return [f for f in self.floors if not self.results.get("run", f.name).unsupported]

    def _shuffled(self, items: list) -> list:
        items = list(items)
        self.rng.shuffle(items)
        return items

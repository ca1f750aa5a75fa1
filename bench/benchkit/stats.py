"""The numbers reported for each series of samples, and where samples are kept."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


def summary(samples: list[float]) -> dict | None:
    """median, min, p90 (nearest rank) and max; None for no samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "p90": p90,
        "max": ordered[-1],
        "n": len(ordered),
    }


@dataclass
class Series:
    """All samples of one measurement for one subject."""

    measurement: str
    subject: str
    samples_ms: list[float] = field(default_factory=list)
    maxrss_kib: list[int] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""
    unsupported: str = ""

    def add(self, ms: float, maxrss_kib: int | None = None) -> None:
        self.samples_ms.append(ms)
        if maxrss_kib is not None:
            self.maxrss_kib.append(maxrss_kib)

    def fail(self, message: str) -> None:
        self.failures += 1
        if not self.first_failure:
            self.first_failure = message

    def to_json(self) -> dict:
        return {
            "measurement": self.measurement,
            "subject": self.subject,
            "status": "unsupported" if self.unsupported else ("ok" if self.samples_ms else "failed"),
            "unsupported": self.unsupported or None,
            "failures": self.failures,
            "first_failure": self.first_failure or None,
            "summary_ms": summary(self.samples_ms),
            "samples_ms": [round(s, 4) for s in self.samples_ms],
            "maxrss_kib": self.maxrss_kib or None,
        }


class Results:
    """Series keyed by (measurement, subject), in the order they were first asked for."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], Series] = {}

    def get(self, measurement: str, subject: str) -> Series:
        key = (measurement, subject)
        if key not in self._series:
            self._series[key] = Series(measurement, subject)
        return self._series[key]

    def all(self) -> list[Series]:
        return list(self._series.values())

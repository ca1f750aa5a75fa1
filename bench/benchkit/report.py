"""The reports: everything as JSON, and the summary as a Markdown table."""
from __future__ import annotations

import json
from pathlib import Path

from .scenarios import MEASUREMENTS
from .stats import Series, summary

REFERENCE = "crun"


def label(measurement: str, counts: dict) -> str:
    return MEASUREMENTS[measurement][0].format(**counts)


def ratio_to_reference(series: Series, all_series: list[Series]) -> float | None:
    """This subject's median over crun's median for the same measurement."""
    ref = next(
        (s for s in all_series if s.measurement == series.measurement and s.subject == REFERENCE),
        None,
    )
    mine, theirs = summary(series.samples_ms), ref and summary(ref.samples_ms)
    if not mine or not theirs or theirs["median"] <= 0:
        return None
    return mine["median"] / theirs["median"]


def write_json(path: Path, meta: dict, all_series: list[Series], sizes: dict) -> None:
    entries = []
    for s in all_series:
        entry = s.to_json()
        entry["label"] = label(s.measurement, meta["settings"])
        entry["kind"] = MEASUREMENTS[s.measurement][1]
        ratio = ratio_to_reference(s, all_series)
        entry["median_ratio_to_crun"] = round(ratio, 4) if ratio is not None else None
        entries.append(entry)
    doc = {"meta": meta, "size_bytes": sizes, "results": entries}
    path.write_text(json.dumps(doc, indent=2) + "\n")


def _ms(v: float) -> str:
    if v < 100:
        return f"{v:.2f}"
    return f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(kind: str, all_series: list[Series], counts: dict) -> tuple[list[str], list[str]]:
    rows = [
        "| measurement | runtime | median | min | p90 | max | median ÷ crun | n |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    previous = None
    for s in all_series:
        if MEASUREMENTS[s.measurement][1] != kind:
            continue
        name = label(s.measurement, counts) if s.measurement != previous else ""
        previous = s.measurement
        if s.unsupported:
            rows.append(f"| {name} | {s.subject} | {_cell('unsupported: ' + s.unsupported)} | | | | | 0 |")
            continue
        stat = summary(s.samples_ms)
        n = str(stat["n"] if stat else 0) + (f" ({s.failures} failed)" if s.failures else "")
        if s.failures:
            notes.append(f"- {label(s.measurement, counts)}, {s.subject}: {s.failures} failed, first: `{s.first_failure}`")
        if not stat:
            verdict = "failed" if s.failures else "not measured"
            rows.append(f"| {name} | {s.subject} | {verdict} | | | | | {n} |")
            continue
        ratio = ratio_to_reference(s, all_series)
        ratio_text = f"{ratio:.2f}" if ratio is not None else "n/a"
        rows.append(
            f"| {name} | {s.subject} | {_ms(stat['median'])} | {_ms(stat['min'])} | "
            f"{_ms(stat['p90'])} | {_ms(stat['max'])} | {ratio_text} | {n} |"
        )
    return rows, notes


def _memory_table(all_series: list[Series], sizes: dict) -> list[str]:
    rows = [
        "| runtime | binary size | shared libraries (not libc) | peak RSS of `run` /bin/true, median | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in all_series:
        if s.measurement != "run":
            continue
        size = sizes.get(s.subject, {})
        size_text = f"{size['binary'] / 2**20:.2f} MiB | {size['shared_libraries'] / 2**20:.2f} MiB" if size else "- | -"
        if s.maxrss_kib:
            rss = sorted(s.maxrss_kib)
            med = rss[len(rss) // 2] if len(rss) % 2 else (rss[len(rss) // 2 - 1] + rss[len(rss) // 2]) / 2
            rows.append(f"| {s.subject} | {size_text} | {med / 1024:.1f} MiB | {rss[-1] / 1024:.1f} MiB |")
        else:
            rows.append(f"| {s.subject} | {size_text} | - | - |")
    return rows


def markdown(meta: dict, all_series: list[Series], sizes: dict) -> str:
    counts = meta["settings"]
    versions = "; ".join(f"{k}: {v}" for k, v in meta["versions"].items())
    lines = [
        "# Runtime benchmark",
        "",
        f"{meta['date']} on {meta['machine']['kernel']}, {meta['machine']['cpus']} CPUs "
        f"({meta['machine']['cpu_model']}), load average {meta['machine']['loadavg_at_start'][0]:.2f} at start, "
        f"{meta['machine']['loadavg_at_end'][0]:.2f} at end. "
        f"{versions}.",
        "",
        f"Times in milliseconds, from fork to the command's exit, as its caller sees it. "
        f"{counts['rounds']} rounds for per-container figures, {counts['batch_rounds']} for batch totals; "
        f"subjects interleaved in a new random order every round (seed {meta['seed']}). "
        f"p90 is the nearest-rank 90th percentile. Measuring took {meta['duration_s']:.0f} s, "
        f"{meta['total_duration_s']:.0f} s with the build and set-up.",
    ]
    for note in meta.get("notes", []):
        lines += ["", f"Note: {note}"]
    per_container, notes_a = _table("per-container", all_series, counts)
    batch, notes_b = _table("batch", all_series, counts)
    lines += ["", "## Per container (ms)", "", *per_container]
    lines += ["", "## Batches, total (ms)", "", *batch]
    lines += ["", "## Size and memory", "", *_memory_table(all_series, sizes)]
    if notes_a or notes_b:
        lines += ["", "## Failures", "", *notes_a, *notes_b]
    return "\n".join(lines) + "\n"

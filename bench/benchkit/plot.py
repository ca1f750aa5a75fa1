"""The PNG: medians as bars with a whisker up to p90, per-container figures and batch
totals side by side. Needs matplotlib; without it the harness says so and goes on."""
from __future__ import annotations

from pathlib import Path

from .report import label
from .scenarios import MEASUREMENTS
from .stats import Series, summary

COLORS = {
    "bulwark": "#2b6cb0",
    "runc": "#718096",
    "crun": "#dd6b20",
    "fork+exec": "#38a169",
    "unshare": "#805ad5",
}


def plot_png(path: Path, all_series: list[Series], counts: dict) -> str | None:
    """Writes the chart; returns why it could not, or None when it did."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (python3 -m pip install matplotlib)"

    kinds = [("per-container", "per container (ms)"), ("batch", "batch totals (ms)")]
    fig, axes = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [3.2, 1]})
    for ax, (kind, title) in zip(axes, kinds):
        measurements = [m for m, (_, k) in MEASUREMENTS.items() if k == kind]
        labelled = set()
        for x, m in enumerate(measurements):
            group = [s for s in all_series if s.measurement == m]
            width = 0.8 / max(1, len(group))
            for i, s in enumerate(group):
                offset = x - 0.4 + width * (i + 0.5)
                stat = summary(s.samples_ms)
                if not stat:
                    note = " unsupported" if s.unsupported else (" failed" if s.failures else " not measured")
                    ax.text(offset, 0, note, rotation=90, ha="center", va="bottom", fontsize=7)
                    continue
                ax.bar(
                    offset, stat["median"], width,
                    label=None if s.subject in labelled else s.subject,
                    color=COLORS.get(s.subject),
                    yerr=[[0], [stat["p90"] - stat["median"]]],
                    capsize=2, error_kw={"elinewidth": 0.8},
                )
                labelled.add(s.subject)
        ax.set_xticks(range(len(measurements)))
        ax.set_xticklabels([label(m, counts) for m in measurements], rotation=25, ha="right", fontsize=8)
        ax.set_title(title)
        ax.set_ylabel("ms")
        ax.grid(axis="y", alpha=0.3)
        if labelled:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center")
    fig.suptitle("Medians; whiskers reach the 90th percentile")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None

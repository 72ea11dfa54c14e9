"""The files of a comparison: ``comparison.csv``, ``comparison.md`` and ``comparison.png``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.kpi import SUMMARY_KEYS
from sim.stats import estimate, paired_change

REPORTED = (
    "mean_delay_s",
    "mean_travel_time_s",
    "mean_waiting_time_s",
    "mean_stops",
    "throughput_veh_h",
    "pedestrian_mean_delay_s",
    "bus_mean_delay_s",
    "co2_kg",
    "guard_violations",
    "parking_occupancy_mean",
    "parking_search_time_mean_s",
    "parking_search_distance_mean_m",
    "parking_turnover_per_bay_h",
    "parking_overstay_rate",
    "public_space_efficiency",
    "public_space_efficiency_rotating_loading",
    "parking_rotating_peak_occupancy",
    "sensor_occupancy_accuracy",
)
"""The metrics in the markdown table; the CSV has every summary key."""


def group_of(row: dict[str, Any]) -> str:
    """What a row is compared as: its ``group`` label (controller and/or variant) or controller."""
    return str(row.get("group") or row["controller"])


def by_seed(rows: Sequence[dict[str, Any]], group: str, metric: str) -> dict[int, float]:
    return {
        int(r["seed"]): float(r[metric])
        for r in rows
        if group_of(r) == group and r.get(metric) is not None
    }


def _groups(rows: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(group_of(r) for r in rows))


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        extra = [key for key in rows[0] if key not in SUMMARY_KEYS] if rows else []
        writer = csv.DictWriter(f, fieldnames=[*extra, *SUMMARY_KEYS], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def mean_cell(values: Sequence[float]) -> str:
    """``mean ± half-width of the 95% t-interval`` (``n/a`` without values)."""
    if not values:
        return "n/a"
    est = estimate(values)
    hw = "" if est.half_width is None else f" ± {est.half_width:.2f}"
    return f"{est.mean:.2f}{hw}"


def change_cell(baseline: dict[int, float], other: dict[int, float]) -> str:
    """``+x.x% [low, high]``: the paired change (by seed) against ``baseline``, 95% interval."""
    change = paired_change(baseline, other)
    if change is None or change.percent is None:
        return "n/a"
    interval = change.percent_interval()
    ci = "" if interval is None else f" [{interval[0]:+.1f}, {interval[1]:+.1f}]"
    return f"{change.percent:+.1f}%{ci}"


def markdown(rows: Sequence[dict[str, Any]], title: str) -> str:
    """Mean and 95% CI per group, then the paired change against the first group."""
    groups = _groups(rows)
    seeds = sorted({int(r["seed"]) for r in rows})
    lines = [f"# {title}", "", f"Seeds: {', '.join(map(str, seeds))} (paired across groups). "
             "Cells: mean ± half-width of the 95% t-interval.", ""]  # fmt: skip
    lines += ["| metric | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
    reported = [m for m in REPORTED if any(r.get(m) is not None for r in rows)]
    for metric in reported:
        cells = [mean_cell(list(by_seed(rows, group, metric).values())) for group in groups]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    if len(groups) > 1:
        base = groups[0]
        lines += ["", f"Change against `{base}` (paired by seed; 95% CI of the change):", ""]
        lines += ["| metric | " + " | ".join(groups[1:]) + " |", "|---" * len(groups) + "|"]
        for metric in reported:
            base_values = by_seed(rows, base, metric)
            cells = [change_cell(base_values, by_seed(rows, g, metric)) for g in groups[1:]]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_delay(path: Path, rows: Sequence[dict[str, Any]], title: str) -> None:
    """Mean delay per group with its 95% CI, and each seed's value as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(rows)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(groups) + 2), 3.6), dpi=120)
    for i, group in enumerate(groups):
        values = list(by_seed(rows, group, "mean_delay_s").values())
        if not values:
            continue
        est = estimate(values)
        ax.bar(i, est.mean, color="#8da0b6", width=0.6)
        if est.half_width is not None:
            ax.errorbar(i, est.mean, yerr=est.half_width, color="black", capsize=6)
        ax.scatter([i] * len(values), values, color="#1f2d3d", s=12, zorder=3)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("mean delay per vehicle (s)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_comparison(out: Path, rows: Sequence[dict[str, Any]], title: str) -> str:
    """Write the three files into ``out``; return the markdown (for printing)."""
    write_csv(out / "comparison.csv", rows)
    text = markdown(rows, title)
    (out / "comparison.md").write_text(text, encoding="utf-8")
    plot_delay(out / "comparison.png", rows, title)
    return text

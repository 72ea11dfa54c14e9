"""A study's report: ``report.md`` and a self-contained ``report.html`` with its plots.

Per-KPI distributions (every run a dot, each group's mean with its 95% interval), the paired
changes each comparison asks for (per seed, against the baseline, within each group of the
other factors, with 95% intervals), and mean delay against demand scale per controller.
Statistics are those of ``ccsim compare`` (``sim.stats``, ``sim.report``).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sim.report import REPORTED, by_seed, change_cell, mean_cell
from sim.stats import estimate, paired_change
from sim.study_data import RUNS
from sim.study_file import Comparison, Study

Row = dict[str, Any]
FACTORS = ("scenario", "variant", "scale", "controller")


def _level(row: Row, factor: str) -> str:
    value = row[factor]
    return f"{value:g}" if isinstance(value, float) else str(value)


def _context(row: Row, comparison: Comparison, varying: Sequence[str]) -> str:
    """The group of the other factors a row is compared within (``""``: the whole study)."""
    parts = [("x" if f == "scale" else "") + _level(row, f) for f in varying if f != comparison.factor]
    return " ".join(parts)


def _varying(rows: Sequence[Row]) -> list[str]:
    return [f for f in FACTORS if len({r[f] for r in rows}) > 1]


def _kpis(study: Study, rows: Sequence[Row]) -> list[str]:
    wanted = study.kpis or REPORTED
    return [k for k in wanted if any(isinstance(r.get(k), int | float) for r in rows)]


def _relabel(rows: Sequence[Row], factor: str) -> list[Row]:
    return [{**r, "group": _level(r, factor)} for r in rows]


def _changes(rows: Sequence[Row], comparison: Comparison, kpis: Sequence[str]) -> list[str]:
    lines: list[str] = []
    varying = _varying(rows)
    contexts = list(dict.fromkeys(_context(r, comparison, varying) for r in rows))
    for context in contexts:
        within = [r for r in rows if _context(r, comparison, varying) == context]
        within = _relabel(within, comparison.factor)
        levels = [lv for lv in dict.fromkeys(r["group"] for r in within) if lv != comparison.baseline]
        if not levels or not any(r["group"] == comparison.baseline for r in within):
            continue
        lines += ["", f"### {context or 'all runs'}", ""]
        lines += ["| KPI | " + " | ".join(levels) + " |", "|---" * (len(levels) + 1) + "|"]
        for kpi in kpis:
            base = by_seed(within, comparison.baseline, kpi)
            cells = [change_cell(base, by_seed(within, level, kpi)) for level in levels]
            lines.append(f"| {kpi} | " + " | ".join(cells) + " |")
    return lines


def markdown(study: Study, rows: Sequence[Row], failed: int, plots: dict[str, str]) -> str:
    kpis = _kpis(study, rows)
    groups = list(dict.fromkeys(r["group"] for r in rows))
    seeds = sorted({int(r["seed"]) for r in rows})
    lines = [f"# Study: {study.name}", ""]
    lines.append(f"{len(rows)} runs finished, {failed} failed; seeds {', '.join(map(str, seeds))}, "
                 "paired across groups. The data: `runs.parquet` (one row per run, every summary "
                 "key), `series.parquet` (every run's interval series).")  # fmt: skip
    lines += ["", "## KPIs per group", "", "Mean ± half-width of the 95% t-interval over seeds.", ""]
    lines += ["| group | " + " | ".join(kpis) + " |", "|---" * (len(kpis) + 1) + "|"]
    for group in groups:
        cells = [mean_cell(list(by_seed(rows, group, k).values())) for k in kpis]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    if "distributions" in plots:
        lines += ["", f"![KPI distributions]({plots['distributions']})"]
    for comparison in study.comparisons:
        lines += ["", f"## {comparison.factor}: change against `{comparison.baseline}`", ""]
        lines.append("Paired by seed; the 95% interval of the change.")
        lines += _changes(rows, comparison, kpis)
        name = f"change-{comparison.factor}"
        if name in plots:
            lines += ["", f"![paired changes, {comparison.factor}]({plots[name]})"]
    if "delay-vs-scale" in plots:
        lines += ["", "## Mean delay against demand scale", ""]
        lines.append(f"![mean delay against demand scale]({plots['delay-vs-scale']})")
    return "\n".join(lines) + "\n"


# --- plots ---------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_distributions(path: Path, rows: Sequence[Row], kpis: Sequence[str]) -> None:
    plt = _pyplot()
    groups = list(dict.fromkeys(r["group"] for r in rows))
    cols = min(3, len(kpis))
    nrows = (len(kpis) + cols - 1) // cols
    width = max(3.2, 0.55 * len(groups) + 1.5)
    fig, axes = plt.subplots(nrows, cols, figsize=(width * cols, 2.9 * nrows), dpi=100, squeeze=False)
    for ax, kpi in zip(axes.flat, kpis, strict=False):
        for i, group in enumerate(groups):
            values = list(by_seed(rows, group, kpi).values())
            if not values:
                continue
            ax.scatter([i] * len(values), values, color="#1f2d3d", s=10, alpha=0.7, zorder=3)
            est = estimate(values)
            ax.errorbar(i + 0.18, est.mean, yerr=est.half_width or 0.0, fmt="o", color="#c0392b",
                        capsize=4, markersize=4)  # fmt: skip
        ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=7)
        ax.set_title(kpi, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(kpis) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_changes(path: Path, rows: Sequence[Row], comparison: Comparison, kpis: Sequence[str]) -> bool:
    """Forest plot: % change with its 95% interval, per level and group, one panel per KPI."""
    entries: list[tuple[str, str, str]] = []  # (label, context, level)
    varying = _varying(rows)
    for context in dict.fromkeys(_context(r, comparison, varying) for r in rows):
        within = [r for r in rows if _context(r, comparison, varying) == context]
        for level in dict.fromkeys(_level(r, comparison.factor) for r in within):
            if level != comparison.baseline:
                entries.append((f"{level} {context}".strip(), context, level))
    if not entries:
        return False
    plt = _pyplot()
    cols = min(3, len(kpis))
    nrows = (len(kpis) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 0.35 * len(entries) * nrows + 1.6),
                             dpi=100, squeeze=False)  # fmt: skip
    for ax, kpi in zip(axes.flat, kpis, strict=False):
        for y, (_label, context, level) in enumerate(entries):
            within = [r for r in rows if _context(r, comparison, varying) == context]
            within = _relabel(within, comparison.factor)
            change = paired_change(by_seed(within, comparison.baseline, kpi),
                                   by_seed(within, level, kpi))  # fmt: skip
            if change is None or change.percent is None:
                continue
            interval = change.percent_interval()
            err = None if interval is None else [[change.percent - interval[0]],
                                                 [interval[1] - change.percent]]  # fmt: skip
            ax.errorbar(change.percent, y, xerr=err, fmt="o", color="#1f2d3d", capsize=3)
        ax.axvline(0.0, color="#c0392b", linewidth=0.8)
        ax.set_yticks(range(len(entries)), [e[0] for e in entries], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{kpi}: % vs {comparison.baseline}", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(kpis) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_delay_vs_scale(path: Path, rows: Sequence[Row]) -> bool:
    """Mean delay (95% interval) against demand scale, a line per controller, a panel per
    scenario and variant. Only when the study varies the scale."""
    if len({r["scale"] for r in rows}) < 2 or not any(r.get("mean_delay_s") is not None for r in rows):
        return False
    plt = _pyplot()
    panels = list(dict.fromkeys((r["scenario"], r["variant"]) for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), dpi=100, squeeze=False)
    for ax, (scenario, variant) in zip(axes.flat, panels, strict=True):
        panel = [r for r in rows if r["scenario"] == scenario and r["variant"] == variant]
        for controller in dict.fromkeys(r["controller"] for r in panel):
            scales, means, errors = [], [], []
            for scale in sorted({r["scale"] for r in panel}):
                values = [float(r["mean_delay_s"]) for r in panel if r["controller"] == controller
                          and r["scale"] == scale and r.get("mean_delay_s") is not None]  # fmt: skip
                if values:
                    est = estimate(values)
                    scales.append(scale)
                    means.append(est.mean)
                    errors.append(est.half_width or 0.0)
            ax.errorbar(scales, means, yerr=errors, marker="o", capsize=3, label=controller)
        ax.set_xlabel("demand scale")
        ax.set_ylabel("mean delay per vehicle (s)")
        ax.set_title(scenario + (f" {variant}" if variant else ""), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


# --- files -----------------------------------------------------------------------------------------


def to_html(text: str, folder: Path, title: str) -> str:
    """The markdown as one HTML page, the plots inlined (the page can be mailed on its own)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(text)

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode((folder / html.unescape(match.group(1))).read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    style = ("body{font-family:sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}"
             "table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ccc;"
             "padding:.2rem .5rem;text-align:right}img{max-width:100%}")  # fmt: skip
    return (f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>\n{body}</body></html>\n")  # fmt: skip


def write_report(out: Path, study: Study) -> list[Path]:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` from ``out/runs.parquet``."""
    table = pq.read_table(out / RUNS).to_pylist()
    rows = [r for r in table if r["status"] == "done"]
    failed = len(table) - len(rows)
    plots: dict[str, str] = {}
    if rows:
        kpis = _kpis(study, rows)
        (out / "plots").mkdir(exist_ok=True)
        if kpis:
            plot_distributions(out / "plots" / "distributions.png", rows, kpis)
            plots["distributions"] = "plots/distributions.png"
            for comparison in study.comparisons:
                name = f"change-{comparison.factor}"
                if plot_changes(out / "plots" / f"{name}.png", rows, comparison, kpis):
                    plots[name] = f"plots/{name}.png"
        if plot_delay_vs_scale(out / "plots" / "delay-vs-scale.png", rows):
            plots["delay-vs-scale"] = "plots/delay-vs-scale.png"
    text = markdown(study, rows, failed, plots)
    (out / "report.md").write_text(text, encoding="utf-8")
    (out / "report.html").write_text(to_html(text, out, study.name), encoding="utf-8")
    return [out / "report.md", out / "report.html"]

"""Field devices: what radar speed signs and information signs are worth, over paired seeds.

    python benchmarks/devices.py --seeds 1-5        (from the repository root)

Runs the district with the fixed-time controller under ``speed_signs=off`` / ``speed_signs=on``
and ``info_signs=off`` / ``info_signs=on`` (the same runs ``ccsim compare district --controllers
fixed --variants speed_signs=off,speed_signs=on`` makes), and writes the mean +/- 95% interval of
each metric and the paired change into benchmarks/RESULTS.md (section ``devices``). The
information signs are also compared with ``incident+1s``: signs dark and the incident one second
later, a perturbation with no device in it, to show how far the district's figures move from
that alone. The district's incident is mild (one of Calle 3's two lanes), so the information
signs are measured a second time where a street is closed: ``severe-incident+signs-off`` /
``severe-incident+signs-on``, all three lanes of E1_D1 blocked, with its own placebo
``severe-incident+1s``; within its signs-on runs it also compares the warned drivers the
``reroute_share`` draw sent around with those it left on their way (a randomised comparison
inside each run), with the paired difference over seeds. The comparison files of each study are
under ``out/bench/devices-<study>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results_md import replace_section

from sim.report import write_comparison
from sim.stats import Estimate, estimate, paired_change
from sim.study import RunSpec, default_jobs, parse_seeds, run_many

INFO_METRICS = ("sign_warned_vehicles", "sign_reroutes", "sign_warned_travel_time_mean_s",
                "mean_delay_s", "mean_travel_time_s", "throughput_veh_h",
                "incident_detection_delay_mean_s", "incident_false_alarms_per_h")  # fmt: skip
INFO_NOTE = (
    "`sign_warned_vehicles`: drivers who passed a sign while it warned of an incident on "
    "their way (dark signs: would have warned); `sign_warned_travel_time_mean_s`: their time "
    "from the sign to the end of their trip. The second table changes no device: it moves the "
    "incident one second later with the signs dark. A change of the whole district's figures "
    "no larger than that one is not the signs' doing."
)
WITHIN_METRICS = ("sign_rerouted_travel_time_mean_s", "sign_stayed_travel_time_mean_s",
                  "sign_rerouted_unfinished", "sign_stayed_unfinished")  # fmt: skip
WITHIN_NOTE = (
    "Within the signs-on runs: of the warned drivers, those the `reroute_share` draw sent "
    "another way (`sign_rerouted_*`) and those it left on their way (`sign_stayed_*`), their "
    "time from the sign to the end of the trip and how many were still on the road at the end "
    "of the run (their time is cut there). The draw alone decides, so the two groups differ "
    "only by the advice; the difference is taken per seed and its 95% t-interval is over the "
    "seeds. It measures going around against staying at this `reroute_share`, not the signs "
    "against no signs: both groups drive in the same traffic, and those going around shorten "
    "the queue of those who stay."
)


@dataclass(frozen=True)
class Study:
    """Two variants compared over paired seeds, optionally with a placebo compared with ``off``:
    a variant where no device differs, only a perturbation (the incident one second later)."""

    name: str
    off: str
    on: str
    metrics: tuple[str, ...]
    placebo: str | None = None
    note: str = ""
    within: bool = False
    """Also compare, within the ``on`` runs, the warned drivers the draw sent around with those
    it left on their way."""

    @property
    def out(self) -> Path:
        return Path("out/bench") / f"devices-{self.name}"

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.off, self.on) if self.placebo is None else (self.off, self.on, self.placebo)


STUDIES = (
    Study("speed_signs", "speed_signs=off", "speed_signs=on",
          ("speeding_rate", "radar_mean_speed_kmh", "mean_delay_s", "mean_travel_time_s")),
    Study("info_signs", "info_signs=off", "info_signs=on", INFO_METRICS, "incident+1s",
          "The district's incident: a car broken down in one of Calle 3's two lanes (C3_D3), "
          "which drivers pass in the other. " + INFO_NOTE),
    Study("severe_incident", "severe-incident+signs-off", "severe-incident+signs-on",
          INFO_METRICS, "severe-incident+1s",
          "The street closed: a broken-down car in each of the three lanes of E1_D1 (Av. "
          "Benavides westbound, E1 to D1) from 1200 s for 900 s; nobody passes until they "
          "are gone, but SUMO moves a vehicle that has stood 300 s on past the obstacle "
          "(time-to-teleport). The signs and their `reroute_share` are the district's. "
          + INFO_NOTE, within=True),
)  # fmt: skip


def _cell(values: list[float]) -> str:
    e = estimate(values)
    return f"{e.mean:.3f}" if e.half_width is None else f"{e.mean:.3f} ± {e.half_width:.3f}"


def table(rows: list[dict[str, Any]], off: str, on: str, metrics: tuple[str, ...]) -> str:
    """Markdown: each metric's mean +/- 95% interval in groups ``off`` and ``on`` and the paired
    change from ``off`` to ``on``."""
    lines = [f"| metric | {off} | {on} | change (95% CI) |", "|---|---|---|---|"]
    for metric in metrics:
        by = {
            group: {int(r["seed"]): float(r[metric]) for r in rows
                    if r["group"] == group and r[metric] is not None}
            for group in (off, on)
        }  # fmt: skip
        if not by[off] or not by[on]:
            lines.append(f"| `{metric}` | n/a | n/a | n/a |")
            continue
        change = paired_change(by[off], by[on])
        text = "n/a"
        if change is not None and change.percent is not None:
            interval = change.percent_interval()
            text = f"{change.percent:+.1f}%" + (
                f" ({interval[0]:+.1f}% .. {interval[1]:+.1f}%)" if interval else ""
            )
        elif change is not None:  # from zero: the change itself
            d = change.difference
            text = f"{d.mean:+.3f}" + (
                f" ({d.low:+.3f} .. {d.high:+.3f})" if d.low is not None and d.high is not None else ""
            )
        lines.append(f"| `{metric}` | {_cell(list(by[off].values()))} | "
                     f"{_cell(list(by[on].values()))} | {text} |")  # fmt: skip
    return "\n".join(lines)


def _interval(e: Estimate) -> str:
    if e.low is None or e.high is None:
        return f"{e.mean:+.1f}"
    return f"{e.mean:+.1f} ({e.low:+.1f} .. {e.high:+.1f})"


def within_table(rows: list[dict[str, Any]], group: str) -> str:
    """Markdown: in the runs of ``group``, each metric of the two groups the reroute draw makes
    (mean +/- 95% interval over seeds), then the paired difference stayed - rerouted of their
    mean time from the sign (95% t-interval over the seeds that have both groups)."""
    runs = sorted((r for r in rows if r["group"] == group), key=lambda r: int(r["seed"]))
    lines = [f"| within {group} | mean over seeds | per seed |", "|---|---|---|"]
    for metric in WITHIN_METRICS:
        values = [float(r[metric]) for r in runs if r[metric] is not None]
        per_seed = ", ".join("n/a" if r[metric] is None else f"{float(r[metric]):.0f}" for r in runs)
        lines.append(f"| `{metric}` | {_cell(values) if values else 'n/a'} | {per_seed} |")
    rerouted = {int(r["seed"]): float(r["sign_rerouted_travel_time_mean_s"]) for r in runs
                if r["sign_rerouted_travel_time_mean_s"] is not None}  # fmt: skip
    stayed = {int(r["seed"]): float(r["sign_stayed_travel_time_mean_s"]) for r in runs
              if r["sign_stayed_travel_time_mean_s"] is not None}  # fmt: skip
    change = paired_change(rerouted, stayed)
    if change is None:
        lines.append("| stayed - rerouted, s (95% CI) | n/a | n/a |")
    else:
        seeds = [int(r["seed"]) for r in runs]
        per_seed = ", ".join(f"{stayed[s] - rerouted[s]:+.0f}" if s in rerouted and s in stayed
                             else "n/a" for s in seeds)  # fmt: skip
        lines.append(f"| stayed - rerouted, s (95% CI, {change.difference.n} seeds) | "
                     f"{_interval(change.difference)} | {per_seed} |")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="district")
    parser.add_argument("--seeds", default="1-5")
    parser.add_argument("--end", type=float, default=None, help="cut the runs (s)")
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    # Reproducible figures: the parking model walks a set of vehicle ids (sim/parking.py), so a
    # run's traffic depends on Python's string hashing; the spawned runs inherit this seed.
    os.environ.setdefault("PYTHONHASHSEED", "0")
    start = time.perf_counter()
    # One pool for every study: no worker waits for the last run of a study.
    runs = [
        (v, RunSpec(args.scenario, "fixed", s, study.out / "runs" / f"{v.replace('=', '-')}-seed{s}",
                    None, args.end, variant=v))
        for study in STUDIES
        for v in study.variants
        for s in seeds
    ]  # fmt: skip
    summaries = run_many([spec for _v, spec in runs], jobs=args.jobs)
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for (variant, _spec), summary in zip(runs, summaries, strict=True):
        by_variant.setdefault(variant, []).append({"group": variant, **summary})
    sections = []
    for study in STUDIES:
        out = study.out
        rows = [row for v in study.variants for row in by_variant[v]]
        names = ",".join(study.variants)
        out.mkdir(parents=True, exist_ok=True)
        write_comparison(out, rows, f"{args.scenario}: {names}, seeds {args.seeds}")
        body = table(rows, study.off, study.on, study.metrics)
        if study.placebo:
            body += "\n\n" + table(rows, study.off, study.placebo, study.metrics)
        if study.note:
            body += "\n\n" + study.note
        if study.within:
            body += "\n\n" + within_table(rows, study.on) + "\n\n" + WITHIN_NOTE
        print(f"{study.name}\n{body}\n")
        sections.append(f"**{study.name}** (`ccsim compare {args.scenario} --controllers fixed "
                        f"--variants {names} --seeds {args.seeds}`)\n\n{body}")  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    if not args.no_write:
        window = "1 h" if args.end is None else f"{args.end:g} s"
        replace_section(
            "devices",
            f"## Field devices: speed signs and information signs ({args.scenario}, fixed, {window})\n\n"
            f"{dt.date.today()}, {platform.machine()} {platform.python_version()}, seeds {args.seeds}, "
            f"{minutes:.1f} min with {args.jobs} jobs, PYTHONHASHSEED={os.environ['PYTHONHASHSEED']}. "
            f"`python benchmarks/devices.py --seeds {args.seeds}`.\n\n" + "\n\n".join(sections),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

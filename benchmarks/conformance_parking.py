"""Conformance of LoRaWAN parking sensors: the bundled plans run in full (a real Mosquitto, the
emulated sensors as a child process, the curbside scenario for 1 h), timed, with their verdicts
and figures.

    python benchmarks/conformance_parking.py
    python benchmarks/conformance_parking.py --impact-seeds 1-5 --impact-end 3600

With ``--impact-seeds``, poor sensors (``parking-good`` missing 10 % of changes, 0.2 false
occupancies per free bay-hour) are priced with ``--impact`` on ``--impact-scenario`` (default
the plan's curbside; guidance on, ``fixed`` signals, paired seeds).

Writes the figures into benchmarks/RESULTS.md (section ``conformance-parking``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_md import replace_section

ROOT = Path(__file__).resolve().parent.parent
CCSIM = [sys.executable, "-m", "controlcenter.cli", "conformance"]
PLANS = ("parking-good", "parking-duplicates")


def est(e: dict[str, Any], spec: str) -> str:
    ci = "" if e["low"] is None else f" (95% CI {e['low']:{spec}} .. {e['high']:{spec}})"
    return f"{e['mean']:+{spec}}{ci}"


def priced(folder: Path, seeds: str, end_s: float, scenario: str | None) -> list[str]:
    """Poor sensors' fitted profile priced with --impact: the lines for RESULTS.md."""
    first, _, last = seeds.partition("-")
    seed_list = list(range(int(first), int(last or first) + 1))
    plans = ROOT / "adapters" / "conformance" / "plans"
    text = (plans / "parking-good.toml").read_text()
    text = text.replace('name = "curbside"', f'name = "{plans / "curbside"}"')
    text = text.replace("miss_share = 0.0", "miss_share = 0.1")
    text = text.replace("false_per_h = 0.0", "false_per_h = 0.2")
    text += f'\n[impact]\ncontroller = "fixed"\nseeds = {seed_list}\nend_s = {end_s:g}\n'
    if scenario:
        text += f'scenario = "{scenario}"\n'
    plan = folder / "poor-sensors.toml"
    plan.write_text(text)
    out = folder / "poor-impact"
    start = time.perf_counter()
    done = subprocess.run([*CCSIM, str(plan), "--impact", "--out", str(out)], capture_output=True,
                          text=True, cwd=ROOT)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"poor sensors --impact: exit {done.returncode}\n{done.stderr}")
    r = json.loads((out / "results.json").read_text())
    fit, imp = r["fitted_profile"], r["impact"]
    e, er = imp["public_space_efficiency"], imp["public_space_efficiency_rotating_loading"]
    t, d = imp["parking_search_time_mean_s"], imp["parking_search_distance_mean_m"]
    return [
        "",
        f"Poor sensors priced (`--impact-seeds {seeds} --impact-end {end_s:g}`): `parking-good` "
        "with the emulator missing 10 % of changes and 0.2 false occupancies per free bay-hour "
        f"(fitted: detection {fit['detection_probability']:.3f}, {fit['false_detections_per_h']:g} "
        f"false per bay-hour, latency {fit['latency_s']:g} s), on `{Path(imp['scenario']).name}` "
        f"({imp['bays']} bays, {imp['variant']}, {imp['controller']}, seeds {seeds}, "
        f"{imp['run_h']:g} h runs; {wall / 60:.1f} min with 2 jobs, conformance run included), "
        "measured against ideal bay sensors:",
        "",
        f"- public-space efficiency: {e['ideal']:.4f} ideal, {est(e['difference'], '.4f')}; "
        f"rotating and loading bays {er['ideal']:.4f}, {est(er['difference'], '.4f')}",
        f"- parking search per parker: {t['ideal']:.1f} s ideal, {est(t['difference'], '.1f')} s; "
        f"{d['ideal']:.0f} m, {est(d['difference'], '.0f')} m",
        f"- cruising: {est(imp['cruising_vehicle_hours_per_run']['difference'], '.2f')} "
        f"vehicle-hours per run, {est(imp['cruising_vehicle_hours_per_year'], '.0f')} "
        f"vehicle-hours and {est(imp['cruising_vehicle_km_per_year'], '.0f')} vehicle-km a year "
        f"at {imp['hours_per_year']:g} such hours",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impact-seeds", default=None, help="e.g. 1-5; none: no --impact")
    parser.add_argument("--impact-end", type=float, default=3600.0)
    parser.add_argument("--impact-scenario", default=None, help="default: the plan's curbside")
    args = parser.parse_args()
    rows = []
    impact: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in PLANS:
            out = Path(tmp) / name
            start = time.perf_counter()
            done = subprocess.run([*CCSIM, name, "--out", str(out)], capture_output=True,
                                  text=True, cwd=ROOT)  # fmt: skip
            wall = time.perf_counter() - start
            if done.returncode not in (0, 1):
                raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr}")
            r = json.loads((out / "results.json").read_text())
            p = r["parking"]
            failed = [c["id"] for c in r["cases"] if c["outcome"] == "fail"]
            c, lat = p["changes"], p["latency"]
            rows.append(
                f"| `{name}` | {wall:.1f} s ({r['wall_time_s']:.1f} s in the harness) | "
                f"exit {done.returncode}, {r['verdict']} | {r['counts']['pass']} / "
                f"{r['counts']['fail']} / {r['counts']['not-applicable']} | "
                f"{', '.join(failed) or '-'} | {p['published']} / {p['received']} "
                f"({p['ingest'].get('duplicate', 0)} duplicates dropped) | "
                f"{p['state']['accuracy_pct']:.2f} % ({p['state']['low_pct']:.2f} .. "
                f"{p['state']['high_pct']:.2f}) | {c['detected']} / {c['eligible']} | "
                f"{lat['mean_s']:g} s / {lat['p95_s']:g} s |"
            )
        if args.impact_seeds:
            impact = priced(Path(tmp), args.impact_seeds, args.impact_end, args.impact_scenario)
    lines = [
        "## Conformance: LoRaWAN parking sensors, good vs duplicate uplinks",
        "",
        f"{dt.date.today().isoformat()}, {platform.machine()} {platform.python_version()}. "
        "`python benchmarks/conformance_parking.py`. Each plan: Mosquitto on loopback, 60 "
        "emulated Nwave NPS405 sensors as a child process publishing The Things Stack v3 "
        "uplinks (600 s heartbeat, 5 s mean latency), the `curbside` scenario 1 h (actuated, "
        "seed 1) as the truth; parking preset (state right >= 98 % of bay-time).",
        "",
        "| plan | wall time | verdict | pass / fail / n.a. | failed cases | uplinks published / "
        "received | state right (95% CI) | changes detected / judged | latency mean / p95 |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        *impact,
    ]
    load = os.getloadavg()[0]
    lines += [
        "",
        f"Load average {load:.1f} at the end on {os.cpu_count()} cores (other work on the "
        "machine inflates the wall times).",
    ]
    replace_section("conformance-parking", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

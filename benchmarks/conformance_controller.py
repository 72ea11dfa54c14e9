"""Conformance of an NTCIP 1202 signal controller: the bundled plans run in full (the emulated
controller as a child process answering SNMP on loopback, the single intersection 30 min in
lockstep with it), timed, with their verdicts and figures.

    python benchmarks/conformance_controller.py

Writes the figures into benchmarks/RESULTS.md (section ``conformance-controller``), with the
machine's load average while it ran.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_md import replace_section

ROOT = Path(__file__).resolve().parent.parent
CCSIM = [sys.executable, "-m", "controlcenter.cli", "conformance"]
PLANS = ("controller-good", "controller-broken")


def main() -> None:
    rows = []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for name in PLANS:
            out = Path(tmp) / name
            command = [*CCSIM, name, "--out", str(out)]
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            wall = time.perf_counter() - start
            loads.append(os.getloadavg()[0])
            if done.returncode not in (0, 1):
                raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr}")
            r = json.loads((out / "results.json").read_text())
            ctl = r["controller"]
            a, lat = ctl["agreement"], ctl["latency"]
            failed = [c["id"] for c in r["cases"] if c["outcome"] == "fail"]
            kinds = {"ACC-CMD-1": "hold", "ACC-CMD-2": "omit", "ACC-CMD-3": "call"}
            commands = ", ".join(
                f"{kinds[c['id']]} {c['outcome']}" for c in r["cases"] if c["id"] in kinds
            )
            p95 = "missed" if lat["p95_s"] is None else f"{lat['p95_s']:g} s"
            timing = next(c for c in r["cases"] if c["id"] == "ASC-TIM-1")["metrics"]
            rows.append(
                f"| `{name}` | {wall:.1f} s ({r['wall_time_s']:.1f} s in the harness) | "
                f"exit {done.returncode}, {r['verdict']} | {r['counts']['pass']} / "
                f"{r['counts']['fail']} / {r['counts']['not-applicable']} | "
                f"{', '.join(failed) or '-'} | {ctl['polls']} | {a['agree_pct']:.2f} % | "
                f"{lat['changes']} / {lat['missed']} / {p95} | "
                f"{commands} | {timing['p95_ms']:g} ms |"
            )
    lines = [
        "## Conformance: NTCIP 1202 signal controller, good vs broken (wrong type, stuck status)",
        "",
        f"{dt.date.today().isoformat()}, {platform.machine()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, 1-min load average {min(loads):.1f}-{max(loads):.1f} while it ran "
        "(other work on the machine shares the cores). `python benchmarks/conformance_controller.py`: "
        "each plan runs `ccsim conformance PLAN` - the emulated controller as a child process "
        "answering SNMP v1/v2c on loopback, the `single` scenario 30 min (actuated, seed 1) in "
        "lockstep with it, the phase status read after every 1 s step, hold (120 s), omit (180 s) "
        "and call (120 s) sent by SET and carried out by the simulated controller.",
        "",
        "| plan | wall time | verdict | pass / fail / n.a. | failed cases | status polls "
        "| colours agree | colour changes / missed / latency p95 | commands | GET p95 |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    replace_section("conformance-controller", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

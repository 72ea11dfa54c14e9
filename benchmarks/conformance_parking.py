"""Conformance of LoRaWAN parking sensors: the bundled plans run in full (a real Mosquitto, the
emulated sensors as a child process, the curbside scenario for 1 h), timed, with their verdicts
and figures.

    python benchmarks/conformance_parking.py

Writes the figures into benchmarks/RESULTS.md (section ``conformance-parking``).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_md import replace_section

ROOT = Path(__file__).resolve().parent.parent
CCSIM = [sys.executable, "-m", "controlcenter.cli", "conformance"]
PLANS = ("parking-good", "parking-duplicates")


def main() -> None:
    rows = []
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
    ]
    replace_section("conformance-parking", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Overhead of ccsim over bare SUMO: ``ccsim run`` vs the ``sumo`` binary on the same files and seed.

The two commands alternate in one process so that both see the same machine load; the figure is
the median of the per-pair ratios. Whole commands are timed, Python start-up and output writing
included, because that is what a user waits for.

    python benchmarks/overhead.py --pairs 3 [--scenario district] [--controller fixed]

The result is printed and written into benchmarks/RESULTS.md between the ``overhead`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_md import replace_section

from sim.scenario import load_scenario
from sim.sumo import sumo_binary


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall time (s) and peak resident memory (MiB) of ``cmd``, a process of its own."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, cmd)
    return elapsed, usage.ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="district")
    parser.add_argument("--controller", default="fixed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument(
        "--variant",
        default="parking.share=0;parking.initial_occupancy={}",
        help="scenario variant for ccsim; the default switches ccsim's parking model off (no "
        "trips park, no cars parked at the start), which bare sumo does not have, so that both "
        "run the same traffic",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    scenario = load_scenario(args.scenario)
    assert scenario.sumocfg is not None, "the overhead benchmark needs a scenario with a .sumocfg"
    ccsim = [sys.executable, "-m", "controlcenter.cli", "run", args.scenario,
             "--controller", args.controller, "--seed", str(args.seed)]  # fmt: skip
    if args.variant:
        ccsim += ["--variant", args.variant]
    sumo = [str(sumo_binary("sumo")), "-c", str(scenario.sumocfg), "--seed", str(args.seed),
            "--no-step-log", "true", "--no-warnings", "true",
            "--duration-log.disable", "true"]  # fmt: skip

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            t_sumo, m_sumo = timed(sumo)
            t_ccsim, m_ccsim = timed([*ccsim, "--out", str(Path(tmp) / f"run{i}")])
            rows.append((t_sumo, t_ccsim, t_ccsim / t_sumo, m_sumo, m_ccsim))
            print(f"pair {i + 1}: sumo {t_sumo:.2f} s {m_sumo:.0f} MiB, ccsim {t_ccsim:.2f} s "
                  f"{m_ccsim:.0f} MiB, ratio {t_ccsim / t_sumo:.3f}", flush=True)  # fmt: skip
    ratio = statistics.median(r[2] for r in rows)
    peak = max(r[4] for r in rows)
    print(f"median ratio ccsim/sumo: {ratio:.3f}; ccsim's peak memory {peak:.0f} MiB")

    table = "\n".join(
        f"| {i + 1} | {s:.2f} | {c:.2f} | {r:.3f} | {ms:.0f} | {mc:.0f} |"
        for i, (s, c, r, ms, mc) in enumerate(rows)
    )
    command = (
        f"python benchmarks/overhead.py --pairs {args.pairs} --scenario {args.scenario} "
        f"--controller {args.controller}"
    )
    body = f"""## Overhead over bare SUMO ({args.scenario}, {args.controller}, seed {args.seed})

`{command}` (`make bench`), {dt.date.today().isoformat()},
{platform.machine()}, Python {platform.python_version()}.
Both commands run the whole hour of the same files with the same seed, alternating in one run.
`ccsim` is the full command (start-up, libsumo, measurement, KPIs, the three output files), with
`--variant {args.variant}` (ccsim's parking model adds trips' parking that bare SUMO does not have);
`sumo` is `sumo -c scenario.sumocfg --seed {args.seed}`. Targets: <= 1.3 (fixed), <= 1.6 (adaptive);
peak memory of `adaptive` under 250 MiB. Memory is each process's peak resident set (`wait4`).

| pair | sumo (s) | ccsim run (s) | ratio | sumo peak (MiB) | ccsim peak (MiB) |
|---|---|---|---|---|---|
{table}

**Median ratio: {ratio:.3f}**; ccsim's peak memory {peak:.0f} MiB
"""
    if not args.no_write:
        replace_section(f"overhead-{args.scenario}-{args.controller}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Study throughput: runs per minute of one district study on the local pool (1 and 2 workers)
and on a Dask cluster of 2 workers started here (``dask scheduler`` + ``dask worker`` on
loopback), through ``ccsim study``.

    python benchmarks/study_throughput.py --seeds 1-10 --end 3600     # the 40-run study
    python benchmarks/study_throughput.py --seeds 1-3 --end 600       # a reduced one

Scaling efficiency = (runs/min with 2 workers) / (2 x runs/min with 1). Dask's added cost per
run = (Dask wall time - local 2-worker wall time) / runs, also as a share of a run's time.
Writes the figures into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_md import replace_section

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def study_file(folder: Path, seeds: str, end_s: float, controllers: str) -> Path:
    names = ", ".join(f'"{c}"' for c in controllers.split(","))
    path = folder / "throughput.toml"
    path.write_text(f'scenarios = ["district"]\ncontrollers = [{names}]\nseeds = "{seeds}"\n'
                    f"end_s = {end_s:g}\n")  # fmt: skip
    return path


def run_study(path: Path, out: Path, *extra: str) -> tuple[float, int]:
    """Wall seconds of the runs (as ccsim reports them) and the number of runs done."""
    command = [sys.executable, "-m", "controlcenter.cli", "study", str(path), "--out", str(out), *extra]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
    match = re.search(r"(\d+) done now, (\d+) failed \(([\d.]+) s", result.stdout)
    if match is None or match.group(2) != "0":
        raise SystemExit(f"unexpected output:\n{result.stdout}\n{result.stderr}")
    return float(match.group(3)), int(match.group(1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dask_cluster(workers: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the workers import this tree's ccsim
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "cwd": ROOT}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--dashboard-address", ":0"], **quiet)]  # type: ignore[call-overload]  # fmt: skip
    time.sleep(3)  # the scheduler listening
    for _ in range(workers):
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1",
                                       "--nworkers", "1", "--no-dashboard"], **quiet))  # type: ignore[call-overload]  # fmt: skip
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(workers, timeout=60)
    return address, procs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-10")
    parser.add_argument("--end", type=float, default=3600.0)
    parser.add_argument("--controllers", default="fixed,sumo-actuated,actuated,adaptive")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    figures: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="ccsim-throughput-") as tmp:
        folder = Path(tmp)
        path = study_file(folder, args.seeds, args.end, args.controllers)
        figures["local, 1 worker"] = run_study(path, folder / "local1", "--jobs", "1")
        figures["local, 2 workers"] = run_study(path, folder / "local2", "--jobs", "2")
        address, procs = dask_cluster(2)
        try:
            figures["Dask, 2 workers"] = run_study(path, folder / "dask2", "--dask", address)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=30)

    rate = {name: runs / wall * 60.0 for name, (wall, runs) in figures.items()}
    runs = figures["local, 1 worker"][1]
    efficiency = rate["local, 2 workers"] / (2 * rate["local, 1 worker"])
    dask_efficiency = rate["Dask, 2 workers"] / (2 * rate["local, 1 worker"])
    run_s = figures["local, 1 worker"][0] / runs
    added_s = (figures["Dask, 2 workers"][0] - figures["local, 2 workers"][0]) * 2 / runs
    lines = [f"| {name} | {wall:.1f} | {rate[name]:.2f} |" for name, (wall, _) in figures.items()]
    command = (f"python benchmarks/study_throughput.py --seeds {args.seeds} --end {args.end:g} "
               f"--controllers {args.controllers}")  # fmt: skip
    body = f"""## Study throughput

`{command}`, {dt.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores (shared
with other work while measured): {runs} runs of `district` (end {args.end:g} s) through `ccsim study`.

| backend | wall time (s) | runs/min |
|---|---|---|
{chr(10).join(lines)}

- scaling efficiency 1 -> 2 workers: local {efficiency:.2f}, Dask {dask_efficiency:.2f} (target >= 0.9)
- Dask's added cost per run vs the local pool: {added_s:+.2f} s on a {run_s:.1f} s run
  ({100 * added_s / run_s:+.1f}%; target <= 5% of a 1-hour run)
"""
    print(body)
    if not args.no_write:
        replace_section("study-throughput", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

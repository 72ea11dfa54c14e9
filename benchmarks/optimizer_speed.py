"""Speed of the adaptive controller's optimiser on the district.

Runs ``adaptive`` on the district (``--end`` seconds, seed 1) and records, for every decision step,
the wall time of the whole controller step for all intersections (clusters from detectors, the
dynamic program, requests to the guard) and every kernel call's inputs. Then it replays the
recorded kernel inputs through the Numba kernel and its pure-Python twin, step by step, and reports
the time per decision step (all intersections, one batched kernel call) for both and the
speed-up, on the same inputs.

    python benchmarks/optimizer_speed.py [--end 3600]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from results_md import replace_section

from sim.controllers.adaptive import Adaptive
from sim.controllers.schedule_kernel import (
    BatchKernel,
    compile_kernels,
    schedule_batch_nb,
    schedule_batch_py,
)
from sim.engine import Simulation
from sim.scenario import load_scenario


def record(end_s: float) -> tuple[list[list[tuple[Any, ...]]], list[float], int]:
    """Run the district; return kernel inputs grouped by step, controller step times, signals."""
    steps: list[list[tuple[Any, ...]]] = []
    current: list[tuple[Any, ...]] = []

    def spy(*args: Any) -> None:
        current.append(tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args))
        schedule_batch_nb(*args)

    controller = Adaptive(kernel=spy)
    step_times: list[float] = []
    original = controller.on_step

    def timed_step(t: float) -> None:
        start = time.perf_counter()
        original(t)
        step_times.append(time.perf_counter() - start)
        steps.append(list(current))
        current.clear()

    controller.on_step = timed_step  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        Simulation(load_scenario("district"), controller, seed=1, workdir=Path(tmp), end_s=end_s).run()
    return steps, step_times, len(controller.intersections)


def replay(kernel: BatchKernel, steps: list[list[tuple[Any, ...]]]) -> np.ndarray:
    times = []
    for calls in steps:
        start = time.perf_counter()
        for args in calls:
            kernel(*args)
        times.append(time.perf_counter() - start)
    return np.array(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", type=float, default=3600.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    compile_kernels()
    steps, step_times, signals = record(args.end)
    calls = sum(len(args[0]) for c in steps for args in c)
    nb = replay(schedule_batch_nb, steps)
    # The pure-Python twin is ~100x slower: replay every 10th step, and the same steps in Numba.
    sample = steps[::10]
    py = replay(schedule_batch_py, sample)
    nb_sample = replay(schedule_batch_nb, sample)
    speedup = py.sum() / nb_sample.sum()
    controller = np.array(step_times) * 1e3
    print(f"{len(steps)} decision steps, {calls} kernel calls, {signals} signals")
    print(f"controller step (all signals): mean {controller.mean():.3f} ms, "
          f"p99 {np.percentile(controller, 99):.3f} ms")  # fmt: skip
    print(
        f"kernel per step: numba mean {nb.mean() * 1e3:.3f} ms, p99 {np.percentile(nb, 99) * 1e3:.3f} ms"
    )
    print(f"numba / python speed-up on the same inputs: {speedup:.1f}x")

    def ms(values: np.ndarray) -> str:
        return f"{values.mean():.3f} | {np.percentile(values, 99):.3f}"

    body = f"""## Optimiser speed (adaptive, district, seed 1, {args.end:g} s)

`python benchmarks/optimizer_speed.py --end {args.end:g}`, {dt.date.today().isoformat()},
{platform.machine()}, Python {platform.python_version()}. {len(steps)} decision steps (one per
simulated second); {calls} intersection plans over {signals} signals, all of a step in one batched
kernel call (intersections in a phase change or in their minimum green are not planned).

| per decision step, all {signals} signals | mean (ms) | p99 (ms) |
|---|---|---|
| whole controller step (detectors, clusters, DP, guard requests) | {ms(controller)} |
| DP kernel, Numba | {ms(nb * 1e3)} |
| DP kernel, pure-Python twin (every 10th step) | {ms(py * 1e3)} |

**Numba / pure-Python speed-up on the same inputs: {speedup:.1f}x.** Targets: mean <= 2 ms, >= 30x.
"""
    if not args.no_write:
        replace_section("optimizer-speed", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

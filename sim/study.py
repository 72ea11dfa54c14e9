"""Running one scenario to a folder, and many runs (controllers x seeds) side by side.

libsumo allows one simulation per process, so every run of a study gets a fresh worker process;
a local process pool is the default.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.controllers import create_controller
from sim.engine import Progress, Simulation
from sim.errors import CcsimError
from sim.outputs import RunOutputs
from sim.scenario import Scenario, load_scenario


@dataclass(frozen=True)
class RunSpec:
    """What one run is: scenario spec, controller name, seed, output folder, optional window."""

    scenario: str
    controller: str
    seed: int
    out: Path
    begin_s: float | None = None
    end_s: float | None = None
    gui: bool = False
    variant: str | None = None
    scale: float = 1.0
    """Demand multiplier (SUMO's ``--scale``)."""


def check_window(scenario: Scenario, begin_s: float | None, end_s: float | None) -> None:
    begin = scenario.begin_s if begin_s is None else begin_s
    end = scenario.end_s if end_s is None else end_s
    if begin < 0 or end <= begin:
        raise CcsimError(f"--begin {begin:g} / --end {end:g}: expected 0 <= begin < end")


def run_to_folder(spec: RunSpec, progress: Progress | None = None) -> dict[str, Any]:
    """Run ``spec`` and write summary.json, timeseries.parquet, events.parquet into ``spec.out``.

    The stream goes to events.parquet as the run makes it, not held until the end (an hour of
    the district is some 55 MB of messages in memory); a run that fails leaves none."""
    scenario = load_scenario(spec.scenario, spec.variant)
    controller = create_controller(spec.controller)
    check_window(scenario, spec.begin_s, spec.end_s)
    outputs = RunOutputs(spec.out)
    try:
        simulation = Simulation(
            scenario,
            controller,
            seed=spec.seed,
            workdir=outputs.out / "sumo",
            gui=spec.gui,
            begin_s=spec.begin_s,
            end_s=spec.end_s,
            scale=spec.scale,
            keep_messages=False,
        )
        simulation.bus.subscribe(outputs)
        result = simulation.run(progress)
    except BaseException:
        outputs.abandon()
        raise
    outputs.finish(result.summary, result.timeseries)
    return result.summary


MAX_SEED = 2**31 - 1
"""The largest seed SUMO takes (``--seed`` is a 32-bit integer)."""


def parse_seeds(text: str) -> list[int]:
    """``"1-5"`` -> [1, 2, 3, 4, 5]; ``"1,3,7"`` -> [1, 3, 7]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                first, last = (int(x) for x in part.split("-", 1))
                if last < first or last > MAX_SEED:
                    raise ValueError
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise CcsimError(f"--seeds '{text}': expected a range like 1-5 or a list like 1,3,7") from None
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise CcsimError(f"--seeds '{text}': expected non-negative seeds up to {MAX_SEED}")
    return sorted(set(seeds))


def default_jobs() -> int:
    return max(1, os.cpu_count() or 1)


def run_many(
    specs: Sequence[RunSpec],
    *,
    jobs: int,
    on_done: Callable[[RunSpec, dict[str, Any]], None] | None = None,
    on_error: Callable[[RunSpec, BaseException], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every spec in its own process (``jobs`` at a time); summaries in the order of ``specs``.

    A failed run raises its error here, unless ``on_error`` is given: then the error goes there,
    the other runs go on and the failed run's summary is ``{}``. On any exception (Ctrl-C too)
    the runs still going are killed before it propagates: a run killed that way leaves its
    folder without a summary, or with one it wrote before being killed, never the caller's word
    that it finished (``on_done``).
    """
    context = multiprocessing.get_context("spawn")
    results: dict[int, dict[str, Any]] = {}
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, max_tasks_per_child=1)
    try:
        futures = {pool.submit(run_to_folder, spec): i for i, spec in enumerate(specs)}
        for future in as_completed(futures):
            index = futures[future]
            error = future.exception()
            if error is not None:
                if on_error is None:
                    raise error
                results[index] = {}
                on_error(specs[index], error)
                continue
            results[index] = future.result()
            if on_done is not None:
                on_done(specs[index], results[index])
    except BaseException:
        _kill(pool)
        raise
    pool.shutdown(wait=True)
    return [results[i] for i in range(len(specs))]


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: a plain shutdown would wait for every running simulation to finish."""
    # Python 3.14 has pool.kill_workers(); before, the worker processes are only reachable here,
    # and only until shutdown() forgets them: kill first.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)

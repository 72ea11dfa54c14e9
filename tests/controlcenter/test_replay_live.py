"""A replay shows, at each simulated time, what the live control room showed then: the state
reduced from each live flush against the run's events.parquet reduced up to the flush's time."""

from __future__ import annotations

import copy
from pathlib import Path

from controlcenter.replay import load_run
from controlcenter.state import ControlState, StateChanges
from sim.live import Flush, LiveRun
from sim.outputs import RunOutputs, event_row
from sim.scenario import load_scenario


def run_live(tmp: Path, variant: str | None = None) -> tuple[Path, dict[float, StateChanges]]:
    """``single`` (actuated, 120 s) run live, its files written as the simulation process of
    ``ccsim serve`` writes them; the run's folder and the state shown after each flush."""
    live = ControlState()
    shown: dict[float, StateChanges] = {}
    outputs = RunOutputs(tmp / "run")

    def on_flush(flush: Flush) -> None:
        rows = [event_row(m) for m in flush.messages]
        outputs.add(rows)
        live.apply_rows(rows)
        live.apply_kpis(flush.kpis)
        shown[flush.t] = copy.deepcopy(live.snapshot())

    run = LiveRun(
        load_scenario("single", variant), "actuated", seed=1, workdir=tmp / "sumo",
        on_flush=on_flush, on_outcome=lambda _outcome: None, speed=None, end_s=120.0,
        flush_period_s=0.0, keep_messages=False,
    )  # fmt: skip
    result = run.run()
    outputs.finish(result.summary, result.timeseries)
    return outputs.out, shown


def replayed_differences(run_dir: Path, shown: dict[float, StateChanges]) -> list[object]:
    recorded = load_run(run_dir)
    differ: list[object] = []
    for t, state in sorted(shown.items()):
        replayed = ControlState()
        replayed.apply_rows(recorded.rows[: recorded.until(t)])
        replayed.apply_kpis(recorded.interval_rows(-float("inf"), t))
        again = replayed.snapshot()
        differ += [(t, s) for s in set(state) | set(again) if state.get(s) != again.get(s)]
    return differ


def test_the_replay_at_each_time_is_the_state_shown_live_then(tmp_path: Path) -> None:
    run_dir, shown = run_live(tmp_path)
    differ = replayed_differences(run_dir, shown)
    assert len(shown) > 100 and not differ, differ[:5]

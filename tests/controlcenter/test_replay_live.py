"""A replay shows, at each simulated time, what the live control room showed then: the state
reduced from each live flush against the run's events.parquet reduced up to the flush's time."""

from __future__ import annotations

import copy
from pathlib import Path

from controlcenter.replay import load_run
from controlcenter.state import ControlState, StateChanges
from sim.live import Flush, LiveRun
from sim.outputs import payload_json, write_run
from sim.scenario import load_scenario


def test_the_replay_at_each_time_is_the_state_shown_live_then(tmp_path: Path) -> None:
    live = ControlState()
    shown: dict[float, StateChanges] = {}

    def on_flush(flush: Flush) -> None:
        live.apply_rows([(m.seq, m.t, m.source, m.kind, payload_json(m)) for m in flush.messages])
        live.apply_kpis(flush.kpis)
        shown[flush.t] = copy.deepcopy(live.snapshot())

    run = LiveRun(
        load_scenario("single"), "actuated", seed=1, workdir=tmp_path / "sumo", on_flush=on_flush,
        on_outcome=lambda _outcome: None, speed=None, end_s=120.0, flush_period_s=0.0,
    )  # fmt: skip
    result = run.run()
    out = tmp_path / "run"
    out.mkdir()
    write_run(out, result.summary, result.timeseries, result.log.messages)
    recorded = load_run(out)
    differ = []
    for t, state in sorted(shown.items()):
        replayed = ControlState()
        replayed.apply_rows(recorded.rows[: recorded.until(t)])
        replayed.apply_kpis(recorded.interval_rows(-float("inf"), t))
        again = replayed.snapshot()
        differ += [(t, s) for s in set(state) | set(again) if state.get(s) != again.get(s)]
    assert len(shown) > 100 and not differ, differ[:5]

"""A replay shows, at each simulated time, what the live control room showed then: the state
reduced from each live flush against the run's events.parquet reduced up to the flush's time;
and what it shows from the scenario (the map, its devices) is the scenario as the run had it,
variant included."""

from __future__ import annotations

import copy
from pathlib import Path

from controlcenter.config import ServeConfig
from controlcenter.replay import load_run, replay_config
from controlcenter.runtime import ControlCenter, network_map_of
from controlcenter.state import ControlState, StateChanges
from controlcenter.store import Store
from sim.live import Flush, LiveRun
from sim.outputs import RunOutputs, event_row
from sim.scenario import load_scenario

VARIANT = "net-plans;detectors.advance_distance_m=40"
"""A named variant (the net's own signal programs, not the retimed plan) and a key=value one
(the advance detectors nearer the stop line): both change the map the control room shows."""


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


def test_a_replay_shows_the_scenario_with_the_variant_the_run_had(tmp_path: Path) -> None:
    run_dir, shown = run_live(tmp_path, VARIANT)
    differ = replayed_differences(run_dir, shown)
    assert not differ, differ[:5]
    assert shown[max(shown)]["run"]["variant"] == VARIANT  # the stream records it

    recorded = load_run(run_dir)
    said: list[str] = []
    config = replay_config(recorded, say=said.append, db_url=f"sqlite:///{tmp_path}/replay.db")
    assert (config.scenario, config.variant, config.controller, config.seed) == (
        "single", VARIANT, "actuated", 1
    ) and not said  # fmt: skip
    live_config = ServeConfig("single", "actuated", variant=VARIANT,
                              db_url=f"sqlite:///{tmp_path}/live.db")  # fmt: skip
    live = ControlCenter(live_config, Store(live_config.db_url))
    replayed = ControlCenter(config, Store(config.db_url), replay=recorded)
    assert replayed.scenario == live.scenario
    assert replayed.map.geojson == live.map.geojson
    # ...which is not the map of the scenario without its variant (what replays showed before)
    assert replayed.map.geojson != network_map_of(load_scenario("single"), "actuated").geojson

"""The engine against real SUMO (libsumo), on small scenarios."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Generator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from sim.controllers import ControlContext, Controller, create_controller
from sim.controllers.base import register
from sim.engine import RunResult, Simulation
from sim.messages import GuardViolation
from sim.network import read_network
from sim.outputs import payload_json
from sim.scenario import load_scenario

WALL_CLOCK_KEYS = {"wall_time_s", "realtime_factor"}


def run(spec: str | Path, tmp: Path, *, controller: str = "fixed", seed: int = 1,
        end_s: float | None = None) -> RunResult:  # fmt: skip
    sim = Simulation(
        load_scenario(spec), create_controller(controller), seed=seed, workdir=tmp, end_s=end_s
    )
    return sim.run()


def tripinfos(path: Path) -> list[dict[str, str]]:
    return [dict(el.attrib) for el in ET.parse(path).getroot().iter("tripinfo")]


def test_mean_delay_matches_sumo_tripinfo_including_unfinished_and_never_inserted(
    jammed_grid_cfg: Path, tmp_path: Path
) -> None:
    result = run(jammed_grid_cfg, tmp_path)
    trips = tripinfos(tmp_path / "tripinfo.xml")
    arrived = [t for t in trips if float(t["arrival"]) >= 0]
    unfinished = [t for t in trips if float(t["arrival"]) < 0 and float(t["depart"]) >= 0]
    never_inserted = [t for t in trips if float(t["depart"]) < 0]
    # The scenario must exercise all three kinds of vehicle for the check to mean anything.
    assert arrived and unfinished and never_inserted

    expected = sum(float(t["timeLoss"]) + float(t["departDelay"]) for t in trips) / len(trips)
    summary = result.summary
    assert summary["mean_delay_s"] == pytest.approx(expected, abs=0.01)
    assert summary["vehicles_arrived"] == len(arrived)
    assert summary["vehicles_departed"] == len(arrived) + len(unfinished)
    travel = sum(float(t["duration"]) for t in arrived) / len(arrived)
    assert summary["mean_travel_time_s"] == pytest.approx(travel, abs=0.01)
    waiting = sum(float(t["waitingTime"]) for t in arrived) / len(arrived)
    assert summary["mean_waiting_time_s"] == pytest.approx(waiting, abs=0.01)
    stops = sum(int(t["waitingCount"]) for t in arrived + unfinished)
    assert summary["mean_stops"] == pytest.approx(stops / (len(arrived) + len(unfinished)))


def comparable(result: RunResult) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    summary = {k: v for k, v in result.summary.items() if k not in WALL_CLOCK_KEYS}
    events = [(m.t, m.seq, m.source, m.kind, payload_json(m)) for m in result.log.messages]
    return summary, events


def test_same_inputs_give_identical_events_and_kpis(tmp_path: Path) -> None:
    first = comparable(run("single", tmp_path / "a", seed=3, end_s=900))
    second = comparable(run("single", tmp_path / "b", seed=3, end_s=900))
    other_seed = comparable(run("single", tmp_path / "c", seed=4, end_s=900))
    assert first == second
    assert first[1] != other_seed[1]
    kinds = {kind for _t, _s, _src, kind, _p in first[1]}
    assert {"run.started", "vehicles.departed", "vehicles.arrived", "signal.phase",
            "network.interval", "intersection.interval", "approach.delay",
            "emissions.interval", "run.finished"} <= kinds  # fmt: skip


def test_sumo_actuated_runs_the_actuated_copy_of_the_programs(tmp_path: Path) -> None:
    scenario = load_scenario("single")
    result = run("single", tmp_path, controller="sumo-actuated", end_s=900)
    phases = result.log.of_kind("signal.phase")
    assert phases and all(m.payload.to_dict()["program"] == "ccsim-actuated" for m in phases[1:])
    # Actuation changes green lengths against the static program.
    static = read_network(scenario.net_file).traffic_lights["C"].programs[0]
    times: dict[int, list[float]] = {}
    for before, after in pairwise(phases[1:]):
        times.setdefault(before.payload.to_dict()["phase"], []).append(after.t - before.t)
    greens = [i for i, p in enumerate(static.phases) if "G" in p.state and "y" not in p.state]
    assert any(abs(d - static.phases[i].duration_s) > 1.0 for i in greens for d in times.get(i, []))


class _Ticker(Controller):
    """A test controller: a simpy process that speaks every 10 s."""

    def start(self, context: ControlContext) -> None:
        def tick() -> Generator[Any, Any, None]:
            while True:
                yield context.env.timeout(10.0)
                context.bus.publish(context.env.now, "test", GuardViolation("none", "tick"))

        context.env.process(tick())


def test_controller_processes_run_on_the_simpy_clock_after_the_sumo_step(tmp_path: Path) -> None:
    register("test-ticker")(_Ticker)
    result = run("single", tmp_path, controller="test-ticker", end_s=120)
    messages = result.log.messages
    assert [(m.t, m.seq) for m in messages] == sorted((m.t, m.seq) for m in messages)
    ticks = [m for m in messages if m.source == "test"]
    assert [m.t for m in ticks] == [10.0 * k for k in range(1, 13)]
    # SUMO's step to t is published before anything a process says at t (the end-of-run
    # summaries at t=120 come after everything, by design).
    for tick in ticks[:-1]:
        same_instant = [m for m in messages if m.t == tick.t and m.source == "monitor"]
        assert all(m.seq < tick.seq for m in same_instant)
    assert result.summary["guard_violations"] == len(ticks)


def test_third_party_grid_runs(grid_cfg: Path, tmp_path: Path) -> None:
    result = run(grid_cfg, tmp_path)
    assert result.summary["vehicles_arrived"] > 100
    assert result.summary["guard_violations"] == 0
    scopes = {r["scope"] for r in result.timeseries}
    assert len([s for s in scopes if s.startswith("tls:")]) == 9


def test_closing_a_lane_that_some_turn_needs_is_refused(tmp_path: Path) -> None:
    from sim.lanes import stranded_turns

    district = read_network(load_scenario("district").net_file)
    assert stranded_turns(district, "B1_C1_2") == []  # a middle lane of a three-lane avenue
    single = read_network(load_scenario("single").net_file)
    only_left = [
        lane
        for lane in single.lanes.values()
        if lane.carries_vehicles and stranded_turns(single, lane.id)
    ]
    assert only_left, "in single, each turn has its own lane: closing one strands it"

    from sim.signals import LaneCommand

    sim = Simulation(
        load_scenario("single"), create_controller("fixed"), seed=1, workdir=tmp_path, end_s=30
    )
    sim.submit(LaneCommand(only_left[0].id, closed=True, user="ops"))
    result = sim.run()
    (status,) = result.log.of_kind("lane.status")
    payload = status.payload.to_dict()
    assert not payload["accepted"] and "would leave no lane" in payload["detail"]

"""Detectors count like detectors: checked against the vehicles SUMO itself puts over each loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.detectors import Detector, DetectorConfig, DetectorKind, place_detectors, write_detectors
from sim.messages import MessageBus
from sim.network import read_network
from sim.scenario import load_scenario
from sim.sensors import RECALL, Ideal, SensorLayer
from sim.sumo import SumoWorld
from tests.conftest import REPO


@pytest.mark.parametrize("advance_m", [60.0, 20.0])
def test_loop_counts_equal_the_vehicles_that_crossed(advance_m: float, tmp_path: Path) -> None:
    """Each vehicle is counted once, when it reaches the loop - even close to the stop line, where
    queued vehicles stand on the loop through a red (the old per-step sum counted them once a
    second). (Within one step's travel of the lane's end SUMO's own loop count can miss a vehicle
    that passes the loop and leaves the lane in the same step, so no loop is checked there.)"""
    scenario = load_scenario("single")
    network = read_network(scenario.net_file)
    config = DetectorConfig(advance_distance_m=advance_m)
    detectors = place_detectors(network, config)
    path = write_detectors(tmp_path / "detectors.add.xml", detectors, types={})
    loops = {d.id: d.lane for d in detectors if d.kind is DetectorKind.ADVANCE}
    world = SumoWorld()
    assert scenario.sumocfg is not None
    additional = ",".join(str(p) for p in [*scenario.additional_files, path])
    world.start(["-c", str(scenario.sumocfg), "-a", additional, "--end", "900", "--no-step-log"])
    layer = SensorLayer(world, detectors, Ideal(), 1.0, bus=MessageBus(), seed=1)
    layer.attach(0.0)
    counted = dict.fromkeys(loops.values(), 0)
    crossed: dict[str, set[str]] = {lane: set() for lane in loops.values()}
    steps_on_loops = 0  # what adding up SUMO's per-step vehicle numbers would count
    try:
        for _ in range(900):
            world.step()
            t = world.time
            for loop, lane in loops.items():
                on_loop = world.loop_vehicle_ids(loop)
                crossed[lane].update(on_loop)
                steps_on_loops += len(on_loop)
            assert layer.update(t)
            for lane in counted:
                counted[lane] += layer.lane(lane).count
    finally:
        world.close()
    truth = {lane: len(ids) for lane, ids in crossed.items()}
    assert sum(truth.values()) > 100
    assert counted == truth
    assert steps_on_loops > 1.3 * sum(truth.values())  # vehicles stay on a loop for steps


class _Silent:
    """Detector reads of one lane that report a vehicle now and then (a pure unit-test fake)."""

    def loops_vehicle_ids(self, loops: list[str]) -> list[tuple[str, ...]]:
        return [("a", "b", "c") for _ in loops]  # the same three vehicles stand there

    def loop_gaps(self, loops: list[str]) -> list[float]:
        return [1.5 for _ in loops]

    def area_counts(self, areas: list[str]) -> list[tuple[int, int, float]]:
        return [(1, 0, 10.0) for _ in areas]


def test_every_report_carries_its_time_and_old_reports_count_as_missing() -> None:
    network_lane = "a_0"
    detectors = [
        Detector("stop", DetectorKind.STOPLINE, "J", network_lane, 0.0, 60.0),
        Detector("adv", DetectorKind.ADVANCE, "J", network_lane, 0.0, 60.0),
    ]
    layer = SensorLayer(_Silent(), detectors, Ideal(), 2.0, bus=MessageBus(), seed=1)  # type: ignore[arg-type]
    layer.attach(0.0)
    assert not layer.update(1.0)  # no report before the period ends
    assert layer.update(2.0)
    report = layer.lane(network_lane, 2.0)
    assert (report.t_s, report.count, report.gap_s, report.present) == (2.0, 3, 1.5, 1)
    assert not layer.update(3.0)
    assert layer.update(4.0) and layer.lane(network_lane, 4.0).count == 0  # nobody new
    # Nothing arrives after t=4: at 2.5 periods of age the report is no longer trusted.
    assert layer.lane(network_lane, 9.0).t_s == 4.0
    assert layer.lane(network_lane, 9.1) == RECALL


def test_zones_on_short_approach_lanes_reach_upstream_and_see_the_queue(tmp_path: Path) -> None:
    """netgenerate's turn lanes make each approach a 4 m edge behind a long one: the zones and
    loops reach back over the lanes that lead straight into it, so a queue is seen whole."""
    scenario = load_scenario(str(REPO / "scenarios/tlsvariants/protected-left/scenario.sumocfg"))
    network = read_network(scenario.net_file)
    detectors = place_detectors(network, DetectorConfig())
    zones = {d.lane: d for d in detectors if d.kind is DetectorKind.STOPLINE}
    short = [lane for lane in zones if network.lanes[lane].length_m < 10.0]
    assert short and all(zones[lane].distance_to_stopline_m == 60.0 for lane in short)
    assert all(len(zones[lane].lanes) == 2 and zones[lane].lanes[-1] == lane for lane in short)
    loops = [d for d in detectors if d.kind is DetectorKind.ADVANCE and d.lane in short]
    assert all(d.lanes[0] != d.lane and d.position_m > 0 for d in loops)
    path = write_detectors(tmp_path / "detectors.add.xml", detectors, types={})
    world = SumoWorld()
    assert scenario.sumocfg is not None
    world.start(["-c", str(scenario.sumocfg), "-a", str(path), "--end", "600", "--no-step-log"])
    layer = SensorLayer(world, detectors, Ideal(), 1.0, bus=MessageBus(), seed=1)
    layer.attach(0.0)
    most, counted = 0, 0
    try:
        for _ in range(600):
            world.step()
            layer.update(world.time)
            most = max(most, *(layer.lane(lane).queue for lane in short))
            counted += sum(layer.lane(lane).count for lane in short)
    finally:
        world.close()
    assert most >= 4  # more cars than a 4 m lane can hold: the zone reaches upstream
    assert counted > 100

"""Incidents: injected ones occur in SUMO and are found from detector data with a delay."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.controllers import create_controller
from sim.devices.incidents import QueueSample, held_by_incident
from sim.engine import RunResult, Simulation
from sim.errors import ScenarioError
from sim.messages import (
    DetectionMatch,
    IncidentDetected,
    IncidentEnded,
    IncidentOccurred,
    IncidentReported,
    IncidentTotals,
    IntersectionInterval,
    LaneStatus,
    Message,
    PedestrianCount,
)
from sim.network import read_network
from sim.scenario import bundled_root, load_scenario
from sim.signals import IncidentCommand, LaneCommand
from sim.sumo import SumoWorld
from tests.sim.devices_helpers import run, single_with

SINGLE = bundled_root() / "single"
CRASH_ROUTES = """<routes>
  <!-- Red-light runners who ignore every foe, also inside the junction -->
  <vType id="reckless" vClass="passenger" jmDriveAfterRedTime="300" jmIgnoreFoeProb="1"
         jmIgnoreFoeSpeed="50" jmIgnoreJunctionFoeProb="1" speedFactor="1"/>
  <route id="W_E" edges="W_C C_E"/>
  <route id="N_S" edges="N_C C_S"/>
  <flow id="ns" type="car" route="N_S" begin="0" end="600" period="2" departLane="best"
        departSpeed="max"/>
  <flow id="runner" type="reckless" route="W_E" begin="30" end="90" period="4" departLane="best"
        departSpeed="max"/>
</routes>
"""
CONFIG = """<configuration>
  <input>
    <net-file value="{single}/single.net.xml"/>
    <route-files value="routes.rou.xml"/>
    <additional-files value="{single}/single.add.xml"/>
  </input>
  <processing>{processing}</processing>
</configuration>
"""
CRASH_PROCESSING = """
    <collision.check-junctions value="{check}"/>
    <collision.action value="remove"/>
    <collision.stoptime value="300"/>
"""
OVERSATURATED_ROUTES = """<routes>
  <route id="W_E" edges="W_C C_E"/>
  <route id="N_S" edges="N_C C_S"/>
  <flow id="we" type="car" route="W_E" begin="0" end="900" period="1.1" departLane="best"
        departSpeed="max"/>
  <flow id="ns" type="car" route="N_S" begin="0" end="900" period="6" departLane="best"
        departSpeed="max"/>
</routes>
"""


def single_with_demand(folder: Path, routes: str, devices: str, processing: str = "") -> Path:
    """A scenario folder: the single intersection's net with the demand ``routes`` (a route
    file), SUMO ``processing`` options and a ``[devices]`` declaration."""
    folder.mkdir(parents=True)
    (folder / "routes.rou.xml").write_text(routes, encoding="utf-8")
    config = CONFIG.format(single=SINGLE, processing=processing)
    (folder / "scenario.sumocfg").write_text(config, encoding="utf-8")
    toml = f'name = "{folder.name}"\nsumocfg = "scenario.sumocfg"\n\n{devices}\n'
    (folder / "scenario.toml").write_text(toml, encoding="utf-8")
    return folder


def crash_scenario(folder: Path, *, check_junctions: bool) -> Path:
    """Runners crossing W->E on red into the N->S green flow; SUMO lets crashed vehicles stand
    300 s, then removes them."""
    processing = CRASH_PROCESSING.format(check="true" if check_junctions else "false")
    return single_with_demand(folder, CRASH_ROUTES, "[devices.incidents]", processing)


INCIDENT = """
[devices.incidents]
persist_s = 120

[[devices.incidents.inject]]
at_s = 120
edge = "W_C"
lane = 1
pos_m = 100
duration_s = 600
"""


def matches(result: RunResult) -> list[DetectionMatch]:
    """The ground truth on each detection, as the KPIs get it at the end of the run."""
    (totals,) = result.log.of_kind("incident.totals")
    assert isinstance(totals.payload, IncidentTotals)
    return list(totals.payload.detections)


def test_detections_on_the_stream_carry_no_ground_truth(tmp_path: Path) -> None:
    """A city's detector knows where traffic stopped, not which incident caused it."""
    assert set(IncidentDetected("W_C_1", "W_C").to_dict()) == {"lane", "edge"}


def test_injected_incident_is_detected_with_its_delay(tmp_path: Path) -> None:
    result = run(single_with(tmp_path / "a", INCIDENT), tmp_path / "r", end_s=900.0)
    occurred = [m for m in result.log.of_kind("incident.occurred")]
    assert len(occurred) == 1 and occurred[0].t == 120.0
    assert isinstance(occurred[0].payload, IncidentOccurred)
    assert occurred[0].payload.cause == "stopped_vehicle"
    matched = [d for d in matches(result) if d.incident is not None]
    assert len(matched) == 1 and matched[0].lane == "W_C_1"
    delay = matched[0].delay_s
    assert delay is not None and 120.0 <= delay <= 200.0
    assert result.summary["incident_detection_delay_mean_s"] == delay
    # The broken-down car stands for its 600 s, then drives off the edge (SUMO keeps a stop
    # with ``until`` but no duration for ever).
    left = [m.t for m in result.log.of_kind("vehicles.arrived") if "ccsim.incident.1" in m.payload.ids]
    assert len(left) == 1 and 720.0 <= left[0] <= 760.0


def test_a_collision_in_sumo_is_an_incident_and_is_detected(tmp_path: Path) -> None:
    result = run(crash_scenario(tmp_path / "a", check_junctions=True), tmp_path / "r", end_s=600.0)
    occurred = [m for m in result.log.of_kind("incident.occurred")]
    # runners keep coming after the first crash: the pile-up in the junction is one incident
    assert len(occurred) == 1
    crash = occurred[0].payload
    assert isinstance(crash, IncidentOccurred) and crash.cause == "collision"
    light = read_network(SINGLE / "single.net.xml").traffic_lights["C"]
    runner_lanes = {
        link.via for link in light.links if link.from_lane[:4] == "W_C_" and link.to_lane[:4] == "C_E_"
    }
    assert crash.lane in runner_lanes  # inside the junction, on the runner's path
    assert crash.edge == crash.lane.rsplit("_", 1)[0] and crash.duration_s == 300.0
    detected = [m.payload for m in result.log.of_kind("incident.detected")]
    assert len(detected) == 1 and isinstance(detected[0], IncidentDetected)
    # found where the blocked green traffic queues, after persist_s (150 s) of it
    (match,) = matches(result)
    assert detected[0].edge == "N_C" and match.lane == detected[0].lane
    assert match.incident == crash.incident
    assert match.delay_s is not None and 150.0 <= match.delay_s <= 180.0
    assert result.summary["incident_detection_delay_mean_s"] == match.delay_s
    assert result.summary["incident_false_alarms_per_h"] == 0.0

    # Without junction checks SUMO lets the same runners drive through the cross traffic.
    unchecked = crash_scenario(tmp_path / "b", check_junctions=False)
    quiet = run(unchecked, tmp_path / "r2", end_s=600.0)
    assert quiet.log.of_kind("incident.occurred") == []
    assert quiet.log.of_kind("incident.detected") == []


def test_a_queue_that_never_clears_is_congestion_not_an_incident(tmp_path: Path) -> None:
    # W->E demand beyond what its green serves: the queue on W_C stands for the whole run, but
    # it reaches the stop line and moves up every green. The broken-down car on N_C holds a
    # queue behind it while the stretch before the stop line runs empty.
    stopped = INCIDENT.replace('edge = "W_C"', 'edge = "N_C"').replace("at_s = 120", "at_s = 300")
    folder = single_with_demand(tmp_path / "a", OVERSATURATED_ROUTES, stopped)
    result = run(folder, tmp_path / "r", end_s=900.0)
    halted = max(m.payload.queue_max_veh for m in result.log.of_kind("intersection.interval")
                 if isinstance(m.payload, IntersectionInterval))  # fmt: skip
    assert halted >= 30  # the queue of a congested approach, several cycles long
    assert [(d.lane, d.incident) for d in matches(result)] == [("N_C_1", "incident.1")]
    assert [m.payload.to_dict()["lane"] for m in result.log.of_kind("incident.detected")] == ["N_C_1"]
    assert result.summary["incident_false_alarms_per_h"] == 0.0


def test_a_standing_queue_is_an_incident_only_when_held_by_one() -> None:
    def window(occupancy: float, reached: int, jammed: bool) -> list[QueueSample]:
        return [QueueSample(occupancy, reached, jammed)] * 15

    # its head is mid-block: the stretch before the stop line is nearly empty
    assert held_by_incident(window(0.10, 1, False), 0.3)
    # a queue at the stop line that moves up: a red light, congestion
    assert not held_by_incident(window(0.65, 1, False), 0.3)
    # nobody reaches the stop bar and the street ahead is free: the junction is blocked
    assert held_by_incident(window(0.65, 0, False), 0.3)
    # nobody reaches the stop bar because the street ahead is full: spill-back, congestion
    assert not held_by_incident(window(0.65, 0, True), 0.3)


def test_no_incident_no_detection_delay(tmp_path: Path) -> None:
    result = run(single_with(tmp_path / "a", "[devices.incidents]\n"), tmp_path / "r", end_s=600.0)
    assert result.log.of_kind("incident.occurred") == []
    assert all(d.incident is None for d in matches(result))
    assert len(matches(result)) == len(result.log.of_kind("incident.detected"))
    assert result.summary["incident_detection_delay_mean_s"] is None
    false_alarms = len(result.log.of_kind("incident.detected"))
    assert result.summary["incident_false_alarms_per_h"] == false_alarms * 6.0


def test_an_operator_reports_incidents_and_they_occur_as_injected_ones(tmp_path: Path) -> None:
    folder = single_with(tmp_path / "a", "[devices.incidents]\npersist_s = 120\n")
    sim = Simulation(load_scenario(folder), create_controller("fixed"), seed=1,
                     workdir=tmp_path / "r", end_s=600.0)  # fmt: skip
    # As the control center sends them: applied at the next step boundary.
    sim.submit(IncidentCommand("E_C", 1, 50.0, 300.0, "blocked_lane", "ana"))
    sim.submit(IncidentCommand("N_C", 1, 120.0, 400.0, "stopped_vehicle", "ana"))
    sim.submit(IncidentCommand("N_C", 1, 9999.0, 400.0, "stopped_vehicle", "ana"))
    result = sim.run()
    occurred = [m.payload for m in result.log.of_kind("incident.occurred")]
    assert [o.cause for o in occurred if isinstance(o, IncidentOccurred)] == [
        "blocked_lane", "stopped_vehicle"
    ]  # fmt: skip
    reported = [m.payload for m in result.log.of_kind("incident.reported")]
    assert all(isinstance(r, IncidentReported) for r in reported)
    refused = [r for r in reported if isinstance(r, IncidentReported) and not r.accepted]
    assert len(refused) == 1 and refused[0].incident == ""
    assert refused[0].detail.startswith("pos_m 9999.0: expected a position on N_C_1: 0 to ")
    accepted = [r for r in reported if isinstance(r, IncidentReported) and r.accepted]
    assert [(r.incident, r.user) for r in accepted] == [("incident.1", "ana"), ("incident.2", "ana")]
    # The blocked lane is held by its incident, then released when it ends; both end on time.
    lane = [(m.t, m.payload.closed, m.payload.owners) for m in result.log.of_kind("lane.status")
            if isinstance(m.payload, LaneStatus)]  # fmt: skip
    assert lane == [(1.0, True, ("incident.1",)), (301.0, False, ())]
    ended = [(m.t, m.payload.incident) for m in result.log.of_kind("incident.ended")
             if isinstance(m.payload, IncidentEnded)]  # fmt: skip
    assert ended == [(301.0, "incident.1"), (401.0, "incident.2")]
    assert result.summary["incident_detection_delay_mean_s"] is not None


def test_incidents_and_operators_each_lift_only_their_own_hold_in_sumo(tmp_path: Path) -> None:
    # The district: the small nets have no lane an operator may close (each serves some turn).
    sim = Simulation(load_scenario("district"), create_controller("fixed"), seed=1,
                     workdir=tmp_path / "r", end_s=130.0)  # fmt: skip
    sim.submit(LaneCommand("B1_C1_2", True, "ana"))  # closed by an operator from the first step
    sumo: dict[str, tuple[str, ...]] = {}
    done: set[str] = set()

    def operate(message: Message) -> None:
        if message.t >= 30.0 and "incidents" not in done:
            done.add("incidents")
            sim.submit(IncidentCommand("B1_C1", 2, 100.0, 60.0, "blocked_lane", "bo"))
            sim.submit(IncidentCommand("B1_A1", 2, 100.0, 600.0, "blocked_lane", "bo"))
        if message.t >= 60.0 and "open" not in done:
            done.add("open")
            sim.submit(LaneCommand("B1_A1_2", False, "ana"))
        if message.t >= 120.0 and not sumo:
            world = sim.lanes.world if sim.lanes is not None else None
            assert isinstance(world, SumoWorld)
            sumo.update((lane, world.lane_allowed(lane)) for lane in ("B1_C1_2", "B1_A1_2"))

    sim.bus.subscribe(operate)
    result = sim.run()
    reported = {m.payload.lane: m.payload.incident for m in result.log.of_kind("incident.reported")
                if isinstance(m.payload, IncidentReported) and m.payload.accepted}  # fmt: skip
    status = [m.payload for m in result.log.of_kind("lane.status") if isinstance(m.payload, LaneStatus)]
    # (a) The incident on B1_C1_2 ends after 60 s: its hold goes, the operator's stays.
    first = reported["B1_C1_2"]
    ended = next(p for p in status if p.lane == "B1_C1_2" and p.user == first and p.asked == "open")
    assert ended.closed and ended.owners == ("operator:ana",)
    assert "the lane stays closed: held by operator:ana" in ended.detail
    assert sumo["B1_C1_2"] == ("authority",)  # SUMO still keeps traffic off it at 120 s
    # (b) The operator's open of B1_A1_2 does not lift the other incident's hold.
    second = reported["B1_A1_2"]
    answer = next(p for p in status if p.lane == "B1_A1_2" and p.user == "ana")
    assert not answer.accepted and answer.closed and answer.owners == (second,)
    assert f"held by {second}" in answer.detail
    assert sumo["B1_A1_2"] == ("authority",)
    assert [p.lane for p in status if not p.closed] == []  # nothing opened during the run


def test_a_reported_incident_is_refused_in_a_run_without_the_incident_model(tmp_path: Path) -> None:
    sim = Simulation(load_scenario("single"), create_controller("fixed"), seed=1,
                     workdir=tmp_path / "r", end_s=5.0)  # fmt: skip
    sim.submit(IncidentCommand("W_C", 1, 50.0, 60.0, "stopped_vehicle", "ana"))
    (answer,) = [m.payload for m in sim.run().log.of_kind("incident.reported")]
    assert isinstance(answer, IncidentReported) and not answer.accepted
    assert answer.detail == "no incident model in this run: the scenario needs [devices.incidents]"


def test_an_incident_may_not_block_a_lane_sumo_cannot_run_without(tmp_path: Path) -> None:
    # In single, N_C's only way into C_W is C_W_1: SUMO would stop at the next N->W departure.
    blocked = INCIDENT.replace('edge = "W_C"', 'edge = "C_W"') + 'cause = "blocked_lane"\n'
    with pytest.raises(ScenarioError) as refused:
        run(single_with(tmp_path / "a", blocked), tmp_path / "r", end_s=10.0)
    message = str(refused.value)
    assert "devices.incidents.inject[0].lane" in message
    assert "blocking C_W_1 would leave no lane of C_W reached from N_C" in message


def test_pedestrians_are_counted_as_a_group_only(tmp_path: Path) -> None:
    folder = single_with(tmp_path / "a", "[devices.pedestrians]\ninterval_s = 300\n")
    result = run(folder, tmp_path / "r", end_s=900.0)
    counts = [m.payload for m in result.log.of_kind("pedestrian.count")]
    assert len(counts) == 3 and all(isinstance(c, PedestrianCount) for c in counts)
    assert sum(c.count for c in counts if isinstance(c, PedestrianCount)) > 30
    # the message carries a site, a time window and a number: nothing that names a person
    assert set(counts[0].to_dict()) == {"site", "begin_s", "end_s", "count"}

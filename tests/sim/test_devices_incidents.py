"""Incidents: injected ones occur in SUMO and are found from detector data with a delay."""

from __future__ import annotations

from pathlib import Path

from sim.devices.config import InjectedIncident
from sim.messages import DevicesDeployed, IncidentDetected, IncidentOccurred, Message, PedestrianCount
from tests.sim.devices_helpers import run, single_with

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


def test_injected_incident_is_detected_with_its_delay(tmp_path: Path) -> None:
    result = run(single_with(tmp_path / "a", INCIDENT), tmp_path / "r", end_s=900.0)
    occurred = [m for m in result.log.of_kind("incident.occurred")]
    assert len(occurred) == 1 and occurred[0].t == 120.0
    assert isinstance(occurred[0].payload, IncidentOccurred)
    assert occurred[0].payload.cause == "stopped_vehicle"
    detected = [m.payload for m in result.log.of_kind("incident.detected")]
    matched = [d for d in detected if isinstance(d, IncidentDetected) and d.incident is not None]
    assert len(matched) == 1 and matched[0].lane == "W_C_1"
    delay = matched[0].delay_s
    assert delay is not None and 120.0 <= delay <= 200.0
    assert result.summary["incident_detection_delay_mean_s"] == delay


def test_no_incident_no_detection_delay(tmp_path: Path) -> None:
    result = run(single_with(tmp_path / "a", "[devices.incidents]\n"), tmp_path / "r", end_s=600.0)
    assert result.log.of_kind("incident.occurred") == []
    assert all(isinstance(m.payload, IncidentDetected) and m.payload.incident is None
               for m in result.log.of_kind("incident.detected"))  # fmt: skip
    assert result.summary["incident_detection_delay_mean_s"] is None
    false_alarms = len(result.log.of_kind("incident.detected"))
    assert result.summary["incident_false_alarms_per_h"] == false_alarms * 6.0


def test_an_operator_can_inject_an_incident(tmp_path: Path) -> None:
    from sim.controllers import create_controller
    from sim.engine import Simulation
    from sim.scenario import load_scenario

    folder = single_with(tmp_path / "a", "[devices.incidents]\npersist_s = 120\n")
    sim = Simulation(load_scenario(folder), create_controller("fixed"), seed=1,
                     workdir=tmp_path / "r", end_s=600.0)  # fmt: skip
    lane_closed = InjectedIncident(at_s=0.0, edge="E_C", lane=1, duration_s=300.0, cause="blocked_lane")
    stopped = InjectedIncident(at_s=0.0, edge="N_C", lane=1, pos_m=120.0, duration_s=400.0)

    def inject(message: Message) -> None:
        # As an operator's command would: submitted while the run goes, applied at the next step.
        if isinstance(message.payload, DevicesDeployed) and sim.devices is not None:
            sim.devices.submit_incident(lane_closed)
            sim.devices.submit_incident(stopped)

    sim.bus.subscribe(inject)
    result = sim.run()
    occurred = [m.payload for m in result.log.of_kind("incident.occurred")]
    assert [o.cause for o in occurred if isinstance(o, IncidentOccurred)] == [
        "blocked_lane", "stopped_vehicle"
    ]  # fmt: skip
    assert result.summary["incident_detection_delay_mean_s"] is not None


def test_pedestrians_are_counted_as_a_group_only(tmp_path: Path) -> None:
    folder = single_with(tmp_path / "a", "[devices.pedestrians]\ninterval_s = 300\n")
    result = run(folder, tmp_path / "r", end_s=900.0)
    counts = [m.payload for m in result.log.of_kind("pedestrian.count")]
    assert len(counts) == 3 and all(isinstance(c, PedestrianCount) for c in counts)
    assert sum(c.count for c in counts if isinstance(c, PedestrianCount)) > 30
    # the message carries a site, a time window and a number: nothing that names a person
    assert set(counts[0].to_dict()) == {"site", "begin_s", "end_s", "count"}

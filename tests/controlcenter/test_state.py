"""controlcenter/state.py: the control room's state, reduced from the message stream alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from controlcenter.state import ControlState, register_reducer
from sim.messages import (
    AirReading,
    DetectorReadings,
    DevicesDeployed,
    IncidentDetected,
    LaneStatus,
    Message,
    ParkingOccupancy,
    Payload,
    RedLightViolation,
    SensorFault,
    SensorRecovered,
    SignalMode,
    SignalPhase,
    VehiclesArrived,
    VehiclesDeparted,
    ZoneOccupancy,
)
from sim.outputs import payload_json


def test_state_keeps_the_latest_entries_and_hands_out_only_changes() -> None:
    state = ControlState()
    state(Message(1.0, 1, "tls:J1", SignalPhase("J1", "0", 0, "GGrr")))
    state(Message(1.0, 2, "monitor", VehiclesDeparted(("a", "b", "c"))))
    state(Message(2.0, 3, "monitor", VehiclesArrived(("a",))))
    closed = LaneStatus("L_1", True, "ana", True, "closed", ("operator:ana",), "close")
    state(Message(2.0, 4, "lane:L", closed))
    changes = state.changes()
    assert changes["signals"]["J1"]["state"] == "GGrr"
    assert changes["kpis"] == {"departed": 3, "arrived": 1, "running": 2}
    assert changes["lanes"]["L_1"] == {
        "closed": True,
        "owners": ["operator:ana"],
        "user": "ana",
        "since": 2.0,
    }
    state(Message(1.0, 5, "tls:J1", SignalPhase("J1", "0", 0, "GGrr")))  # the same again
    assert "signals" not in state.changes()
    refused = LaneStatus("X_1", False, "ana", False, "no lane", (), "close")
    state(Message(3.0, 6, "lane:L", refused))
    assert state.changes() == {} and set(state.snapshot()["lanes"]) == {"L_1"}


def test_field_devices_appear_in_the_state() -> None:
    state = ControlState()
    zones = (ZoneOccupancy("pa_1", "loading", 4, 3, 2, 1.5),)
    for seq, payload in enumerate(
        [ParkingOccupancy(zones), AirReading("aq1", 40.0, 30.0, 420.0, 38.0, 28.0, 55.0, "moderate"),
         SensorFault("N_C_1", "C", "chatter"), DevicesDeployed("gates", ("A1_B1",)),
         RedLightViolation("C", "serious", 32.0, "entered on red")],
        start=1,
    ):  # fmt: skip
        state(Message(60.0, seq, "devices", payload))
    snapshot = state.snapshot()
    assert snapshot["zones"]["pa_1"]["sensed_occupied"] == 2
    assert snapshot["stations"]["aq1"]["index"] == 55.0
    assert snapshot["sensor_faults"]["N_C_1"]["fault"] == "chatter"
    assert snapshot["devices"] == {"gates": ["A1_B1"]} and snapshot["kpis"]["violations"] == 1
    state(Message(90.0, 6, "devices", SensorRecovered("N_C_1", "C", "chatter", 60.0)))
    assert state.changes()["sensor_faults"] == {"N_C_1": None}


@dataclass(frozen=True, slots=True)
class BayOccupancy(Payload):
    kind: ClassVar[str] = "test.bay"
    bay: str
    occupied: bool


def test_devices_of_later_issues_plug_into_the_state() -> None:
    @register_reducer(BayOccupancy.kind)
    def bay(state: ControlState, t: float, payload: dict[str, Any]) -> None:
        state.set("bays", payload["bay"], {"occupied": payload["occupied"]})

    state = ControlState()
    state(Message(1.0, 1, "bay:b1", BayOccupancy("b1", True)))
    assert state.snapshot()["bays"] == {"b1": {"occupied": True}}


def test_signals_show_what_sumo_shows_with_their_mode_from_the_stream() -> None:
    state = ControlState()
    state(Message(0.0, 1, "tls:C", SignalMode("C", "automatic")))
    state(Message(5.0, 2, "tls:C", SignalPhase("C", "online", -1, "yyrr", target=2)))
    state(Message(9.0, 3, "tls:C", SignalMode("C", "flash")))
    assert state.snapshot()["signals"]["C"] == {
        "mode": "flash", "program": "online", "phase": -1, "target": 2, "state": "yyrr", "since": 5.0,
    }  # fmt: skip


def test_detector_readings_carry_only_what_changed() -> None:
    state = ControlState()
    state(
        Message(
            0.0, 1, "detectors", DetectorReadings({"a_0": (0, 0, 0, 0.0, 0), "b_0": (1, 2, 3, 0.5, 0)})
        )
    )
    state.changes()
    state(Message(1.0, 2, "detectors", DetectorReadings({"a_0": (2, 1, 1, 0.25, 1)})))
    assert state.changes() == {
        "detectors": {"a_0": {"count": 2, "queue": 1, "present": 1, "occupancy": 0.25, "buses": 1}}
    }
    assert state.snapshot()["detectors"]["b_0"]["queue"] == 2


def test_rows_as_they_cross_between_processes_reduce_as_the_messages_do() -> None:
    messages = [
        Message(1.0, 1, "tls:C", SignalPhase("C", "0", 0, "GGrr", 0)),
        Message(2.0, 2, "detectors", DetectorReadings({"a_0": (1, 0, 1, 0.125, 0)})),
        Message(3.0, 3, "incidents", IncidentDetected("a_0", "a")),
    ]
    direct, from_rows = ControlState(), ControlState()
    for message in messages:
        direct(message)
    from_rows.apply_rows([(m.seq, m.t, m.source, m.kind, payload_json(m)) for m in messages])
    assert from_rows.snapshot() == direct.snapshot()
    assert from_rows.snapshot()["incidents"] == {"a_0": {"edge": "a", "t": 3.0}}

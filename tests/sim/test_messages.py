from __future__ import annotations

from sim.messages import Message, MessageBus, MessageLog, SignalPhase, VehiclesDeparted


def test_bus_stamps_increasing_seq_and_delivers_in_order_to_all() -> None:
    bus = MessageBus()
    first, second = MessageLog(), MessageLog()
    bus.subscribe(first)
    bus.subscribe(second)
    bus.publish(1.0, "monitor", VehiclesDeparted(("a",)))
    bus.publish(1.0, "tls:J1", SignalPhase("J1", "0", 2, "GGrr"))
    assert [m.seq for m in first.messages] == [1, 2]
    assert first.messages == second.messages
    assert [m.kind for m in first.messages] == ["vehicles.departed", "signal.phase"]


def test_payload_serialises_to_plain_values() -> None:
    message = Message(3.0, 7, "tls:J1", SignalPhase("J1", "0", 2, "GGrr"))
    assert message.kind == "signal.phase"
    assert message.payload.to_dict() == {
        "tls": "J1",
        "program": "0",
        "phase": 2,
        "state": "GGrr",
        "target": None,
    }

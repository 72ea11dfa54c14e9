"""The ingest state machine: registry lookup, frame counters, and every kind of bad input counted
by its reason - never an exception."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.lorawan.codecs import Frame
from adapters.lorawan.ingest import Ingest, Rejected
from adapters.lorawan.registry import Device, RegistryError, parse_registry, read_registry
from adapters.lorawan.uplink import Format, Reason
from sim.messages import BayObserved
from tests.adapters.lorawan_helpers import DEVICES, message, registry

NWAVE, BOSCH, DINGTEK = DEVICES
NOW = 1.0e9 + 0.02


def _ingest() -> Ingest:
    return Ingest(registry())


@pytest.mark.parametrize("fmt", list(Format))
@pytest.mark.parametrize("device", DEVICES, ids=lambda d: d.model)
def test_an_uplink_becomes_a_bay_observation(fmt: Format, device: Device) -> None:
    ingest = _ingest()
    result = ingest.handle(*message(device, 5, True, fmt), now=NOW)
    assert result == BayObserved(
        device.zone, device.bay, True, device.device_id, 5, 0, 3.6 if device is DINGTEK else None
    )
    assert ingest.counters["applied"] == 1
    assert ingest.last_latency_s == pytest.approx(0.02, abs=1e-6)


def test_heartbeats_confirm_the_state_and_carry_the_battery() -> None:
    ingest = _ingest()
    result = ingest.handle(*message(NWAVE, 1, False, frame=Frame.HEARTBEAT), now=NOW)
    assert isinstance(result, BayObserved)
    # 3.6 V sent; 2.5 V + 4 mV x 255 = 3.52 V is the most an NPS405 heartbeat can say.
    assert (result.occupied, result.battery_v) == (False, 3.52)


def _reason(result: BayObserved | Rejected) -> Reason:
    assert isinstance(result, Rejected), result
    return result.reason


def test_duplicate_replay_late_and_gap() -> None:
    ingest = _ingest()
    assert isinstance(ingest.handle(*message(NWAVE, 10, True), now=NOW), BayObserved)
    assert _reason(ingest.handle(*message(NWAVE, 10, True), now=NOW)) is Reason.DUPLICATE
    gap = ingest.handle(*message(NWAVE, 14, False), now=NOW)
    assert isinstance(gap, BayObserved)
    assert gap.lost == 3
    assert (ingest.counters["gaps"], ingest.counters["lost"]) == (1, 3)
    # 12 arrives after 14: late, fills part of the gap, but its state is stale.
    assert _reason(ingest.handle(*message(NWAVE, 12, True), now=NOW)) is Reason.LATE
    assert ingest.counters["lost"] == 2
    # 10 again, after 14: a replay of an old frame.
    assert _reason(ingest.handle(*message(NWAVE, 10, True), now=NOW)) is Reason.REPLAY
    assert ingest.counters["applied"] == 2
    assert {k: ingest.counters[k] for k in ("duplicate", "late", "replay")} == {
        "duplicate": 1,
        "late": 1,
        "replay": 1,
    }


def test_devices_keep_their_own_counters() -> None:
    ingest = _ingest()
    for device in DEVICES:
        assert isinstance(ingest.handle(*message(device, 1, True), now=NOW), BayObserved)
    assert ingest.counters["applied"] == 3


def test_unknown_device_is_counted_not_raised() -> None:
    stranger = Device("bay-x-9", "0000000000000999", "nwave/nps405", "x", 9)
    ingest = _ingest()
    result = ingest.handle(*message(stranger, 1, True), now=NOW)
    assert _reason(result) is Reason.UNKNOWN_DEVICE
    assert isinstance(result, Rejected)
    assert result.topic == "v3/ccsim-parking@ccsim/devices/bay-x-9/up"
    assert "bay-x-9" in result.detail
    assert ingest.counters["unknown_device"] == 1


def _tts_with(device: Device, **fields: object) -> tuple[str, bytes]:
    topic, body = message(device, 1, True)
    event = json.loads(body)
    event["uplink_message"].update(fields)
    return topic, json.dumps(event).encode()


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (
            lambda: ("v3/ccsim-parking@ccsim/devices/bay-z1-0/up", b'{"uplink_message": '),
            "malformed_json",
        ),
        (lambda: _tts_with(NWAVE, frm_payload="%%%"), "malformed_base64"),
        (lambda: _tts_with(NWAVE, frm_payload=""), "malformed_payload"),  # no byte to decode
        (lambda: _tts_with(DINGTEK, frm_payload="AAAA"), "malformed_payload"),  # 3 bytes, not 23
        (lambda: _tts_with(NWAVE, f_port=77), "malformed_payload"),
        (lambda: _tts_with(NWAVE, f_port="one"), "malformed_fields"),
        (lambda: _tts_with(NWAVE, received_at=12), "malformed_fields"),
        (lambda: _tts_with(NWAVE, f_port=6, frm_payload="AQ=="), "no_occupancy"),
        (lambda: ("v3/ccsim-parking@ccsim/devices/bay-z1-0/join", b"{}"), "not_uplink"),
    ],
)
def test_bad_input_of_each_kind_is_counted_under_its_reason(mangle, reason: str) -> None:  # type: ignore[no-untyped-def]
    ingest = _ingest()
    topic, body = mangle()
    result = ingest.handle(topic, body, now=NOW)
    assert isinstance(result, Rejected)
    assert result.reason.value == reason
    assert result.topic == topic
    assert ingest.counters == {reason: 1}
    # ...and the device still works afterwards.
    assert isinstance(ingest.handle(*message(NWAVE, 2, True), now=NOW), BayObserved)


def test_silent_and_low_battery_devices() -> None:
    ingest = _ingest()
    ingest.handle(*message(NWAVE, 1, True), now=NOW)
    ingest.handle(*message(DINGTEK, 1, True), now=NOW + 100)
    assert ingest.silent(NOW + 150, after_s=120) == ["bay-z1-0"]
    assert ingest.low_battery() == []


def test_registry_file_round_trips_and_names_bad_fields(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    registry().write(path)
    back = read_registry(path)
    assert list(back.by_id.values()) == list(DEVICES)
    assert back.find("", "70b3d57ed0000002") == BOSCH
    header = "device_id,dev_eui,model,zone,bay\n"
    cases = {
        "a,XYZ,nwave/nps405,z,0": "line 2: field 'dev_eui' is 'XYZ'",
        "a,70B3D57ED0000001,acme/x,z,0": "line 2: field 'model'",
        "a,70B3D57ED0000001,nwave/nps405,z,first": "line 2: field 'bay' is 'first'",
    }
    for row, expected in cases.items():
        with pytest.raises(RegistryError, match=expected):
            parse_registry(header + row + "\n", "devices.csv")
    with pytest.raises(RegistryError, match="header"):
        parse_registry("id,eui\n")
    with pytest.raises(RegistryError, match="cannot read"):
        read_registry(tmp_path / "missing.csv")

"""The vendor codecs against the vendors' own examples (TheThingsNetwork/lorawan-devices, vendored
in data/lorawan-devices with their commits), and our encoders against our decoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.lorawan.codecs import Frame, PayloadError, SensorState, codec_for, models

DATA = Path(__file__).parent / "data" / "lorawan-devices"
VECTORS = {
    "nwave/nps405": "nwave-nps405-codec.yaml",
    "bosch/tps110": "bosch-tps110-0292-codec.yaml",
    "dingtek/do201": "dingtek-do201-codec.yaml",
}


def _examples() -> list[tuple[str, str, dict[str, Any]]]:
    cases = []
    for model, name in VECTORS.items():
        spec = yaml.safe_load((DATA / name).read_text())
        for example in spec["uplinkDecoder"]["examples"]:
            cases.append((model, example["description"], example))
    return cases


def test_every_model_has_golden_vectors() -> None:
    assert sorted(VECTORS) == models()


@pytest.mark.parametrize(("model", "description", "example"), _examples())
def test_decode_matches_the_vendor_example(
    model: str, description: str, example: dict[str, Any]
) -> None:
    codec = codec_for(model)
    data = codec.decode(example["input"]["fPort"], bytes(example["input"]["bytes"]))
    assert data == example["output"]["data"], description


@pytest.mark.parametrize("model", sorted(VECTORS))
@pytest.mark.parametrize("occupied", [True, False])
def test_encoded_frames_decode_to_the_state_sent(model: str, occupied: bool) -> None:
    codec = codec_for(model)
    state = SensorState(occupied, state_s=1800.0, battery_v=3.3, temperature_c=21.0, counter=7)
    for frame in (Frame.STATUS, Frame.HEARTBEAT):
        f_port, payload = codec.encode(frame, state)
        reading = codec.reading(f_port, payload)
        assert reading.occupied is occupied
        assert reading.temperature_c in (None, 21.0)
        assert reading.battery_v in (None, pytest.approx(3.3, abs=0.005))


def test_nwave_status_carries_the_previous_state_duration_in_minutes() -> None:
    codec = codec_for("nwave/nps405")
    for minutes, (expected, error) in {30: (30, 0), 120: (120, 4), 300: (300, 59)}.items():
        f_port, payload = codec.encode(Frame.STATUS, SensorState(True, state_s=minutes * 60.0))
        data = codec.decode(f_port, payload)
        assert (data["previous_state_duration"], data["previous_state_duration_error"]) == (
            expected,
            error,
        )
    f_port, payload = codec.encode(Frame.STATUS, SensorState(True, state_s=86400.0))
    assert codec.decode(f_port, payload)["previous_state_duration_overflow"] is True


@pytest.mark.parametrize(
    ("model", "f_port", "payload"),
    [
        ("nwave/nps405", 1, b""),
        ("nwave/nps405", 2, b"\x01\x02"),
        ("nwave/nps405", 99, b"\x01"),
        ("bosch/tps110", 3, bytes(5)),
        ("bosch/tps110", 0, b"\x01"),
        ("dingtek/do201", 3, bytes(10)),
        ("dingtek/do201", 1, bytes(23)),
    ],
)
def test_malformed_payloads_raise_a_payload_error(model: str, f_port: int, payload: bytes) -> None:
    with pytest.raises(PayloadError, match=model):
        codec_for(model).reading(f_port, payload)


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="nwave/nps405"):
        codec_for("acme/x1")

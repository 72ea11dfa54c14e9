"""Uplink JSON as The Things Stack v3 and ChirpStack v4 publish it, and back."""

from __future__ import annotations

import base64
import json

import pytest
from chirpstack_api import integration
from google.protobuf import json_format

from adapters.lorawan.uplink import (
    Format,
    Reason,
    UplinkError,
    chirpstack_event,
    chirpstack_json,
    format_of,
    parse,
    topic_and_json,
    tts_json,
)
from tests.adapters.lorawan_helpers import APP, DEVICES, uplink

NWAVE = DEVICES[0]


def test_tts_uplink_has_the_v3_shape_and_topic() -> None:
    up = uplink(NWAVE, 42, True, at=1_764_900_000.25)
    topic, body = topic_and_json(Format.TTS, APP, up)
    assert topic == "v3/ccsim-parking@ccsim/devices/bay-z1-0/up"
    event = json.loads(body)
    ids = event["end_device_ids"]
    assert ids["device_id"] == "bay-z1-0"
    assert ids["application_ids"] == {"application_id": "ccsim-parking"}
    assert ids["dev_eui"] == NWAVE.dev_eui
    message = event["uplink_message"]
    assert (message["f_port"], message["f_cnt"]) == (1, 42)
    assert base64.b64decode(message["frm_payload"]) == up.payload
    assert message["received_at"] == "2025-12-05T02:00:00.250000Z"
    rx = message["rx_metadata"][0]
    assert {"gateway_ids", "rssi", "snr", "timestamp"} <= rx.keys()
    assert message["settings"]["data_rate"]["lora"]["spreading_factor"] == 7
    assert message["version_ids"]["brand_id"] == "nwave"


def test_chirpstack_uplink_is_a_valid_uplink_event() -> None:
    up = uplink(DEVICES[2], 7, False, at=1_764_900_000.5)
    topic, body = topic_and_json(Format.CHIRPSTACK, APP, up)
    assert topic == f"application/{APP.application_uuid}/device/70b3d57ed0000003/event/up"
    # chirpstack-api's own types read it back field for field.
    event = json_format.Parse(body, integration.UplinkEvent())
    assert event == chirpstack_event(APP, up)
    assert event.device_info.dev_eui == "70b3d57ed0000003"
    assert (event.f_port, event.f_cnt, bytes(event.data)) == (3, 7, up.payload)
    document = json.loads(body)
    assert {"deduplicationId", "time", "deviceInfo", "fCnt", "fPort", "data", "rxInfo", "txInfo"} <= (
        document.keys()
    )
    assert document["time"].startswith("2025-12-05T02:00:00.5")


@pytest.mark.parametrize("fmt", list(Format))
def test_parse_round_trips(fmt: Format) -> None:
    up = uplink(DEVICES[1], 3, True, at=1_764_900_000.125)
    back = parse(*topic_and_json(fmt, APP, up))
    assert (back.device_id, back.dev_eui, back.f_port, back.f_cnt, back.payload) == (
        up.device_id,
        up.dev_eui,
        up.f_port,
        up.f_cnt,
        up.payload,
    )
    assert back.received_at == pytest.approx(up.received_at, abs=1e-6)


def test_nanosecond_times_and_a_zero_f_cnt_left_out_are_read() -> None:
    event = json.loads(tts_json(APP, uplink(NWAVE, 0, True)))
    event["uplink_message"]["received_at"] = "2025-12-05T02:00:00.123456789Z"
    del event["uplink_message"]["f_cnt"]  # proto3 JSON omits zero values
    up = parse("v3/ccsim-parking@ccsim/devices/bay-z1-0/up", json.dumps(event).encode())
    assert up.f_cnt == 0
    assert up.received_at == pytest.approx(1_764_900_000.123456)


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        ("v3/a@t/devices/d/down/push", b"{}", Reason.NOT_UPLINK),
        ("v3/a@t/devices/d/up", b"{not json", Reason.MALFORMED_JSON),
        ("v3/a@t/devices/d/up", b"\xff\xfe", Reason.MALFORMED_JSON),
        ("v3/a@t/devices/d/up", b"[1, 2]", Reason.MALFORMED_JSON),
        ("v3/a@t/devices/d/up", b'{"end_device_ids": {}}', Reason.MALFORMED_FIELDS),
        ("application/x/device/00/event/up", b'{"fCnt": "many"}', Reason.MALFORMED_FIELDS),
    ],
)
def test_bad_messages_name_their_reason(topic: str, body: bytes, reason: Reason) -> None:
    with pytest.raises(UplinkError) as caught:
        parse(topic, body)
    assert caught.value.reason is reason


@pytest.mark.parametrize("fmt", list(Format))
def test_bad_base64_is_its_own_reason(fmt: Format) -> None:
    topic, body = topic_and_json(fmt, APP, uplink(NWAVE, 1, True))
    text = body.decode()
    bad = text.replace('"lQ=="', '"l*Q="').replace('"AQ=="', '"A*Q="')
    assert bad != text
    with pytest.raises(UplinkError) as caught:
        parse(topic, bad.encode())
    assert caught.value.reason is Reason.MALFORMED_BASE64


def test_format_of_topics() -> None:
    assert format_of("v3/app@ttn/devices/dev-1/up") is Format.TTS
    assert format_of("application/u/device/0011/event/up") is Format.CHIRPSTACK
    assert format_of("application/u/device/0011/event/join") is None
    assert chirpstack_json(APP, uplink(NWAVE, 1, True)).startswith(b"{")

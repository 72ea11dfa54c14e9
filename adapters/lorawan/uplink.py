"""Uplinks as network servers publish them on MQTT: The Things Stack v3 and ChirpStack v4.

Pure builders (an :class:`Uplink` to topic + JSON bytes) and one parser (topic + bytes to an
:class:`Uplink`, or :class:`UplinkError` naming the reason). ChirpStack's JSON is made and checked
by its own protobuf types (``chirpstack-api``'s ``integration.UplinkEvent`` through protobuf's
``json_format``), so a field we get wrong fails here, not in the field.

Topics:

* The Things Stack: ``v3/{application}@{tenant}/devices/{device}/up`` (``@ttn`` on The Things
  Network's community network);
* ChirpStack: ``application/{application_id}/device/{dev_eui}/event/up``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from chirpstack_api import gw, integration
from google.protobuf import json_format
from google.protobuf.message import Message as ProtoMessage


class Format(Enum):
    """Which network server's uplink JSON."""

    TTS = "tts"
    CHIRPSTACK = "chirpstack"


class Reason(Enum):
    """Why an MQTT message was not a usable uplink; ingest counts them one by one."""

    NOT_UPLINK = "not_uplink"
    MALFORMED_JSON = "malformed_json"
    MALFORMED_FIELDS = "malformed_fields"
    MALFORMED_BASE64 = "malformed_base64"
    MALFORMED_PAYLOAD = "malformed_payload"
    NO_OCCUPANCY = "no_occupancy"
    """A well-formed uplink that says nothing of its bay (a debug or device-information frame)."""
    UNKNOWN_DEVICE = "unknown_device"
    DUPLICATE = "duplicate"
    REPLAY = "replay"
    LATE = "late"


class UplinkError(ValueError):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Application:
    """Where a network server files the devices: application and tenant (ids in The Things
    Stack, names and UUIDs in ChirpStack)."""

    application: str = "ccsim-parking"
    tenant: str = "ccsim"
    application_uuid: str = "6f1c3c2e-8c6b-4f0a-9a43-2b7f5d1c0e01"
    """ChirpStack names applications and tenants by UUID."""
    tenant_uuid: str = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242"


@dataclass(frozen=True, slots=True)
class Uplink:
    """One uplink as the network server saw it. ``received_at`` is Unix time (s, wall clock)."""

    device_id: str
    dev_eui: str
    """16 hex digits."""
    f_port: int
    f_cnt: int
    payload: bytes
    received_at: float
    model: str = ""
    """``brand/model`` when the server knows it (The Things Stack's ``version_ids``)."""
    decoded: dict[str, Any] | None = None
    """What the server's payload formatter made of it, if it ran one."""
    rssi_dbm: int = -97
    snr_db: float = 7.5
    gateway_id: str = "ccsim-gw-1"
    gateway_eui: str = "A84041FFFF1C0DE1"
    frequency_hz: int = 868_100_000
    spreading_factor: int = 7


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _unix(text: object) -> float:
    if not isinstance(text, str):
        raise ValueError(f"expected an RFC 3339 time, got {text!r}")
    # Python 3.11 reads RFC 3339 with a Z and up to nanoseconds (keeping microseconds).
    return datetime.fromisoformat(text).timestamp()


# --- The Things Stack v3 ------------------------------------------------------------------------


def tts_topic(app: Application, device_id: str) -> str:
    return f"v3/{app.application}@{app.tenant}/devices/{device_id}/up"


def tts_json(app: Application, up: Uplink) -> bytes:
    """The Things Stack v3 ``uplink_message`` event, as its MQTT server publishes it."""
    at = _iso(up.received_at)
    brand, _, model = up.model.partition("/")
    message: dict[str, Any] = {
        "session_key_id": base64.b64encode(bytes.fromhex(up.dev_eui)).decode(),
        "f_port": up.f_port,
        "f_cnt": up.f_cnt,
        "frm_payload": base64.b64encode(up.payload).decode(),
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": up.gateway_id, "eui": up.gateway_eui},
                "time": at,
                "timestamp": int(up.received_at * 1e6) & 0xFFFFFFFF,
                "rssi": up.rssi_dbm,
                "channel_rssi": up.rssi_dbm,
                "snr": up.snr_db,
                "uplink_token": base64.b64encode(f"{up.gateway_id}:{up.f_cnt}".encode()).decode(),
                "received_at": at,
            }
        ],
        "settings": {
            "data_rate": {
                "lora": {
                    "bandwidth": 125000,
                    "spreading_factor": up.spreading_factor,
                    "coding_rate": "4/5",
                }
            },
            "frequency": str(up.frequency_hz),
            "timestamp": int(up.received_at * 1e6) & 0xFFFFFFFF,
            "time": at,
        },
        "received_at": at,
        "consumed_airtime": "0.061696s",
        "network_ids": {
            "net_id": "000013",
            "tenant_id": app.tenant,
            "cluster_id": "eu1",
            "cluster_address": "eu1.cloud.thethings.network",
        },
    }
    if up.decoded is not None:
        message["decoded_payload"] = up.decoded
    if up.model:
        message["version_ids"] = {"brand_id": brand, "model_id": model, "band_id": "EU_863_870"}
    event = {
        "end_device_ids": {
            "device_id": up.device_id,
            "application_ids": {"application_id": app.application},
            "dev_eui": up.dev_eui.upper(),
            "join_eui": "0000000000000000",
            "dev_addr": up.dev_eui[-8:].upper(),
        },
        "correlation_ids": [f"gs:uplink:{uuid.UUID(int=(int(up.dev_eui, 16) << 32) | up.f_cnt)}"],
        "received_at": at,
        "uplink_message": message,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _parse_tts(topic: str, document: dict[str, Any]) -> Uplink:
    ids = document["end_device_ids"]
    message = document["uplink_message"]
    device_id = ids["device_id"]
    if f"/devices/{device_id}/" not in topic:
        raise UplinkError(Reason.MALFORMED_FIELDS, f"device_id '{device_id}' is not the topic's")
    version = message.get("version_ids") or {}
    model = f"{version['brand_id']}/{version['model_id']}" if "model_id" in version else ""
    return Uplink(
        device_id=str(device_id),
        dev_eui=str(ids.get("dev_eui", "")).upper(),
        f_port=_int(message.get("f_port"), "f_port"),
        f_cnt=_int(message.get("f_cnt", 0), "f_cnt"),  # proto3 JSON leaves out a zero
        payload=_b64(message.get("frm_payload", "")),
        received_at=_unix(message.get("received_at") or document.get("received_at")),
        model=model,
    )


# --- ChirpStack v4 --------------------------------------------------------------------------------


def chirpstack_topic(app: Application, dev_eui: str) -> str:
    return f"application/{app.application_uuid}/device/{dev_eui.lower()}/event/up"


def chirpstack_event(app: Application, up: Uplink) -> integration.UplinkEvent:
    event = integration.UplinkEvent(
        deduplication_id=str(uuid.UUID(int=(int(up.dev_eui, 16) << 32) | up.f_cnt)),
        device_info=integration.DeviceInfo(
            tenant_id=app.tenant_uuid,
            tenant_name=app.tenant,
            application_id=app.application_uuid,
            application_name=app.application,
            device_profile_id="b1a1c0de-0000-4000-8000-000000000001",
            device_profile_name=up.model or "bay sensor",
            device_name=up.device_id,
            dev_eui=up.dev_eui.lower(),
        ),
        dev_addr=up.dev_eui[-8:].lower(),
        adr=True,
        dr=12 - up.spreading_factor,
        f_cnt=up.f_cnt,
        f_port=up.f_port,
        data=up.payload,
        rx_info=[
            gw.UplinkRxInfo(
                gateway_id=up.gateway_eui.lower(),
                uplink_id=up.f_cnt & 0xFFFFFFFF,
                rssi=up.rssi_dbm,
                snr=up.snr_db,
                channel=0,
                crc_status=gw.CRC_OK,
            )
        ],
        tx_info=gw.UplinkTxInfo(
            frequency=up.frequency_hz,
            modulation=gw.Modulation(
                lora=gw.LoraModulationInfo(
                    bandwidth=125000,
                    spreading_factor=up.spreading_factor,
                    code_rate=gw.CR_4_5,
                )
            ),
        ),
    )
    event.time.FromNanoseconds(int(up.received_at * 1e9))
    event.rx_info[0].ns_time.FromNanoseconds(int(up.received_at * 1e9))
    if up.decoded is not None:
        event.object.update(up.decoded)
    return event


def chirpstack_json(app: Application, up: Uplink) -> bytes:
    """ChirpStack v4's ``up`` event in its JSON encoding (protobuf JSON, camelCase)."""
    text: str = json_format.MessageToJson(chirpstack_event(app, up), indent=None)
    return text.encode()


def _parse_chirpstack(topic: str, document: dict[str, Any]) -> Uplink:
    # protobuf's JSON reader skips characters that are not base64; a network server would not.
    _b64(document.get("data", ""))
    event: ProtoMessage = integration.UplinkEvent()
    try:
        json_format.ParseDict(document, event, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        text = str(exc)
        reason = Reason.MALFORMED_BASE64 if "base64" in text.lower() else Reason.MALFORMED_FIELDS
        raise UplinkError(reason, text) from None
    assert isinstance(event, integration.UplinkEvent)
    dev_eui = event.device_info.dev_eui
    if f"/device/{dev_eui.lower()}/" not in topic.lower():
        raise UplinkError(Reason.MALFORMED_FIELDS, f"devEui '{dev_eui}' is not the topic's")
    if not event.f_port:
        raise UplinkError(Reason.MALFORMED_FIELDS, "no fPort (an uplink without application data)")
    return Uplink(
        device_id=event.device_info.device_name,
        dev_eui=dev_eui.upper(),
        f_port=event.f_port,
        f_cnt=event.f_cnt,
        payload=bytes(event.data),
        received_at=event.time.ToNanoseconds() / 1e9,
    )


# --- either ---------------------------------------------------------------------------------------


def topic_and_json(fmt: Format, app: Application, up: Uplink) -> tuple[str, bytes]:
    """What the network server publishes for ``up``."""
    if fmt is Format.TTS:
        return tts_topic(app, up.device_id), tts_json(app, up)
    return chirpstack_topic(app, up.dev_eui), chirpstack_json(app, up)


SUBSCRIPTIONS = {
    Format.TTS: "v3/+/devices/+/up",
    Format.CHIRPSTACK: "application/+/device/+/event/up",
}
"""MQTT topic filters for every application's uplinks."""


def format_of(topic: str) -> Format | None:
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == "v3" and parts[2] == "devices" and parts[4] == "up":
        return Format.TTS
    if (
        len(parts) == 6
        and parts[0] == "application"
        and parts[2] == "device"
        and parts[4:]
        == [
            "event",
            "up",
        ]
    ):
        return Format.CHIRPSTACK
    return None


def parse(topic: str, payload: bytes) -> Uplink:
    """The uplink in an MQTT message of either server; :class:`UplinkError` says why not."""
    fmt = format_of(topic)
    if fmt is None:
        raise UplinkError(Reason.NOT_UPLINK, "not an uplink topic")
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UplinkError(Reason.MALFORMED_JSON, str(exc)) from None
    if not isinstance(document, dict):
        raise UplinkError(Reason.MALFORMED_JSON, f"expected an object, got {type(document).__name__}")
    try:
        if fmt is Format.TTS:
            return _parse_tts(topic, document)
        return _parse_chirpstack(topic, document)
    except UplinkError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UplinkError(Reason.MALFORMED_FIELDS, f"{type(exc).__name__}: {exc}") from None


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UplinkError(Reason.MALFORMED_FIELDS, f"{name}: expected an integer, got {value!r}")
    return value


def _b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise UplinkError(Reason.MALFORMED_BASE64, f"payload: expected base64 text, got {value!r}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UplinkError(Reason.MALFORMED_BASE64, f"payload {value!r}: {exc}") from None

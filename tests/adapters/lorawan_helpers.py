"""Shared bits of the LoRaWAN tests: a small registry and uplinks from its devices."""

from __future__ import annotations

from adapters.lorawan.codecs import Frame, SensorState, codec_for
from adapters.lorawan.registry import Device, Registry
from adapters.lorawan.uplink import Application, Format, Uplink, topic_and_json

APP = Application()
DEVICES = (
    Device("bay-z1-0", "70B3D57ED0000001", "nwave/nps405", "z1", 0),
    Device("bay-z1-1", "70B3D57ED0000002", "bosch/tps110", "z1", 1),
    Device("bay-z2-0", "70B3D57ED0000003", "dingtek/do201", "z2", 0),
)


def registry() -> Registry:
    return Registry(DEVICES)


def uplink(
    device: Device, f_cnt: int, occupied: bool, *, frame: Frame = Frame.STATUS, at: float = 1.0e9
) -> Uplink:
    f_port, payload = codec_for(device.model).encode(frame, SensorState(occupied, counter=f_cnt))
    return Uplink(device.device_id, device.dev_eui, f_port, f_cnt, payload, at, model=device.model)


def message(
    device: Device, f_cnt: int, occupied: bool, fmt: Format = Format.TTS, **kwargs: object
) -> tuple[str, bytes]:
    return topic_and_json(fmt, APP, uplink(device, f_cnt, occupied, **kwargs))  # type: ignore[arg-type]

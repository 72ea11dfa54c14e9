"""Dingtek DO201 parking occupancy sensor (ultrasonic distance + magnetometer).

Written from ``vendor/dingtek/do201.js`` of TheThingsNetwork/lorawan-devices at commit
4bb8330d2a7f64b5966dcf8c46faf6a615e5ff77 (MIT). Everything comes on f_port 3 in a framed
packet (``0x80 ... 0x81``): 23 bytes of telemetry - distance to what stands above the sensor
(``level``), the parking alarm (the bay is taken), battery in 10 mV, the magnetic field on three
axes, temperature, humidity and the device's own frame counter - sent periodically and on
every change; 16 bytes of parameters. The same telemetry frame serves as status and heartbeat.
"""

from __future__ import annotations

from typing import Any

from adapters.lorawan.codecs import (
    BayReading,
    Frame,
    PayloadError,
    SensorState,
    register,
    signed8,
)

_TELEMETRY = 23
_PARAMETERS = 16


def _signed16(high: int, low: int) -> int:
    value = (high << 8) + low
    return value - 65536 if value > 32767 else value


class DO201:
    brand_id = "dingtek"
    model_id = "do201"
    heartbeat_s = 86400.0
    """Dingtek's default upload interval: 24 hours."""

    def decode(self, f_port: int, payload: bytes) -> dict[str, Any]:
        b = payload
        if f_port != 3:
            raise PayloadError(f"dingtek/do201: unknown f_port {f_port}; expected 3")
        if len(b) == _TELEMETRY:
            return {"level": (b[5] << 8) + b[6], "volt": ((b[9] << 8) + b[10]) / 100,
                    "alarmPark": bool(b[7] >> 4), "alarmLevel": bool(b[7] & 0x0F),
                    "alarmMagnet": bool(b[8] >> 4), "alarmBattery": bool(b[8] & 0x0F),
                    "xMagnet": _signed16(b[11], b[12]), "yMagnet": _signed16(b[13], b[14]),
                    "zMagnet": _signed16(b[15], b[16]), "temperature": signed8(b[17]),
                    "humidity": b[18], "frameCounter": (b[19] << 8) + b[20]}  # fmt: skip
        if len(b) == _PARAMETERS and b[3] == 0x03:
            return {"firmware": f"{b[5]}.{b[6]}", "uploadInterval": b[7], "detectInterval": b[8],
                    "levelThreshold": b[9], "magnetThreshold": (b[10] << 8) + b[11],
                    "batteryThreshold": b[12]}  # fmt: skip
        raise PayloadError(
            f"dingtek/do201: payload of {len(b)} bytes; expected {_TELEMETRY} (telemetry) "
            f"or {_PARAMETERS} (parameters)"
        )

    def reading(self, f_port: int, payload: bytes) -> BayReading:
        data = self.decode(f_port, payload)
        if "alarmPark" not in data:
            return BayReading(Frame.OTHER, None)
        # One frame for both: a status change and the periodic upload look alike on the air.
        return BayReading(Frame.STATUS, data["alarmPark"], data["volt"], float(data["temperature"]))

    def encode(self, frame: Frame, state: SensorState) -> tuple[int, bytes]:
        if frame not in (Frame.STATUS, Frame.HEARTBEAT):
            raise PayloadError(f"dingtek/do201: cannot encode a {frame.value} frame")
        level_mm = 420 if state.occupied else 1716  # an underbody above, or the open sky
        volts = round(state.battery_v * 100)
        low_battery = state.battery_v < 3.2
        magnet = (160, -90, -210) if state.occupied else (16, -10, -16)
        body = [0x80, 0x00, 0x31, 0x02, _TELEMETRY, level_mm >> 8, level_mm & 0xFF,
                0x10 if state.occupied else 0x00, 0x01 if low_battery else 0x00,
                volts >> 8 & 0xFF, volts & 0xFF]  # fmt: skip
        for axis in magnet:
            body += [axis >> 8 & 0xFF, axis & 0xFF]
        counter = state.counter & 0xFFFF
        temperature = min(127, max(-128, round(state.temperature_c))) & 0xFF
        body += [temperature, 45, counter >> 8, counter & 0xFF, 0x00, 0x81]
        return 3, bytes(body)


register(DO201())

"""Bosch TPS110 Parking Lot Sensor, firmware 0.29.2 (in-ground, magnetometer).

Written from ``vendor/bosch/tpl110-0292.js`` of TheThingsNetwork/lorawan-devices at commit
0a254aaa3adb0237faed50aa34916df1d07cf417 (MIT), the codec ``tps110.yaml`` names for firmware
0.29.2. f_port 1 parking status (bit 0 occupied), 2 heartbeat (occupancy, temperature as a signed
byte in degrees C; no battery figure), 3 startup (debug codes, firmware, reset cause), 4 device
information, 5 device usage, 6 debug.
"""

from __future__ import annotations

from typing import Any

from adapters.lorawan.codecs import (
    BayReading,
    Frame,
    PayloadError,
    SensorState,
    check_length,
    register,
    signed8,
)

_RESET_CAUSES = (None, "watchdog", "power on", "system request", "other")


class TPS110:
    brand_id = "bosch"
    model_id = "tps110"
    heartbeat_s = 86400.0
    """Bosch's default: one heartbeat a day."""

    def decode(self, f_port: int, payload: bytes) -> dict[str, Any]:
        b = payload
        name = "bosch/tps110"
        if f_port == 1:
            check_length(name, f_port, b, 1)
            return {"type": "parking status", "occupied": b[0] & 1 == 1}
        if f_port == 2:
            check_length(name, f_port, b, 1)
            data: dict[str, Any] = {"type": "heartbeat", "occupied": b[0] & 1 == 1}
            if len(b) >= 2:
                data["temperature"] = signed8(b[1])
            return data
        if f_port == 3:
            check_length(name, f_port, b, 17)
            codes = [((b[i + 1] & 0xF) << 8) | b[i] for i in (0, 4, 8)]
            data = {"type": "startup", "debugCodes": [c for c in codes if c],
                    "firmwareVersion": f"{b[12]}.{b[13]}.{b[14]}",
                    "occupied": b[16] & 1 == 1}  # fmt: skip
            cause = _RESET_CAUSES[b[15]] if b[15] < len(_RESET_CAUSES) else None
            if cause is not None:
                data["resetCause"] = cause
            return data
        if f_port == 4:
            return {"type": "device information", "bytes": list(b)}
        if f_port == 5:
            return {"type": "device usage", "bytes": list(b)}
        if f_port == 6:
            check_length(name, f_port, b, 10)
            return {"type": "debug", "timestamp": int.from_bytes(b[0:4], "little", signed=True),
                    "debugCode": ((b[5] & 0xF) << 8) | b[4],
                    "sequenceNumber": (b[9] << 8) | b[8]}  # fmt: skip
        raise PayloadError(f"{name}: unknown f_port {f_port}; expected 1 to 6")

    def reading(self, f_port: int, payload: bytes) -> BayReading:
        data = self.decode(f_port, payload)
        if f_port == 1:
            return BayReading(Frame.STATUS, data["occupied"])
        if f_port == 2:
            return BayReading(Frame.HEARTBEAT, data["occupied"], None, data.get("temperature"))
        if f_port == 3:
            return BayReading(Frame.STARTUP, data["occupied"])
        return BayReading(Frame.OTHER, None)

    def encode(self, frame: Frame, state: SensorState) -> tuple[int, bytes]:
        occupied = int(state.occupied)
        if frame is Frame.STATUS:
            return 1, bytes([occupied])
        if frame is Frame.HEARTBEAT:
            return 2, bytes([occupied, min(127, max(-128, round(state.temperature_c))) & 0xFF])
        if frame is Frame.STARTUP:
            return 3, bytes([0] * 12 + [0, 29, 2, 2, occupied])  # firmware 0.29.2, power on
        raise PayloadError(f"bosch/tps110: cannot encode a {frame.value} frame")


register(TPS110())

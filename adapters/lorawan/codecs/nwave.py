"""Nwave NPS405 parking sensor (in-ground, magnetometer + radar).

Written from ``vendor/nwave/nps405.js`` of TheThingsNetwork/lorawan-devices at commit
62c8acdd7f0f1e43b65a86f6c158d83b3d0cd200 (MIT). f_port 1 parking status (bit 0 occupied, bits
1-7 the previous state's duration in minutes, compressed), 2 heartbeat (occupancy and hardware
health, battery ``2500 + 4 x byte`` mV, temperature ``byte / 2 + 10`` degrees C), 3 startup
(firmware, reset cause), 6 debug, 10 SDI tag registration.
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

_RESET_CAUSES = ("rejoining_lorawan_network", "watchdog", "power_on", "user_request", None, None,
                 "brownout", "other")  # fmt: skip


def _previous_state(compressed: int) -> dict[str, Any]:
    """Minutes in the previous state: exact below 90, 5-min steps to 240, 1-h steps to 660."""
    if compressed < 90:
        duration, error = compressed, 0
    elif compressed < 120:
        duration, error = 90 + (compressed - 90) * 5, 4
    elif compressed < 127:
        duration, error = 240 + (compressed - 120) * 60, 59
    else:
        return {"previous_state_duration": 660, "previous_state_duration_error": None,
                "previous_state_duration_overflow": True}  # fmt: skip
    return {"previous_state_duration": duration, "previous_state_duration_error": error,
            "previous_state_duration_overflow": False}  # fmt: skip


def _compress(minutes: float) -> int:
    m = int(minutes)
    if m < 90:
        return max(m, 0)
    if m < 240:
        return 90 + (m - 90) // 5
    if m < 660:
        return 120 + (m - 240) // 60
    return 127


class NPS405:
    brand_id = "nwave"
    model_id = "nps405"
    heartbeat_s = 3600.0
    """Nwave's default heartbeat: hourly."""

    def decode(self, f_port: int, payload: bytes) -> dict[str, Any]:
        b = payload
        name = "nwave/nps405"
        if f_port == 1:
            check_length(name, f_port, b, 1)
            return {"type": "parking_status", "occupied": b[0] & 1 == 1,
                    **_previous_state((b[0] >> 1) & 0x7F)}  # fmt: skip
        if f_port == 2:
            check_length(name, f_port, b, 3)
            temperature = signed8(b[2]) / 2 + 10
            millivolts = 2500 + b[1] * 4
            low, critical = (3000, 2900) if temperature >= -5 else (2900, 2800)
            health = "normal" if millivolts >= low else "low" if millivolts >= critical else "critical"
            return {"type": "heartbeat", "occupied": b[0] & 1 == 1, "hw_health_status": b[0] & 0x7F,
                    "temperature": temperature, "battery_voltage": millivolts / 1000,
                    "battery_health": health}  # fmt: skip
        if f_port == 3:
            check_length(name, f_port, b, 5)
            cause = _RESET_CAUSES[b[3]] if b[3] < len(_RESET_CAUSES) else None
            data: dict[str, Any] = {"type": "startup", "firmware_version": f"{b[0]}.{b[1]}.{b[2]}",
                                    "occupied": b[4] & 1 == 1}  # fmt: skip
            if cause is not None:
                data["reset_cause"] = cause
            return data
        if f_port == 6:
            return {"type": "debug", "bytes": list(b)}
        if f_port == 10:
            check_length(name, f_port, b, 5)
            data = {"type": "user_registration"}
            if b[0] & 1:
                data.update(occupied=True, **_previous_state((b[0] >> 1) & 0x7F))
            else:
                data.update(occupied=None, previous_state_duration=None,
                            previous_state_duration_error=None,
                            previous_state_duration_overflow=None)  # fmt: skip
            data["tag_id"] = f"{int.from_bytes(b[1:5], 'big'):X}"
            return data
        raise PayloadError(f"{name}: unknown f_port {f_port}; expected 1, 2, 3, 6 or 10")

    def reading(self, f_port: int, payload: bytes) -> BayReading:
        data = self.decode(f_port, payload)
        if f_port == 1:
            return BayReading(Frame.STATUS, data["occupied"])
        if f_port == 2:
            return BayReading(
                Frame.HEARTBEAT, data["occupied"], data["battery_voltage"], data["temperature"]
            )
        if f_port == 3:
            return BayReading(Frame.STARTUP, data["occupied"])
        return BayReading(Frame.OTHER, None)

    def encode(self, frame: Frame, state: SensorState) -> tuple[int, bytes]:
        occupied = int(state.occupied)
        if frame is Frame.STATUS:
            return 1, bytes([occupied | _compress(state.state_s / 60.0) << 1])
        if frame is Frame.HEARTBEAT:
            battery = min(255, max(0, round((state.battery_v * 1000 - 2500) / 4)))
            temperature = min(127, max(-128, round((state.temperature_c - 10) * 2))) & 0xFF
            return 2, bytes([occupied, battery, temperature, 0, 0, 0])
        if frame is Frame.STARTUP:
            return 3, bytes([2, 4, 9, 2, occupied])  # firmware 2.4.9, power on
        raise PayloadError(f"nwave/nps405: cannot encode a {frame.value} frame")


register(NPS405())

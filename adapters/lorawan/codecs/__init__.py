"""Vendor payload codecs for LoRaWAN bay sensors, by model, in a registry.

Each codec is a pure pair: ``decode(f_port, payload)`` gives what the vendor's own JavaScript codec
in The Things Network's device repository (TheThingsNetwork/lorawan-devices) gives - the same keys
and values, so that repository's ``examples`` are our golden tests - and ``reading`` the typed
:class:`BayReading` ingest works with; ``encode`` makes the bytes a simulated device sends.
Malformed payloads (wrong f_port, too short) raise :class:`PayloadError`, never an IndexError.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol


class PayloadError(ValueError):
    """The payload is not a frame this model sends (unknown f_port, wrong length...)."""


class Frame(Enum):
    """What a sensor's uplink is: a change of state, the periodic heartbeat, a (re)start."""

    STATUS = "status"
    HEARTBEAT = "heartbeat"
    STARTUP = "startup"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class BayReading:
    """What one uplink says about its bay. ``occupied`` None: the frame does not say."""

    frame: Frame
    occupied: bool | None
    battery_v: float | None = None
    temperature_c: float | None = None


@dataclass(frozen=True, slots=True)
class SensorState:
    """What a simulated sensor knows when it transmits: its bay, for how long (s) it has been in
    that state, its battery (V) and temperature (degrees C), its own frame counter."""

    occupied: bool
    state_s: float = 0.0
    battery_v: float = 3.6
    temperature_c: float = 20.0
    counter: int = 0


class Codec(Protocol):
    """One vendor model's payload format."""

    brand_id: str
    """The vendor's id in the device repository (``nwave``, ``bosch``, ``dingtek``)."""
    model_id: str
    """The model's id there (``nps405``, ``tps110``, ``do201``)."""
    heartbeat_s: float
    """How often the sensor sends its heartbeat (s), as shipped."""

    def decode(self, f_port: int, payload: bytes) -> dict[str, Any]:
        """The vendor codec's ``data`` for this uplink."""
        ...

    def reading(self, f_port: int, payload: bytes) -> BayReading: ...

    def encode(self, frame: Frame, state: SensorState) -> tuple[int, bytes]:
        """``(f_port, payload)`` of a status change or a heartbeat carrying ``state``."""
        ...


def check_length(model: str, f_port: int, payload: bytes, length: int) -> None:
    if len(payload) < length:
        raise PayloadError(
            f"{model}: f_port {f_port} payload of {len(payload)} bytes; expected at least {length}"
        )


def signed8(value: int) -> int:
    return value - 256 if value > 127 else value


_REGISTRY: dict[str, Codec] = {}


def register(codec: Codec) -> Codec:
    _REGISTRY[f"{codec.brand_id}/{codec.model_id}"] = codec
    return codec


def codec_for(model: str) -> Codec:
    """The codec of ``brand/model`` (e.g. ``nwave/nps405``); KeyError names the known ones."""
    _load()
    try:
        return _REGISTRY[model]
    except KeyError:
        raise KeyError(
            f"unknown sensor model '{model}'; expected one of {', '.join(models())}"
        ) from None


def models() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def _load() -> None:
    # The vendor modules register themselves on import; imported here, not at package import,
    # so that importing the registry's types has no side effects.
    from adapters.lorawan.codecs import bosch, dingtek, nwave  # noqa: F401

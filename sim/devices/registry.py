"""The registry of device models: each kind of field device registers a builder under its name.

A device model is sampled by the engine at its own period (a simpy process) after the SUMO step
of that instant, so it sees the world as it is then. It declares the SUMO detectors it needs
(written into one additional file before SUMO starts) and speaks only through the message bus.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from sim.errors import UnknownNameError
from sim.lanes import LaneAccess
from sim.messages import MessageBus
from sim.network import Network
from sim.sumo import SumoWorld


@dataclass(frozen=True)
class DeviceContext:
    """What every device model is built from. ``source`` is the scenario.toml (for errors)."""

    network: Network
    bus: MessageBus
    seed: int
    step_s: float
    begin_s: float
    source: Path
    vehicle_files: tuple[Path, ...] = ()
    """Route and additional files (where the vehicle types are declared)."""
    lanes: LaneAccess | None = None
    """The run's lane access, for devices that close lanes (built alone, a model makes its own)."""


class DeviceModel(ABC):
    """One kind of field device (all its sites) in one run."""

    period_s: float = 1.0
    world: SumoWorld

    def sites(self) -> tuple[str, ...]:
        """Where the devices stand (junction, edge or lane ids)."""
        return ()

    def sumo_elements(self) -> list[ET.Element]:
        """SUMO additional elements (detectors, vehicle types) the model needs."""
        return []

    def bind(self, world: SumoWorld, t: float) -> None:
        """Called once SUMO runs, at the begin time ``t`` (s)."""
        self.world = world
        return None

    @abstractmethod
    def sample(self, t: float) -> None:
        """Read the world at ``t`` (s) and publish what the devices report."""

    def finish(self, t: float) -> None:
        """The run ended at ``t`` (s), SUMO closed: publish the last partial interval."""
        return None


Builder = Callable[[DeviceContext, Any], DeviceModel]
_MODELS: dict[str, Builder] = {}


def register_device(kind: str) -> Callable[[Builder], Builder]:
    """Register ``builder(context, config)`` for the ``[devices.<kind>]`` table."""

    def decorate(builder: Builder) -> Builder:
        _MODELS[kind] = builder
        return builder

    return decorate


def device_kinds() -> list[str]:
    return sorted(_MODELS)


def create_device(kind: str, context: DeviceContext, config: Any) -> DeviceModel:
    builder = _MODELS.get(kind)
    if builder is None:
        raise UnknownNameError("device kind", kind, device_kinds())
    return builder(context, config)

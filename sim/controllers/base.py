"""What a signal controller is, and the registry that finds one by name."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import UnknownNameError
from sim.messages import MessageBus
from sim.network import Network
from sim.sensors import SensorLayer
from sim.signals import SignalControl


@dataclass
class ControlContext:
    """What a controller may use once the simulation runs.

    ``env`` is the simpy Environment; ``bus`` the message stream; ``signals`` the guarded way to
    ask for phases; ``sensors`` the detector observations (for controllers that use detectors).
    Controllers never call SUMO directly and never see its vehicles.
    """

    env: Any
    bus: MessageBus
    network: Network
    step_s: float
    signals: SignalControl
    sensors: SensorLayer | None
    set_program: Callable[[str, str], None]


class Controller(ABC):
    """A strategy that drives every signalised intersection of a scenario."""

    name: str = ""
    uses_detectors: bool = False
    """True for ccsim's own controllers: detectors are placed, the guard drives the signals and
    :meth:`on_step` is called every step, after the sensors have reported."""

    def additional_files(self, network: Network, workdir: Path) -> list[Path]:
        """SUMO additional files the controller needs loaded at start (written into ``workdir``)."""
        return []

    @abstractmethod
    def start(self, context: ControlContext) -> None:
        """Called once SUMO runs, before the first step."""

    def on_step(self, t: float) -> None:  # noqa: B027  (optional hook)
        """Decide at time ``t`` (s); only called when ``uses_detectors``."""


_REGISTRY: dict[str, Callable[[], Controller]] = {}


def register(name: str) -> Callable[[type[Controller]], type[Controller]]:
    """Class decorator adding a controller to the registry under ``name``."""

    def add(cls: type[Controller]) -> type[Controller]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def register_lazy(name: str, module: str) -> None:
    """Register ``name`` for a controller whose module registers it when imported: loaded at
    its first use (``adaptive`` brings in Numba, which other runs need not load)."""

    def load() -> Controller:
        importlib.import_module(module)
        factory = _REGISTRY[name]
        if factory is load:
            raise RuntimeError(f"{module} did not register controller '{name}'")
        return factory()

    _REGISTRY[name] = load


def controller_names() -> list[str]:
    return sorted(_REGISTRY)


def create_controller(name: str) -> Controller:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("controller", name, controller_names()) from None
    return factory()

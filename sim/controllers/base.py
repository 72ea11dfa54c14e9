"""What a signal controller is, and the registry that finds one by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import UnknownNameError
from sim.messages import MessageBus
from sim.network import Network


@dataclass
class ControlContext:
    """What a controller may use once the simulation runs.

    ``env`` is the simpy Environment (controllers run as processes at their own period);
    ``bus`` the message stream. Controllers act on signals only through the handles the engine
    gives them, never by calling SUMO directly.
    """

    env: Any
    bus: MessageBus
    network: Network
    set_program: Callable[[str, str], None]


class Controller(ABC):
    """A strategy that drives every signalised intersection of a scenario."""

    name: str = ""

    def additional_files(self, network: Network, workdir: Path) -> list[Path]:
        """SUMO additional files the controller needs loaded at start (written into ``workdir``)."""
        return []

    @abstractmethod
    def start(self, context: ControlContext) -> None:
        """Called once SUMO runs, before the first step; may start simpy processes."""


_REGISTRY: dict[str, Callable[[], Controller]] = {}


def register(name: str) -> Callable[[type[Controller]], type[Controller]]:
    """Class decorator adding a controller to the registry under ``name``."""

    def add(cls: type[Controller]) -> type[Controller]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def controller_names() -> list[str]:
    return sorted(_REGISTRY)


def create_controller(name: str) -> Controller:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("controller", name, controller_names()) from None
    return factory()

"""All the field devices of a run: built from ``[devices]``, declared to SUMO, sampled by simpy.

The engine builds a :class:`FieldDevices` before SUMO starts (for the additional file holding
the devices' detectors and driver types), starts it once SUMO runs - one simpy process per
device model at the model's own period - and finishes it when the run ends.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Generator
from pathlib import Path
from typing import Any

import simpy

from sim.devices import air, drivers, enforcement, gates, incidents, pedestrians, radar, signs  # noqa: F401
from sim.devices.config import DevicesConfig, declared
from sim.devices.incidents import Incidents
from sim.devices.registry import DeviceContext, DeviceModel, create_device
from sim.messages import DevicesDeployed
from sim.sumo import SumoWorld


class FieldDevices:
    """Every declared device model of one run."""

    def __init__(self, config: DevicesConfig, context: DeviceContext) -> None:
        self.bus = context.bus
        self.models: dict[str, DeviceModel] = {
            kind: create_device(kind, context, cfg) for kind, cfg in declared(config)
        }

    def write_additional(self, path: Path) -> Path:
        """The SUMO additional file with every model's elements."""
        root = ET.Element("additional")
        for model in self.models.values():
            root.extend(model.sumo_elements())
        ET.indent(root)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
        return path

    def start(self, env: simpy.Environment, world: SumoWorld) -> None:
        """Bind every model to the running world and sample it at its period from now on."""
        for kind, model in self.models.items():
            model.bind(world, env.now)
            self.bus.publish(env.now, "devices", DevicesDeployed(kind, model.sites()))
            env.process(self._sample(env, model))

    @staticmethod
    def _sample(env: simpy.Environment, model: DeviceModel) -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(model.period_s)
            model.sample(env.now)

    @property
    def incidents(self) -> Incidents | None:
        """The incident model, if the scenario declares ``[devices.incidents]``."""
        model = self.models.get("incidents")
        return model if isinstance(model, Incidents) else None

    def finish(self, t: float) -> None:
        for model in self.models.values():
            model.finish(t)

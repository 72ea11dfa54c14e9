"""Imperfect drivers: who speeds, who runs the red, who blocks the box (SUMO driver parameters).

Violations need violators. At departure a car or van driver is drawn, from the run's seed, to be
any of (see :class:`~sim.devices.config.DriversConfig` for the shares):

* a **speeder**: SUMO speed factor from N(``speeding_factor``, 0.08), at least 1.1;
* a **red-light runner**: SUMO's ``jmDriveAfterRedTime`` = ``drive_after_red_s`` - the driver
  keeps going into the junction up to that long after its signal turned red;
* a **box blocker**: SUMO's ``jmIgnoreKeepClearTime`` = ``ignore_keep_clear_s`` - after waiting
  that long the driver enters a junction it cannot leave.

The last two are vehicle-type attributes in SUMO, so the model declares a copy of every car/van
type of the scenario with them set (``<type>@ccsim.red``, ``@ccsim.box``, ``@ccsim.red.box``) and
switches the vehicle to it; the copies are otherwise identical.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from sim.devices.config import DriversConfig
from sim.devices.registry import DeviceContext, DeviceModel, register_device
from sim.messages import Message, VehiclesDeparted
from sim.sumo import SumoWorld

DRIVER_CLASSES = frozenset({"passenger", "delivery", "private", "taxi", "motorcycle"})
SPEEDING_SD = 0.08
SPEEDING_MIN = 1.1


def driver_types(files: tuple[Path, ...]) -> list[ET.Element]:
    """The ``vType`` elements of ``files`` whose class has imperfect drivers (cars, vans...)."""
    found: list[ET.Element] = []
    for path in files:
        for _event, el in ET.iterparse(path, events=("end",)):
            if el.tag == "vType" and el.get("vClass", "passenger") in DRIVER_CLASSES:
                found.append(el)
            elif el.tag in ("vehicle", "flow", "trip", "person", "personFlow"):
                el.clear()
    return found


class ImperfectDrivers(DeviceModel):
    """Gives departing drivers their flaws; see the module docstring."""

    def __init__(self, context: DeviceContext, config: DriversConfig) -> None:
        self.config = config
        self.bus = context.bus
        self.types = {el.get("id", ""): el for el in driver_types(context.vehicle_files)}
        self.rng = np.random.default_rng([context.seed, 0xD21E])
        self.period_s = 3600.0  # the work happens at departures

    def sumo_elements(self) -> list[ET.Element]:
        c = self.config
        copies = []
        for type_id, el in sorted(self.types.items()):
            for suffix, attrs in (
                ("red", {"jmDriveAfterRedTime": c.drive_after_red_s}),
                ("box", {"jmIgnoreKeepClearTime": c.ignore_keep_clear_s}),
                ("red.box", {"jmDriveAfterRedTime": c.drive_after_red_s,
                             "jmIgnoreKeepClearTime": c.ignore_keep_clear_s}),
            ):  # fmt: skip
                copy = ET.Element("vType", {k: v for k, v in el.attrib.items() if k != "probability"})
                copy.set("id", f"{type_id}@ccsim.{suffix}")
                for key, value in attrs.items():
                    copy.set(key, f"{value:g}")
                copy.extend(list(el))
                copies.append(copy)
        return copies

    def bind(self, world: SumoWorld, t: float) -> None:
        super().bind(world, t)
        self.bus.subscribe(self._on_message)

    def _on_message(self, message: Message) -> None:
        if isinstance(message.payload, VehiclesDeparted):
            for vehicle in message.payload.ids:
                self.depart(vehicle)

    def depart(self, vehicle: str) -> None:
        type_id = self.world.vehicle_type(vehicle)
        if type_id not in self.types:
            return
        c, rng = self.config, self.rng
        draws = rng.random(3)
        red, box = draws[1] < c.red_light_share, draws[2] < c.keep_clear_share
        if red or box:
            suffix = "red.box" if red and box else "red" if red else "box"
            self.world.set_vehicle_type(vehicle, f"{type_id}@ccsim.{suffix}")
        if draws[0] < c.speeding_share:
            factor = max(SPEEDING_MIN, rng.normal(c.speeding_factor, SPEEDING_SD))
            self.world.set_speed_factor(vehicle, float(factor))

    def sample(self, t: float) -> None:
        pass


@register_device("drivers")
def _build(context: DeviceContext, config: DriversConfig) -> DeviceModel:
    return ImperfectDrivers(context, config)

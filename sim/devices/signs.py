"""Information signs (variable message signs) on district entries.

Every ``period_s`` a sign shows the travel time from its edge to the district centre (SUMO's
current travel times along the route that was fastest at the start), the free parking bays the
bay sensors report (from the latest ``parking.occupancy``; sensed, not true) and a warning for
every incident the detectors found in the last ``warning_s`` (``incident on <edge>``); it
publishes what it shows as ``sign.shown``. Drivers pass the sign over an induction loop on each
lane; one whose route runs on through a warned edge is *warned*, and takes another way with
probability ``reroute_share``: the fastest route at the speed limits that avoids the warned
edges (a driver's knowledge of the map, not of today's traffic). With ``on = false`` the signs
stay dark: the same run without them, for comparison.

What the signs are worth shows where they act, not in the mean over the whole district: the
warned drivers - counted the same way with dark signs, the drivers the signs would have warned -
and their time from the sign to the end of their trip. Which of them go around is decided by a
random draw, nothing about the driver, so within a run the warned drivers who went around and
those who stayed are a randomised comparison of the advice itself. At the end of the run the
model publishes ``sign.totals`` (the KPIs ``sign_warned_vehicles``, ``sign_reroutes``,
``sign_warned_travel_time_mean_s``, ``sign_rerouted_travel_time_mean_s``,
``sign_stayed_travel_time_mean_s``, ``sign_rerouted_unfinished``, ``sign_stayed_unfinished``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

from sim.devices.config import InfoSignsConfig
from sim.devices.registry import DeviceContext, DeviceModel, register_device
from sim.devices.sites import gate_sites, induction_loop, vehicle_edges
from sim.messages import (
    IncidentDetected,
    InfoSignShown,
    InfoSignTotals,
    Message,
    MessageBus,
    ParkingOccupancy,
    VehiclesArrived,
)
from sim.network import Network
from sim.sumo import SumoWorld

LOOP_POS_M = 30.0


def centre_edge(network: Network) -> str:
    """The vehicle edge nearest the middle of the network (the signs' travel-time destination)."""
    edges = sorted(vehicle_edges(network))
    xs = [xy[0] for xy in network.junction_xy.values()]
    ys = [xy[1] for xy in network.junction_xy.values()]
    centre = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    return min(edges, key=lambda e: (math.dist(network.edge_xy(e), centre), e))


@dataclass
class _Sign:
    edge: str
    loops: list[str]
    last: dict[str, set[str]] = field(default_factory=dict)
    rerouted: int = 0


class InfoSigns(DeviceModel):
    def __init__(self, context: DeviceContext, config: InfoSignsConfig) -> None:
        self.config = config
        self.bus: MessageBus = context.bus
        self.period_s = context.step_s
        self.every = max(1, round(config.period_s / context.step_s))
        self._steps = 0
        self.rng = np.random.default_rng([context.seed, 0x5169])
        network = context.network
        edges = vehicle_edges(network)
        self.destination = centre_edge(network)
        self.signs: list[_Sign] = []
        self.elements: list[ET.Element] = []
        for edge in gate_sites(network, config.sites, config.count, source=context.source,
                               field="devices.info_signs.sites"):  # fmt: skip
            sign = _Sign(edge, [])
            for lane in edges[edge]:
                pos = min(LOOP_POS_M, network.lanes[lane].length_m / 2)
                self.elements.append(induction_loop(f"ccsim.vms.{lane}", lane, pos))
                sign.loops.append(f"ccsim.vms.{lane}")
            self.signs.append(sign)
        self.warnings: dict[str, float] = {}
        """Warned edge -> until when (s)."""
        self.free_bays: int | None = None
        self.warned: dict[str, tuple[float, bool]] = {}
        """Warned driver still on the road -> when they passed the sign (s), whether they were
        sent around."""
        self.warned_total = 0
        self.rerouted_total = 0
        self.travel_time_s = {False: 0.0, True: 0.0}
        """Of the warned drivers who arrived, stayed (False) or rerouted (True): from the sign to
        the end of their trip, summed (s)."""

    def sumo_elements(self) -> list[ET.Element]:
        return self.elements

    def sites(self) -> tuple[str, ...]:
        return tuple(s.edge for s in self.signs)

    def bind(self, world: SumoWorld, t: float) -> None:
        super().bind(world, t)
        self.bus.subscribe(self._on_message)
        # The reference route of each sign is fixed at the start, dark signs too: asking SUMO to
        # route perturbs its random streams, and the runs with and without signs are compared.
        self.paths = {s.edge: world.fastest_route(s.edge, self.destination) for s in self.signs}

    def _on_message(self, message: Message) -> None:
        payload = message.payload
        if isinstance(payload, IncidentDetected):
            self.warnings[payload.edge] = message.t + self.config.warning_s
        elif isinstance(payload, ParkingOccupancy):
            self.free_bays = sum(max(0, z.bays - z.sensed_occupied) for z in payload.zones)
        elif isinstance(payload, VehiclesArrived) and self.warned:
            for vehicle in payload.ids:
                warned = self.warned.pop(vehicle, None)
                if warned is not None:
                    passed, rerouted = warned
                    self.travel_time_s[rerouted] += message.t - passed

    def sample(self, t: float) -> None:
        self.warnings = {edge: until for edge, until in self.warnings.items() if until > t}
        if self.warnings:
            # Dark signs watch the drivers too (reads only): the drivers they would have warned
            # are the ones to compare with.
            for sign in self.signs:
                for loop in sign.loops:
                    now = set(self.world.loop_vehicle_ids(loop))
                    for vehicle in sorted(now - sign.last.get(loop, set())):
                        self._warn(t, sign, vehicle)
                    sign.last[loop] = now
        if not self.config.on:
            return
        self._steps += 1
        if self._steps % self.every == 0:
            for sign in self.signs:
                self._show(t, sign)

    def _warn(self, t: float, sign: _Sign, vehicle: str) -> None:
        if vehicle in self.warned:
            return  # seen over a second loop while changing lanes
        route, here = self.world.route(vehicle), self.world.road(vehicle)
        rest = route[route.index(here) + 1 :] if here in route else route
        ahead = [edge for edge in rest if edge in self.warnings]
        if not ahead:
            return
        self.warned_total += 1
        # The draw alone decides (dark signs draw nothing): the rerouted and the stayed are
        # comparable groups. A driver sent around with no other way counts as rerouted all the
        # same - the advice given, not the route taken, so the groups stay randomised.
        rerouted = self.config.on and self.rng.random() < self.config.reroute_share
        self.warned[vehicle] = (t, rerouted)
        if rerouted:
            self.world.reroute_avoiding(vehicle, ahead)
            sign.rerouted += 1
            self.rerouted_total += 1

    def _show(self, t: float, sign: _Sign) -> None:
        path = self.paths.get(sign.edge, ())
        travel = sum(self.world.edge_travel_times(path)) if path else None
        warnings = tuple(f"incident on {edge}" for edge in sorted(self.warnings))
        shown = InfoSignShown(sign.edge, self.destination, None if travel is None else round(travel),
                              self.free_bays, warnings, sign.rerouted)  # fmt: skip
        self.bus.publish(t, f"sign:{sign.edge}", shown)
        sign.rerouted = 0

    def finish(self, t: float) -> None:
        travel_time_s = dict(self.travel_time_s)
        unfinished = {False: 0, True: 0}
        for passed, rerouted in self.warned.values():
            travel_time_s[rerouted] += t - passed
            unfinished[rerouted] += 1
        totals = InfoSignTotals(
            warned=self.warned_total,
            rerouted=self.rerouted_total,
            travel_time_s=travel_time_s[False] + travel_time_s[True],
            rerouted_travel_time_s=travel_time_s[True],
            rerouted_unfinished=unfinished[True],
            stayed_unfinished=unfinished[False],
        )
        self.bus.publish(t, "signs", totals)


@register_device("info_signs")
def _build(context: DeviceContext, config: InfoSignsConfig) -> DeviceModel:
    return InfoSigns(context, config)

"""Radar speed points on edges, and radar speed signs that show drivers their speed.

Each radar site is an edge with an induction loop on every vehicle lane at the radar point
(60% along the lane, at least ``sign_distance_m`` + 5 m from its start and 30 m before its end,
before vehicles brake for the junction). Every vehicle passing is measured; one faster than the
limit times (1 + ``tolerance``) is a ``violation.speeding``, by excess over the limit: under 30%
minor, under 50% serious, else very serious. Every ``interval_s`` a site publishes its passes,
speeding passes and speed sum (``radar.passes``), from which the KPIs come.

With ``signs`` on, a radar speed sign ``sign_distance_m`` upstream of the point shows each
driver their speed; a driver over the limit slows down with probability ``sign_compliance``:
their speed factor drops to at most 1 (the limit) until they pass the radar point.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

from sim.devices.config import RadarConfig
from sim.devices.registry import DeviceContext, DeviceModel, register_device
from sim.devices.sites import induction_loop, radar_sites, vehicle_edges
from sim.messages import Message, MessageBus, RadarPasses, SpeedingViolation, VehiclesArrived
from sim.sumo import SumoWorld

SIGN_RELEASE_S = 60.0
"""A slowed driver who never reaches the radar point (turned off, parked) resumes after this."""


def speeding_severity(excess: float) -> str:
    """Severity of a speed ``excess`` over the limit (0.25 = 25% over)."""
    if excess < 0.3:
        return "minor"
    return "serious" if excess < 0.5 else "very_serious"


def radar_position(length_m: float, sign_distance_m: float) -> float:
    """Where on a lane of ``length_m`` the radar point stands (m from its start)."""
    return max(1.0, min(length_m - 30.0, max(0.6 * length_m, sign_distance_m + 5.0)))


@dataclass
class _Counts:
    passes: int = 0
    speeding: int = 0
    speed_sum_kmh: float = 0.0
    sign_slowed: int = 0


@dataclass
class _RadarSite:
    edge: str
    limit_mps: float
    loops: list[str]
    sign_loops: list[str]
    last: dict[str, set[str]] = field(default_factory=dict)
    counts: _Counts = field(default_factory=_Counts)


class RadarPoints(DeviceModel):
    def __init__(self, context: DeviceContext, config: RadarConfig) -> None:
        self.config = config
        self.bus: MessageBus = context.bus
        self.period_s = context.step_s
        self.rng = np.random.default_rng([context.seed, 0x5A0A])
        network = context.network
        edges = vehicle_edges(network)
        self.points: list[_RadarSite] = []
        self.elements: list[ET.Element] = []
        for edge in radar_sites(network, config.sites, config.count, source=context.source,
                                field="devices.radar.sites"):  # fmt: skip
            site = _RadarSite(edge, network.lanes[edges[edge][0]].speed_mps, [], [])
            for lane_id in edges[edge]:
                lane = network.lanes[lane_id]
                pos = radar_position(lane.length_m, config.sign_distance_m)
                site.loops.append(self._loop(f"ccsim.radar.{lane_id}", lane_id, pos))
                if config.signs:
                    sign_pos = max(0.5, pos - config.sign_distance_m)
                    site.sign_loops.append(self._loop(f"ccsim.sign.{lane_id}", lane_id, sign_pos))
            self.points.append(site)
        self.slowed: dict[str, tuple[float, float]] = {}
        """Drivers slowed by a sign: vehicle -> (own speed factor, release time)."""
        self.interval_begin = context.begin_s

    def _loop(self, loop_id: str, lane: str, pos: float) -> str:
        self.elements.append(induction_loop(loop_id, lane, pos))
        return loop_id

    def sumo_elements(self) -> list[ET.Element]:
        return self.elements

    def bind(self, world: SumoWorld, t: float) -> None:
        super().bind(world, t)
        self.bus.subscribe(self._on_message)

    def _on_message(self, message: Message) -> None:
        if isinstance(message.payload, VehiclesArrived) and self.slowed:
            for vehicle in message.payload.ids:
                self.slowed.pop(vehicle, None)

    def _passing(self, site: _RadarSite, loop: str) -> list[str]:
        now = set(self.world.loop_vehicle_ids(loop))
        new = now - site.last.get(loop, set())
        site.last[loop] = now
        return sorted(new)

    def sites(self) -> tuple[str, ...]:
        return tuple(s.edge for s in self.points)

    def sample(self, t: float) -> None:
        world, config = self.world, self.config
        for site in self.points:
            for loop in site.sign_loops:
                for vehicle in self._passing(site, loop):
                    over = world.vehicle_speed(vehicle) > site.limit_mps
                    if (
                        over
                        and vehicle not in self.slowed
                        and self.rng.random() < config.sign_compliance
                    ):
                        own = world.speed_factor(vehicle)
                        world.set_speed_factor(vehicle, min(own, 1.0))
                        self.slowed[vehicle] = (own, t + SIGN_RELEASE_S)
                        site.counts.sign_slowed += 1
            for loop in site.loops:
                for vehicle in self._passing(site, loop):
                    self._measure(t, site, vehicle)
        for vehicle, (own, until) in list(self.slowed.items()):
            if t >= until:
                del self.slowed[vehicle]
                if world.has_vehicle(vehicle):
                    world.set_speed_factor(vehicle, own)
        if t - self.interval_begin >= config.interval_s - 1e-9:
            self._publish(t)

    def _measure(self, t: float, site: _RadarSite, vehicle: str) -> None:
        speed = self.world.vehicle_speed(vehicle)
        counts = site.counts
        counts.passes += 1
        counts.speed_sum_kmh += speed * 3.6
        if vehicle in self.slowed:
            self.world.set_speed_factor(vehicle, self.slowed.pop(vehicle)[0])
        excess = speed / site.limit_mps - 1.0
        if excess > self.config.tolerance:
            counts.speeding += 1
            self.bus.publish(
                t,
                f"radar:{site.edge}",
                SpeedingViolation(site.edge, speeding_severity(excess), round(speed * 3.6, 1),
                                  f"{excess:.0%} over the limit", round(site.limit_mps * 3.6, 1)),
            )  # fmt: skip

    def _publish(self, t: float) -> None:
        for site in self.points:
            c = site.counts
            self.bus.publish(
                t,
                f"radar:{site.edge}",
                RadarPasses(site.edge, self.interval_begin, t, c.passes, c.speeding,
                            c.speed_sum_kmh, c.sign_slowed),
            )  # fmt: skip
            site.counts = _Counts()
        self.interval_begin = t

    def finish(self, t: float) -> None:
        if t > self.interval_begin:
            self._publish(t)


@register_device("radar")
def _build(context: DeviceContext, config: RadarConfig) -> DeviceModel:
    return RadarPoints(context, config)

"""Incidents - injected or SUMO collisions - and their detection from detector data.

**Occurrence** (ground truth, ``incident.occurred``): the scenario's ``[[devices.incidents.inject]]``
entries at their time, incidents an operator submits (:meth:`Incidents.submit`, applied at the
next step), and - with ``collisions`` on - every collision SUMO reports. A ``stopped_vehicle`` is a
broken-down car standing on the lane for ``duration_s``; a ``blocked_lane`` closes the lane to all
traffic for ``duration_s`` (as a lane closure does: vehicles already on it stay).

**Detection** (``incident.detected``): every vehicle lane feeding a signal carries a detection
zone from its start to ``clear_m`` before the stop line (a SUMO lane-area detector; queues at a red
light stay in the part left out). Sampled every ``period_s``, a zone that has had halting vehicles
in every sample for ``persist_s`` (longer than any signal cycle) reports an incident; it re-arms
once it is free of halting vehicles. A detection on the edge of an incident that began before it
and is not yet found is matched to it, and ``delay_s`` is the time since it began (the KPI
``incident_detection_delay_mean_s``); unmatched detections are false alarms (congestion).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass

from sim.devices.config import IncidentsConfig, InjectedIncident
from sim.devices.registry import DeviceContext, DeviceModel, register_device
from sim.errors import ScenarioError
from sim.messages import IncidentDetected, IncidentOccurred, MessageBus
from sim.network import Network

MIN_ZONE_M = 10.0


@dataclass
class _Active:
    id: str
    edge: str
    begin_s: float
    end_s: float
    detected: bool = False


@dataclass
class _Zone:
    id: str
    lane: str
    edge: str
    halting_since: float | None = None
    reported: bool = False


def detection_zones(network: Network, clear_m: float) -> list[_Zone]:
    lanes = sorted({lane.id for tls in network.traffic_lights.values()
                    for lane in tls.incoming_lanes(network)})  # fmt: skip
    zones = []
    for lane_id in lanes:
        if network.lanes[lane_id].length_m - clear_m >= MIN_ZONE_M:
            zones.append(_Zone(f"ccsim.incident.{lane_id}", lane_id, network.lanes[lane_id].edge))
    return zones


class Incidents(DeviceModel):
    def __init__(self, context: DeviceContext, config: IncidentsConfig) -> None:
        self.config = config
        self.bus: MessageBus = context.bus
        self.network = context.network
        self.period_s = context.step_s
        self.sample_every = max(1, round(config.period_s / context.step_s))
        self._steps = 0
        self._pending = deque(sorted(config.inject, key=lambda i: i.at_s))
        self._submitted: deque[InjectedIncident] = deque()
        self._active: list[_Active] = []
        self._restore: list[tuple[float, str]] = []
        self._count = 0
        for incident in config.inject:
            lane = f"{incident.edge}_{incident.lane}"
            if lane not in self.network.lanes:
                field = "devices.incidents.inject"
                raise ScenarioError(context.source, "no such lane", field=field, value=lane,
                                    expected="an edge and lane index of the net")  # fmt: skip
        self.zones = detection_zones(context.network, config.clear_m) if config.detection else []

    def sumo_elements(self) -> list[ET.Element]:
        elements = []
        for zone in self.zones:
            length = self.network.lanes[zone.lane].length_m - self.config.clear_m
            detector = ET.Element("laneAreaDetector", id=zone.id, lane=zone.lane, pos="0.00",
                                  length=f"{length:.2f}", period="3600", file="/dev/null",
                                  friendlyPos="true")  # fmt: skip
            elements.append(detector)
        return elements

    def submit(self, incident: InjectedIncident) -> None:
        """Inject ``incident`` at the next step (thread-safe; its ``at_s`` is ignored)."""
        self._submitted.append(incident)

    def sites(self) -> tuple[str, ...]:
        return tuple(z.lane for z in self.zones)

    def sample(self, t: float) -> None:
        while self._pending and self._pending[0].at_s <= t:
            self._occur(t, self._pending.popleft())
        while self._submitted:
            self._occur(t, self._submitted.popleft())
        for until, lane in list(self._restore):
            if t >= until:
                net_lane = self.network.lanes[lane]
                self.world.set_lane_access(
                    lane,
                    allowed=sorted(net_lane.allow) if net_lane.allow else None,
                    disallowed=sorted(net_lane.disallow) if net_lane.disallow else None,
                )
                self._restore.remove((until, lane))
        if self.config.collisions:
            for _collider, _victim, lane, pos in self.world.collisions():
                edge = lane.rsplit("_", 1)[0]
                self._begin(t, "collision", edge, lane, pos, None)
        self._steps += 1
        if self.zones and self._steps % self.sample_every == 0:
            self._detect(t)

    def _occur(self, t: float, incident: InjectedIncident) -> None:
        lane = f"{incident.edge}_{incident.lane}"
        end = t + incident.duration_s
        if incident.cause == "stopped_vehicle":
            self.world.add_stopped_vehicle(f"ccsim.incident.{self._count + 1}", incident.edge,
                                           incident.lane, incident.pos_m, end)  # fmt: skip
        else:
            self.world.set_lane_access(lane, allowed=["authority"], disallowed=None)
            self._restore.append((end, lane))
        self._begin(t, incident.cause, incident.edge, lane, incident.pos_m, incident.duration_s)

    def _begin(
        self, t: float, cause: str, edge: str, lane: str, pos: float, duration: float | None
    ) -> None:
        self._count += 1
        incident = f"incident.{self._count}"
        end = t + (duration if duration is not None else self.config.persist_s)
        self._active.append(_Active(incident, edge, t, end))
        self.bus.publish(t, "incidents", IncidentOccurred(incident, cause, edge, lane, pos, duration))

    def _detect(self, t: float) -> None:
        counts = self.world.area_counts([z.id for z in self.zones])
        persist = self.config.persist_s
        for zone, (_present, halting, _occupancy) in zip(self.zones, counts, strict=True):
            if halting == 0:
                zone.halting_since, zone.reported = None, False
                continue
            if zone.halting_since is None:
                zone.halting_since = t
            if not zone.reported and t - zone.halting_since >= persist:
                zone.reported = True
                self._report(t, zone)

    def _report(self, t: float, zone: _Zone) -> None:
        persist = self.config.persist_s
        match = next(
            (a for a in self._active
             if a.edge == zone.edge and not a.detected and a.begin_s <= t <= a.end_s + persist),
            None,
        )  # fmt: skip
        if match is not None:
            match.detected = True
            payload = IncidentDetected(zone.lane, zone.edge, match.id, t - match.begin_s)
        else:
            payload = IncidentDetected(zone.lane, zone.edge, None, None)
        self.bus.publish(t, "incidents", payload)


@register_device("incidents")
def _build(context: DeviceContext, config: IncidentsConfig) -> DeviceModel:
    return Incidents(context, config)

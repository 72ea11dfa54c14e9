"""Incidents - injected or SUMO collisions - and their detection from detector data.

**Occurrence** (ground truth, ``incident.occurred``): the scenario's ``[[devices.incidents.inject]]``
entries at their time, incidents an operator reports (:meth:`Incidents.submit`, applied at the
next step, answered by ``incident.reported``), and - with ``collisions`` on - every collision SUMO
reports. A ``stopped_vehicle`` is a broken-down car standing on the lane for ``duration_s``; a
``blocked_lane`` holds the lane closed to all traffic for ``duration_s`` (as a lane closure does:
vehicles already on it stay), beside any other holder of the lane (sim/lanes.py: its end does not
open a lane an operator also closed). A collision lasts as long as SUMO keeps the vehicles
standing (its ``collision.stoptime``); SUMO checks for collisions inside junctions only with
``collision.check-junctions``. A collision where an incident is still going on (the same edge, or
the same junction) is part of that incident. Each incident's end is ``incident.ended``.

**Detection** (``incident.detected``): every vehicle lane feeding a signal carries a mid-block
zone from its start to ``clear_m`` before the stop line, a stop-line stretch over those last
``clear_m`` (SUMO lane-area detectors) and a stop-bar loop. Sampled every ``period_s``, a lane
reports an incident when its zone has held halting vehicles in every sample for ``persist_s``
(longer than any signal cycle) and, over the last ``persist_s``, the queue stands behind
something rather than at the signal - the upstream/downstream comparison of the California
algorithms, taken across the stop line:

* the stop-line stretch was on average less than ``stopline_occupancy`` occupied: the queue's
  head is mid-block (a stopped vehicle); or
* no vehicle reached the stop bar while the lanes it leads to were free of halting vehicles most
  of the time: the junction itself is blocked (a crash), not a queue spilling back.

A queue at a red light or one spilling back from a full street ahead fills the stop-line stretch
and keeps moving, however slowly, or stands behind a jammed exit: that is congestion, not an
incident. A lane re-arms once its zone is free of halting vehicles.

A detection on the edge of an incident that began before it and is not yet found - or on an
edge entering the junction of an incident inside a junction - is matched to it, and its delay is
the time since it began (the KPI ``incident_detection_delay_mean_s``); unmatched detections are
false alarms. That matching is ground truth: ``incident.detected`` says only where stopped traffic
was found, and the matches go to the KPIs at the end of the run (``incident.totals``).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from sim.devices.config import CAUSES, IncidentsConfig, InjectedIncident
from sim.devices.registry import DeviceContext, DeviceModel, register_device
from sim.devices.sites import induction_loop
from sim.errors import ScenarioError
from sim.lanes import LaneAccess, blocking_problem
from sim.messages import (
    DetectionMatch,
    IncidentDetected,
    IncidentEnded,
    IncidentOccurred,
    IncidentReported,
    IncidentTotals,
    MessageBus,
)
from sim.network import Network
from sim.sumo import SumoWorld

log = logging.getLogger("ccsim.incidents")

MIN_ZONE_M = 10.0
LOOP_PERIOD_S = 86400
"""The stop-bar loops count entries over one interval this long (read as a running total)."""


def junction_of(lane: str) -> str | None:
    """The junction of an internal lane (SUMO names them ``:<junction>_<link>_<lane>``), else
    None."""
    return lane[1:].rsplit("_", 2)[0] if lane.startswith(":") else None


@dataclass(frozen=True)
class IncidentProblem:
    """What is wrong with an incident: its ``field``, the ``value`` given and what was expected."""

    field: str
    value: object
    expected: str

    def __str__(self) -> str:
        return f"{self.field} {self.value!r}: expected {self.expected}"


def incident_problem(
    network: Network, edge: str, lane: int, pos_m: float, duration_s: float, cause: str
) -> IncidentProblem | None:
    """What is wrong with an incident on lane index ``lane`` of ``edge`` at ``pos_m`` (m from the
    lane's start) for ``duration_s`` (s), or None if nothing is. For scenario entries and for
    incidents operators report alike."""
    indices = sorted(
        int(x.id.rsplit("_", 1)[1]) for x in network.lanes.values()
        if x.edge == edge and x.carries_vehicles
    )  # fmt: skip
    if not indices:
        expected = "an edge of the net with a vehicle lane (not inside a junction)"
        return IncidentProblem("edge", edge, expected)
    lane_id = f"{edge}_{lane}"
    if lane not in indices:
        expected = f"a vehicle lane index of {edge}: {', '.join(map(str, indices))}"
        return IncidentProblem("lane", lane, expected)
    length = network.lanes[lane_id].length_m
    if not 0.0 <= pos_m <= length:
        return IncidentProblem("pos_m", pos_m, f"a position on {lane_id}: 0 to {length:.1f} m")
    if not duration_s > 0.0:
        return IncidentProblem("duration_s", duration_s, "a duration above 0 s")
    if cause not in CAUSES:
        return IncidentProblem("cause", cause, "one of " + ", ".join(CAUSES))
    if cause == "blocked_lane" and (problem := blocking_problem(network, lane_id)) is not None:
        expected = f"a lane SUMO can close ({problem}); or cause stopped_vehicle"
        return IncidentProblem("lane", lane, expected)
    return None


@dataclass
class _Active:
    id: str
    edge: str
    lane: str
    junction: str | None
    """The junction, for an incident inside one."""
    begin_s: float
    end_s: float
    blocks: bool = False
    """It holds its lane closed (a ``blocked_lane``)."""
    detected: bool = False
    ended: bool = False


@dataclass(frozen=True)
class QueueSample:
    """What a lane's detectors saw at one sample."""

    stopline_occupancy: float
    """Of the stop-line stretch, 0..1."""
    reached_stop_bar: int
    """Vehicles that reached the stop bar since the sample before."""
    exit_jammed: bool
    """A lane this one leads to had halting vehicles in its zone."""


@dataclass
class _Zone:
    id: str
    lane: str
    edge: str
    to_junction: str
    exits: tuple[int, ...] = ()
    """Indices of the zones on the lanes this lane leads to."""
    halting_since: float | None = None
    reported: bool = False
    stop_bar_total: int = 0
    window: deque[QueueSample] = field(default_factory=deque)

    @property
    def stopline_id(self) -> str:
        return f"{self.id}.stopline"

    @property
    def loop_id(self) -> str:
        return f"{self.id}.stopbar"


def held_by_incident(window: Sequence[QueueSample], stopline_occupancy: float) -> bool:
    """Whether a queue that stood in a zone over ``window`` (the samples of the last
    ``persist_s``) is held by an incident rather than a signal or a full street ahead: its
    stop-line stretch was on average less than ``stopline_occupancy`` (0..1) occupied, or nobody
    reached the stop bar while the lanes ahead were mostly free of halting vehicles."""
    occupancy = sum(s.stopline_occupancy for s in window) / len(window)
    if occupancy < stopline_occupancy:
        return True
    jammed = sum(s.exit_jammed for s in window)
    return sum(s.reached_stop_bar for s in window) == 0 and 2 * jammed < len(window)


def detection_zones(network: Network, clear_m: float) -> list[_Zone]:
    """One zone per vehicle lane feeding a signal that is at least ``clear_m`` + 10 m long,
    each knowing the zones of the lanes it leads to."""
    lanes = sorted({lane.id for tls in network.traffic_lights.values()
                    for lane in tls.incoming_lanes(network)})  # fmt: skip
    zones = []
    for lane_id in lanes:
        lane = network.lanes[lane_id]
        if lane.length_m - clear_m >= MIN_ZONE_M:
            end = network.edge_ends.get(lane.edge, ("", ""))[1]
            zones.append(_Zone(f"ccsim.incident.{lane_id}", lane_id, lane.edge, end))
    by_edge: dict[str, list[int]] = {}
    for i, zone in enumerate(zones):
        by_edge.setdefault(zone.edge, []).append(i)
    for zone in zones:
        targets = sorted(network.lane_targets.get(zone.lane, ()))
        zone.exits = tuple(i for edge in targets for i in by_edge.get(edge, ()))
    return zones


class Incidents(DeviceModel):
    def __init__(self, context: DeviceContext, config: IncidentsConfig) -> None:
        self.config = config
        self.bus: MessageBus = context.bus
        self.network = context.network
        self.period_s = context.step_s
        self.sample_every = max(1, round(config.period_s / context.step_s))
        self.window = max(1, round(config.persist_s / config.period_s))
        """Samples in ``persist_s``."""
        self._steps = 0
        self.lanes = context.lanes or LaneAccess(context.network, context.bus)
        self._pending = deque(sorted(config.inject, key=lambda i: i.at_s))
        self._submitted: deque[tuple[InjectedIncident, str, int]] = deque()
        self._active: list[_Active] = []
        self._count = 0
        self.matches: list[DetectionMatch] = []
        """Every detection against the ground truth (for the KPIs, at the end)."""
        self.collision_stand_s = 0.0
        for i, incident in enumerate(config.inject):
            problem = incident_problem(self.network, incident.edge, incident.lane, incident.pos_m,
                                       incident.duration_s, incident.cause)  # fmt: skip
            if problem is not None:
                field = f"devices.incidents.inject[{i}].{problem.field}"
                raise ScenarioError(context.source, "not on the net", field=field,
                                    value=problem.value, expected=problem.expected)  # fmt: skip
        self.zones = detection_zones(context.network, config.clear_m) if config.detection else []
        for zone in self.zones:
            zone.window = deque(maxlen=self.window)
        self._areas = [z.id for z in self.zones] + [z.stopline_id for z in self.zones]
        self._loops = [z.loop_id for z in self.zones]

    def sumo_elements(self) -> list[ET.Element]:
        elements = []
        clear = self.config.clear_m
        for zone in self.zones:
            length = self.network.lanes[zone.lane].length_m
            for area, pos, size in ((zone.id, 0.0, length - clear),
                                    (zone.stopline_id, length - clear, clear)):  # fmt: skip
                elements.append(ET.Element(
                    "laneAreaDetector", id=area, lane=zone.lane, pos=f"{pos:.2f}",
                    length=f"{size:.2f}", period="3600", file="/dev/null", friendlyPos="true",
                ))  # fmt: skip
            loop = induction_loop(zone.loop_id, zone.lane, max(0.0, length - 0.5))
            loop.set("period", str(LOOP_PERIOD_S))
            elements.append(loop)
        return elements

    def submit(self, incident: InjectedIncident, user: str, command: int = 0) -> None:
        """Inject ``incident``, reported by ``user``, at the next step (thread-safe; its ``at_s``
        is ignored). Check it with :func:`incident_problem` first."""
        self._submitted.append((incident, user, command))

    def sites(self) -> tuple[str, ...]:
        return tuple(z.lane for z in self.zones)

    def bind(self, world: SumoWorld, t: float) -> None:
        super().bind(world, t)
        if self.lanes.world is None:
            self.lanes.bind(world)
        self.collision_stand_s = world.collision_stand_s()

    def sample(self, t: float) -> None:
        while self._pending and self._pending[0].at_s <= t:
            self._occur(t, self._pending.popleft())
        while self._submitted:
            incident, user, command = self._submitted.popleft()
            lane = f"{incident.edge}_{incident.lane}"
            problem = self.lanes.blocking_problem(lane) if incident.cause == "blocked_lane" else None
            if problem is not None:  # lanes closed since it was checked
                self.bus.publish(t, "incidents", IncidentReported(
                    "", incident.cause, incident.edge, lane, incident.pos_m, incident.duration_s,
                    user, False, f"lane {lane}: {problem}", command,
                ))  # fmt: skip
                continue
            reported = self._occur(t, incident, known=True)
            self.bus.publish(t, "incidents", IncidentReported(
                reported, incident.cause, incident.edge, lane,
                incident.pos_m, incident.duration_s, user, True,
                f"{reported}: {incident.cause} for {incident.duration_s:g} s", command,
            ))  # fmt: skip
        for active in self._active:
            if not active.ended and t >= active.end_s:
                active.ended = True
                if active.blocks:
                    self.lanes.unblock(t, active.lane, active.id)
                self.bus.publish(t, "incidents", IncidentEnded(active.id, active.edge, active.lane))
        if self.config.collisions:
            for _collider, _victim, lane, pos in self.world.collisions():
                self._collision(t, lane, pos)
        self._steps += 1
        if self.zones and self._steps % self.sample_every == 0:
            self._detect(t)

    def _occur(self, t: float, incident: InjectedIncident, *, known: bool = False) -> str:
        """Start ``incident`` now (``known``: an operator reported it); its id."""
        lane = f"{incident.edge}_{incident.lane}"
        end = t + incident.duration_s
        if incident.cause == "stopped_vehicle":
            self.world.add_stopped_vehicle(f"ccsim.incident.{self._count + 1}", incident.edge,
                                           incident.lane, incident.pos_m, end)  # fmt: skip
        active = self._begin(t, incident.cause, incident.edge, lane, incident.pos_m,
                             incident.duration_s)  # fmt: skip
        if incident.cause == "blocked_lane":
            if (problem := self.lanes.blocking_problem(lane)) is not None:
                # lanes closed since the scenario was checked: the blockage would leave SUMO
                # no way through, so it stands beside the lane (an incident without a closure)
                log.warning("incident %s on %s does not close the lane: %s", active.id, lane, problem)
            else:
                active.blocks = True
                self.lanes.block(t, lane, active.id, known=known)
        return active.id

    def _collision(self, t: float, lane: str, pos: float) -> None:
        edge, junction = lane.rsplit("_", 1)[0], junction_of(lane)
        # Vehicles running into a crash already there (or a second pair in the same junction)
        # add to that incident rather than making another.
        for active in self._active:
            same = active.junction == junction if junction is not None else active.edge == edge
            if same and active.begin_s <= t <= active.end_s:
                return
        self._begin(t, "collision", edge, lane, pos, self.collision_stand_s)

    def _begin(self, t: float, cause: str, edge: str, lane: str, pos: float, duration: float) -> _Active:
        self._count += 1
        active = _Active(f"incident.{self._count}", edge, lane, junction_of(lane), t, t + duration)
        self._active.append(active)
        self.bus.publish(t, "incidents", IncidentOccurred(active.id, cause, edge, lane, pos, duration))
        return active

    def _detect(self, t: float) -> None:
        counts = self.world.area_counts(self._areas)
        totals = self.world.loop_interval_counts(self._loops)
        n = len(self.zones)
        halting = [h for _present, h, _occupancy in counts[:n]]
        for i, zone in enumerate(self.zones):
            total = totals[i]
            # A loop's count starts again at each of its intervals (a day): a smaller total is new.
            reached = total - zone.stop_bar_total if total >= zone.stop_bar_total else total
            zone.stop_bar_total = total
            jammed = any(halting[j] > 0 for j in zone.exits)
            zone.window.append(QueueSample(counts[n + i][2] / 100.0, reached, jammed))
            if halting[i] == 0:
                zone.halting_since, zone.reported = None, False
                continue
            if zone.halting_since is None:
                zone.halting_since = t
            if (not zone.reported and t - zone.halting_since >= self.config.persist_s
                    and held_by_incident(zone.window, self.config.stopline_occupancy)):  # fmt: skip
                zone.reported = True
                self._report(t, zone)

    def _report(self, t: float, zone: _Zone) -> None:
        persist = self.config.persist_s
        match = next(
            (a for a in self._active
             if not a.detected and a.begin_s <= t <= a.end_s + persist
             and (a.edge == zone.edge or a.junction == zone.to_junction)),
            None,
        )  # fmt: skip
        if match is not None:
            match.detected = True
            self.matches.append(DetectionMatch(t, zone.lane, match.id, t - match.begin_s))
        else:
            self.matches.append(DetectionMatch(t, zone.lane, None, None))
        self.bus.publish(t, "incidents", IncidentDetected(zone.lane, zone.edge))

    def finish(self, t: float) -> None:
        self.bus.publish(t, "incidents", IncidentTotals(tuple(self.matches)))


@register_device("incidents")
def _build(context: DeviceContext, config: IncidentsConfig) -> DeviceModel:
    return Incidents(context, config)

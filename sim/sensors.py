"""The sensor layer: what detectors report, after passing through a vendor's sensor profile.

Controllers see only :class:`LaneObservation` values from here, never SUMO's vehicles. Every
reporting period the layer reads the raw detector values (ground truth at the detector) and hands
them through the scenario's :class:`SensorProfile`; ``ideal`` passes them on unchanged, and the
profiles of noisy and failing sensors plug in the same way.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from sim.detectors import Detector, DetectorKind
from sim.errors import UnknownNameError
from sim.messages import DetectorReadings, MessageBus, SensorFault, SensorRecovered
from sim.readings import IntArray, Readings
from sim.sensor_health import SensorHealth
from sim.sumo import SumoWorld


@dataclass(frozen=True, slots=True)
class LaneObservation:
    """What the detectors of one approach lane reported for the period ending at ``t_s``.

    ``count``: vehicles that reached the advance loop in the period, each once; ``gap_s``: time
    since the advance loop was last occupied (the real gap behind the last vehicle); ``queue``:
    halting vehicles in the stop-line zone; ``present``: vehicles in the zone; ``occupancy``:
    stop-line zone occupancy, 0..1 (queue, presence and occupancy at the end of the period);
    ``buses``: buses over the transit loop; ``emergency``: emergency vehicles over the emergency
    loop; ``t_s``: when it was measured (s), so a reader can tell its age.
    """

    count: int
    gap_s: float
    queue: int
    present: int
    occupancy: float
    buses: int
    emergency: int = 0
    t_s: float = 0.0


NO_TRAFFIC = LaneObservation(0, 3600.0, 0, 0, 0.0, 0)
RECALL = LaneObservation(1, 0.0, 1, 1, 0.5, 0, t_s=math.inf)
"""What a controller is shown for a lane whose detector is faulty, or whose last report is too
old to trust: a standing call, so the approach is served every cycle and extended as if
vehicles kept coming (max recall)."""

STALE_PERIODS = 2.5
"""A report older than this many reporting periods is treated as missing."""


@dataclass(frozen=True, slots=True)
class StationZone:
    """One lane's completed sample period from an external detector station (NTCIP 1209):
    ``volume`` vehicles, ``occupancy_pct``, ``speed_kmh`` (None where the station reported them
    missing); ``ok`` False when the station marked the zone faulty."""

    lane: str
    volume: int | None
    occupancy_pct: float | None
    speed_kmh: float | None
    ok: bool


@dataclass(frozen=True, slots=True)
class StationReport:
    """An external station's completed period for the lanes of signal ``tls``, ``period_s``
    long, as polled by the control centre."""

    tls: str
    station: str
    """``host:port`` of the station."""
    period_s: float
    zones: tuple[StationZone, ...]


QUEUE_SPEED_KMH = 10.0
"""A station zone slower than this on average is read as a standing queue."""


def station_observation(
    zone: StationZone, period_s: float, report_s: float, capacity: int, carry: float, t: float
) -> tuple[LaneObservation, float]:
    """What a controller sees of a lane at one of the sensor layer's reports (every
    ``report_s``) from an external station's last period (``period_s`` long): the period's flow
    spread over the reports (``carry``: the fraction of a vehicle not yet counted, returned
    updated), its occupancy, as many vehicles present as that occupancy fills of the lane's
    stop-line zone (``capacity`` vehicles), queued when the zone's average speed is under
    :data:`QUEUE_SPEED_KMH` (or, speed missing, at occupancy >= 0.5), and the mean headway as
    the gap. A faulty zone or missing volume and occupancy is :data:`RECALL`. Period data
    cannot tell a controller when the last vehicle passed: the gap is an average."""
    if not zone.ok or zone.volume is None or zone.occupancy_pct is None:
        return RECALL, 0.0
    carry += zone.volume * report_s / period_s
    count = int(carry)
    occupancy = min(1.0, max(0.0, zone.occupancy_pct / 100.0))
    present = min(capacity, round(occupancy * capacity))
    slow = occupancy >= 0.5 if zone.speed_kmh is None else zone.speed_kmh < QUEUE_SPEED_KMH
    gap = period_s / zone.volume if zone.volume > 0 else 3600.0
    observation = LaneObservation(count, gap, present if slow else 0, present, occupancy, 0, 0, t)
    return observation, carry - count


class SensorProfile(ABC):
    """How a kind of sensor distorts what it sees. Subclasses register by name."""

    name = ""

    def bind(self, lanes: list[str], zone_capacity: IntArray, seed: int) -> None:  # noqa: B027
        """Called once before the run with the lanes (in :class:`Readings` order), the vehicles
        each stop-line zone can hold, and the run's seed (for reproducible randomness)."""

    @abstractmethod
    def apply(self, t: float, truth: Readings) -> Readings:
        """Turn true readings into reported ones (may keep state between calls)."""


_PROFILES: dict[str, Callable[[], SensorProfile]] = {}


def register_profile(name: str) -> Callable[[type[SensorProfile]], type[SensorProfile]]:
    def add(cls: type[SensorProfile]) -> type[SensorProfile]:
        cls.name = name
        _PROFILES[name] = cls
        return cls

    return add


def profile_names() -> list[str]:
    return sorted(_PROFILES)


def create_profile(name: str) -> SensorProfile:
    """A registered profile by name (``ideal`` and the bundled vendor profiles)."""
    try:
        return _PROFILES[name]()
    except KeyError:
        raise UnknownNameError("sensor profile", name, profile_names()) from None


@register_profile("ideal")
class Ideal(SensorProfile):
    """Perfect detectors: reports are the truth at the detector, on time."""

    def apply(self, t: float, truth: Readings) -> Readings:
        return truth


class SensorLayer:
    """Reports every approach lane's detectors once per reporting period.

    Counts (vehicles, buses, emergency vehicles) are the vehicles that reached each loop since the
    last report, each counted once: the ids over a loop that were not over it the step before
    (SUMO's own running count misses vehicles that change lanes over a loop, and counts one that
    changes away again); the gap is the time since the advance loop was last occupied; queue,
    presence and occupancy are the values at the end of the period. Each report passes through the sensor
    profile, then through the health check: a lane whose detectors look faulty is shown to
    controllers as :data:`RECALL` until it recovers (``sensor.fault`` / ``sensor.recovered`` on
    the stream). A lane that sent nothing keeps its last observation, with its time; read with
    the current time, one older than :data:`STALE_PERIODS` periods counts as missing (recall).
    """

    def __init__(
        self,
        world: SumoWorld,
        detectors: list[Detector],
        profile: SensorProfile,
        period_s: float,
        *,
        bus: MessageBus,
        seed: int,
    ) -> None:
        self.world = world
        self.profile = profile
        self.period_s = period_s
        self.stale_s = STALE_PERIODS * period_s
        self.bus = bus
        by_kind = {kind: [d for d in detectors if d.kind is kind] for kind in DetectorKind}
        stops = by_kind[DetectorKind.STOPLINE]
        self.lanes = [d.lane for d in stops]
        self._tls = [d.tls for d in stops]
        index = {lane: i for i, lane in enumerate(self.lanes)}
        self.zone_length_m = {d.lane: d.distance_to_stopline_m for d in stops}
        """Length of each lane's stop-line zone, m."""
        self._areas = [d.id for d in stops]
        self._loops = {
            kind: (
                [d.id for d in by_kind[kind]],
                np.array([index[d.lane] for d in by_kind[kind]], np.int64),
            )
            for kind in (DetectorKind.ADVANCE, DetectorKind.TRANSIT, DetectorKind.EMERGENCY)
        }
        n = len(self.lanes)
        self._sums = {kind: np.zeros(n, np.int64) for kind in self._loops}
        self._on_loop: dict[DetectorKind, list[tuple[str, ...]]] = {
            kind: [()] * len(loops) for kind, (loops, _) in self._loops.items()
        }
        self._next_report = 0.0
        capacity = np.array([max(1, int(d.distance_to_stopline_m / 7.5)) for d in stops], np.int64)
        self._capacity = dict(zip(self.lanes, capacity.tolist(), strict=True))
        profile.bind(self.lanes, capacity, seed)
        groups = {tls: g for g, tls in enumerate(dict.fromkeys(self._tls))}
        self._health: SensorHealth | None = None
        self._groups = [groups[tls] for tls in self._tls]
        self._n = n
        self.latest: dict[str, LaneObservation] = dict.fromkeys(self.lanes, NO_TRAFFIC)
        self._published: dict[str, tuple[int, int, int, float, int]] = {}
        """Per lane, the figures last put on the stream (``detector.readings``)."""
        self.standing_calls: dict[str, frozenset[str]] = {}
        """Per signal, lanes a central system places a standing vehicle call on (NTCIP VehCall)."""
        self._called: frozenset[str] = frozenset()
        self.external: dict[str, str] = {}
        """Lanes whose controllers see an external station's data instead of the simulated
        detectors (``[[ntcip.stations]] drive = true``) -> the signal they belong to."""
        self._station: dict[str, tuple[float, float, StationZone]] = {}
        """Per external lane: (when its period arrived, the period's length, the zone)."""
        self._carry: dict[str, float] = {}
        self._left: dict[str, int] = {}
        """Per external lane, vehicles of its last period not yet counted: a period is counted
        once, however late the next one is."""

    @property
    def detects_emergency(self) -> bool:
        return bool(self._loops[DetectorKind.EMERGENCY][0])

    def attach(self, t: float) -> None:
        self._next_report = t + self.period_s
        self._health = SensorHealth(self._groups, t)
        self.latest = dict.fromkeys(self.lanes, replace(NO_TRAFFIC, t_s=t))
        self._publish_readings(t)

    def _count_arrivals(self) -> None:
        """Add the vehicles newly over each loop this step to its lane's count."""
        world = self.world
        for kind, (loops, lanes) in self._loops.items():
            if not loops:
                continue
            before = self._on_loop[kind]
            now = world.loops_vehicle_ids(loops)
            sums = self._sums[kind]
            for k, ids in enumerate(now):
                if ids:
                    last = before[k]
                    sums[lanes[k]] += len(ids) if not last else sum(1 for v in ids if v not in last)
            self._on_loop[kind] = now

    def update(self, t: float) -> bool:
        """Read this step's loops; report if a period ended at ``t``. True if it reported."""
        self._count_arrivals()
        if t + 1e-9 < self._next_report:
            return False
        self._next_report += self.period_s
        world = self.world
        n = self._n
        areas = np.array(world.area_counts(self._areas), np.float64).reshape(-1, 3)
        gap = np.full(n, 3600.0)
        loops, lanes = self._loops[DetectorKind.ADVANCE]
        if loops:
            gap[lanes] = np.array(world.loop_gaps(loops), np.float64)
        sums = self._sums
        truth = Readings(
            count=sums[DetectorKind.ADVANCE].copy(),
            gap_s=gap,
            queue=areas[:, 1].astype(np.int64),
            present=areas[:, 0].astype(np.int64),
            occupancy=areas[:, 2] / 100.0,
            buses=sums[DetectorKind.TRANSIT].copy(),
            emergency=sums[DetectorKind.EMERGENCY].copy(),
            valid=np.ones(n, np.bool_),
        )
        for counts in sums.values():
            counts[:] = 0
        reported = self.profile.apply(t, truth)
        self._report(t, reported)
        return True

    def _report(self, t: float, r: Readings) -> None:
        if self._health is None:
            raise RuntimeError("SensorLayer.attach() was not called")
        for change in self._health.check(t, r):
            lane, tls = self.lanes[change.lane], self._tls[change.lane]
            payload: SensorFault | SensorRecovered = (
                SensorRecovered(lane, tls, change.fault, change.since_s)
                if change.recovered
                else SensorFault(lane, tls, change.fault)
            )
            self.bus.publish(t, f"detector:{lane}", payload)
        faulty = self._health.fault
        columns = zip(self.lanes, r.valid.tolist(), r.count.tolist(), r.gap_s.tolist(),
                      r.queue.tolist(), r.present.tolist(), r.occupancy.tolist(), r.buses.tolist(),
                      r.emergency.tolist(), faulty, strict=True)  # fmt: skip
        latest = self.latest
        external = self.external
        for lane, valid, count, gap, queue, present, occupancy, buses, emergency, fault in columns:
            if lane in external:
                latest[lane] = self._from_station(t, lane)
            elif fault is not None:
                latest[lane] = RECALL
            elif valid:
                latest[lane] = LaneObservation(
                    count, gap, queue, present, occupancy, buses, emergency, t
                )
        self._publish_readings(t)

    def _publish_readings(self, t: float) -> None:
        """Put what the controllers now see on the stream: the lanes whose figures changed."""
        changed: dict[str, tuple[int, int, int, float, int]] = {}
        published = self._published
        for lane, obs in self.latest.items():
            figures = (obs.count, obs.queue, obs.present, round(obs.occupancy, 3), obs.buses)
            if published.get(lane) != figures:
                published[lane] = changed[lane] = figures
        if changed:
            self.bus.publish(t, "detectors", DetectorReadings(changed))

    def lanes_of(self, tls: str) -> list[str]:
        """The approach lanes of signal ``tls`` that have detectors."""
        return [lane for lane, of in zip(self.lanes, self._tls, strict=True) if of == tls]

    def drive_externally(self, tls: str) -> None:
        """From now on signal ``tls``'s controllers see an external station's periods
        (:meth:`feed_station`) instead of the simulated detectors; until its first period
        arrives, and whenever its last one is older than :data:`STALE_PERIODS` of its periods,
        its lanes are on recall."""
        for lane in self.lanes_of(tls):
            self.external[lane] = tls
            self.latest[lane] = RECALL

    def feed_station(self, t: float, report: StationReport) -> None:
        """An external station's completed period (ignored for lanes not driven externally)."""
        for zone in report.zones:
            if self.external.get(zone.lane) == report.tls:
                self._station[zone.lane] = (t, report.period_s, zone)
                self._left[zone.lane] = zone.volume or 0

    def _from_station(self, t: float, lane: str) -> LaneObservation:
        last = self._station.get(lane)
        if last is None or t - last[0] > STALE_PERIODS * last[1]:
            self._carry[lane] = 0.0
            return RECALL
        _, period_s, zone = last
        observation, self._carry[lane] = station_observation(
            zone, period_s, self.period_s, self._capacity[lane], self._carry.get(lane, 0.0), t
        )
        left = self._left.get(lane, 0)
        if observation.count > left:
            observation = replace(observation, count=left)
        self._left[lane] = left - observation.count
        return observation

    def lane(self, lane: str, now: float | None = None) -> LaneObservation:
        """The lane's last report; with ``now`` (s), :data:`RECALL` if it is too old to trust.
        A lane with a standing call shows at least one vehicle waiting."""
        observation = self.latest.get(lane, NO_TRAFFIC)
        if now is not None and now - observation.t_s > self.stale_s:
            return RECALL
        if lane in self._called and observation.present < 1:
            return replace(observation, present=1, queue=max(1, observation.queue))
        return observation

    def set_standing_calls(self, tls: str, lanes: frozenset[str]) -> None:
        """Replace the standing vehicle calls a central system places on ``tls``'s lanes."""
        self.standing_calls[tls] = lanes
        self._called = frozenset(lane for called in self.standing_calls.values() for lane in called)

    def faulty_lanes(self) -> list[str]:
        """Lanes whose detectors are judged faulty right now."""
        if self._health is None:
            return []
        return [lane for lane, f in zip(self.lanes, self._health.fault, strict=True) if f is not None]

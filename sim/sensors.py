"""The sensor layer: what detectors report, after passing through a vendor's sensor profile.

Controllers see only :class:`LaneObservation` values from here, never SUMO's vehicles. Every
reporting period the layer reads the raw detector values (ground truth at the detector) and hands
them through the scenario's :class:`SensorProfile`; ``ideal`` passes them on unchanged, and the
profiles of noisy and failing sensors plug in the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from sim.detectors import Detector, DetectorKind
from sim.errors import UnknownNameError
from sim.sumo import SumoWorld


@dataclass(frozen=True, slots=True)
class LaneObservation:
    """What the detectors of one approach lane reported over the last period.

    ``count``: vehicles over the advance loop; ``gap_s``: time since the advance loop last saw a
    vehicle; ``queue``: halting vehicles in the stop-line zone; ``present``: vehicles in the zone;
    ``occupancy``: stop-line zone occupancy, 0..1; ``buses``: buses over the transit loop;
    ``emergency``: emergency vehicles over the emergency loop.
    """

    count: int
    gap_s: float
    queue: int
    present: int
    occupancy: float
    buses: int
    emergency: int = 0


NO_TRAFFIC = LaneObservation(0, 3600.0, 0, 0, 0.0, 0)


class SensorProfile(ABC):
    """How a kind of sensor distorts what it sees. Subclasses register by name."""

    name = ""

    @abstractmethod
    def apply(self, t: float, lanes: dict[str, LaneObservation]) -> dict[str, LaneObservation]:
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
    try:
        return _PROFILES[name]()
    except KeyError:
        raise UnknownNameError("sensor profile", name, profile_names()) from None


@register_profile("ideal")
class Ideal(SensorProfile):
    """Perfect detectors: reports are the truth at the detector, on time."""

    def apply(self, t: float, lanes: dict[str, LaneObservation]) -> dict[str, LaneObservation]:
        return lanes


class SensorLayer:
    """Reads the detectors every step and reports per lane once per reporting period.

    Counts (vehicles, buses, emergency vehicles) add up over the period; the gap is the time since
    the advance loop last counted a vehicle (to the step); queue, presence and occupancy are the
    values at the end of the period.
    """

    def __init__(
        self, world: SumoWorld, detectors: list[Detector], profile: SensorProfile, period_s: float
    ) -> None:
        self.world = world
        self.profile = profile
        self.period_s = period_s
        by_kind = {kind: [d for d in detectors if d.kind is kind] for kind in DetectorKind}
        self._loops = [d.id for d in by_kind[DetectorKind.ADVANCE]]
        self._loop_lanes = [d.lane for d in by_kind[DetectorKind.ADVANCE]]
        self._transit = [d.id for d in by_kind[DetectorKind.TRANSIT]]
        self._transit_lanes = [d.lane for d in by_kind[DetectorKind.TRANSIT]]
        self._emergency = [d.id for d in by_kind[DetectorKind.EMERGENCY]]
        self._emergency_lanes = [d.lane for d in by_kind[DetectorKind.EMERGENCY]]
        self._areas = [d.id for d in by_kind[DetectorKind.STOPLINE]]
        self._area_lanes = [d.lane for d in by_kind[DetectorKind.STOPLINE]]
        lanes = sorted({d.lane for d in detectors})
        self.zone_length_m = {d.lane: d.distance_to_stopline_m for d in by_kind[DetectorKind.STOPLINE]}
        """Length of each lane's stop-line zone, m."""
        self._counts: dict[str, int] = dict.fromkeys(lanes, 0)
        self._buses: dict[str, int] = dict.fromkeys(lanes, 0)
        self._emergencies: dict[str, int] = dict.fromkeys(lanes, 0)
        self._last_seen: dict[str, float] = dict.fromkeys(lanes, -3600.0)
        self._next_report = 0.0
        self.latest: dict[str, LaneObservation] = dict.fromkeys(lanes, NO_TRAFFIC)

    @property
    def detects_emergency(self) -> bool:
        return bool(self._emergency)

    def attach(self, t: float) -> None:
        self._next_report = t + self.period_s

    def update(self, t: float) -> bool:
        """Read this step's detector values; report if a period ended. True if it reported."""
        world, counts, seen = self.world, self._counts, self._last_seen
        for lane, count in zip(self._loop_lanes, world.loop_counts(self._loops), strict=True):
            if count:
                counts[lane] += count
                seen[lane] = t
        if self._transit:
            for lane, count in zip(self._transit_lanes, world.loop_counts(self._transit), strict=True):
                self._buses[lane] += count
        if self._emergency:
            for lane, count in zip(
                self._emergency_lanes, world.loop_counts(self._emergency), strict=True
            ):
                self._emergencies[lane] += count
        if t + 1e-9 < self._next_report:
            return False
        self._next_report += self.period_s
        truth: dict[str, LaneObservation] = {}
        buses, emergencies = self._buses, self._emergencies
        areas = world.area_counts(self._areas)
        for lane, (present, halting, occupancy) in zip(self._area_lanes, areas, strict=True):
            truth[lane] = LaneObservation(
                counts[lane], t - seen[lane], halting, present, occupancy / 100.0, buses[lane],
                emergencies[lane],
            )  # fmt: skip
            counts[lane] = buses[lane] = emergencies[lane] = 0
        self.latest = self.profile.apply(t, truth)
        return True

    def lane(self, lane: str) -> LaneObservation:
        return self.latest.get(lane, NO_TRAFFIC)

"""What one signal looks like to an NTCIP manager: a pure mapping from the signal's layout and its
latest snapshot (link states, mode, detector readings, faults) to NTCIP 1202 / 1209 values.

**Phases.** SUMO drives a signal link by link. NTCIP phases are the signal's *signal groups*:
links that show the same character in every phase of every program of the signal are one
phase. Groups are numbered from 1 in the order of their first link; a group made of pedestrian
crossing links is a pedestrian phase (it reports Walk / PedClear / DontWalk as well as its
colour). SUMO's characters map as: ``G g s`` green, ``y Y`` yellow, ``r u`` red (``u`` is
red-amber, still red), ``o`` (flashing amber, "off, yield") yellow, ``O`` (dark) neither.

**Detectors.** Detector ``n`` is the ``n``-th incoming vehicle lane of the signal (the order of
``/api/network``); its call phase is the first vehicle phase fed by that lane. A 1209 sensor
zone is the same lane.

Values follow the standards: bitmaps of 8 per group, tenths of a percent, 65535 for a missing
1209 value, the 1202 occupancy codes (0-200 in half percents, 210+ for faults).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from adapters.ntcip.oids import OID, ObjectType, Syntax, all_objects

GREEN = frozenset("Ggs")
YELLOW = frozenset("yYo")
RED = frozenset("ru")

MISSING = 65535
"""NTCIP 1209: a missing or invalid value."""

# NTCIP 1202 detectorOccupancy fault codes, and 1209 zone status, per ccsim sensor fault
# (sim/sensor_health.py names them).
OCCUPANCY_FAULT_1202 = {
    "stuck_on": 210,  # max presence fault
    "stuck_off": 211,  # no activity fault
    "chatter": 217,  # erratic output fault
    "comm_loss": 216,  # watchdog fault (no report)
    "dead_battery": 216,
}
ZONE_STATUS_1209 = {
    "stuck_on": 5,  # maxPresence
    "stuck_off": 4,  # noActivity
    "chatter": 7,  # erraticCounts
    "comm_loss": 11,  # inputDataIntegrity (bad communications)
    "dead_battery": 10,  # sensorFailure
}
ZONE_OK = 2
ZONE_OTHER = 1

# unitControlStatus / unitFlashStatus / coordPatternStatus by ccsim signal mode.
UNIT_CONTROL = {"automatic": 2, "hold": 2, "plan": 2, "flash": 2, "failsafe": 1, "program": 3}
"""systemControl(2) while ccsim's centre drives the signal, systemStandby(3) while SUMO runs
the signal's own program locally, other(1) in fail-safe."""
UNIT_FLASH = {"flash": 3, "failsafe": 6}
"""automatic(3): flash commanded by the centre; mmu(6): the conflict monitor's fail-safe flash;
notFlash(2) otherwise."""
PATTERN_FREE = 254
PATTERN_FLASH = 255


@dataclass(frozen=True)
class PhaseGroup:
    """One NTCIP phase: its number and the links it drives."""

    number: int
    links: tuple[int, ...]
    pedestrian: bool


@dataclass(frozen=True)
class DetectorSlot:
    """One NTCIP vehicle detector / 1209 sensor zone: a lane of the signal."""

    number: int
    lane: str
    call_phase: int
    """0 if no vehicle phase is fed by the lane."""


@dataclass(frozen=True)
class SignalLayout:
    """The static side of one signal: phases, detectors, programs (as patterns 1, 2, ...)."""

    tls: str
    groups: tuple[PhaseGroup, ...]
    detectors: tuple[DetectorSlot, ...]
    programs: tuple[tuple[str, tuple[str, ...]], ...]
    """(program id, state of each of its phases), in the net's order: pattern n is program n."""
    link_lanes: tuple[str, ...] = ()
    """The lane each link comes from, by link index ("" for a crossing)."""

    @property
    def phase_groups(self) -> int:
        return max(1, math.ceil(len(self.groups) / 8))

    @property
    def detector_groups(self) -> int:
        return max(1, math.ceil(len(self.detectors) / 8))

    def links_of(self, phases: Iterable[int]) -> frozenset[int]:
        """The links of NTCIP phases ``phases``."""
        wanted = set(phases)
        return frozenset(k for g in self.groups if g.number in wanted for k in g.links)

    def lanes_of(self, phases: Iterable[int]) -> frozenset[str]:
        """The incoming vehicle lanes of NTCIP vehicle phases ``phases`` (where a call on them
        waits)."""
        vehicle = {g.number for g in self.groups if not g.pedestrian}
        links = self.links_of(n for n in phases if n in vehicle)
        return frozenset(
            self.link_lanes[k] for k in links if k < len(self.link_lanes) and self.link_lanes[k]
        )

    def pattern_of(self, program: str) -> int | None:
        for n, (pid, _) in enumerate(self.programs, start=1):
            if pid == program:
                return n
        return None

    def hold_phase(self, program: str, current: int | None, phases: set[int]) -> int | None:
        """The index of a phase of ``program`` that a hold of every NTCIP phase in ``phases``
        means: a green phase (no yellow, not a step inside a larger phase - the safety guard's
        choice of phases) in which they are all green; the current one if it qualifies."""
        states = dict(self.programs).get(program) or (self.programs[0][1] if self.programs else ())
        greens = {
            i: frozenset(k for k, c in enumerate(state) if c in GREEN)
            for i, state in enumerate(states)
            if not any(c in "yY" for c in state) and any(c in GREEN for c in state)
        }
        main = [i for i, g in greens.items() if not any(g < other for other in greens.values())]
        wanted = [g for g in self.groups if g.number in phases]
        candidates = [i for i in main if all(g.links[0] in greens[i] for g in wanted)]
        if current in candidates:
            return current
        return candidates[0] if candidates else None


def build_layout(
    tls: str,
    programs: Sequence[tuple[str, Sequence[str]]],
    link_lanes: Sequence[str],
    crossing_links: Iterable[int],
    detector_lanes: Sequence[str],
) -> SignalLayout:
    """Group a signal's links into NTCIP phases and number its detectors.

    ``programs``: (id, phase states) of each program; ``link_lanes``: the lane each link comes
    from, by link index; ``crossing_links``: indices of pedestrian crossing links;
    ``detector_lanes``: the signal's incoming vehicle lanes, in order.
    """
    crossings = set(crossing_links)
    count = len(programs[0][1][0]) if programs and programs[0][1] else len(link_lanes)
    signature: dict[tuple[bool, tuple[str, ...]], list[int]] = {}
    for link in range(count):
        key = (link in crossings, tuple(state[link] for _, states in programs for state in states))
        signature.setdefault(key, []).append(link)
    ordered = sorted(signature.items(), key=lambda item: item[1][0])
    groups = tuple(
        PhaseGroup(n, tuple(links), pedestrian)
        for n, ((pedestrian, _), links) in enumerate(ordered, start=1)
    )
    detectors = []
    for n, lane in enumerate(detector_lanes, start=1):
        fed = [
            g.number
            for g in groups
            if not g.pedestrian and any(k < len(link_lanes) and link_lanes[k] == lane for k in g.links)
        ]
        detectors.append(DetectorSlot(n, lane, fed[0] if fed else 0))
    return SignalLayout(
        tls,
        groups,
        tuple(detectors),
        tuple((pid, tuple(states)) for pid, states in programs),
        tuple(link_lanes),
    )


# --- the dynamic side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorReading:
    """What a lane's detectors last reported: vehicles present and queued in the stop-line
    zone, its occupancy (0..1), vehicles over the advance loop in the last period."""

    present: int = 0
    queue: int = 0
    occupancy: float = 0.0
    count: int = 0


@dataclass(frozen=True)
class SignalSnapshot:
    """The signal now, as the control center's live state has it."""

    t: float | None = None
    state: str = ""
    program: str = ""
    phase: int | None = None
    mode: str = "automatic"
    detectors: Mapping[str, DetectorReading] = field(default_factory=dict)
    faults: Mapping[str, str] = field(default_factory=dict)
    """lane -> sensor fault (stuck_on, stuck_off, chatter, comm_loss, dead_battery)."""


@dataclass
class Sample:
    """One completed sample period of one lane."""

    volume: int
    occupancy: float
    """Time-weighted mean occupancy, 0..1."""
    fault: str | None


class Sampler:
    """Volume and occupancy per sample period (``period_s`` of simulated time), from detector
    reports that arrive as the readings change: counts add up, occupancy is integrated over
    time (a reading holds until the next one)."""

    def __init__(self, lanes: Sequence[str], period_s: float = 60.0) -> None:
        self.lanes = tuple(lanes)
        self.period_s = period_s
        self.sequence = 0
        self.end_s: float | None = None
        """End of the last completed period (s), None before the first."""
        self.completed: dict[str, Sample] = {}
        self._begin: float | None = None
        self._volume = dict.fromkeys(self.lanes, 0)
        self._occupancy_s = dict.fromkeys(self.lanes, 0.0)
        self._last: dict[str, tuple[float, float]] = {}
        self._faulted: dict[str, str] = {}

    def report(self, t: float, lane: str, reading: DetectorReading, fault: str | None = None) -> None:
        """A new reading of ``lane`` at ``t`` (s)."""
        if lane not in self._volume:
            return
        self.advance(t)
        self._integrate(lane, t)
        self._last[lane] = (t, reading.occupancy)
        self._volume[lane] += reading.count
        if fault:
            self._faulted[lane] = fault

    def fault(self, lane: str, fault: str) -> None:
        if lane in self._volume:
            self._faulted[lane] = fault

    def advance(self, t: float) -> None:
        """Close every period that ended by ``t``."""
        if self._begin is None:
            self._begin = math.floor(t / self.period_s) * self.period_s
        while t >= self._begin + self.period_s:
            end = self._begin + self.period_s
            for lane in self.lanes:
                self._integrate(lane, end)
            self.completed = {
                lane: Sample(
                    self._volume[lane],
                    min(1.0, max(0.0, self._occupancy_s[lane] / self.period_s)),
                    self._faulted.get(lane),
                )
                for lane in self.lanes
            }
            self.sequence = (self.sequence + 1) % 256
            self.end_s = end
            self._begin = end
            self._volume = dict.fromkeys(self.lanes, 0)
            self._occupancy_s = dict.fromkeys(self.lanes, 0.0)
            self._faulted = {}

    def _integrate(self, lane: str, t: float) -> None:
        last = self._last.get(lane)
        if last is None:
            return
        since, occupancy = last
        start = max(since, self._begin if self._begin is not None else since)
        if t > start:
            self._occupancy_s[lane] += occupancy * (t - start)
        self._last[lane] = (t, occupancy)


@dataclass
class Controls:
    """The writable 1202 objects' current values, per signal (what a manager last set)."""

    hold: dict[int, int] = field(default_factory=dict)
    force_off: dict[int, int] = field(default_factory=dict)
    omit: dict[int, int] = field(default_factory=dict)
    ped_omit: dict[int, int] = field(default_factory=dict)
    veh_call: dict[int, int] = field(default_factory=dict)
    ped_call: dict[int, int] = field(default_factory=dict)
    system_pattern: int = 0

    def held_phases(self) -> set[int]:
        return phases_of(self.hold)


def phases_of(masks: Mapping[int, int]) -> set[int]:
    """NTCIP phase numbers set in bitmaps by phase group (group 1 = phases 1-8)."""
    return {8 * (g - 1) + bit + 1 for g, mask in masks.items() for bit in range(8) if mask >> bit & 1}


# --- the values ----------------------------------------------------------------------------------

Value = int | bytes | tuple[int, ...]
MibEntries = dict[OID, tuple[Syntax, Value]]


def _bitmaps(numbers: Iterable[int], groups: int) -> list[int]:
    masks = [0] * groups
    for n in numbers:
        if 1 <= n <= 8 * groups:
            masks[(n - 1) // 8] |= 1 << ((n - 1) % 8)
    return masks


def _colour(state: str, group: PhaseGroup) -> str:
    link = group.links[0]
    return state[link] if link < len(state) else "O"


def signal_values(
    layout: SignalLayout,
    snapshot: SignalSnapshot,
    sampler: Sampler,
    controls: Controls,
) -> MibEntries:
    """Every NTCIP 1202 / 1209 instance of the signal's agent, OID -> (syntax, value)."""
    objects = all_objects()
    out: MibEntries = {}

    def put(name: str, value: Value, *index: int) -> None:
        obj: ObjectType = objects[name]
        out[obj.instance(*index)] = (obj.syntax, value)

    groups, n_phase_groups = layout.groups, layout.phase_groups
    state = snapshot.state
    colours = {g.number: _colour(state, g) for g in groups}
    greens = [n for n, c in colours.items() if c in GREEN]
    yellows = [n for n, c in colours.items() if c in YELLOW]
    reds = [n for n, c in colours.items() if c in RED]
    peds = {g.number for g in groups if g.pedestrian}
    walks = [n for n in greens if n in peds]
    ped_clears = [n for n in yellows if n in peds]
    dont_walks = [n for n in reds if n in peds]
    calling = set()
    for det in layout.detectors:
        reading = snapshot.detectors.get(det.lane)
        if det.call_phase and (det.lane in snapshot.faults or (reading and reading.present > 0)):
            calling.add(det.call_phase)  # a faulty detector places a standing call, as on recall
    veh_calls = sorted({n for n in calling if n not in greens} | phases_of(controls.veh_call))
    ped_calls = sorted(phases_of(controls.ped_call))

    put("maxPhases", len(groups))
    put("maxPhaseGroups", n_phase_groups)
    for g in groups:
        put("phaseNumber", g.number, g.number)
        put("phaseWalk", 7 if g.pedestrian else 0, g.number)
        put("phasePedestrianClear", 0, g.number)
        put("phaseMinimumGreen", 5, g.number)
        put("phaseYellowChange", 0, g.number)
        put("phaseRedClear", 0, g.number)
        put("phaseOptions", 1, g.number)  # bit 0: phase enabled
        put("phaseRing", 0, g.number)  # ccsim's phases are not organised in rings
    columns = {
        "phaseStatusGroupReds": reds, "phaseStatusGroupYellows": yellows,
        "phaseStatusGroupGreens": greens, "phaseStatusGroupDontWalks": dont_walks,
        "phaseStatusGroupPedClears": ped_clears, "phaseStatusGroupWalks": walks,
        "phaseStatusGroupVehCalls": veh_calls, "phaseStatusGroupPedCalls": ped_calls,
        "phaseStatusGroupPhaseOns": greens + yellows, "phaseStatusGroupPhaseNexts": [],
    }  # fmt: skip
    for name, numbers in columns.items():
        for row, mask in enumerate(_bitmaps(numbers, n_phase_groups), start=1):
            put(name, mask, row)
    for row in range(1, n_phase_groups + 1):
        put("phaseStatusGroupNumber", row, row)
        put("phaseControlGroupNumber", row, row)
        put("phaseControlGroupPhaseOmit", controls.omit.get(row, 0), row)
        put("phaseControlGroupPedOmit", controls.ped_omit.get(row, 0), row)
        put("phaseControlGroupHold", controls.hold.get(row, 0), row)
        put("phaseControlGroupForceOff", controls.force_off.get(row, 0), row)
        put("phaseControlGroupVehCall", controls.veh_call.get(row, 0), row)
        put("phaseControlGroupPedCall", controls.ped_call.get(row, 0), row)

    detectors, n_det_groups = layout.detectors, layout.detector_groups
    active, alarms = [], []
    put("maxVehicleDetectors", len(detectors))
    put("maxVehicleDetectorStatusGroups", n_det_groups)
    for det in detectors:
        reading = snapshot.detectors.get(det.lane)
        fault = snapshot.faults.get(det.lane)
        if reading is not None and reading.present > 0:
            active.append(det.number)
        if fault:
            alarms.append(det.number)
        put("vehicleDetectorNumber", det.number, det.number)
        put("vehicleDetectorCallPhase", det.call_phase, det.number)
        put("vehicleDetectorAlarms", _detector_alarms(fault), det.number)
    for row, (on, alarm) in enumerate(
        zip(_bitmaps(active, n_det_groups), _bitmaps(alarms, n_det_groups), strict=True), start=1
    ):
        put("vehicleDetectorStatusGroupNumber", row, row)
        put("vehicleDetectorStatusGroupActive", on, row)
        put("vehicleDetectorStatusGroupAlarms", alarm, row)
    put("volumeOccupancySequence", sampler.sequence)
    put("volumeOccupancyPeriod", min(255, round(sampler.period_s)))
    put("activeVolumeOccupancyDetectors", len(detectors))
    for det in detectors:
        sample = sampler.completed.get(det.lane)
        put("detectorVolume", min(255, sample.volume) if sample else 0, det.number)
        put("detectorOccupancy", _occupancy_1202(sample), det.number)

    mode = snapshot.mode
    put("unitControlStatus", UNIT_CONTROL.get(mode, 1))
    put("unitFlashStatus", UNIT_FLASH.get(mode, 2))
    put("coordPatternStatus", _pattern_status(layout, snapshot, controls))
    put("systemPatternControl", controls.system_pattern)

    put("maxSensorZones", max(1, len(detectors)))
    end_s = sampler.end_s
    for det in detectors:
        zone = det.number
        sample = sampler.completed.get(det.lane)
        fault = snapshot.faults.get(det.lane)
        status = ZONE_STATUS_1209.get(fault, ZONE_OTHER) if fault else ZONE_OK
        put("sensorZoneNumber", zone, zone)
        put("sensorZoneLabel", f"lane {det.lane}".ljust(8).encode()[:255], zone)
        put("sensorZoneStatus", status, zone)
        put("sensorZoneSamplePeriod", round(sampler.period_s), zone)
        put("numSampleDataEntries", 2, zone)
        put("numSensorZoneClass", 1, zone)
        # Entry 1: the period in progress (not yet measured); entry 2: the last completed one.
        for entry, sample_of, end in ((1, None, 0), (2, sample, end_s)):
            index = (zone, entry, 1)
            missing = sample_of is None or sample_of.fault is not None
            put("sampleEndTime", round(end or 0) % 2**32, *index)
            put(
                "sampleVolumeData", MISSING if missing or sample_of is None else sample_of.volume, *index
            )
            put(
                "samplePercentOccupancy",
                MISSING if missing or sample_of is None else round(sample_of.occupancy * 1000),
                *index,
            )
            put("sampleSpeedData", MISSING, *index)  # ccsim's zones do not measure speed
            sample_status = (
                ZONE_STATUS_1209.get(sample_of.fault, ZONE_OTHER)
                if sample_of is not None and sample_of.fault
                else (ZONE_OK if sample_of is not None else 3)  # initializing(3): in progress
            )
            put("sampleZoneStatus", sample_status, *index)
            put(
                "sampleSequenceNumber",
                sampler.sequence if entry == 2 else (sampler.sequence + 1) % 256,
                *index,
            )
    return out


def _detector_alarms(fault: str | None) -> int:
    """vehicleDetectorAlarms bits: 0 other, 1 no activity, 2 max presence, 3 erratic output,
    4 communications fault."""
    bits = {"stuck_off": 1, "stuck_on": 2, "chatter": 3, "comm_loss": 4, "dead_battery": 0}
    return 0 if not fault else 1 << bits.get(fault, 0)


def _occupancy_1202(sample: Sample | None) -> int:
    if sample is None:
        return 0
    if sample.fault:
        return OCCUPANCY_FAULT_1202.get(sample.fault, 216)
    return min(200, round(sample.occupancy * 200))


def _pattern_status(layout: SignalLayout, snapshot: SignalSnapshot, controls: Controls) -> int:
    if snapshot.mode in ("flash", "failsafe"):
        return PATTERN_FLASH
    if snapshot.mode == "plan" and 1 <= controls.system_pattern <= len(layout.programs):
        return controls.system_pattern  # the plan a manager forced
    if snapshot.mode in ("plan", "program"):
        return layout.pattern_of(snapshot.program) or PATTERN_FREE
    return PATTERN_FREE

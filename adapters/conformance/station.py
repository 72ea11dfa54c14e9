"""An emulated NTCIP 1209 detector station, sans I/O: ground truth in, a vendor's sample table out.

The simulation feeds :meth:`EmulatedStation.feed` every step with each zone's true count (vehicles
that reached the zone's loop during the step) and its true occupancy (0..1, at the end of the
step). The station distorts them as its :class:`ErrorModel` says and closes a sample period every
``period_s`` seconds of simulated time; :func:`station_values` gives the NTCIP 1209 objects an
agent serves from it (the SNMP side is :mod:`adapters.conformance.emulator`).

The error model is a vendor's, not ccsim's sensor profile: each true vehicle is missed with
probability ``undercount``; spurious counts arrive as a Poisson process (``false_counts_per_h``
per zone); the period's occupancy gets Gaussian noise of ``occupancy_noise_points`` percentage
points; readings become visible ``latency_s`` late, so a vehicle near the end of a period is
counted in the next one.

Where the feed carries them, the station also measures **speed** and **presence**: each counted
vehicle's speed at the loop (km/h) gets a bias of ``speed_bias_kmh`` and Gaussian noise of
``speed_noise_kmh`` (per vehicle), and the period reports the mean of the counted vehicles'
(``sampleSpeedData``, missing for a period with none); each zone drives one presence output
(output n watches zone n, ``outputGroupOutputState``), on while the zone is occupied, except
that a whole occupancy is missed with probability ``presence_miss`` and false calls of
``false_presence_s`` arrive as a Poisson process of ``false_presence_per_h`` per hour the zone
is empty; the outputs, too, are ``latency_s`` late.

``broken`` modes are firmware bugs a conformance test must catch:

* ``wrong-type``: ``sampleVolumeData`` served as an OCTET STRING of digits, not an INTEGER;
* ``stuck-status``: the zone status stuck at ``maxPresence(5)`` while volumes keep coming,
  where NTCIP 1209 says a zone not ``oK`` reports missing values (65535);
* ``slow``: every answer sent ``slow_answer_s`` late (the emulator process does it);
* ``no-buffer``: only the last completed period is kept (no entry 3), so a period whose poll
  was lost is lost;
* ``forgets-config``: after a power cycle the sample period a manager set is back at its
  factory value.

A period's truth, as the harness computes it from the same feed, uses the same boundaries: a
step ending at ``t`` belongs to the period ``(end - period_s, end]`` with ``end >= t``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from adapters.ntcip.model import MISSING, MibEntries, Value
from adapters.ntcip.oids import OBJECTS_MIB2, TSS, Syntax, objects_1209

ZONE_OK = 2
ZONE_MAX_PRESENCE = 5
SAMPLE_ENTRIES = 3
"""Rows per zone of the sample table: 1 the period in progress, 2 the last completed, 3 the one
before (NTCIP 1209: entry 2 is what the deprecated volumeData reported, entry 3 its buffer)."""
EMULATOR_OID = (*TSS, 99, 1)
"""sysObjectID of the emulator: under the TSS node, as a vendor would put its product."""


class Broken(Enum):
    NONE = "none"
    WRONG_TYPE = "wrong-type"
    STUCK_STATUS = "stuck-status"
    SLOW = "slow"
    NO_BUFFER = "no-buffer"
    FORGETS_CONFIG = "forgets-config"


@dataclass(frozen=True)
class ErrorModel:
    """How the emulated station errs (see the module docstring; fractions 0..1, s, points)."""

    undercount: float = 0.0
    false_counts_per_h: float = 0.0
    occupancy_noise_points: float = 0.0
    latency_s: float = 0.0
    broken: Broken = Broken.NONE
    slow_answer_s: float = 0.8
    speed_bias_kmh: float = 0.0
    speed_noise_kmh: float = 0.0
    presence_miss: float = 0.0
    false_presence_per_h: float = 0.0
    false_presence_s: float = 2.0


@dataclass(frozen=True)
class Sample:
    """One completed sample period: per zone volume (vehicles) and occupancy (0..1)."""

    sequence: int
    end_s: float
    volume: tuple[int, ...]
    occupancy: tuple[float, ...]
    speed_kmh: tuple[float | None, ...] = ()
    """Mean speed of the counted vehicles (None: none counted, or no speed fed)."""


_Step = tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


@dataclass
class _Period:
    volume: np.ndarray
    occupancy_s: np.ndarray
    speed_sum: np.ndarray
    speed_n: np.ndarray


@dataclass
class EmulatedStation:
    """See the module docstring. Times in simulated s."""

    lanes: tuple[str, ...]
    period_s: float
    model: ErrorModel = field(default_factory=ErrorModel)
    seed: int = 1
    begin_s: float = 0.0
    identity: tuple[str, str] = ("ccsim emulated NTCIP 1209 station", "emulator")
    """(sysDescr, sysName)."""

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng([self.seed, 0x1209])
        self.sequence = 0
        kept = 1 if self.model.broken is Broken.NO_BUFFER else SAMPLE_ENTRIES - 1
        self.completed: deque[Sample] = deque(maxlen=kept)
        # per step: (visible at, length, counts, occupancy, speed sum, vehicles with a speed,
        # presence or None)
        self._pending: deque[_Step] = deque()
        self._last_t = self.begin_s
        self._end = self.begin_s + self.period_s
        self._current = self._empty()
        self._factory_period_s = self.period_s
        # Speed and presence draw from streams of their own, so a plan without them (or with
        # them exact) sees the same counts as before they existed.
        self._speed_rng = np.random.default_rng([self.seed, 0x5EED])
        self._presence_rng = np.random.default_rng([self.seed, 0xCA11])
        n = len(self.lanes)
        self.outputs = np.zeros(n, np.bool_)
        """Each zone's presence output now (output n watches zone n)."""
        self._truly_on = np.zeros(n, np.bool_)
        self._dropped = np.zeros(n, np.bool_)
        self._false_until = np.zeros(n)

    def power_cycle(self, now_s: float) -> None:
        """Off and on again at ``now_s``: the sample data are gone, a new period starts; the
        configuration (sample period) is kept, unless broken ``forgets-config``."""
        if self.model.broken is Broken.FORGETS_CONFIG:
            self.period_s = self._factory_period_s
        self.sequence = 0
        self.completed.clear()
        self._pending.clear()
        self.outputs[:] = False
        self._end = now_s + self.period_s
        self._current = self._empty()

    def _empty(self) -> _Period:
        n = len(self.lanes)
        return _Period(np.zeros(n, np.int64), np.zeros(n), np.zeros(n), np.zeros(n, np.int64))

    def set_period(self, period_s: float, now_s: float) -> None:
        """A manager set ``sensorZoneSamplePeriod``: the period in progress restarts at ``now_s``."""
        if period_s != self.period_s:
            self.period_s = period_s
            self._end = now_s + period_s
            self._current = self._empty()

    def feed(
        self, t: float, counts: Sequence[int], occupancy: Sequence[float],
        speeds: Sequence[Sequence[float]] | None = None, presence: Sequence[bool] | None = None,
    ) -> None:  # fmt: skip
        """The true counts of the step ending at ``t`` and the occupancy at ``t`` (0..1); where
        given, the speeds (km/h) of the vehicles counted in the step and whether each zone is
        occupied at ``t``."""
        dt = max(0.0, t - self._last_t)
        self._last_t = t
        m = self.model
        true = np.asarray(counts, np.int64)
        seen = self._rng.binomial(true, 1.0 - m.undercount) if m.undercount > 0 else true.copy()
        speed_sum = np.zeros(true.size)
        speed_n = np.zeros(true.size, np.int64)
        if speeds is not None:  # the counted vehicles are any seen[k] of the step's (exchangeable)
            for k, lane in enumerate(speeds):
                kept = np.asarray(lane[: int(seen[k])], np.float64)
                if kept.size and m.speed_noise_kmh > 0:
                    kept = kept + self._speed_rng.normal(0.0, m.speed_noise_kmh, kept.size)
                speed_sum[k] = float(np.sum(np.maximum(kept + m.speed_bias_kmh, 0.0)))
                speed_n[k] = kept.size
        if m.false_counts_per_h > 0:
            seen = seen + self._rng.poisson(m.false_counts_per_h * dt / 3600.0, seen.size)
        on = None if presence is None else np.asarray(presence, np.bool_)
        self._pending.append(
            (t + m.latency_s, dt, seen, np.asarray(occupancy, np.float64), speed_sum, speed_n, on)
        )
        while self._pending and self._pending[0][0] <= t + 1e-9:
            _, step, volume, occ, s_sum, s_n, shown = self._pending.popleft()
            self._current.volume += volume
            self._current.occupancy_s += occ * step
            self._current.speed_sum += s_sum
            self._current.speed_n += s_n
            if shown is not None:
                self._present(t, step, shown)
        if t >= self._end - 1e-9:
            self._close()

    def _present(self, t: float, dt: float, on: np.ndarray) -> None:
        """The presence outputs from the (late) truth: each occupancy shown unless missed whole,
        false calls while the zone is empty."""
        m = self.model
        rising = on & ~self._truly_on
        if m.presence_miss > 0 and rising.any():
            self._dropped[rising] = self._presence_rng.random(int(rising.sum())) < m.presence_miss
        self._truly_on = on
        self._dropped &= on
        if m.false_presence_per_h > 0:
            empty = ~on & (self._false_until <= t)
            starts = empty & (self._presence_rng.random(on.size) < m.false_presence_per_h * dt / 3600)
            self._false_until[starts] = t + m.false_presence_s
        self.outputs = (on & ~self._dropped) | (self._false_until > t)

    def _close(self) -> None:
        occupancy = self._current.occupancy_s / self.period_s
        noise = self.model.occupancy_noise_points
        if noise > 0:
            occupancy = occupancy + self._rng.normal(0.0, noise / 100.0, occupancy.size)
        self.sequence = (self.sequence + 1) % 65536
        current = self._current
        self.completed.appendleft(
            Sample(
                self.sequence,
                self._end,
                tuple(int(v) for v in current.volume),
                tuple(float(o) for o in np.clip(occupancy, 0.0, 1.0)),
                tuple(float(s / n) if n else None
                      for s, n in zip(current.speed_sum, current.speed_n, strict=True)),
            )
        )  # fmt: skip
        self._end += self.period_s
        self._current = self._empty()


def station_values(station: EmulatedStation, uptime_ticks: int = 0) -> MibEntries:
    """Every instance the emulated station serves: MIB-II system and NTCIP 1209 objects."""
    objects = objects_1209()
    out: MibEntries = {}

    def put(name: str, value: Value, *index: int, syntax: Syntax | None = None) -> None:
        obj = objects[name] if name in objects else OBJECTS_MIB2[name]
        out[obj.instance(*index)] = (syntax or obj.syntax, value)

    descr, name = station.identity
    put("sysDescr", descr.encode())
    put("sysObjectID", EMULATOR_OID)
    put("sysUpTime", uptime_ticks % 2**32)
    put("sysName", name.encode())
    broken = station.model.broken
    stuck = broken is Broken.STUCK_STATUS
    status = ZONE_MAX_PRESENCE if stuck else ZONE_OK
    put("maxSensorZones", len(station.lanes))
    rows: list[tuple[int, Sample | None]] = [(1, None)]
    rows += [(entry, s) for entry, s in enumerate(station.completed, start=2)]
    for zone, lane in enumerate(station.lanes, start=1):
        put("sensorZoneNumber", zone, zone)
        put("sensorZoneLabel", f"lane {lane}".ljust(8).encode()[:255], zone)
        put("sensorZoneStatus", status, zone)
        put("sensorZoneSamplePeriod", round(station.period_s), zone)
        put("numSampleDataEntries", len(rows), zone)
        put("numSensorZoneClass", 1, zone)
        for entry, sample in rows:
            index = (zone, entry, 1)
            if sample is None:  # the period in progress: nothing measured yet
                put("sampleEndTime", 0, *index)
                put("sampleVolumeData", MISSING, *index)
                put("samplePercentOccupancy", MISSING, *index)
                put("sampleZoneStatus", 3, *index)  # initializing
                put("sampleSequenceNumber", (station.sequence + 1) % 65536, *index)
            else:
                volume = sample.volume[zone - 1]
                put("sampleEndTime", round(sample.end_s) % 2**32, *index)
                if broken is Broken.WRONG_TYPE:
                    put("sampleVolumeData", str(volume).encode(), *index, syntax=Syntax.OCTETS)
                else:
                    put("sampleVolumeData", volume, *index)
                put("samplePercentOccupancy", round(sample.occupancy[zone - 1] * 1000), *index)
                put("sampleZoneStatus", status, *index)
                put("sampleSequenceNumber", sample.sequence, *index)
            speed = sample.speed_kmh[zone - 1] if sample is not None and sample.speed_kmh else None
            put("sampleSpeedData", MISSING if speed is None else min(2550, round(speed * 10)), *index)
    # Presence outputs: output n watches zone n, in groups of eight (bit 0 is the group's first).
    put("maxOutputNumber", len(station.lanes))
    for output in range(1, len(station.lanes) + 1):
        put("outputSensorZoneNumber", output, output)
    groups = output_groups(station.outputs.tolist())
    put("maxOutputGroups", len(groups))
    for group, bits in enumerate(groups, start=1):
        put("outputGroupNumber", group, group)
        put("outputGroupOutputState", bytes((bits,)), group)
    return out


def output_groups(outputs: Sequence[bool]) -> list[int]:
    """``outputGroupOutputState`` of each group of eight outputs (NTCIP 1209 1.3.4.2: bit 0 is
    the group's first output)."""
    groups = [0] * max(1, -(-len(outputs) // 8))
    for k, on in enumerate(outputs):
        if on:
            groups[k // 8] |= 1 << (k % 8)
    return groups


def outputs_from_groups(groups: Sequence[int], outputs: int) -> list[bool]:
    """The inverse of :func:`output_groups`: each of ``outputs`` outputs on or off."""
    return [bool(groups[k // 8] >> (k % 8) & 1) if k // 8 < len(groups) else False
            for k in range(outputs)]  # fmt: skip

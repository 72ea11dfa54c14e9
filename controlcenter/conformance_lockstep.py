"""The simulation in lockstep with an emulated station: the ground truth of the watched lanes
goes to the station's process every step, and at the end of each sample period the simulation
waits until the harness has read the station's completed period over SNMP. Where the presence
cases run, the harness also reads the station's presence outputs every step, once the station
has acknowledged the step.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from adapters.conformance.emulator import WRITE_COMMUNITY_ENV
from adapters.conformance.plan import Plan
from adapters.conformance.protocol_cases import (
    SAMPLE_COLUMNS,
    RunObservations,
    Station,
    instance,
    sample_status_violations,
)
from adapters.conformance.station import outputs_from_groups
from adapters.ntcip import ber
from adapters.ntcip.manager import ManagerError
from adapters.ntcip.model import MISSING
from adapters.ntcip.oids import OID
from sim.controllers import create_controller
from sim.detectors import DetectorKind
from sim.engine import Simulation
from sim.errors import CcsimError
from sim.readings import Readings
from sim.scenario import Scenario
from sim.sensors import SensorProfile

EMULATOR_START_S = 30.0
PERIOD_WAIT_S = 10.0
"""How long the simulation waits for the station to show a completed period."""


@dataclass
class Site:
    scenario: Scenario
    signal: str
    lanes: list[str]
    begin_s: float
    end_s: float


# --- the emulator process -------------------------------------------------------------------------


class EmulatorChild:
    """An emulated device as a child process: its write community in the environment, its
    stderr in ``log``, bound once it prints ``listening udp HOST:PORT`` (the ``address``).
    ``what`` names it in errors; with ``start_limit_s``, a start slower than that is refused."""

    def __init__(
        self, command: list[str], log: Path, write_community: str, what: str,
        start_limit_s: float | None = None,
    ) -> None:  # fmt: skip
        self.log = log
        self._log = log.open("w")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env=dict(os.environ, **{WRITE_COMMUNITY_ENV: write_community}), bufsize=1,
        )  # fmt: skip
        assert self.process.stdout is not None
        began = time.monotonic()
        line = self.process.stdout.readline()  # printed once bound, or the process died
        slow = start_limit_s is not None and time.monotonic() - began > start_limit_s
        if not line.startswith("listening udp ") or slow:
            self.close()
            raise CcsimError(f"the emulated {what} did not start: {line.strip() or 'no output'} "
                             f"(see {log})")  # fmt: skip
        host, _, port = line.split()[-1].rpartition(":")
        self.address = (host, int(port))

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class EmulatorProcess(EmulatorChild):
    """The emulated station as a child process (see :mod:`adapters.conformance.emulator`)."""

    def __init__(self, plan: Plan, site: Site, log: Path, write_community: str) -> None:
        em = plan.station.emulator
        assert em is not None
        command = [
            sys.executable, "-m", "adapters.conformance.emulator", "--listen", "127.0.0.1:0",
            "--lanes", ",".join(site.lanes), "--period", str(plan.doc.scenario.period_s),
            "--begin", f"{site.begin_s:g}", "--undercount", str(em.undercount),
            "--false-counts-per-h", str(em.false_counts_per_h),
            "--occupancy-noise", str(em.occupancy_noise_points), "--latency", str(em.latency_s),
            "--broken", em.broken, "--seed", str(em.seed), "--community", plan.station.community,
            "--descr", em.descr, "--name", em.name,
            "--speed-bias", str(em.speed_bias_kmh), "--speed-noise", str(em.speed_noise_kmh),
            "--presence-miss", str(em.presence_miss),
            "--false-presence-per-h", str(em.false_presence_per_h),
            "--false-presence-s", str(em.false_presence_s),
        ]  # fmt: skip
        super().__init__(command, log, write_community, "station", EMULATOR_START_S)

    @property
    def stdin(self) -> IO[str]:
        assert self.process.stdin is not None
        return self.process.stdin

    def feed(
        self, t: float, counts: Sequence[int], occupancy: Sequence[float],
        speeds: Sequence[Sequence[float]] | None = None, presence: Sequence[bool] | None = None,
        *, ack: bool = False,
    ) -> None:  # fmt: skip
        """One step of truth; with ``ack``, returns once the station has taken it in."""
        step: dict[str, Any] = {"t": t, "count": list(counts),
                                "occupancy": [round(o, 6) for o in occupancy]}  # fmt: skip
        if speeds is not None:
            step["speeds"] = [[round(v, 2) for v in lane] for lane in speeds]
        if presence is not None:
            step["presence"] = [int(p) for p in presence]
        if ack:
            step["ack"] = 1
        self.stdin.write(json.dumps(step) + "\n")
        self.stdin.flush()
        if ack:
            assert self.process.stdout is not None
            line = self.process.stdout.readline()
            if not line.startswith("ack "):
                seen = line.strip() or "no output"
                raise CcsimError(f"the emulated station stopped answering: {seen} "
                                 f"(see {self.log})")  # fmt: skip

    def power_cycle(self, boot_s: float = 1.0) -> None:
        """Switch the emulated station off and on again (silent for ``boot_s``)."""
        self.stdin.write(json.dumps({"power_cycle": boot_s}) + "\n")
        self.stdin.flush()


# --- ground truth ---------------------------------------------------------------------------------


class TruthTap(SensorProfile):
    """Passes the detectors' truth through unchanged (controllers see ideal detectors) and hands
    the watched lanes' counts and occupancy to ``on_step`` every reporting period; with
    ``detail`` (and :attr:`simulation` set), first the speeds (km/h) of the vehicles newly over
    each lane's advance loop and whether each stop-line zone is occupied. The speeds are read
    at each report: with the default one-second reports on one-second steps, of exactly the
    vehicles counted."""

    name = "conformance-truth"

    def __init__(
        self, lanes: Sequence[str], on_step: Callable[[float, list[int], list[float]], None],
        *, detail: Callable[[float, list[list[float]], list[bool]], None] | None = None,
    ) -> None:  # fmt: skip
        self.lanes = list(lanes)
        self.on_step = on_step
        self.detail = detail
        self.simulation: Simulation | None = None
        self._index: list[int] = []
        self._loops: list[str] | None = None
        self._on_loop: list[tuple[str, ...]] = [() for _ in self.lanes]

    def bind(self, lanes: list[str], zone_capacity: Any, seed: int) -> None:
        self._index = [lanes.index(lane) for lane in self.lanes]

    def apply(self, t: float, truth: Readings) -> Readings:
        idx = self._index
        if self.detail is not None:
            self.detail(t, self._speeds(), (truth.present[idx] > 0).tolist())
        self.on_step(t, truth.count[idx].tolist(), truth.occupancy[idx].tolist())
        return truth

    def _speeds(self) -> list[list[float]]:
        simulation = self.simulation
        if simulation is None or simulation.sensors is None:
            return [[] for _ in self.lanes]
        world = simulation.sensors.world
        if self._loops is None:
            advance = {d.lane: d.id for d in simulation.detectors if d.kind is DetectorKind.ADVANCE}
            self._loops = [advance[lane] for lane in self.lanes]
        now = world.loops_vehicle_ids(self._loops)
        speeds = [[3.6 * world.vehicle_speed(v) for v in ids if v not in before]
                  for ids, before in zip(now, self._on_loop, strict=True)]  # fmt: skip
        self._on_loop = now
        return speeds


@dataclass
class TruthPeriods:
    """The truth binned into the station's sample periods: step ending at ``t`` goes to the
    period ``(end - period, end]`` (the station's own rule)."""

    lanes: int
    period_s: float
    begin_s: float
    completed: dict[float, tuple[list[int], list[float]]] = field(default_factory=dict)
    speeds: dict[float, tuple[list[float | None], list[int]]] = field(default_factory=dict)
    """Per completed period: each lane's true mean speed (km/h, None without vehicles) and the
    vehicles it is the mean of (where speeds were fed)."""

    def __post_init__(self) -> None:
        self._end = self.begin_s + self.period_s
        self._last = self.begin_s
        self._volume = np.zeros(self.lanes, np.int64)
        self._occupancy_s = np.zeros(self.lanes)
        self._speed_sum = np.zeros(self.lanes)
        self._speed_n = np.zeros(self.lanes, np.int64)

    def add(
        self, t: float, counts: Sequence[int], occupancy: Sequence[float],
        speeds: Sequence[Sequence[float]] | None = None,
    ) -> float | None:  # fmt: skip
        """Add a step; returns the end of the period it completed, if it did."""
        dt = max(0.0, t - self._last)
        self._last = t
        self._volume += np.asarray(counts, np.int64)
        self._occupancy_s += np.asarray(occupancy) * dt
        if speeds is not None:
            for k, lane in enumerate(speeds):
                self._speed_sum[k] += sum(lane)
                self._speed_n[k] += len(lane)
        if t < self._end - 1e-9:
            return None
        end = self._end
        self.completed[end] = (self._volume.tolist(), (self._occupancy_s / self.period_s).tolist())
        if speeds is not None:
            means = [float(s / n) if n else None
                     for s, n in zip(self._speed_sum, self._speed_n, strict=True)]  # fmt: skip
            self.speeds[end] = (means, self._speed_n.tolist())
        self._end += self.period_s
        self._volume[:] = 0
        self._occupancy_s[:] = 0.0
        self._speed_sum[:] = 0.0
        self._speed_n[:] = 0
        return end


@dataclass
class PresenceSeries:
    """Each watched zone's presence, sampled every step: the truth and the station's outputs
    (read over SNMP once the station has taken the step in)."""

    lanes: int
    times: list[float] = field(default_factory=list)
    truth: list[list[bool]] = field(default_factory=list)
    device: list[list[bool]] = field(default_factory=list)
    unread: int = 0
    """Steps whose outputs could not be read (left out of both series)."""


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Poller:
    """Reads each completed period of the station during the run. Once (period ``miss_at``, if
    set) it misses a poll, as a manager does when the line is down, and looks for that period in
    the station's buffer (entry 3) at the next one (TSS-COM-1)."""

    station: Station
    observed: RunObservations
    miss_at: int | None = None
    device: dict[float, tuple[list[int | None], list[float | None]]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    speeds: dict[float, list[float | None]] = field(default_factory=dict)
    """Per period read, each zone's ``sampleSpeedData`` in km/h (None where missing)."""
    _periods: int = 0

    async def presence(self, series: PresenceSeries, t: float, truth: Sequence[bool]) -> None:
        """Read the station's presence outputs (``outputGroupOutputState``) for the step at
        ``t`` and keep them beside the truth."""
        groups = range(1, (series.lanes + 7) // 8 + 1)
        oids = [instance("outputGroupOutputState", g) for g in groups]
        try:
            tlvs = await self.station.get(oids)
        except ManagerError:
            series.unread += 1
            return
        values = [ber.decode_value(tlvs.get(oid, b"")) for oid in oids]
        if not all(isinstance(v, bytes) and len(v) == 1 for v in values):
            series.unread += 1
            return
        bits = [v[0] for v in values if isinstance(v, bytes)]
        series.times.append(t)
        series.truth.append(list(truth))
        series.device.append(outputs_from_groups(bits, series.lanes))

    async def collect(self, end_s: float) -> None:
        self._periods += 1
        if self._periods - 1 == self.miss_at:
            self.observed.missed_end = round(end_s)
            return
        missed = self.observed.missed_end
        recover = missed is not None and self.observed.recovered is None
        entries = (2, 3) if recover else (2,)
        zones = range(1, self.station.zones + 1)
        oids = [instance(c, z, e, 1) for e in entries for z in zones for c in SAMPLE_COLUMNS]
        deadline = time.monotonic() + PERIOD_WAIT_S
        while True:
            try:
                tlvs = await self.station.get(oids)
            except ManagerError as exc:
                tlvs = {}
                error = str(exc)
            else:
                error = ""
            end = ber.decode_value(tlvs.get(instance("sampleEndTime", 1, 2, 1), b""))
            if end == round(end_s):
                break
            if time.monotonic() > deadline:
                self.unreadable.append(f"period ending {end_s:g} s never shown ({error or end!r})")
                return
            await asyncio.sleep(0.002)  # the emulator has not read the step yet: poll again
        if recover and missed is not None:
            self._recover(tlvs, missed)
        self._read(tlvs, 2, end_s)

    async def sweep(self) -> int | None:
        """A station running on its own clock (a real one, with a reference file): read entries
        2 and 3 of every zone and keep each completed period not read yet. Returns the end (s)
        of the last completed period, None if unreadable."""
        zones = range(1, self.station.zones + 1)
        oids = [instance(c, z, e, 1) for e in (2, 3) for z in zones for c in SAMPLE_COLUMNS]
        try:
            tlvs = await self.station.get(oids)
        except ManagerError:
            return None
        ends = {e: ber.decode_value(tlvs.get(instance("sampleEndTime", 1, e, 1), b"")) for e in (3, 2)}
        for entry, end in ends.items():  # the older first: periods read in order
            if isinstance(end, int) and float(end) not in self.device:
                self._read(tlvs, entry, float(end))
        last = ends[2]
        return last if isinstance(last, int) else None

    def _recover(self, tlvs: dict[OID, bytes], missed: int) -> None:
        end3 = ber.decode_value(tlvs.get(instance("sampleEndTime", 1, 3, 1), b""))
        if end3 == missed:
            self.observed.recovered = True
            self._read(tlvs, 3, float(missed))
        else:
            self.observed.recovered = False
            self.observed.missed_evidence = (
                f"the poll of the period ending {missed} s was missed; at the next poll entry 3 "
                f"held {'nothing' if end3 is None else f'the period ending {end3!r} s'}"
            )

    def _read(self, tlvs: dict[OID, bytes], entry: int, end_s: float) -> None:
        volumes: list[int | None] = []
        occupancies: list[float | None] = []
        speeds: list[float | None] = []
        for z in range(1, self.station.zones + 1):
            raw = {c: tlvs.get(instance(c, z, entry, 1), b"") for c in SAMPLE_COLUMNS}
            value = {c: ber.decode_value(t) for c, t in raw.items()}
            volume = value["sampleVolumeData"]
            occupancy = value["samplePercentOccupancy"]
            typed = raw["sampleVolumeData"][:1] == bytes((ber.INTEGER,))
            volumes.append(volume if typed and isinstance(volume, int) and volume != MISSING else None)
            occupancies.append(
                occupancy / 1000 if isinstance(occupancy, int) and occupancy != MISSING else None
            )
            speed = value["sampleSpeedData"]
            speeds.append(speed / 10 if isinstance(speed, int) and speed != MISSING else None)
            violation = sample_status_violations(
                round(end_s), z, value["sampleZoneStatus"], volume, occupancy
            )
            if violation:
                self.observed.status_violations.append(violation)
            if z == 1:
                seq = value["sampleSequenceNumber"]
                if isinstance(seq, int):
                    self.observed.completed.append((seq, round(end_s)))
        self.observed.completed.sort(key=lambda pair: pair[1])
        self.observed.periods_read += 1
        self.device[end_s] = (volumes, occupancies)
        self.speeds[end_s] = speeds


def run_simulation(
    site: Site, plan: Plan, workdir: Path, on_step: Callable[[float, list[int], list[float]], None],
    detail: Callable[[float, list[list[float]], list[bool]], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    doc = plan.doc.scenario
    simulation = Simulation(
        site.scenario, create_controller(doc.controller), seed=doc.seed, workdir=workdir,
        begin_s=site.begin_s, end_s=site.end_s,
    )  # fmt: skip
    tap = TruthTap(site.lanes, on_step, detail=detail)
    tap.simulation = simulation
    simulation.sensor_profile = tap
    return simulation.run().summary


async def lockstep(
    site: Site, plan: Plan, workdir: Path, emulator: EmulatorProcess, truth: TruthPeriods,
    poller: Poller, presence: PresenceSeries | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The run; with ``presence``, the station's presence outputs are read every step."""
    loop = asyncio.get_running_loop()
    latest: dict[str, Any] = {}

    def detail(t: float, speeds: list[list[float]], occupied: list[bool]) -> None:
        latest["speeds"], latest["presence"] = speeds, occupied

    def on_step(t: float, counts: list[int], occupancy: list[float]) -> None:
        speeds, occupied = latest.pop("speeds", None), latest.pop("presence", None)
        polled = presence is not None and occupied is not None
        emulator.feed(t, counts, occupancy, speeds, occupied, ack=polled)
        if polled:
            assert presence is not None and occupied is not None
            read = poller.presence(presence, t, occupied)
            asyncio.run_coroutine_threadsafe(read, loop).result(PERIOD_WAIT_S + 5)
        end = truth.add(t, counts, occupancy, speeds)
        if end is not None:  # wait until the station has been read for this period
            asyncio.run_coroutine_threadsafe(poller.collect(end), loop).result(PERIOD_WAIT_S + 5)

    # libsumo runs in a worker thread while this loop answers for the manager's socket.
    return await asyncio.to_thread(run_simulation, site, plan, workdir, on_step, detail)

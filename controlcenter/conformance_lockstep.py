"""The simulation in lockstep with an emulated station: the ground truth of the watched lanes
goes to the station's process every step, and at the end of each sample period the simulation
waits until the harness has read the station's completed period over SNMP.
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
from adapters.ntcip import ber
from adapters.ntcip.manager import ManagerError
from adapters.ntcip.model import MISSING
from adapters.ntcip.oids import OID
from sim.controllers import create_controller
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


class EmulatorProcess:
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
        ]  # fmt: skip
        env = dict(os.environ, **{WRITE_COMMUNITY_ENV: write_community})
        self._log = log.open("w")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env=env, bufsize=1,
        )  # fmt: skip
        self.address = self._wait_listening()

    def _wait_listening(self) -> tuple[str, int]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + EMULATOR_START_S
        line = self.process.stdout.readline()  # the emulator prints it once bound, or dies
        if not line.startswith("listening udp ") or time.monotonic() > deadline:
            self.close()
            raise CcsimError(f"the emulated station did not start: {line.strip() or 'no output'} "
                             f"(see {self._log.name})")  # fmt: skip
        host, _, port = line.split()[-1].rpartition(":")
        return host, int(port)

    @property
    def stdin(self) -> IO[str]:
        assert self.process.stdin is not None
        return self.process.stdin

    def feed(self, t: float, counts: Sequence[int], occupancy: Sequence[float]) -> None:
        step = {"t": t, "count": list(counts), "occupancy": [round(o, 6) for o in occupancy]}
        self.stdin.write(json.dumps(step) + "\n")
        self.stdin.flush()

    def power_cycle(self, boot_s: float = 1.0) -> None:
        """Switch the emulated station off and on again (silent for ``boot_s``)."""
        self.stdin.write(json.dumps({"power_cycle": boot_s}) + "\n")
        self.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


# --- ground truth ---------------------------------------------------------------------------------


class TruthTap(SensorProfile):
    """Passes the detectors' truth through unchanged (controllers see ideal detectors) and hands
    the watched lanes' counts and occupancy to ``on_step`` every reporting period."""

    name = "conformance-truth"

    def __init__(self, lanes: Sequence[str], on_step: Callable[[float, list[int], list[float]], None]):
        self.lanes = list(lanes)
        self.on_step = on_step
        self._index: list[int] = []

    def bind(self, lanes: list[str], zone_capacity: Any, seed: int) -> None:
        self._index = [lanes.index(lane) for lane in self.lanes]

    def apply(self, t: float, truth: Readings) -> Readings:
        idx = self._index
        self.on_step(t, truth.count[idx].tolist(), truth.occupancy[idx].tolist())
        return truth


@dataclass
class TruthPeriods:
    """The truth binned into the station's sample periods: step ending at ``t`` goes to the
    period ``(end - period, end]`` (the station's own rule)."""

    lanes: int
    period_s: float
    begin_s: float
    completed: dict[float, tuple[list[int], list[float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._end = self.begin_s + self.period_s
        self._last = self.begin_s
        self._volume = np.zeros(self.lanes, np.int64)
        self._occupancy_s = np.zeros(self.lanes)

    def add(self, t: float, counts: Sequence[int], occupancy: Sequence[float]) -> float | None:
        """Add a step; returns the end of the period it completed, if it did."""
        dt = max(0.0, t - self._last)
        self._last = t
        self._volume += np.asarray(counts, np.int64)
        self._occupancy_s += np.asarray(occupancy) * dt
        if t < self._end - 1e-9:
            return None
        end = self._end
        self.completed[end] = (self._volume.tolist(), (self._occupancy_s / self.period_s).tolist())
        self._end += self.period_s
        self._volume[:] = 0
        self._occupancy_s[:] = 0.0
        return end


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
    _periods: int = 0

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


def run_simulation(
    site: Site, plan: Plan, workdir: Path, on_step: Callable[[float, list[int], list[float]], None]
) -> dict[str, Any]:
    doc = plan.doc.scenario
    simulation = Simulation(
        site.scenario, create_controller(doc.controller), seed=doc.seed, workdir=workdir,
        begin_s=site.begin_s, end_s=site.end_s,
    )  # fmt: skip
    simulation.sensor_profile = TruthTap(site.lanes, on_step)
    return simulation.run().summary


async def lockstep(
    site: Site, plan: Plan, workdir: Path, emulator: EmulatorProcess, truth: TruthPeriods,
    poller: Poller,
) -> dict[str, Any]:  # fmt: skip
    loop = asyncio.get_running_loop()

    def on_step(t: float, counts: list[int], occupancy: list[float]) -> None:
        emulator.feed(t, counts, occupancy)
        end = truth.add(t, counts, occupancy)
        if end is not None:  # wait until the station has been read for this period
            asyncio.run_coroutine_threadsafe(poller.collect(end), loop).result(PERIOD_WAIT_S + 5)

    # libsumo runs in a worker thread while this loop answers for the manager's socket.
    return await asyncio.to_thread(run_simulation, site, plan, workdir, on_step)

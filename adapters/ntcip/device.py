"""One simulated NTCIP field device: a signal controller (1202) that also serves its approach
detectors as a sensor system (1209).

The control center feeds it what its live state learns (signal states, detector readings,
faults) from whichever thread receives them; the agent's event loop reads a :class:`MibView`
of it, rebuilt only when something changed since the last request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from adapters.ntcip.model import (
    Controls,
    DetectorReading,
    Sample,
    Sampler,
    SignalLayout,
    SignalSnapshot,
    signal_values,
)
from adapters.ntcip.oids import ASC, OBJECTS_MIB2, Syntax
from adapters.ntcip.protocol import Counters, MibView

SAMPLE_PERIOD_S = 60.0
"""Volume / occupancy sample period (simulated s): NTCIP 1202's volumeOccupancyPeriod."""


class SignalDevice:
    """The state of one signal's agent (thread-safe)."""

    def __init__(self, layout: SignalLayout, *, period_s: float = SAMPLE_PERIOD_S) -> None:
        self.layout = layout
        self.counters = Counters()
        self.controls = Controls()
        self._lock = threading.Lock()
        self._snapshot = SignalSnapshot()
        self._detectors: dict[str, DetectorReading] = {}
        self._faults: dict[str, str] = {}
        self._sampler = Sampler([d.lane for d in layout.detectors], period_s)
        self._lanes = {d.lane for d in layout.detectors}
        self._version = 0
        self._cached: tuple[int, MibView] | None = None
        self._started = time.monotonic()

    @property
    def lanes(self) -> set[str]:
        return self._lanes

    # --- what the control center learns ------------------------------------------------------------

    def update_signal(self, t: float | None, fields: Mapping[str, object]) -> None:
        """A change of the signal's live entry (state, program, phase, mode...)."""
        with self._lock:
            s = self._snapshot
            phase = fields.get("phase", s.phase)
            self._snapshot = SignalSnapshot(
                t=t if t is not None else s.t,
                state=str(fields.get("state", s.state)),
                program=str(fields.get("program", s.program)),
                phase=phase if isinstance(phase, int) else s.phase,
                mode=str(fields.get("mode", s.mode)),
            )
            if t is not None:
                self._sampler.advance(t)
            self._version += 1

    def update_detector(self, t: float | None, lane: str, reading: DetectorReading) -> None:
        with self._lock:
            self._detectors[lane] = reading
            if t is not None:
                self._sampler.report(t, lane, reading, self._faults.get(lane))
            self._version += 1

    def set_fault(self, lane: str, fault: str | None) -> None:
        """A detector fault raised (``fault``) or cleared (None)."""
        with self._lock:
            if fault:
                self._faults[lane] = fault
                self._sampler.fault(lane, fault)
            else:
                self._faults.pop(lane, None)
            self._version += 1

    def new_run(self) -> None:
        """The control center started a new run (``POST /api/runs``): its simulated world starts
        afresh, so nothing the ended run showed is served as current. The signal's state, the
        detector readings and faults and the writable controls are cleared until the new run
        reports them (its signals start in automatic); the volume / occupancy samples start a
        new period from the new run's clock - the last completed one is the ended run's and is
        no longer served - while their sequence number counts on, as a station's does, so a
        manager polling it sees a new period and never takes one for a sample it already has.
        The agent's SNMP counters and uptime are the agent's own and keep counting."""
        with self._lock:
            self._snapshot = SignalSnapshot()
            self._detectors = {}
            self._faults = {}
            sequence = self._sampler.sequence
            self._sampler = Sampler(self._sampler.lanes, self._sampler.period_s)
            self._sampler.sequence = sequence
            self.controls = Controls()
            self._version += 1

    def last_sample(self, lane: str) -> Sample | None:
        """The last completed sample period of ``lane`` (None before the first)."""
        with self._lock:
            return self._sampler.completed.get(lane)

    def snapshot(self) -> SignalSnapshot:
        with self._lock:
            return self._current()

    def _current(self) -> SignalSnapshot:
        s = self._snapshot
        return SignalSnapshot(
            s.t, s.state, s.program, s.phase, s.mode, dict(self._detectors), dict(self._faults)
        )

    def touch(self) -> None:
        """The writable registers changed: rebuild the view."""
        with self._lock:
            self._version += 1

    # --- what the agent serves --------------------------------------------------------------------

    def view(self) -> MibView:
        """The instances now (rebuilt only when something changed)."""
        with self._lock:
            cached = self._cached
            if cached is not None and cached[0] == self._version:
                view = cached[1]
            else:
                entries = signal_values(self.layout, self._current(), self._sampler, self.controls)
                entries.update(self._system_entries())
                view = MibView(entries)
                self._cached = (self._version, view)
        # The counters move with every request: patched into the shared view, never cached stale.
        for name, obj in OBJECTS_MIB2.items():
            if obj.syntax is Syntax.COUNTER:
                view.set(obj.instance(), Syntax.COUNTER, getattr(self.counters, name) % 2**32)
        ticks = round((time.monotonic() - self._started) * 100) % 2**32
        view.set(OBJECTS_MIB2["sysUpTime"].instance(), Syntax.TICKS, ticks)
        return view

    def _system_entries(self) -> dict[tuple[int, ...], tuple[Syntax, int | bytes | tuple[int, ...]]]:
        out: dict[tuple[int, ...], tuple[Syntax, int | bytes | tuple[int, ...]]] = {
            OBJECTS_MIB2["sysDescr"].instance(): (
                Syntax.OCTETS,
                f"ccsim NTCIP 1202 ASC / 1209 TSS agent, signal {self.layout.tls}".encode(),
            ),
            OBJECTS_MIB2["sysObjectID"].instance(): (Syntax.OID, ASC),
            OBJECTS_MIB2["sysName"].instance(): (Syntax.OCTETS, self.layout.tls.encode()),
            OBJECTS_MIB2["sysUpTime"].instance(): (Syntax.TICKS, 0),
        }
        for obj in OBJECTS_MIB2.values():
            if obj.syntax is Syntax.COUNTER:
                out[obj.instance()] = (Syntax.COUNTER, 0)
        return out

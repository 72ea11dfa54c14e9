"""An emulated NTCIP 1202 actuated signal controller, sans I/O: the simulated intersection's
state in, a vendor's 1202 objects out.

The intersection runs in the simulation under one of ccsim's controllers; the harness feeds
:meth:`EmulatedController.feed` every step with what the signal shows (SUMO's state per link, the
program, the phase, the guard's mode) and which approach lanes have a vehicle waiting. The
emulator serves that as NTCIP 1202 objects with ccsim's own mapping
(:func:`adapters.ntcip.model.signal_values`: phase *n* is the signal's *n*-th signal group), and
takes SETs of the phase control groups (hold, force-off, omit, calls) and of
``systemPatternControl`` into its registers, for the harness to hand to the simulated controller
(:mod:`adapters.conformance.controller_emulator` prints each accepted write).

The error model is a vendor's: ``status_latency_s`` makes the phase status report the colours
that late (simulated s); ``broken`` modes are firmware bugs a conformance test must catch:

* ``wrong-type``: ``phaseMinimumGreen`` served as an OCTET STRING of digits, not an INTEGER;
* ``stuck-status``: ``stuck_after_s`` into the run the phase status stops changing: the
  controller keeps reporting the colours it showed then while the intersection moves on;
* ``ignores-commands``: SETs of the phase control groups are accepted and read back (and a call
  shows in phaseStatusGroupVehCalls) but never reach the controller's logic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from adapters.ntcip.model import (
    Controls,
    DetectorReading,
    DetectorSlot,
    MibEntries,
    PhaseGroup,
    Sampler,
    SignalLayout,
    SignalSnapshot,
    phases_of,
    signal_values,
)
from adapters.ntcip.oids import ASC, OBJECTS_1202, OBJECTS_MIB2, Syntax
from adapters.ntcip.protocol import Verdict, Write

EMULATOR_OID = (*ASC, 99, 1)
"""sysObjectID of the emulator: under the asc node, as a vendor would put its product."""
PATTERN_STANDBY, PATTERN_FREE, PATTERN_FLASH = 0, 254, 255
REGISTERS = {
    "phaseControlGroupHold": "hold",
    "phaseControlGroupForceOff": "force_off",
    "phaseControlGroupPhaseOmit": "omit",
    "phaseControlGroupPedOmit": "ped_omit",
    "phaseControlGroupVehCall": "veh_call",
    "phaseControlGroupPedCall": "ped_call",
}
"""The phase control group objects, by the :class:`~adapters.ntcip.model.Controls` field they set."""


class Broken(Enum):
    WRONG_TYPE = "wrong-type"
    STUCK_STATUS = "stuck-status"
    IGNORES_COMMANDS = "ignores-commands"


@dataclass(frozen=True)
class ControllerErrorModel:
    """How the emulated controller errs (see the module docstring; s)."""

    status_latency_s: float = 0.0
    broken: frozenset[Broken] = frozenset()
    stuck_after_s: float = 120.0


# --- the layout as the harness hands it over ----------------------------------------------------


def layout_to_dict(layout: SignalLayout) -> dict[str, Any]:
    """A signal's layout as JSON (the emulator process reads it from a file)."""
    return {
        "tls": layout.tls,
        "groups": [[g.number, list(g.links), g.pedestrian] for g in layout.groups],
        "detectors": [[d.number, d.lane, d.call_phase] for d in layout.detectors],
        "programs": [[pid, list(states)] for pid, states in layout.programs],
        "link_lanes": list(layout.link_lanes),
    }


def layout_from_dict(doc: Mapping[str, Any]) -> SignalLayout:
    return SignalLayout(
        str(doc["tls"]),
        tuple(PhaseGroup(int(n), tuple(links), bool(ped)) for n, links, ped in doc["groups"]),
        tuple(DetectorSlot(int(n), str(lane), int(call)) for n, lane, call in doc["detectors"]),
        tuple((str(pid), tuple(states)) for pid, states in doc["programs"]),
        tuple(doc["link_lanes"]),
    )


# --- the controller -----------------------------------------------------------------------------


@dataclass
class EmulatedController:
    """See the module docstring. Times in simulated s."""

    layout: SignalLayout
    model: ControllerErrorModel = field(default_factory=ControllerErrorModel)
    begin_s: float = 0.0
    identity: tuple[str, str] = ("ccsim emulated NTCIP 1202 controller", "emulator")
    """(sysDescr, sysName)."""

    def __post_init__(self) -> None:
        self.controls = Controls()
        self.version = 0
        """Moves whenever what the controller serves changes (the agent's cache key)."""
        self._truth = SignalSnapshot()
        self._shown = SignalSnapshot()
        self._history: deque[tuple[float, SignalSnapshot]] = deque()
        self._frozen = False
        self._sampler = Sampler([d.lane for d in self.layout.detectors])

    @property
    def acts(self) -> bool:
        """Whether accepted SETs reach the controller's logic (not broken ``ignores-commands``)."""
        return Broken.IGNORES_COMMANDS not in self.model.broken

    @property
    def shown(self) -> SignalSnapshot:
        """What the phase status reports now."""
        return self._shown

    def feed(self, t: float, fields: Mapping[str, Any]) -> None:
        """The step ending at ``t``: what changed of ``state``, ``program``, ``phase``, ``mode``
        (as :class:`~sim.messages.SignalPhase` / ``SignalMode`` have them) and ``present``
        (lane -> vehicles waiting in its stop-line zone)."""
        s = self._truth
        present = fields.get("present")
        detectors = (
            {lane: DetectorReading(present=int(n)) for lane, n in present.items()}
            if isinstance(present, Mapping)
            else s.detectors
        )
        phase = fields.get("phase", s.phase)
        self._truth = SignalSnapshot(
            t=t,
            state=str(fields.get("state", s.state)),
            program=str(fields.get("program", s.program)),
            phase=phase if isinstance(phase, int) else s.phase,
            mode=str(fields.get("mode", s.mode)),
            detectors=detectors,
        )
        self._history.append((t, self._truth))
        m = self.model
        if Broken.STUCK_STATUS in m.broken and t >= self.begin_s + m.stuck_after_s:
            if not self._frozen:  # the last update the firmware makes
                self._frozen = True
                self._show(t)
            return
        self._show(t)

    def _show(self, t: float) -> None:
        """Report the newest snapshot at least ``status_latency_s`` old."""
        due = t - self.model.status_latency_s
        shown = None
        while self._history and self._history[0][0] <= due + 1e-9:
            shown = self._history.popleft()[1]
        if shown is None and not self._shown.state and self._history:
            shown = self._history[0][1]  # just started: the first state, late, never none
        if shown is not None and shown != self._shown:
            self._shown = shown
            self.version += 1

    # --- SETs ------------------------------------------------------------------------------------

    def check(self, write: Write) -> str | None:
        """Why the controller refuses ``write`` (a SET the agent found well-typed and in range),
        or None: a phase it does not have, a pattern it does not run, an object it ignores."""
        name, value = write.object.name, write.value
        if name in REGISTERS:
            row = write.index[0] if write.index else 0
            numbers = {g.number for g in self.layout.groups}
            unknown = sorted(phases_of({row: value}) - numbers)
            if unknown:
                return f"{name}.{row}: no phase {unknown}; phases 1-{len(numbers)}"
            return None
        if name == "systemPatternControl":
            patterns = len(self.layout.programs)
            if value in (PATTERN_STANDBY, PATTERN_FREE, PATTERN_FLASH) or 1 <= value <= patterns:
                return None
            return f"no pattern {value}: patterns 1-{patterns}, 254 free, 255 flash"
        return f"{name} is not writable on this controller"

    def apply(self, write: Write) -> None:
        """Take a write :meth:`check` accepted into the registers."""
        name, value = write.object.name, write.value
        if name in REGISTERS:
            row = write.index[0]
            register = dict(getattr(self.controls, REGISTERS[name]))
            register[row] = value
            setattr(self.controls, REGISTERS[name], {r: v for r, v in register.items() if v})
        else:
            self.controls.system_pattern = value
        self.version += 1

    def decide(self, writes: tuple[Write, ...]) -> list[Verdict]:
        """All of a SET's writes, or none (the first refusal names why)."""
        for k, write in enumerate(writes):
            why = self.check(write)
            if why is not None:
                return [Verdict(True)] * k + [Verdict(False, why)] * (len(writes) - k)
        for write in writes:
            self.apply(write)
        return [Verdict(True)] * len(writes)

    # --- what the agent serves --------------------------------------------------------------------

    def values(self, uptime_ticks: int = 0) -> MibEntries:
        """Every instance the controller serves: MIB-II system and NTCIP 1202 (and, as ccsim's
        agents do, its approach detectors as NTCIP 1209 zones)."""
        out = signal_values(self.layout, self._shown, self._sampler, self.controls)
        descr, name = self.identity
        system = OBJECTS_MIB2
        out[system["sysDescr"].instance()] = (Syntax.OCTETS, descr.encode())
        out[system["sysObjectID"].instance()] = (Syntax.OID, EMULATOR_OID)
        out[system["sysUpTime"].instance()] = (Syntax.TICKS, uptime_ticks % 2**32)
        out[system["sysName"].instance()] = (Syntax.OCTETS, name.encode())
        if Broken.WRONG_TYPE in self.model.broken:
            column = OBJECTS_1202["phaseMinimumGreen"]
            for g in self.layout.groups:
                oid = column.instance(g.number)
                _, value = out[oid]
                out[oid] = (Syntax.OCTETS, str(value).encode())
        return out

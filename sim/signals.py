"""Signal control between controllers (and operators) and SUMO, through the safety guard.

``SignalControl`` holds one :class:`~sim.guard.IntersectionGuard` per signal. When a ccsim
controller drives the signals, every state it wants goes through the guard, which decides what is
shown and hands it to SUMO. When SUMO's own programs drive them (``fixed``, ``sumo-actuated``),
the guard watches every state they show and raises a violation if one is inconsistent.

Operator overrides (:class:`SignalCommand`) arrive here too, between steps: hold a phase, force a
plan (one of the net's programs, run with its own timings), flash, back to automatic.

No silent failures: a signal a controller cannot drive keeps its own program and the run says so
(``signal.fallback``); the seconds in which the guard refused a signal's requests are counted, and
a signal out of ccsim's control for more than :data:`DEGRADED_SHARE` of the run so far is reported
(``control.degraded``, an alarm in the control room, a warning at the end of ``ccsim run``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sim.guard import (
    IntersectionGuard,
    Mode,
    green_phases,
    nothing_to_choose,
    program_notes,
    unsupported,
)
from sim.messages import (
    ControlDegraded,
    ControlShares,
    GuardRefused,
    GuardViolation,
    MessageBus,
    MonitorTripped,
    SignalFallback,
    SignalMode,
    SignalNote,
    SignalOverride,
)
from sim.network import Network
from sim.sumo import SumoWorld


class Action(Enum):
    HOLD = "hold"
    PLAN = "plan"
    FLASH = "flash"
    AUTOMATIC = "automatic"


@dataclass(frozen=True)
class SignalCommand:
    """An operator's override. ``argument``: the phase index (hold) or program id (plan)."""

    tls: str
    action: Action
    argument: str = ""
    user: str = "operator"
    via: str = "api"
    """How it came: ``api`` (the control room, REST) or ``ntcip`` (an SNMP SET)."""
    command: int = 0
    """The audit entry this came from (its id), named again on the answer; 0: none."""


@dataclass(frozen=True)
class LaneCommand:
    """An operator closes a lane to traffic (``closed=True``) or opens it again."""

    lane: str
    closed: bool
    user: str = "operator"
    command: int = 0
    """The audit entry this came from (its id), named again on the answer; 0: none."""


@dataclass(frozen=True)
class PhaseControl:
    """A central system's phase control of one signal (NTCIP 1202 phaseControlGroup): the links
    it omits (never started green while omitted) and the lanes it places a standing vehicle call
    on (controllers see a vehicle waiting there while the call is set). Each command replaces the
    signal's previous sets; ``label`` says what was set, for the audit."""

    tls: str
    omit_links: frozenset[int] = frozenset()
    call_lanes: frozenset[str] = frozenset()
    label: str = ""
    user: str = "operator"
    command: int = 0
    """The audit entry this came from (its id), named again on the answer; 0: none."""


@dataclass(frozen=True)
class IncidentCommand:
    """An operator reports an incident: on lane index ``lane`` of ``edge``, at ``pos_m`` (m from
    the lane's start), for ``duration_s``; ``cause`` as for ``[[devices.incidents.inject]]``. It
    occurs at the next step, as an injected one would."""

    edge: str
    lane: int
    pos_m: float
    duration_s: float
    cause: str
    user: str = "operator"
    command: int = 0
    """The audit entry this came from (its id), named again on the answer; 0: none."""

    @property
    def lane_id(self) -> str:
        return f"{self.edge}_{self.lane}"


Command = SignalCommand | LaneCommand | PhaseControl | IncidentCommand
"""What an operator can send into a running simulation."""


@dataclass(frozen=True)
class ExternalShown:
    """What an external signal controller in the loop (hardware in the loop) shows, as the
    centre's link to it last read it: ``state`` per link as it last answered, and ``silent_s``
    the wall-clock seconds since then (reports start with its first answer). Not a command: a
    field report, sent every poll (100 ms), applied at the next step boundary."""

    tls: str
    controller: str
    """``host:port`` of the external controller."""
    state: str
    silent_s: float


SILENCE_S = 1.0
"""An external controller that has not answered this long (wall-clock s) is lost: flash."""

DEGRADED_SHARE = 0.05
"""A signal out of control (refusing or on its own program) longer than this part of the run is
reported."""


@dataclass
class _PlanRunner:
    """Runs a fixed plan's green phases in order, each for its programmed duration (s)."""

    phases: list[tuple[int, str, float]]
    position: int = 0
    shown_since: float | None = None


class SignalControl:
    """The guards of every signal; see the module docstring."""

    def __init__(
        self,
        network: Network,
        world: SumoWorld,
        bus: MessageBus,
        step_s: float,
        clearance: str = "net",
    ) -> None:
        """``clearance``: where yellows and all-reds come from (see :func:`sim.guard.link_timings`)."""
        self.network = network
        self.world = world
        self.bus = bus
        self.step_s = step_s
        signalled = {
            tls_id: tls
            for tls_id, tls in sorted(network.traffic_lights.items())
            if tls.programs and tls.link_count
        }
        self.monitors = {
            tls_id: IntersectionGuard.build(tls, network, step_s, clearance)
            for tls_id, tls in signalled.items()
        }
        """Every signal's guard: it checks what SUMO's own programs show where ccsim does not drive."""
        self.fallback = {
            tls_id: reason for tls_id, tls in signalled.items() if (reason := unsupported(tls))
        }
        """Signals ccsim's controllers cannot drive, and why: they keep the net's own program."""
        self.fixed = {t for t, tls in signalled.items() if nothing_to_choose(tls)} - set(self.fallback)
        """Signals with fewer than two green phases: nothing to control, they keep their program."""
        self.guards = {
            t: g for t, g in self.monitors.items() if t not in self.fallback and t not in self.fixed
        }
        """The signals ccsim's controllers drive (when :attr:`driving`)."""
        self.driving = False
        self._plans: dict[str, _PlanRunner] = {}
        self._begin_s = 0.0
        self._refused_steps = dict.fromkeys(self.monitors, 0)
        self._refusals = 0
        self._degraded: set[str] = set()
        self.external: dict[str, str] = {}
        """Signals bound to an external controller (hardware in the loop) -> its ``host:port``."""
        self._arrived: dict[str, float] = {}
        """When (wall clock) each bound signal's last report arrived."""
        self._clock: Callable[[], float] = time.monotonic
        self._unbound: set[str] = set()
        self._modes: dict[str, str] = {}
        """The mode last published per signal."""

    @property
    def violations(self) -> int:
        return sum(g.violations for g in self.monitors.values())

    def announce(self, t: float) -> None:
        """Say, once at the start, what the net's own programs do that the guard would not, and
        which signals keep their own program."""
        self._begin_s = t
        for tls, guard in self.monitors.items():
            for note in program_notes(self.network.traffic_lights[tls], guard, self.network):
                self.bus.publish(t, f"tls:{tls}", SignalNote(tls, note))
        for tls, reason in self.fallback.items():
            self.bus.publish(t, f"tls:{tls}", SignalFallback(tls, reason))

    def take_over(self, t: float, shown: dict[str, str]) -> None:
        """ccsim's controller drives from now on (but for the fallback signals), starting from what
        SUMO shows."""
        self.driving = True
        for tls, guard in self.guards.items():
            guard.start(t, shown.get(tls, "r" * len(guard.timings)))

    def phase_shown(self, tls: str, state: str) -> tuple[int, int | None]:
        """For a signal ccsim drives: the green phase ``state`` (SUMO's) shows (-1 while changing
        between greens) and the phase its guard is moving to or holding; (-1, None) otherwise."""
        guard = self.guards.get(tls)
        if guard is None:
            return -1, None
        return guard.phase_of(state), guard.target_phase

    def report_modes(self, t: float) -> None:
        """Publish each signal's mode where it changed since last said (``program`` where the
        net's own program runs it)."""
        for tls in self.monitors:
            guard = self.guards.get(tls)
            mode = guard.mode.value if self.driving and guard is not None else "program"
            if self._modes.get(tls) != mode:
                self._modes[tls] = mode
                self.bus.publish(t, f"tls:{tls}", SignalMode(tls, mode))

    def control_shares(self, t: float) -> dict[str, float | None]:
        """Per signal, the part of the run up to ``t`` it was under ccsim's control (0..1); None
        for every signal when SUMO's own programs drive them all."""
        if not self.driving:
            return dict.fromkeys(self.monitors)
        duration = max(t - self._begin_s, self.step_s)
        shares: dict[str, float | None] = {}
        for tls in self.monitors:
            if tls in self.fixed:
                shares[tls] = None
            elif tls in self.fallback:
                shares[tls] = 0.0
            else:
                shares[tls] = max(0.0, 1.0 - self._refused_steps[tls] * self.step_s / duration)
        return shares

    def check_degraded(self, t: float) -> list[str]:
        """Report (once each) the signals out of control for more than :data:`DEGRADED_SHARE` of
        the run so far; returns those reported now."""
        reported = []
        for tls, share in self.control_shares(t).items():
            if share is None or share >= 1.0 - DEGRADED_SHARE or tls in self._degraded:
                continue
            self._degraded.add(tls)
            reason = self.fallback.get(tls) or "the guard refused its controller's requests"
            self.bus.publish(t, f"tls:{tls}", ControlDegraded(tls, share, reason))
            reported.append(tls)
        return reported

    def finish(self, t: float) -> None:
        """Publish the run's control shares (after a last check for degraded signals)."""
        self.check_degraded(t)
        self.bus.publish(t, "signals", ControlShares(self.control_shares(t), self._refusals))

    def request_phase(self, t: float, tls: str, phase: int) -> bool:
        """A controller asks for a green phase (ignored unless the signal is automatic)."""
        return self.guards[tls].request_phase(t, phase)

    def observe(self, t: float, tls: str, state: str) -> None:
        """Check a state SUMO's own program shows (where ccsim is not driving)."""
        guard = self.monitors.get(tls)
        if guard is None or (self.driving and tls in self.guards):
            return
        pairs = guard.conflicting_pairs(state)
        if pairs:
            guard.violations += 1
            self.bus.publish(t, f"tls:{tls}", GuardViolation(tls, f"conflicting streams {pairs[:3]}"))

    def step(self, t: float) -> None:
        """Advance every guard to ``t`` and show the result in SUMO (after the controllers)."""
        for tls, guard in self.guards.items():
            runner = self._plans.get(tls)
            if runner is not None and guard.mode is Mode.PLAN:
                self._run_plan(t, guard, runner)
            before = guard.violations
            shown = guard.step(t)
            if shown is not None:
                self.world.set_signal_state(tls, shown)
            if guard.violations > before:
                self.bus.publish(
                    t, f"tls:{tls}", GuardViolation(tls, "inconsistent state: fail-safe flashing")
                )
            if guard.mode.value != self._modes.get(tls):
                self.report_modes(t)  # the guard went to fail-safe flashing
            if guard.refusals:
                self._refused_steps[tls] += 1
                self._refusals += len(guard.refusals)
                for refusal in guard.refusals:
                    self.bus.publish(t, f"tls:{tls}", GuardRefused(tls, refusal.reason))
                guard.refusals.clear()

    def _run_plan(self, t: float, guard: IntersectionGuard, runner: _PlanRunner) -> None:
        _index, state, duration = runner.phases[runner.position]
        state = guard.without_omitted(state)  # an omitted phase's links stay red in the plan too
        if "".join(guard.state) != state:
            guard.request(t, state, operator=True)
            runner.shown_since = None
            return
        if runner.shown_since is None:
            runner.shown_since = t
        if t - runner.shown_since >= duration:
            runner.position = (runner.position + 1) % len(runner.phases)
            runner.shown_since = None
            guard.request(t, runner.phases[runner.position][1], operator=True)

    # --- operator commands ---------------------------------------------------------------------

    def command(self, t: float, cmd: SignalCommand) -> bool:
        """Apply an operator override; the outcome (accepted or refused, and why) is published."""
        accepted, detail = self._apply(t, cmd)
        self.bus.publish(
            t,
            f"tls:{cmd.tls}",
            SignalOverride(
                cmd.tls, cmd.action.value, cmd.argument, cmd.user, accepted, detail, cmd.command
            ),
        )
        return accepted

    def phase_control(self, t: float, cmd: PhaseControl) -> bool:
        """Apply a central system's omits (the guard's); the outcome is published. The standing
        calls are the sensor layer's (the engine hands them over when this accepts)."""
        guard = self.guards.get(cmd.tls)
        refusal = self._not_driven(cmd.tls)
        if refusal is None and guard is not None:
            bad = sorted(k for k in cmd.omit_links if not 0 <= k < len(guard.timings))
            if bad:
                refusal = f"links {bad} out of range: signal {cmd.tls} has {len(guard.timings)} links"
        if refusal is None and cmd.tls in self.external:
            refusal = f"signal {cmd.tls} is driven by external controller {self.external[cmd.tls]}"
        accepted = refusal is None and guard is not None
        if accepted and guard is not None:
            guard.set_omitted(t, cmd.omit_links)
            detail = (
                f"omitting links {sorted(cmd.omit_links)}; "
                f"standing vehicle calls on lanes {sorted(cmd.call_lanes)}"
            )
        else:
            detail = refusal or f"no signal '{cmd.tls}'"
        self.bus.publish(
            t,
            f"tls:{cmd.tls}",
            SignalOverride(cmd.tls, "phase-control", cmd.label, cmd.user, accepted, detail, cmd.command),
        )
        return accepted

    def show_external(self, t: float, report: ExternalShown) -> None:
        """An external controller's latest state: the first report binds the signal to it (the
        guard then only monitors); each is checked by the guard's conflict monitor, which flashes
        the intersection on a conflict or on :data:`SILENCE_S` without an answer."""
        guard = self.guards.get(report.tls)
        if report.tls not in self.external:
            refusal = self._not_driven(report.tls)
            if refusal is not None or guard is None:
                if report.tls not in self._unbound:  # said once
                    self._unbound.add(report.tls)
                    self.bus.publish(
                    t, f"tls:{report.tls}",
                        SignalNote(report.tls, f"external controller {report.controller} not bound: "
                                               f"{refusal}"),
                    )  # fmt: skip
                return
            self.external[report.tls] = report.controller
            if guard.mode in (Mode.FLASH, Mode.FAILSAFE):
                # a controller answering late does not lift a flash: an operator hands over
                self.bus.publish(
                    t, f"tls:{report.tls}",
                    SignalNote(report.tls, f"external controller {report.controller} bound; "
                                           "the signal stays in flash until an operator sets it "
                                           "to automatic"),
                )  # fmt: skip
                return
            guard.set_mode(t, Mode.EXTERNAL)
            guard.external = ""
            self.bus.publish(
                t, f"tls:{report.tls}",
                SignalNote(report.tls, f"driven by external controller {report.controller}; "
                                       "ccsim's conflict monitor watches it"),
            )  # fmt: skip
        if guard is None:
            return
        wall = self._clock()
        self._arrived[report.tls] = wall
        reason = guard.monitor(t, report.state, report.silent_s, SILENCE_S, wall=wall)
        if reason is not None:
            self.bus.publish(
                t, f"tls:{report.tls}", MonitorTripped(report.tls, report.controller, reason)
            )

    def check_silence(self, t: float) -> None:
        """Trip the monitor of every bound signal whose controller's reports stopped arriving
        here for :data:`SILENCE_S` (wall clock): the link to it may be dead as well as the
        controller, and then no report says so."""
        now = self._clock()
        for tls, arrived in list(self._arrived.items()):
            guard = self.guards.get(tls)
            if guard is None or guard.mode is not Mode.EXTERNAL or now - arrived < SILENCE_S:
                continue
            guard.mode = Mode.FAILSAFE
            reason = f"no report from the link to the controller for {now - arrived:.1f} s"
            self.bus.publish(t, f"tls:{tls}", MonitorTripped(tls, self.external[tls], reason))

    def step_external(self, t: float) -> bool:
        """Show in SUMO, at once, what the signals bound to external controllers show now (or
        their flash); True if a state changed."""
        changed = False
        for tls in self.external:
            guard = self.guards.get(tls)
            shown = guard.step(t) if guard is not None else None
            if shown is not None:
                self.world.set_signal_state(tls, shown)
                changed = True
        return changed

    def _not_driven(self, tls: str) -> str | None:
        """Why an override of ``tls`` cannot be applied now (None: it can)."""
        if tls in self.fallback:
            return f"signal {tls} keeps its own program: {self.fallback[tls]}"
        if tls in self.fixed:
            return f"signal {tls} has one green phase: there is nothing to override"
        if tls not in self.guards:
            return f"no signal '{tls}'"
        if not self.driving:
            return "the signals run SUMO's own programs; overrides need a ccsim controller"
        return None

    def _apply(self, t: float, cmd: SignalCommand) -> tuple[bool, str]:
        guard = self.guards.get(cmd.tls)
        refusal = self._not_driven(cmd.tls)
        if refusal is not None or guard is None:
            return False, refusal or f"no signal '{cmd.tls}'"
        if cmd.tls in self.external and cmd.action is Action.AUTOMATIC:
            if cmd.via != "api":
                # a central system's routine writes (hold 0, a free pattern) map to automatic:
                # they must not lift a latched flash
                return False, "the conflict monitor is reset by an operator, not over " + cmd.via
            # The operator resets the monitor: the external controller drives again (a lost one
            # trips it again on its next report).
            guard.set_mode(t, Mode.EXTERNAL)
            guard.external = ""
            self._arrived.pop(cmd.tls, None)
            return True, f"monitor reset: external controller {self.external[cmd.tls]} drives again"
        if cmd.tls in self.external and cmd.action is not Action.FLASH:
            return False, f"signal {cmd.tls} is driven by external controller {self.external[cmd.tls]}"
        if cmd.action is Action.FLASH:
            guard.set_mode(t, Mode.FLASH)
            return True, "flashing"
        if cmd.action is Action.AUTOMATIC:
            guard.set_mode(t, Mode.AUTOMATIC)
            self._plans.pop(cmd.tls, None)
            return True, "automatic"
        if cmd.action is Action.HOLD:
            try:
                phase = int(cmd.argument)
            except ValueError:
                return False, f"phase '{cmd.argument}' is not a number"
            if phase not in [i for i, _ in guard.phases]:
                return (
                    False,
                    f"phase {phase} is not a green phase; choose from {[i for i, _ in guard.phases]}",
                )
            guard.set_mode(t, Mode.HOLD)
            guard.request_phase(t, phase, operator=True)
            return True, f"holding phase {phase}"
        programs = {p.id: p for p in self.network.traffic_lights[cmd.tls].programs}
        program = programs.get(cmd.argument)
        if program is None:
            return False, f"no plan '{cmd.argument}'; plans: {sorted(programs)}"
        phases = [(i, state, program.phases[i].duration_s) for i, state in green_phases(program)]
        guard.set_mode(t, Mode.PLAN)
        self._plans[cmd.tls] = _PlanRunner(phases)
        return True, f"running plan {program.id}"

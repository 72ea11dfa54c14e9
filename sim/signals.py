"""Signal control between controllers (and operators) and SUMO, through the safety guard.

``SignalControl`` holds one :class:`~sim.guard.IntersectionGuard` per signal. When a ccsim
controller drives the signals, every state it wants goes through the guard, which decides what is
shown and hands it to SUMO. When SUMO's own programs drive them (``fixed``, ``sumo-actuated``),
the guard watches every state they show and raises a violation if one is inconsistent.

Operator overrides (:class:`SignalCommand`) arrive here too, between steps: hold a phase, force a
plan (one of the net's programs, run with its own timings), flash, back to automatic.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sim.guard import IntersectionGuard, Mode, green_phases
from sim.messages import GuardRefused, GuardViolation, MessageBus, SignalOverride
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


@dataclass(frozen=True)
class LaneCommand:
    """An operator closes a lane to traffic (``closed=True``) or opens it again."""

    lane: str
    closed: bool
    user: str = "operator"


Command = SignalCommand | LaneCommand
"""What an operator can send into a running simulation."""


@dataclass
class _PlanRunner:
    """Runs a fixed plan's green phases in order, each for its programmed duration (s)."""

    phases: list[tuple[int, str, float]]
    position: int = 0
    shown_since: float | None = None


class SignalControl:
    """The guards of every signal; see the module docstring."""

    def __init__(self, network: Network, world: SumoWorld, bus: MessageBus, step_s: float) -> None:
        self.network = network
        self.world = world
        self.bus = bus
        self.guards = {
            tls_id: IntersectionGuard.build(tls, network, step_s)
            for tls_id, tls in sorted(network.traffic_lights.items())
            if tls.programs and tls.link_count
        }
        self.driving = False
        self._plans: dict[str, _PlanRunner] = {}

    @property
    def violations(self) -> int:
        return sum(g.violations for g in self.guards.values())

    def take_over(self, t: float, shown: dict[str, str]) -> None:
        """ccsim's controller drives from now on, starting from what SUMO shows."""
        self.driving = True
        for tls, guard in self.guards.items():
            guard.start(t, shown.get(tls, "r" * len(guard.timings)))

    def request_phase(self, t: float, tls: str, phase: int) -> bool:
        """A controller asks for a green phase (ignored unless the signal is automatic)."""
        return self.guards[tls].request_phase(t, phase)

    def observe(self, t: float, tls: str, state: str) -> None:
        """Check a state SUMO's own program shows (when ccsim is not driving)."""
        guard = self.guards.get(tls)
        if guard is None or self.driving:
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
            for refusal in guard.refusals:
                self.bus.publish(t, f"tls:{tls}", GuardRefused(tls, refusal.reason))
            guard.refusals.clear()

    def _run_plan(self, t: float, guard: IntersectionGuard, runner: _PlanRunner) -> None:
        _index, state, duration = runner.phases[runner.position]
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
            SignalOverride(cmd.tls, cmd.action.value, cmd.argument, cmd.user, accepted, detail),
        )
        return accepted

    def _apply(self, t: float, cmd: SignalCommand) -> tuple[bool, str]:
        guard = self.guards.get(cmd.tls)
        if guard is None:
            return False, f"no signal '{cmd.tls}'"
        if not self.driving:
            return False, "the signals run SUMO's own programs; overrides need a ccsim controller"
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

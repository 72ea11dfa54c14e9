"""Base of ccsim's own controllers: decide from detector observations, act through the guard.

Emergency pre-emption is common to all of them: when an emergency loop detects a vehicle on an
approach, the intersection is asked for the first phase that serves that lane at once (the guard
still runs the minimum green and clearances), and holds it until ``PREEMPT_HOLD_S`` after the last
detection; then the controller takes over again.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

from sim.controllers.base import ControlContext, Controller
from sim.controllers.phases import IntersectionPhases, intersection_phases
from sim.guard import WALK_S, IntersectionGuard, Mode
from sim.messages import SignalDecision, SignalPreempted
from sim.sensors import LaneObservation, SensorLayer
from sim.signals import SignalControl

PREEMPT_HOLD_S = 15.0
FULL_OCCUPANCY = 0.7
"""A downstream zone this occupied, covering (almost) its whole lane, means the lane is full."""


@dataclass(frozen=True)
class Why:
    """A controller's reason for the phase it asks for (see :class:`~sim.messages.SignalDecision`)."""

    reason: str
    detail: str
    values: dict[str, Any] = field(default_factory=dict)


class DetectorController(Controller):
    """Every step, for every signal in automatic mode, :meth:`decide` may ask for a phase."""

    uses_detectors = True

    def start(self, context: ControlContext) -> None:
        if context.sensors is None:
            raise RuntimeError(f"{self.name} needs detectors, but the engine gave none")
        self.sensors: SensorLayer = context.sensors
        self.bus = context.bus
        self.signals: SignalControl = context.signals
        self.intersections: dict[str, IntersectionPhases] = {
            tls: intersection_phases(guard, context.network)
            for tls, guard in context.signals.guards.items()
            if guard.phases
        }
        self.now = context.env.now
        # Edges whose lanes' stop-line zones cover (nearly) the whole lane: there a full zone
        # means a full lane, and sending more vehicles in only blocks the junction upstream.
        self._exit_lanes: dict[str, list[str]] = {}
        for lane, zone in self.sensors.zone_length_m.items():
            net_lane = context.network.lanes.get(lane)
            if net_lane is not None and zone >= 0.8 * net_lane.length_m:
                self._exit_lanes.setdefault(net_lane.edge, []).append(lane)
        self._preempted: dict[str, tuple[int, float, str]] = {}
        """Signal -> (program phase held for an emergency vehicle, time of its last detection,
        the lane it was detected on)."""
        self._why: dict[str, Why] = {}
        """Signal -> the reason :meth:`decide` gave for the change it asks for this step."""
        self.setup(context)

    def setup(self, context: ControlContext) -> None:
        """Called once after :meth:`start` has built the intersections."""

    def on_step(self, t: float) -> None:
        self.now = t
        guards = self.signals.guards
        automatic = [
            (phases, guards[tls])
            for tls, phases in self.intersections.items()
            if guards[tls].mode is Mode.AUTOMATIC and not self._preempt(t, phases, guards[tls])
        ]
        for (phases, guard), wanted in zip(automatic, self.decide_all(t, automatic), strict=True):
            why = self._why.pop(phases.tls, None)
            if wanted is not None and wanted != guard.target_phase:
                self._change(t, phases.tls, guard, wanted, why or Why("controller", ""))
            else:
                self._end_walk(t, guard)

    def explain(self, tls: str, reason: str, detail: str, **values: Any) -> None:
        """Give the reason for the change :meth:`decide` asks for at ``tls`` this step."""
        self._why[tls] = Why(reason, detail, values)

    def _change(self, t: float, tls: str, guard: IntersectionGuard, phase: int, why: Why) -> None:
        """Ask for ``phase``; once the guard accepts it as the phase it now aims at, the decision
        goes on the stream with its reason (a refusal is the guard's to publish; a request that
        changes nothing is no decision, so a controller asking again cannot flood the stream)."""
        before = guard.target_phase
        if self.signals.request_phase(t, tls, phase) and guard.target_phase != before:
            self.bus.publish(t, f"tls:{tls}", SignalDecision(
                tls, self.name, before, phase, why.reason, why.detail, why.values
            ))  # fmt: skip

    def decide_all(
        self, t: float, intersections: list[tuple[IntersectionPhases, IntersectionGuard]]
    ) -> list[int | None]:
        """:meth:`decide` for each intersection; a controller may plan them all at once instead."""
        return [self.decide(t, phases, guard) for phases, guard in intersections]

    def _preempt(self, t: float, phases: IntersectionPhases, guard: IntersectionGuard) -> bool:
        """Serve an emergency vehicle's approach; True while the intersection is pre-empted."""
        if self.sensors.detects_emergency:
            lane = next(
                (lane for lanes in phases.lanes for lane in lanes if self.observe(lane).emergency), None
            )
            if lane is not None:
                position = next(p for p, lanes in enumerate(phases.lanes) if lane in lanes)
                phase = phases.indices[position]
                if phases.tls not in self._preempted:
                    self.bus.publish(t, f"tls:{phases.tls}", SignalPreempted(phases.tls, phase, lane))
                self._preempted[phases.tls] = (phase, t, lane)
        held = self._preempted.get(phases.tls)
        if held is None:
            return False
        phase, seen, lane = held
        if t - seen > PREEMPT_HOLD_S:
            del self._preempted[phases.tls]
            return False
        if guard.target_phase != phase:
            why = Why("preemption", f"emergency vehicle detected on {lane}", {"lane": lane})
            self._change(t, phases.tls, guard, phase, why)
        return True

    @staticmethod
    def _end_walk(t: float, guard: IntersectionGuard) -> None:
        """Once the walk time has run, turn the crossings red while the vehicles keep their green:
        the pedestrians' clearance then runs inside the green instead of after it."""
        if guard.phase_since is None or guard.served_since is None:
            return
        cut = guard.without_walk(guard.target_phase)
        if cut is not None and cut != guard.target and t - guard.phase_since >= WALK_S:
            guard.request(t, cut)

    @abstractmethod
    def decide(self, t: float, phases: IntersectionPhases, guard: IntersectionGuard) -> int | None:
        """The program index of the phase wanted now, or None to leave things as they are."""

    # --- helpers for subclasses ------------------------------------------------------------------

    def exit_full(self, edges: list[str]) -> bool:
        """Whether every edge a lane's green would send vehicles into is full (as its own
        detectors report; edges without such detectors are never judged full)."""
        for edge in edges:
            lanes = self._exit_lanes.get(edge)
            if not lanes or any(self.observe(lane).occupancy < FULL_OCCUPANCY for lane in lanes):
                return False
        return bool(edges)

    def observe(self, lane: str) -> LaneObservation:
        """The lane's latest report; one too old to trust counts as missing (a standing call)."""
        return self.sensors.lane(lane, self.now)

    @staticmethod
    def green_time(t: float, guard: IntersectionGuard) -> float | None:
        """Seconds the wanted phase has been shown, or None while it is still coming."""
        return None if guard.phase_since is None else t - guard.phase_since

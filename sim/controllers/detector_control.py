"""Base of ccsim's own controllers: decide from detector observations, act through the guard."""

from __future__ import annotations

from abc import abstractmethod

from sim.controllers.base import ControlContext, Controller
from sim.controllers.phases import IntersectionPhases, intersection_phases
from sim.guard import IntersectionGuard, Mode
from sim.sensors import LaneObservation, SensorLayer
from sim.signals import SignalControl


class DetectorController(Controller):
    """Every step, for every signal in automatic mode, :meth:`decide` may ask for a phase."""

    uses_detectors = True

    def start(self, context: ControlContext) -> None:
        if context.sensors is None:
            raise RuntimeError(f"{self.name} needs detectors, but the engine gave none")
        self.sensors: SensorLayer = context.sensors
        self.signals: SignalControl = context.signals
        self.intersections: dict[str, IntersectionPhases] = {
            tls: intersection_phases(guard, context.network)
            for tls, guard in context.signals.guards.items()
            if guard.phases
        }
        self.setup(context)

    def setup(self, context: ControlContext) -> None:
        """Called once after :meth:`start` has built the intersections."""

    def on_step(self, t: float) -> None:
        guards = self.signals.guards
        for tls, phases in self.intersections.items():
            guard = guards[tls]
            if guard.mode is not Mode.AUTOMATIC:
                continue
            wanted = self.decide(t, phases, guard)
            if wanted is not None and wanted != guard.target_phase:
                self.signals.request_phase(t, tls, wanted)

    @abstractmethod
    def decide(self, t: float, phases: IntersectionPhases, guard: IntersectionGuard) -> int | None:
        """The program index of the phase wanted now, or None to leave things as they are."""

    # --- helpers for subclasses ------------------------------------------------------------------

    def observe(self, lane: str) -> LaneObservation:
        return self.sensors.lane(lane)

    @staticmethod
    def green_time(t: float, guard: IntersectionGuard) -> float | None:
        """Seconds the wanted phase has been fully shown, or None while in transition."""
        return None if guard.served_since is None else t - guard.served_since

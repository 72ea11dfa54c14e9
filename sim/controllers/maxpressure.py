"""``maxpressure``: Varaiya's max-pressure control on detector-estimated queues.

As Varaiya's controller, it decides once per slot (``SLOT_S``), not every second: at the end of
each slot after a phase's minimum green it computes each phase's pressure: over the movements it
serves (lane to outgoing edge), vehicles waiting upstream (the stop-line zone's count, shared
among the lane's movements) minus vehicles on the lanes they would enter (the stop-line zones of
the downstream signal's approaches on that edge, per lane; zero where the edge leaves the
controlled area). It switches to the phase of highest pressure when that beats the current one.
The guard bounds greens at its maximum.
"""

from __future__ import annotations

from sim.controllers.base import ControlContext, register
from sim.controllers.detector_control import DetectorController
from sim.controllers.phases import IntersectionPhases
from sim.guard import IntersectionGuard

SLOT_S = 5.0
"""Decision slot, s: a phase, once its minimum green has run, is kept for whole slots."""


@register("maxpressure")
class MaxPressure(DetectorController):
    def setup(self, context: ControlContext) -> None:
        # Approach lanes of every signal, by edge: where a movement's vehicles end up queueing.
        self._edge_lanes: dict[str, list[str]] = {}
        for phases in self.intersections.values():
            for lane in {lane for served in phases.lanes for lane in served}:
                self._edge_lanes.setdefault(lane.rsplit("_", 1)[0], []).append(lane)

    def downstream(self, edge: str) -> float:
        lanes = self._edge_lanes.get(edge)
        if not lanes:
            return 0.0
        return sum(self.observe(lane).present for lane in lanes) / len(lanes)

    def pressure(self, phases: IntersectionPhases, position: int) -> float:
        total = 0.0
        for lane, edges in phases.out_edges[position].items():
            waiting = self.observe(lane).present / len(edges)  # per movement (lane to edge)
            total += sum(waiting - self.downstream(e) for e in edges)
        return total

    def decide(self, t: float, phases: IntersectionPhases, guard: IntersectionGuard) -> int | None:
        position = phases.position(guard.target_phase)
        green = self.green_time(t, guard)
        if position >= 0 and (green is None or green < phases.min_green_s[position]):
            return None
        if position >= 0 and green is not None:
            into_slot = (green - phases.min_green_s[position]) % SLOT_S
            if into_slot > 1e-6 and SLOT_S - into_slot > 1e-6:
                return None  # decide at the slot's end
        pressures = [self.pressure(phases, p) for p in range(phases.count)]
        best = max(range(phases.count), key=lambda p: (pressures[p], -p))
        if position >= 0 and pressures[best] <= pressures[position]:
            return None
        by_phase = {str(phases.indices[p]): round(v, 2) for p, v in enumerate(pressures)}
        if position < 0:
            detail = f"phase {phases.indices[best]} has the highest pressure ({pressures[best]:.1f})"
        else:
            detail = (f"pressure {pressures[best]:.1f} on phase {phases.indices[best]} beats "
                      f"{pressures[position]:.1f} on phase {phases.indices[position]}")  # fmt: skip
        self.explain(phases.tls, "pressure", detail, pressures=by_phase)
        return phases.indices[best]

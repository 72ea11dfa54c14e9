"""``webster``: fixed-time control retimed periodically from measured flows (Webster, 1958).

Every ``RETIME_S`` the controller takes the flow each phase must carry - its busiest lane's count
over the advance loop, as veh/s - and sets the cycle ``C = (1.5 L + 5) / (1 - Y)`` with ``Y`` the
sum of flow ratios ``y = q / s`` (``s`` = 0.5 veh/s per lane) and ``L`` the lost time (clearances
plus 2 s start-up per phase), bounded to 40..120 s; greens split ``C - L`` in proportion to ``y``,
each at least the phase's minimum. Until the first retiming it runs the program's own greens.
"""

from __future__ import annotations

from sim.controllers.base import ControlContext, register
from sim.controllers.detector_control import DetectorController
from sim.controllers.phases import SATURATION_VEH_S, START_UP_LOSS_S, IntersectionPhases
from sim.guard import IntersectionGuard

RETIME_S = 300.0
MIN_CYCLE_S = 40.0
MAX_CYCLE_S = 120.0


def webster_greens(
    flows: list[float], min_green: list[float], switch: list[float]
) -> tuple[float, list[float]]:
    """(cycle s, green s per phase) for critical flow ratios ``flows`` (q/s per phase)."""
    lost = sum(switch) + START_UP_LOSS_S * len(flows)
    ratio = min(sum(flows), 0.95)
    cycle = min(MAX_CYCLE_S, max(MIN_CYCLE_S, (1.5 * lost + 5.0) / (1.0 - ratio)))
    effective = max(cycle - lost, sum(min_green))
    if ratio <= 0:
        greens = [effective / len(flows)] * len(flows)
    else:
        greens = [effective * f / sum(flows) for f in flows]
    return cycle, [max(g, m) for g, m in zip(greens, min_green, strict=True)]


@register("webster")
class Webster(DetectorController):
    def setup(self, context: ControlContext) -> None:
        network = context.network
        self._greens: dict[str, list[float]] = {}
        self._counts: dict[str, dict[str, int]] = {}
        for tls, phases in self.intersections.items():
            program = network.traffic_lights[tls].programs[0]
            self._greens[tls] = [
                max(program.phases[i].duration_s, phases.min_green_s[p])
                for p, i in enumerate(phases.indices)
            ]
            self._counts[tls] = {lane: 0 for served in phases.lanes for lane in served}
        self._cycle: dict[str, float | None] = dict.fromkeys(self.intersections)
        """Signal -> the cycle of its last retiming, s (None: the program's own greens yet)."""
        self._next_retime = RETIME_S

    def on_step(self, t: float) -> None:
        self.now = t
        for counts in self._counts.values():
            for lane in counts:
                observation = self.observe(lane)
                if observation.t_s == t:  # a report of this step (not an old one, not recall)
                    counts[lane] += observation.count
        if t >= self._next_retime:
            self._next_retime += RETIME_S
            for tls, phases in self.intersections.items():
                self._retime(tls, phases)
        super().on_step(t)

    def _retime(self, tls: str, phases: IntersectionPhases) -> None:
        counts = self._counts[tls]
        flows = [
            max((counts[lane] for lane in served), default=0) / RETIME_S / SATURATION_VEH_S
            for served in phases.lanes
        ]
        n = phases.count
        switch = [phases.switch_s[p][(p + 1) % n] for p in range(n)]
        self._cycle[tls], self._greens[tls] = webster_greens(flows, phases.min_green_s, switch)
        self._counts[tls] = dict.fromkeys(counts, 0)

    def decide(self, t: float, phases: IntersectionPhases, guard: IntersectionGuard) -> int | None:
        position = phases.position(guard.target_phase)
        if position < 0:
            self.explain(phases.tls, "start", "the first green phase of the program")
            return phases.indices[0]
        green = self.green_time(t, guard)
        split = self._greens[phases.tls][position]
        if green is None or green < split:
            return None
        cycle = self._cycle[phases.tls]
        of = f"its Webster split of a {cycle:.0f} s cycle" if cycle else "the program's green"
        self.explain(
            phases.tls, "split", f"{split:.0f} s of green ran: {of}",
            green_s=round(green, 1), split_s=round(split, 1),
            cycle_s=None if cycle is None else round(cycle, 1),
        )  # fmt: skip
        return phases.indices[(position + 1) % phases.count]

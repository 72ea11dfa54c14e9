"""``actuated``: ccsim's gap-out / max-out actuation from detector calls.

Phases are served in the program's order, skipping those with no call. The green phase runs
at least its minimum (the guard's, including the pedestrian walk), is extended while the advance
loops of its lanes keep seeing vehicles closer together than the passage time, and ends on a gap
(gap-out) or at the maximum green (max-out) when another phase has a call. A call is a vehicle in
a stop-line zone or over an advance loop; phases that give a crossing its walk are on pedestrian
recall (push buttons are not modelled, so pedestrians are always served once a cycle). A lane
whose exits are full (their detectors' zones occupied end to end) neither calls nor extends: a
green there would only block the junction.
"""

from __future__ import annotations

from sim.controllers.base import register
from sim.controllers.detector_control import DetectorController
from sim.controllers.phases import IntersectionPhases
from sim.guard import IntersectionGuard

PASSAGE_S = 3.0
MAX_GREEN_S = 45.0


@register("actuated")
class Actuated(DetectorController):
    def moving_lanes(self, phases: IntersectionPhases, position: int) -> list[str]:
        """The phase's lanes whose vehicles could move now: not those whose exits are full."""
        outs = phases.out_edges[position]
        return [lane for lane in phases.lanes[position] if not self.exit_full(outs[lane])]

    def has_call(self, phases: IntersectionPhases, position: int) -> bool:
        if phases.pedestrian[position]:
            return True
        return any(
            (obs := self.observe(lane)).present > 0 or obs.count > 0
            for lane in self.moving_lanes(phases, position)
        )

    def decide(self, t: float, phases: IntersectionPhases, guard: IntersectionGuard) -> int | None:
        position = phases.position(guard.target_phase)
        if position < 0:
            self.explain(phases.tls, "start", "the first green phase of the program")
            return phases.indices[0]
        green = self.green_time(t, guard)
        if green is None or green < phases.min_green_s[position]:
            return None
        n = phases.count
        calls = [p for p in (position + k for k in range(1, n)) if self.has_call(phases, p % n)]
        if not calls:
            return None  # rest in green
        moving = self.moving_lanes(phases, position)
        gap = min((self.observe(lane).gap_s for lane in moving), default=3600.0)
        max_green = max(MAX_GREEN_S, phases.min_green_s[position])
        if gap < PASSAGE_S and green < max_green:
            return None  # extend
        wanted = phases.indices[calls[0] % n]
        values = {"green_s": round(green, 1), "gap_s": round(min(gap, 3600.0), 1),
                  "passage_s": PASSAGE_S, "max_green_s": max_green,
                  "calls": [phases.indices[p % n] for p in calls]}  # fmt: skip
        if gap >= PASSAGE_S:
            seen = f"gap {gap:.1f} s" if gap < 3600.0 else "none on its loops"
            detail = (
                f"gap-out: no vehicle within the {PASSAGE_S:g} s passage time "
                f"({seen}) after {green:.0f} s of green; phase {wanted} has a call"
            )
            self.explain(phases.tls, "gap-out", detail, **values)
        else:
            detail = (
                f"max-out: {max_green:g} s of green reached with phase {wanted} calling "
                f"(vehicles still {gap:.1f} s apart)"
            )
            self.explain(phases.tls, "max-out", detail, **values)
        return wanted

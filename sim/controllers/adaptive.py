"""``adaptive``: schedule-driven, receding-horizon control in the spirit of SURTRAC.

Every step, for each intersection not in a transition, the controller turns what its detectors
report into *clusters* of vehicles per green phase and asks the dynamic program
(:mod:`sim.controllers.schedule_kernel`, compiled by Numba) for the phase schedule that serves them
all with the least total delay, within the guard's minimum greens, clearance times and a maximum
green. It carries out only the schedule's first decision - keep the current green, or move to the
next phase - and plans again one step later.

Clusters of a phase, from the lanes it serves:

* the **queue**: halting vehicles in the stop-line zones, ready now, discharging at saturation
  (0.5 veh/s per lane) after a 2 s start-up;
* the **approaching** vehicles: moving vehicles in the zones, due in about half the zone's travel
  time;
* the **neighbours' projected outflows**: each intersection, having planned, forecasts when the
  vehicles it will serve reach each downstream approach (its planned greens shifted by the travel
  time along the link), so the downstream intersection plans for platoons before they arrive.

Priority: a bus over a transit loop adds ``BUS_WEIGHT`` vehicles' worth of delay to its phase,
which earns it an early green or an extension. Phases that give a crossing its walk carry a
pedestrian call whose weight grows with the time since they were last served, so pedestrians
are never starved (push buttons are not modelled), and any phase with waiting vehicles is forced
after ``MAX_WAIT_S`` without service.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.controllers.base import ControlContext, register
from sim.controllers.detector_control import DetectorController
from sim.controllers.phases import SATURATION_VEH_S, START_UP_LOSS_S, IntersectionPhases
from sim.controllers.schedule_kernel import (
    FloatArray,
    IntArray,
    ScheduleKernel,
    compile_kernels,
    output_buffers,
    schedule_nb,
)
from sim.guard import IntersectionGuard

MAX_CLUSTERS = 6
MAX_GREEN_S = 50.0
BUS_WEIGHT = 10.0
PEDESTRIAN_WEIGHT_PER_S = 0.05
MAX_WAIT_S = 120.0
HORIZON_S = 90.0


@dataclass
class _Plan:
    """Per-intersection buffers for the kernel, allocated once."""

    arrival: FloatArray
    duration: FloatArray
    weight: FloatArray
    n: IntArray
    min_green: FloatArray
    max_green: FloatArray
    switch: FloatArray
    out_phase: IntArray
    out_start: FloatArray
    out_end: FloatArray
    last_served: list[float]
    upstream: dict[str, list[int]] = field(default_factory=dict)
    """Approach lane -> positions of the phases serving it."""


@dataclass(frozen=True)
class _Platoon:
    """Vehicles forecast to reach a downstream approach edge between two absolute times (s)."""

    begin_s: float
    end_s: float
    vehicles: float


@register("adaptive")
class Adaptive(DetectorController):
    def __init__(self, kernel: ScheduleKernel = schedule_nb) -> None:
        self.kernel = kernel
        """The compiled kernel; its pure-Python twin can be passed to check or time against it."""

    def setup(self, context: ControlContext) -> None:
        compile_kernels()
        self._plans: dict[str, _Plan] = {}
        self._zone_length = self.sensors.zone_length_m
        network = context.network
        # Free-flow time from an edge's upstream end to its stop-line zone, s.
        self._travel_s: dict[str, float] = {}
        for lane in network.lanes.values():
            run = max(0.0, lane.length_m - self._zone_length.get(lane.id, 0.0))
            self._travel_s.setdefault(lane.edge, run / max(lane.speed_mps, 1.0))
        for tls, phases in self.intersections.items():
            n = phases.count
            out_phase, out_start, out_end = output_buffers(n, MAX_CLUSTERS)
            self._plans[tls] = _Plan(
                arrival=np.zeros((n, MAX_CLUSTERS)),
                duration=np.ones((n, MAX_CLUSTERS)),
                weight=np.zeros((n, MAX_CLUSTERS)),
                n=np.zeros(n, np.int64),
                min_green=np.array(phases.min_green_s, dtype=np.float64),
                max_green=np.maximum(np.array(phases.min_green_s), MAX_GREEN_S),
                switch=np.array(phases.switch_s, dtype=np.float64),
                out_phase=out_phase,
                out_start=out_start,
                out_end=out_end,
                last_served=[0.0] * n,
            )
        # Platoons forecast onto each approach edge by the intersection upstream of it.
        self._forecast: dict[str, list[_Platoon]] = {}

    # --- clusters ------------------------------------------------------------------------------

    def _clusters(self, t: float, phases: IntersectionPhases, plan: _Plan, position: int) -> None:
        """Fill the kernel's cluster arrays for every phase from the latest observations."""
        for p in range(phases.count):
            lanes = phases.lanes[p]
            queue = moving = buses = 0.0
            platoons: list[tuple[float, float, float]] = []
            for lane in lanes:
                obs = self.observe(lane)
                queue += obs.queue
                moving += max(0, obs.present - obs.queue)
                buses += obs.buses
                edge = lane.rsplit("_", 1)[0]
                share = 1.0 / self._lanes_on_edge(phases, edge)
                for platoon in self._forecast.get(edge, ()):
                    if platoon.end_s > t:
                        platoons.append(
                            (platoon.begin_s - t, platoon.end_s - t, platoon.vehicles * share)
                        )
            rate = SATURATION_VEH_S * max(1, len(lanes))
            k = 0
            if p != position and phases.pedestrian[p]:
                # A standing pedestrian call whose urgency grows while the phase waits.
                queue += PEDESTRIAN_WEIGHT_PER_S * (t - plan.last_served[p])
            if queue > 0:
                plan.arrival[p, k] = 0.0
                plan.duration[p, k] = max(1.0, queue / rate + START_UP_LOSS_S)
                plan.weight[p, k] = queue
                k += 1
            if moving > 0 or buses > 0:
                speed = min(phases.lane_speed_mps[lane] for lane in lanes)
                zone = max(self._zone_length.get(lane, 30.0) for lane in lanes)
                plan.arrival[p, k] = 0.5 * zone / max(speed, 1.0)
                plan.duration[p, k] = max(1.0, moving / rate)
                plan.weight[p, k] = moving + BUS_WEIGHT * buses
                k += 1
            for begin, end, vehicles in sorted(platoons):
                if k >= MAX_CLUSTERS or begin > HORIZON_S or vehicles <= 0:
                    break
                start = max(begin, plan.arrival[p, k - 1] if k else 0.0)
                plan.arrival[p, k] = start
                plan.duration[p, k] = max(1.0, end - begin, vehicles / rate)
                plan.weight[p, k] = vehicles
                k += 1
            plan.n[p] = k

    def _lanes_on_edge(self, phases: IntersectionPhases, edge: str) -> int:
        return sum(1 for lane in phases.lane_length_m if lane.rsplit("_", 1)[0] == edge) or 1

    # --- decision ------------------------------------------------------------------------------

    def decide(self, t: float, phases: IntersectionPhases, guard: IntersectionGuard) -> int | None:
        plan = self._plans[phases.tls]
        position = phases.position(guard.target_phase)
        green = self.green_time(t, guard)
        if position < 0:
            return phases.indices[0]
        if green is None:
            return None  # still changing phase
        plan.last_served[position] = t
        if green < phases.min_green_s[position]:
            return None
        self._clusters(t, phases, plan, position)
        starving = [
            p for p in range(phases.count)
            if p != position and plan.n[p] > 0 and t - plan.last_served[p] > MAX_WAIT_S
        ]  # fmt: skip
        if starving:
            return phases.indices[starving[0]]
        _delay, segments = self.kernel(
            plan.arrival, plan.duration, plan.weight, plan.n, position, green,
            plan.min_green, plan.max_green, plan.switch,
            plan.out_phase, plan.out_start, plan.out_end,
        )  # fmt: skip
        self._publish_forecast(t, phases, plan, segments)
        first = int(plan.out_phase[0])
        if segments > 1 and plan.out_end[0] <= 0.0:
            first = int(plan.out_phase[1])  # the plan ends the current green now
        return None if first == position else phases.indices[first]

    def _publish_forecast(
        self, t: float, phases: IntersectionPhases, plan: _Plan, segments: int
    ) -> None:
        """Tell downstream approaches when this intersection's planned greens send vehicles."""
        outflow: dict[str, list[_Platoon]] = {}
        for s in range(segments):
            p = int(plan.out_phase[s])
            begin, end = max(0.0, float(plan.out_start[s])), float(plan.out_end[s])
            if end <= begin:
                continue
            for lane, edges in phases.out_edges[p].items():
                obs = self.observe(lane)
                vehicles = (obs.present + obs.count) / len(edges)
                for edge in edges:
                    travel = self._travel_s.get(edge, 0.0)
                    outflow.setdefault(edge, []).append(
                        _Platoon(t + begin + travel, t + end + travel, vehicles)
                    )
        for edge, platoons in outflow.items():
            self._forecast[edge] = platoons

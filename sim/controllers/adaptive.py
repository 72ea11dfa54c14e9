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

from dataclasses import dataclass

import numpy as np

from sim.controllers.base import ControlContext, register
from sim.controllers.detector_control import DetectorController
from sim.controllers.phases import SATURATION_VEH_S, START_UP_LOSS_S, IntersectionPhases
from sim.controllers.schedule_kernel import (
    BatchKernel,
    compile_kernels,
    max_segments,
    schedule_batch_nb,
)
from sim.guard import IntersectionGuard

MAX_CLUSTERS = 6
MAX_GREEN_S = 50.0
BUS_WEIGHT = 10.0
PEDESTRIAN_WEIGHT_PER_S = 0.05
MAX_WAIT_S = 120.0
HORIZON_S = 90.0


@dataclass(frozen=True)
class _Platoon:
    """Vehicles forecast to reach a downstream approach edge between two absolute times (s)."""

    begin_s: float
    end_s: float
    vehicles: float


@register("adaptive")
class Adaptive(DetectorController):
    def __init__(self, kernel: BatchKernel = schedule_batch_nb) -> None:
        self.kernel = kernel
        """The compiled kernel; its pure-Python twin can be passed to check or time against it."""

    def setup(self, context: ControlContext) -> None:
        compile_kernels()
        self._zone_length = self.sensors.zone_length_m
        network = context.network
        # Free-flow time from an edge's upstream end to its stop-line zone, s.
        self._travel_s: dict[str, float] = {}
        for lane in network.lanes.values():
            run = max(0.0, lane.length_m - self._zone_length.get(lane.id, 0.0))
            self._travel_s.setdefault(lane.edge, run / max(lane.speed_mps, 1.0))
        # Approach lane -> (its edge, its share of the platoons forecast onto that edge), once.
        self._edge_share: dict[str, tuple[str, float]] = {}
        for phases in self.intersections.values():
            edges = [lane.rsplit("_", 1)[0] for lane in phases.lane_length_m]
            for lane_id, edge in zip(phases.lane_length_m, edges, strict=True):
                self._edge_share[lane_id] = (edge, 1.0 / edges.count(edge))
        # One slot per intersection in buffers shared by the whole batch, allocated once.
        tls_ids = list(self.intersections)
        self._slot = {tls: i for i, tls in enumerate(tls_ids)}
        n = len(tls_ids)
        width = max([p.count for p in self.intersections.values()], default=1)
        segments = max_segments(width, MAX_CLUSTERS)
        self._n_phases = np.array([self.intersections[t].count for t in tls_ids], dtype=np.int64)
        self._arrival = np.zeros((n, width, MAX_CLUSTERS))
        self._duration = np.ones((n, width, MAX_CLUSTERS))
        self._weight = np.zeros((n, width, MAX_CLUSTERS))
        self._clusters_n = np.zeros((n, width), dtype=np.int64)
        self._current = np.zeros(n, dtype=np.int64)
        self._elapsed = np.zeros(n)
        self._min_green = np.zeros((n, width))
        self._max_green = np.full((n, width), MAX_GREEN_S)
        self._switch = np.zeros((n, width, width))
        for i, tls in enumerate(tls_ids):
            phases = self.intersections[tls]
            p = phases.count
            self._min_green[i, :p] = phases.min_green_s
            self._max_green[i, :p] = np.maximum(phases.min_green_s, MAX_GREEN_S)
            self._switch[i, :p, :p] = phases.switch_s
        self._out_phase = np.zeros((n, segments), dtype=np.int64)
        self._out_start = np.zeros((n, segments))
        self._out_end = np.zeros((n, segments))
        self._out_delay = np.zeros(n)
        self._out_segments = np.zeros(n, dtype=np.int64)
        self._last_served = {tls: [0.0] * self.intersections[tls].count for tls in tls_ids}
        # Platoons forecast onto each approach edge by the intersection upstream of it.
        self._forecast: dict[str, list[_Platoon]] = {}

    # --- clusters ------------------------------------------------------------------------------

    def _clusters(self, t: float, phases: IntersectionPhases, position: int) -> None:
        """Fill the intersection's cluster slots for every phase from the latest observations."""
        i = self._slot[phases.tls]
        arrival, duration, weight = self._arrival[i], self._duration[i], self._weight[i]
        last_served = self._last_served[phases.tls]
        for p in range(phases.count):
            lanes = phases.lanes[p]
            queue = moving = buses = 0.0
            platoons: list[tuple[float, float, float]] = []
            for lane in lanes:
                obs = self.observe(lane)
                queue += obs.queue
                moving += max(0, obs.present - obs.queue)
                buses += obs.buses
                edge, share = self._edge_share[lane]
                for platoon in self._forecast.get(edge, ()):
                    if platoon.end_s > t:
                        platoons.append(
                            (platoon.begin_s - t, platoon.end_s - t, platoon.vehicles * share)
                        )
            rate = SATURATION_VEH_S * max(1, len(lanes))
            k = 0
            if p != position and phases.pedestrian[p]:
                # A standing pedestrian call whose urgency grows while the phase waits.
                queue += PEDESTRIAN_WEIGHT_PER_S * (t - last_served[p])
            if queue > 0:
                arrival[p, k] = 0.0
                duration[p, k] = max(1.0, queue / rate + START_UP_LOSS_S)
                weight[p, k] = queue
                k += 1
            if moving > 0 or buses > 0:
                speed = min(phases.lane_speed_mps[lane] for lane in lanes)
                zone = max(self._zone_length.get(lane, 30.0) for lane in lanes)
                arrival[p, k] = 0.5 * zone / max(speed, 1.0)
                duration[p, k] = max(1.0, moving / rate)
                weight[p, k] = moving + BUS_WEIGHT * buses
                k += 1
            for begin, end, vehicles in sorted(platoons):
                if k >= MAX_CLUSTERS or begin > HORIZON_S or vehicles <= 0:
                    break
                arrival[p, k] = max(begin, arrival[p, k - 1] if k else 0.0)
                duration[p, k] = max(1.0, end - begin, vehicles / rate)
                weight[p, k] = vehicles
                k += 1
            self._clusters_n[i, p] = k

    # --- decisions -----------------------------------------------------------------------------

    def decide(self, t: float, phases: IntersectionPhases, guard: IntersectionGuard) -> int | None:
        return self.decide_all(t, [(phases, guard)])[0]

    def decide_all(
        self, t: float, intersections: list[tuple[IntersectionPhases, IntersectionGuard]]
    ) -> list[int | None]:
        """Plan every intersection that is free to change, in one kernel call."""
        wanted: list[int | None] = [None] * len(intersections)
        planned: list[tuple[int, IntersectionPhases, int]] = []
        for k, (phases, guard) in enumerate(intersections):
            position = phases.position(guard.target_phase)
            green = self.green_time(t, guard)
            if position < 0:
                wanted[k] = phases.indices[0]
                self.explain(phases.tls, "start", "the first green phase of the program")
                continue
            if green is None:
                continue  # still changing phase
            self._last_served[phases.tls][position] = t
            if green < phases.min_green_s[position]:
                continue
            self._clusters(t, phases, position)
            i = self._slot[phases.tls]
            starving = [
                p for p in range(phases.count)
                if p != position and self._clusters_n[i, p] > 0
                and t - self._last_served[phases.tls][p] > MAX_WAIT_S
            ]  # fmt: skip
            if starving:
                wanted[k] = phases.indices[starving[0]]
                waited = t - self._last_served[phases.tls][starving[0]]
                self.explain(
                    phases.tls, "max-wait",
                    f"phase {wanted[k]} has waited {waited:.0f} s (at most {MAX_WAIT_S:g} s)",
                    waited_s=round(waited, 1), max_wait_s=MAX_WAIT_S,
                )  # fmt: skip
                continue
            self._current[i] = position
            self._elapsed[i] = green
            planned.append((k, phases, position))
        if not planned:
            return wanted
        active = np.array([self._slot[phases.tls] for _, phases, _ in planned], dtype=np.int64)
        self.kernel(
            active, self._n_phases, self._arrival, self._duration, self._weight, self._clusters_n,
            self._current, self._elapsed, self._min_green, self._max_green, self._switch,
            self._out_phase, self._out_start, self._out_end, self._out_delay, self._out_segments,
        )  # fmt: skip
        for k, phases, position in planned:
            i = self._slot[phases.tls]
            segments = int(self._out_segments[i])
            self._publish_forecast(t, phases, i, segments)
            first = int(self._out_phase[i, 0])
            if segments > 1 and self._out_end[i, 0] <= 0.0:
                first = int(self._out_phase[i, 1])  # the plan ends the current green now
            wanted[k] = None if first == position else phases.indices[first]
            if first != position:
                self._explain_plan(phases, i, segments, position, first)
        return wanted

    def _explain_plan(
        self, phases: IntersectionPhases, i: int, segments: int, position: int, first: int
    ) -> None:
        """The plan's reason for ending the green now: its schedule and expected delay (and a
        bus the next phase carries, whose weight earned it the green)."""
        plan = [
            [phases.indices[int(self._out_phase[i, s])],
             round(max(0.0, float(self._out_start[i, s])), 1), round(float(self._out_end[i, s]), 1)]
            for s in range(segments)
        ]  # fmt: skip
        delay = round(float(self._out_delay[i]), 1)
        buses = sum(self.observe(lane).buses for lane in phases.lanes[first])
        to = phases.indices[first]
        greens = ", ".join(f"{p} at {start:g}-{end:g} s" for p, start, end in plan[:4] if end > 0)
        detail = (
            f"the least-delay plan ends phase {phases.indices[position]} now "
            f"({delay:.0f} vehicle-s of delay expected; greens: {greens})"
        )
        reason = "schedule"
        if buses:
            reason = "transit-priority"
            detail = f"a bus waits for phase {to} (weighted x{BUS_WEIGHT:g}); " + detail
        self.explain(phases.tls, reason, detail, schedule=plan, expected_delay_veh_s=delay, buses=buses)

    def _publish_forecast(self, t: float, phases: IntersectionPhases, i: int, segments: int) -> None:
        """Tell downstream approaches when this intersection's planned greens send vehicles."""
        outflow: dict[str, list[_Platoon]] = {}
        for s in range(segments):
            p = int(self._out_phase[i, s])
            begin, end = max(0.0, float(self._out_start[i, s])), float(self._out_end[i, s])
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

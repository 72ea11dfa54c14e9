"""An intersection as a detector-driven controller sees it: its green phases, the approach lanes
each phase serves, and the time it costs to move from one phase to another.

Everything here comes from the net and the guard's timings, so the controllers work on any SUMO
network with its own programs (any number of phases, pedestrian signals, joined junctions).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.guard import GREEN, IntersectionGuard
from sim.network import Network

SATURATION_VEH_S = 0.5
"""Saturation flow of one lane, veh/s (1800 veh/h)."""
START_UP_LOSS_S = 2.0


@dataclass(frozen=True)
class IntersectionPhases:
    tls: str
    indices: list[int]
    """Program index of each green phase (what the guard is asked for)."""
    lanes: list[list[str]]
    """Approach lanes with a green link in each phase."""
    out_edges: list[dict[str, list[str]]]
    """Per phase: approach lane -> the edges its green links lead to."""
    pedestrian: list[bool]
    """Whether each phase gives a crossing its walk."""
    min_green_s: list[float]
    switch_s: list[list[float]]
    """Clearance (yellow + all-red, or pedestrian clearance) from phase i to phase j, s."""
    lane_speed_mps: dict[str, float]
    lane_length_m: dict[str, float]

    @property
    def count(self) -> int:
        return len(self.indices)

    def position(self, program_index: int) -> int:
        """Position in :attr:`indices` of a program phase index (-1 if not a green phase)."""
        return self.indices.index(program_index) if program_index in self.indices else -1


def intersection_phases(guard: IntersectionGuard, network: Network) -> IntersectionPhases:
    tls = network.traffic_lights[guard.tls]
    states = [state for _, state in guard.phases]
    lanes: list[list[str]] = []
    outs: list[dict[str, list[str]]] = []
    for state in states:
        served: dict[str, list[str]] = {}
        for link in tls.links:
            lane = network.lanes.get(link.from_lane)
            if lane is None or not lane.carries_vehicles or link.index >= len(state):
                continue
            if state[link.index] in GREEN:
                served.setdefault(lane.id, []).append(link.to_lane.rsplit("_", 1)[0])
        lanes.append(sorted(served))
        outs.append(served)
    pedestrian = [any(s[i] in GREEN for i in tls.crossing_links if i < len(s)) for s in states]
    timings = guard.timings
    min_green = [
        max([timings[i].min_green_s for i, c in enumerate(s) if c in GREEN], default=0.0) for s in states
    ]
    switch = []
    for a in states:
        row = []
        for b in states:
            ending = [i for i in range(len(a)) if a[i] in GREEN and b[i] not in GREEN]
            row.append(max([timings[i].yellow_s + timings[i].clearance_s for i in ending], default=0.0))
        switch.append(row)
    all_lanes = {lane for served in lanes for lane in served}
    return IntersectionPhases(
        tls=guard.tls,
        indices=[index for index, _ in guard.phases],
        lanes=lanes,
        out_edges=outs,
        pedestrian=pedestrian,
        min_green_s=min_green,
        switch_s=switch,
        lane_speed_mps={lane: network.lanes[lane].speed_mps for lane in all_lanes},
        lane_length_m={lane: network.lanes[lane].length_m for lane in all_lanes},
    )

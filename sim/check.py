"""``ccsim check``: what ccsim's controllers can and cannot do on a network, per intersection.

Read before a study on a city's own net: which program each signal runs, the green phases a
controller will choose between, the signal states and features it uses, where detectors go (and
where a lane is too short for them), what ccsim cannot drive (those signals keep their own
program), and what the net's programs do that the guard would not (notes, not faults).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.detectors import DetectorConfig, DetectorKind, place_detectors
from sim.guard import (
    IntersectionGuard,
    nothing_to_choose,
    program_notes,
    red_amber_times,
    unsupported,
)
from sim.network import Network


@dataclass
class IntersectionCheck:
    tls: str
    programs: list[str]
    """``id (type, N phases)`` of each program, the one ccsim starts from first."""
    green_phases: list[int]
    states: str
    """Every signal state the programs use, in SUMO's letters."""
    features: list[str]
    detectors: list[str]
    """One line per approach lane: its zone and loop, or why they were shortened."""
    unsupported: str | None
    notes: list[str] = field(default_factory=list)


def check_network(
    network: Network, config: DetectorConfig, step_s: float = 1.0, clearance: str = "net"
) -> list[IntersectionCheck]:
    """One :class:`IntersectionCheck` per signal of ``network``, in id order."""
    detectors = place_detectors(network, config)
    by_tls: dict[str, list[str]] = {}
    lane_owners: dict[str, set[str]] = {}
    for det in detectors:
        lane = network.lanes[det.lane]
        if det.kind is DetectorKind.STOPLINE:
            lane_owners.setdefault(det.lane, set()).add(det.tls)
            line = f"{det.lane}: stop-line zone {det.distance_to_stopline_m:.0f} m"
            if det.distance_to_stopline_m < config.stopline_length_m:
                line += f" (lane only {lane.length_m:.1f} m: the zone would reach the junction behind)"
            by_tls.setdefault(det.tls, []).append(line)
        elif det.kind is DetectorKind.ADVANCE:
            by_tls[det.tls][-1] += f", loop {det.distance_to_stopline_m:.0f} m upstream"
    reports = []
    for tls_id in sorted(network.traffic_lights):
        tls = network.traffic_lights[tls_id]
        reason = unsupported(tls)
        if not tls.programs or not tls.link_count:
            reports.append(IntersectionCheck(tls_id, [], [], "", [], [], reason))
            continue
        guard = IntersectionGuard.build(tls, network, step_s, clearance)
        states = "".join(sorted({c for p in tls.programs for ph in p.phases for c in ph.state}))
        features = []
        if "s" in states:
            features.append("right-turn-on-red (s)")
        if any(red_amber_times(tls)):
            features.append("red-amber (u) before greens")
        if len(tls.programs) > 1:
            features.append(f"{len(tls.programs)} programs")
        if any(p.type != "static" for p in tls.programs):
            features.append("programs of type " + ", ".join(sorted({p.type for p in tls.programs})))
        junctions = {network.edge_ends.get(network.lanes[link.from_lane].edge, ("", ""))[1]
                     for link in tls.links if link.from_lane in network.lanes}  # fmt: skip
        if len(junctions) > 1:
            features.append(f"joined signal over {len(junctions)} junctions")
        shared = sorted(
            lane for lane, owners in lane_owners.items() if tls_id in owners and len(owners) > 1
        )
        if shared:
            features.append(f"lanes shared with another signal: {', '.join(shared)}")
        if nothing_to_choose(tls):
            features.append("one green phase: nothing to choose, it keeps its program")
        if guard.always_off:
            features.append(f"links never signalled (O): {sorted(guard.always_off)}")
        reports.append(
            IntersectionCheck(
                tls=tls_id,
                programs=[f"{p.id} ({p.type}, {len(p.phases)} phases)" for p in tls.programs],
                green_phases=[index for index, _ in guard.phases],
                states=states,
                features=features,
                detectors=by_tls.get(tls_id, []),
                unsupported=reason,
                notes=program_notes(tls, guard, network),
            )
        )
    return reports

"""Generate the ``district`` scenario: a synthetic 6x6 grid modelled on Miraflores (Lima).

Synthetic, NOT surveyed geometry.  Grid junctions are named by column letter (A..F, west to east)
and row digit (0..5, south to north); all are signalised except the corners A0 and F5, which
leaves exactly 34 traffic lights.  Every grid line continues to a fringe node (``west<row>``,
``east<row>``, ``south<col>``, ``north<col>``) where traffic enters and leaves.

Demand: a one-hour morning peak in twelve 5-minute slices of Poisson flows per origin; each flow
draws its route from a route distribution of explicit edge lists, so SUMO's seed decides arrival
times, routes and driver behaviour.  Plus eight bus lines with stops, short pedestrian walks, and
on-street / off-street parking areas (no vehicle parks yet).

Run from anywhere: ``.venv/bin/python scenarios/district/generate.py``.
"""

from __future__ import annotations

import math
import random
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from sumolib.net import Net

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _gen import (  # noqa: E402
    Assignment,
    base_vtypes,
    edge,
    el,
    netconvert,
    param,
    poisson_flow,
    read_net,
    route,
    walkers,
    write_sumocfg,
    write_toml,
    write_xml,
)

NAME = "district"
SEED = 20240715  # fixed: parking placement, internal trip ends, pedestrian pairs
XS = (0.0, 150.0, 300.0, 440.0, 600.0, 750.0)  # column positions (m): blocks of 140-160 m
YS = (0.0, 140.0, 290.0, 430.0, 580.0, 720.0)  # row positions (m)
COLS = "ABCDEF"
FRINGE_M = 130.0  # entry/exit arms beyond the grid (m)
UNSIGNALISED = ("A0", "F5")  # corners left as priority junctions -> 34 signals


@dataclass(frozen=True)
class Road:
    """One grid line.  ``oneway``: 0 two-way, +1 only east/north, -1 only west/south."""

    name: str
    lanes: int  # per direction
    speed: float  # m/s
    oneway: int
    priority: int

    @property
    def avenue(self) -> bool:
        return self.lanes >= 2


AV, ST = 13.89, 11.11  # avenues 50 km/h, streets 40 km/h
ROWS = (  # south to north
    Road("Calle 1", 1, ST, 0, 2),
    Road("Av. Benavides (synthetic)", 3, AV, 0, 4),
    Road("Calle 2 (one-way W)", 2, ST, -1, 3),
    Road("Calle 3 (one-way E)", 2, ST, +1, 3),
    Road("Av. Pardo (synthetic)", 2, AV, 0, 4),
    Road("Calle 4", 1, ST, 0, 2),
)
COLUMNS = (  # west to east
    Road("Jiron A", 1, ST, 0, 1),
    Road("Av. Arequipa (synthetic)", 3, AV, 0, 4),
    Road("Jiron C", 1, ST, 0, 2),
    Road("Av. Larco (synthetic, one-way N)", 3, AV, +1, 4),
    Road("Av. Diagonal (synthetic, one-way S)", 3, AV, -1, 4),
    Road("Av. Este", 2, AV, 0, 3),
)

# Demand: hourly vehicles per entering fringe lane, trips from 16 internal streets, share of
# fringe trips ending inside.  The 5-minute profile peaks at 35 min; the ends run at 0.55 of it.
FRINGE_VEH_H_PER_LANE = 140.0
INTERNAL_VEH_H = 1000.0
INTERNAL_DEST_SHARE = 0.15
SLICE_S = 300
PEAK_MIN, PEAK_WIDTH_MIN, BASE = 35.0, 14.0, 0.55
PED_PAIRS, PED_PER_PAIR_H = 36, 25  # 900 pedestrians per hour
PED_MAX_M = 320.0  # walks go at most about two blocks (Manhattan distance of block centres)

# Bus lines: id -> via edges per direction, headway (s), first departure (s; > 0 because SUMO
# mis-orders the stops of a line vehicle departing at 0 s).
BUS_LINES: dict[str, tuple[list[list[str]], int, int]] = {
    "L1": ([["west1_A1", "F1_east1"], ["east1_F1", "A1_west1"]], 360, 10),
    "L2": ([["west4_A4", "F4_east4"], ["east4_F4", "A4_west4"]], 480, 60),
    "L3": ([["southB_B0", "B5_northB"], ["northB_B5", "B0_southB"]], 360, 120),
    "L4": ([["southD_D0", "D5_northD"], ["northE_E5", "E0_southE"]], 420, 30),
    "L5": ([["southF_F0", "F5_northF"], ["northF_F5", "F0_southF"]], 600, 200),
    "L6": ([["west3_A3", "F3_east3"], ["east2_F2", "A2_west2"]], 600, 90),
    "L7": ([["southB_B0", "B4_C4", "F4_east4"], ["east4_F4", "C4_B4", "B0_southB"]], 480, 240),
    "L8": ([["southD_D0", "D1_C1", "A1_west1"], ["west1_A1", "D1_E1", "E0_southE"]], 540, 150),
}
BUS_STOP_S = 20  # dwell time (s)
STOP_POS = (12.0, 32.0)  # bus stop on the first 12-32 m after the upstream junction

# On-street parking per kind: (count, capacity range); bays of BAY_M after the bus-stop slot.
PARKING = {"rotating": (24, (6, 16)), "loading": (8, (2, 4)), "disabled": (5, (1, 2))}
LOTS = (("lot_north", "C4_D4", 120), ("lot_south", "B1_C1", 150))  # off-street: id, edge, spaces
BAY_M, BAYS_FROM_M = 6.0, 40.0


def node_at(c: int, r: int) -> str:
    """Grid junction, or fringe node for c or r equal to -1 or 6."""
    if c in (-1, 6):
        return f"{'west' if c < 0 else 'east'}{r}"
    if r in (-1, 6):
        return f"{'south' if r < 0 else 'north'}{COLS[c]}"
    return f"{COLS[c]}{r}"


def grid_lines() -> list[tuple[Road, list[str]]]:
    """Each grid line with its node chain (fringe to fringe) towards east / north."""
    rows = [(rd, [node_at(c, r) for c in range(-1, 7)]) for r, rd in enumerate(ROWS)]
    return rows + [(rd, [node_at(c, r) for r in range(-1, 7)]) for c, rd in enumerate(COLUMNS)]


def directed(rd: Road, a: str, b: str) -> list[tuple[str, str]]:
    """The travel directions a road allows between consecutive nodes a -> b (east/north)."""
    return [(s, d) for s, d, sense in ((a, b, +1), (b, a, -1)) if rd.oneway in (0, sense)]


def left_turn_bans(edge_ids: set[str]) -> list[ET.Element]:
    """Forbid left turns from three-lane two-way avenues at signals (common in Lima).

    Against three opposing lanes a permissive left finds almost no gap and blocks the inner lane;
    drivers go round the block instead, which the assigned routes respect.
    """
    bans = []
    for c in range(6):
        for r in range(6):
            if (j := node_at(c, r)) in UNSIGNALISED:
                continue
            for dc, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):  # direction of travel into j
                rd = ROWS[r] if dr == 0 else COLUMNS[c]
                src, dst = f"{node_at(c - dc, r - dr)}_{j}", f"{j}_{node_at(c - dr, r + dc)}"
                if rd.lanes >= 3 and rd.oneway == 0 and {src, dst} <= edge_ids:
                    bans.append(el("delete", from_=src, to=dst))
    return bans


def build_net() -> None:
    nodes = [
        el("node", id=node_at(c, r), x=XS[c], y=YS[r],
           type="priority" if node_at(c, r) in UNSIGNALISED else "traffic_light")
        for c in range(6)
        for r in range(6)
    ]  # fmt: skip
    for r, y in enumerate(YS):
        nodes.append(el("node", id=node_at(-1, r), x=XS[0] - FRINGE_M, y=y, type="dead_end"))
        nodes.append(el("node", id=node_at(6, r), x=XS[-1] + FRINGE_M, y=y, type="dead_end"))
    for c, x in enumerate(XS):
        nodes.append(el("node", id=node_at(c, -1), x=x, y=YS[0] - FRINGE_M, type="dead_end"))
        nodes.append(el("node", id=node_at(c, 6), x=x, y=YS[-1] + FRINGE_M, type="dead_end"))
    edges = []
    for rd, chain in grid_lines():
        walk_m = 3.0 if rd.avenue else 2.0
        for a, b in pairwise(chain):
            for src, dst in directed(rd, a, b):
                edges.append(edge(src, dst, rd.lanes, rd.speed, rd.priority, rd.name, walk_m))
            if rd.oneway:  # a pedestrian-only edge gives a one-way road its other sidewalk
                src, dst = (b, a) if rd.oneway > 0 else (a, b)
                edges.append(
                    el("edge", id=f"{src}_{dst}_walk", from_=src, to=dst, numLanes=1,
                       speed=1.39, allow="pedestrian", width=walk_m, name=rd.name)
                )  # fmt: skip
    # netconvert's static programs (90 s cycle, equal splits, crossings green with the parallel
    # vehicle stage) are a plausible un-retimed baseline for the controllers to improve on.
    bans = left_turn_bans({e.get("id", "") for e in edges})
    netconvert(HERE, NAME, nodes, edges, bans, extra={"tls.cycle.time": 90})


def inner_edges() -> list[tuple[str, Road]]:
    """Vehicle edges between two grid junctions, in a fixed order."""
    return [
        (f"{s}_{d}", rd)
        for rd, chain in grid_lines()
        for a, b in pairwise(chain[1:-1])
        for s, d in directed(rd, a, b)
    ]


def build_demand(net: Net, rng: random.Random) -> tuple[list[ET.Element], list[ET.Element]]:
    """Route distributions per origin and 5-minute Poisson flows following the peak profile."""
    entries: dict[str, tuple[str, int]] = {}  # entry edge -> (fringe node, lanes)
    exits: dict[str, tuple[str, int]] = {}
    for rd, ch in grid_lines():
        if rd.oneway >= 0:  # eastward / northward traffic enters at the start, leaves at the end
            entries[f"{ch[0]}_{ch[1]}"] = (ch[0], rd.lanes)
            exits[f"{ch[-2]}_{ch[-1]}"] = (ch[-1], rd.lanes)
        if rd.oneway <= 0:
            entries[f"{ch[-1]}_{ch[-2]}"] = (ch[-1], rd.lanes)
            exits[f"{ch[1]}_{ch[0]}"] = (ch[0], rd.lanes)
    streets = [e for e, rd in inner_edges() if not rd.avenue or rd.oneway]
    internal_from, internal_to = sorted(rng.sample(streets, 16)), sorted(rng.sample(streets, 16))
    exit_lanes = sum(n for _f, n in exits.values())

    def destinations(src: str, fringe: str | None) -> list[tuple[str, float]]:
        """Exits weighted by lanes (no U-turn back to the origin fringe) and internal ends."""
        w_exit = (1 - INTERNAL_DEST_SHARE) / exit_lanes
        dests = [(d, w_exit * n) for d, (f, n) in exits.items() if f != fringe]
        return dests + [(d, INTERNAL_DEST_SHARE / 16) for d in internal_to if d != src]

    origins = {e: (FRINGE_VEH_H_PER_LANE * n, destinations(e, f)) for e, (f, n) in entries.items()}
    origins |= {e: (INTERNAL_VEH_H / 16, destinations(e, None)) for e in internal_from}
    od: dict[tuple[str, str], float] = {}
    for src, (veh_h, dests) in origins.items():
        total = sum(w for _d, w in dests)
        od |= {(src, d): veh_h * w / total for d, w in dests}
    routes = Assignment(net).assign(od)
    dists = []
    for src, (veh_h, _dests) in origins.items():
        alternatives = [
            el("route", id=f"{s}__{d}#{i}", edges=" ".join(p), probability=f"{share * v / veh_h:.5f}")
            for (s, d), v in od.items()
            if s == src
            for i, (p, share) in enumerate(routes[(s, d)].items())
        ]
        dists.append(el("routeDistribution", alternatives, id=f"from_{src}"))
    flows = [
        poisson_flow(f"{src}.s{k:02d}", f"from_{src}", veh_h * factor, "traffic", k * SLICE_S,
                     (k + 1) * SLICE_S, departPos="base" if src in entries else "random_free")
        for k, factor in enumerate(profile())
        for src, (veh_h, _dests) in origins.items()
    ]  # fmt: skip
    return dists, flows


def profile() -> list[float]:
    """Relative rate per 5-minute slice: a smooth peak, normalised to mean 1 over the hour."""
    mids = [(i + 0.5) * SLICE_S / 60 for i in range(3600 // SLICE_S)]
    raw = [BASE + (1 - BASE) * math.exp(-(((m - PEAK_MIN) / PEAK_WIDTH_MIN) ** 2)) for m in mids]
    return [r * len(raw) / sum(raw) for r in raw]


def build_buses(net: Net) -> tuple[list[ET.Element], list[ET.Element], list[ET.Element]]:
    """Bus stops every second block along each line, routes with stops, timetabled flows."""
    stop_lines: dict[str, set[str]] = {}
    routes, flows = [], []
    for line, (directions, headway, first) in BUS_LINES.items():
        for d, via in enumerate(directions):
            edges = route(net, via, vclass="bus")
            stops = edges[1:-1:2]  # every second block, not on the fringe arms
            for e in stops:
                stop_lines.setdefault(e, set()).add(line)
            rid = f"bus_{line}_{d}"
            stop_els = [el("stop", busStop=f"bs_{e}", duration=BUS_STOP_S) for e in stops]
            routes.append(el("route", stop_els, id=rid, edges=" ".join(edges)))
            # SUMO's `line` names one stop sequence, hence one per direction ("L1_0"); the param
            # keeps the line passengers know.  The directions start half a headway apart.
            flows.append(
                el("flow", [param("ccsim.line", line)], id=rid, type="bus", route=rid,
                   line=f"{line}_{d}", begin=first + d * headway // 2, end=3600,
                   period=headway, departLane="best", departSpeed="max")
            )  # fmt: skip
    bus_stops = [
        el("busStop", id=f"bs_{e}", lane=f"{e}_1", startPos=STOP_POS[0], endPos=STOP_POS[1],
           lines=" ".join(sorted(lines)), name=f"stop {e}")
        for e, lines in sorted(stop_lines.items())
    ]  # fmt: skip
    return bus_stops, routes, flows


def lot_spaces(net: Net, lane_id: str, capacity: int) -> list[ET.Element]:
    """A grid of perpendicular 2.5 m x 5 m spaces behind the sidewalk, right of the lane."""
    shape = net.getLane(lane_id).getShape()
    (x0, y0), (x1, y1) = shape[0], shape[-1]  # grid edges are straight
    norm = math.hypot(x1 - x0, y1 - y0)
    dx, dy = (x1 - x0) / norm, (y1 - y0) / norm
    nx, ny = dy, -dx  # right-hand normal
    angle = math.degrees(math.atan2(nx, ny)) % 360  # SUMO: 0 = north, clockwise
    per_row = math.ceil(capacity / 6)
    spaces = []
    for i in range(capacity):
        row, col = divmod(i, per_row)
        along, out = BAYS_FROM_M + 1.25 + 2.5 * col, 10.0 + 6.0 * row
        x, y = x0 + dx * along + nx * out, y0 + dy * along + ny * out
        spaces.append(el("space", x=x, y=y, width=2.5, length=5.0, angle=angle))
    return spaces


def build_parking(net: Net, rng: random.Random) -> list[ET.Element]:
    """Roadside bays of each kind (param ``ccsim.kind``) and the off-street lots."""
    lot_edges = {e for _id, e, _cap in LOTS}
    candidates = [e for e, _rd in inner_edges() if e not in lot_edges]
    rng.shuffle(candidates)
    areas = []
    for kind, (count, (lo, hi)) in PARKING.items():
        picked, candidates = sorted(candidates[:count]), candidates[count:]
        for e in picked:
            length = net.getLane(f"{e}_1").getLength()
            cap = min(rng.randint(lo, hi), int((length - BAYS_FROM_M - 15.0) // BAY_M))
            areas.append(
                el("parkingArea", [param("ccsim.kind", kind)], id=f"pa_{kind}_{e}",
                   lane=f"{e}_1", startPos=BAYS_FROM_M, endPos=BAYS_FROM_M + cap * BAY_M,
                   roadsideCapacity=cap, onRoad=False, name=f"{kind} {e}")
            )  # fmt: skip
    for lot, e, cap in LOTS:  # vehicles enter from a 40 m stretch of the lane
        children = [param("ccsim.kind", "lot"), *lot_spaces(net, f"{e}_1", cap)]
        areas.append(
            el("parkingArea", children, id=lot, lane=f"{e}_1", startPos=BAYS_FROM_M,
               endPos=BAYS_FROM_M + 40.0, roadsideCapacity=0, onRoad=False, name=f"lot {e}")
        )  # fmt: skip
    return areas


def build_pedestrians(rng: random.Random) -> list[ET.Element]:
    """Short walks (to shops, bus stops) between nearby blocks at a constant Poisson rate."""

    def mid(e: str) -> tuple[float, float]:
        (ca, ra), (cb, rb) = ((COLS.index(n[0]), int(n[1])) for n in e.split("_"))
        return (XS[ca] + XS[cb]) / 2, (YS[ra] + YS[rb]) / 2

    def dist(a: str, b: str) -> float:
        return abs(mid(a)[0] - mid(b)[0]) + abs(mid(a)[1] - mid(b)[1])

    edges = [e for e, _rd in inner_edges()]
    near = [(a, b) for a in edges for b in edges if 0 < dist(a, b) <= PED_MAX_M]
    return [
        walkers(f"ped{i:02d}", a, b, PED_PER_PAIR_H)
        for i, (a, b) in enumerate(rng.sample(near, PED_PAIRS))
    ]


def vtypes() -> list[ET.Element]:
    """Traffic mix (90% cars, 10% delivery vans), buses, pedestrians."""
    car, ped = base_vtypes()
    car.set("probability", "0.90")
    van = el("vType", id="van", vClass="delivery", length=6.5, minGap=2.5, accel=2.0, decel=4.0,
             sigma=0.5, speedFactor="normc(0.95,0.1,0.2,2)", probability=0.1)  # fmt: skip
    bus = el("vType", id="bus", vClass="bus", length=12.0, minGap=3.0, accel=1.2, decel=4.0,
             sigma=0.3, speedFactor="normc(0.9,0.05,0.7,1.1)", personCapacity=80)  # fmt: skip
    return [el("vTypeDistribution", [car, van], id="traffic"), bus, ped]


def main() -> None:
    build_net()
    net = read_net(HERE / f"{NAME}.net.xml")
    rng = random.Random(SEED)
    bus_stops, bus_routes, bus_flows = build_buses(net)
    parking = build_parking(net, rng)
    dists, flows = build_demand(net, rng)
    persons = build_pedestrians(rng)
    note = "generated by generate.py"
    write_xml(HERE / f"{NAME}.add.xml", el("additional", [*vtypes(), *bus_stops, *parking]), note)
    # SUMO reads route files incrementally: everything that departs must be sorted by begin time
    departures = sorted([*bus_flows, *flows, *persons], key=lambda f: int(f.get("begin", 0)))
    write_xml(HERE / f"{NAME}.rou.xml", el("routes", [*bus_routes, *dists, *departures]), note)
    write_sumocfg(HERE, NAME)
    description = "Synthetic 34-signal district modelled on Miraflores (Lima), 1 h morning peak"
    write_toml(HERE, description, plans="plans", parking=True, devices=True)


if __name__ == "__main__":
    main()
